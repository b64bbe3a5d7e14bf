"""Prediction, the course's test.py step by step: any picture in, the class out, every value kept.

    image = Image.open(path).convert("RGB")
    transform = Compose([Resize((32, 32)), ToTensor()])
    image = torch.reshape(transform(image), (1, 3, 32, 32))
    model.eval(); with torch.no_grad(): output = model(image)
    print(output.argmax(1))
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.transforms import v2

from dl_core import images
from dl_core.checkpoint import Checkpoint
from dl_core.errors import CourseError
from dl_core.preprocess import Preprocessing

MAX_IMAGE_BYTES = images.MAX_IMAGE_BYTES  # one set of limits for every page: dl_core.images
MAX_PIXELS = images.MAX_IMAGE_PIXELS


def load_image(data: bytes, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """The picture in `data` as an RGB PIL image, upright (EXIF orientation applied), first frame.

    PNG (RGBA, palette, 16-bit, grey), JPEG (CMYK too), GIF, BMP, WEBP, through the app's one
    image intake (`dl_core.images`): byte size, format and pixel count checked before decoding.
    """
    return images.read_image(data, max_bytes=max_bytes, max_pixels=max_pixels)


def open_image(data: bytes, max_bytes: int = MAX_IMAGE_BYTES,
               max_pixels: int = MAX_PIXELS) -> tuple[Image.Image, str]:
    """(RGB image, the file's own mode: `RGBA`, `P`, `CMYK`, `I;16`, ...) — see load_image."""
    return images.open_image(data, max_bytes=max_bytes, max_pixels=max_pixels)


@dataclass(frozen=True)
class Prediction:
    """Every intermediate value of test.py for one image."""

    original_size: tuple[int, int]  # (width, height) after convert("RGB")
    resized: Image.Image  # the picture after Resize: exactly what the network sees
    tensor: torch.Tensor  # ToTensor(): float [C, H, W] in 0..1
    normalized: torch.Tensor | None  # after Normalize, when used
    batch: torch.Tensor  # reshape(1, C, H, W): the network's input
    logits: torch.Tensor  # output [num_classes]
    probs: torch.Tensor  # softmax(output) [num_classes]
    index: int  # output.argmax(1)
    preprocessing: Preprocessing

    @property
    def seen_uint8(self) -> torch.Tensor:
        """The resized picture as uint8 [C, H, W] (the builder page's feature maps take this)."""
        x = torch.from_numpy(np.asarray(self.resized, dtype=np.uint8).copy())
        return x.unsqueeze(0) if x.dim() == 2 else x.permute(2, 0, 1).contiguous()

    def top(self, k: int = 5) -> list[tuple[int, float]]:
        """[(class index, probability)], most likely first."""
        values, indices = self.probs.topk(min(k, self.probs.numel()))
        return [(int(i), float(v)) for v, i in zip(values, indices)]


def preprocess_steps(image: Image.Image, preprocessing: Preprocessing) -> tuple[Image.Image, torch.Tensor,
                                                                                torch.Tensor | None, torch.Tensor]:
    """(resized PIL, ToTensor [C,H,W], normalized or None, batch [1,C,H,W]): test.py's transform, one step at a time."""
    rgb = image.convert("RGB")
    if preprocessing.channels == 1:
        rgb = v2.Grayscale(num_output_channels=1)(rgb)
    resized = v2.Resize(preprocessing.size)(rgb)  # Resize((32, 32)): both sides, the aspect ratio is not kept
    tensor = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])(resized)  # ToTensor()
    tensor = torch.as_tensor(tensor).clone()
    normalized = None
    if preprocessing.mean is not None and preprocessing.std is not None:
        normalized = v2.Normalize(list(preprocessing.mean), list(preprocessing.std))(tensor)
        normalized = torch.as_tensor(normalized).clone()
    x = normalized if normalized is not None else tensor
    batch = torch.reshape(x, (1, preprocessing.channels, *preprocessing.size))
    return resized, tensor, normalized, batch


def predict(model: nn.Module, image: Image.Image, preprocessing: Preprocessing) -> Prediction:
    """Run `model` on one PIL image with `preprocessing`, keeping every step."""
    resized, tensor, normalized, batch = preprocess_steps(image, preprocessing)
    model.eval()
    with torch.no_grad():
        output = model(batch)
    if output.dim() != 2 or output.shape[0] != 1:
        raise CourseError("predict.bad_output", "the network's output has shape {shape}; expected [1, classes]",
                          shape=list(output.shape))
    logits = output[0].float()
    probs = torch.softmax(logits, dim=0)
    return Prediction(original_size=image.size, resized=resized, tensor=tensor, normalized=normalized,
                      batch=batch, logits=logits, probs=probs, index=int(output.argmax(1)),
                      preprocessing=preprocessing)


def predict_checkpoint(ckpt: Checkpoint, image: Image.Image, preprocessing: Preprocessing | None = None,
                       model: nn.Module | None = None) -> Prediction:
    """predict() with the checkpoint's model and, unless overridden, its own training preprocessing."""
    return predict(model if model is not None else ckpt.build(), image, preprocessing or ckpt.preprocessing)


def predict_bytes(ckpt: Checkpoint, data: bytes, preprocessing: Preprocessing | None = None,
                  model: nn.Module | None = None) -> tuple[Image.Image, Prediction]:
    """load_image(data) then predict: the page's one call for an uploaded file."""
    image = load_image(data)
    return image, predict_checkpoint(ckpt, image, preprocessing, model)


def preprocessing_differences(trained: Preprocessing, used: Preprocessing) -> list[str]:
    """Which settings differ from training (`size`, `channels`, `normalize`): each one skews predictions."""
    diffs = []
    if tuple(trained.size) != tuple(used.size):
        diffs.append("size")
    if trained.channels != used.channels:
        diffs.append("channels")
    if (trained.mean, trained.std) != (used.mean, used.std):
        diffs.append("normalize")
    return diffs


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """A float [C, H, W] tensor in 0..1 as a PIL image (for showing ToTensor's output)."""
    x = (tensor.clamp(0, 1) * 255).round().to(torch.uint8)
    if x.shape[0] == 1:
        return Image.fromarray(x[0].numpy(), mode="L")
    return Image.fromarray(x.permute(1, 2, 0).contiguous().numpy(), mode="RGB")
