"""Datasets: everything in memory as uint8 tensors, indexed like torchvision's CIFAR10."""
from __future__ import annotations

import torch
from PIL import Image
from torch.utils.data import Dataset


class TensorImageDataset(Dataset):
    """A whole image dataset as `images` uint8 [N, C, H, W] and `targets` int64 [N].

    `dataset[i]` returns `(img, target)` like torchvision's CIFAR10: a PIL image passed
    through `transform` when one is set. Training reads `images`/`targets` directly,
    so the hot loop never touches PIL.
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, classes: list[str] | tuple[str, ...],
                 name: str = "", transform=None, target_transform=None) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {images.dtype} {tuple(images.shape)}")
        if targets.shape != (images.shape[0],):
            raise ValueError(f"targets must be [N]={images.shape[0]}, got {tuple(targets.shape)}")
        self.images = images
        self.targets = targets.long()
        self.classes = list(classes)
        self.name = name
        self.transform = transform
        self.target_transform = target_transform

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return self.images.shape[0]

    def pil(self, index: int) -> Image.Image:
        """Sample `index` as a PIL image (mode RGB, or L for one channel)."""
        x = self.images[index]
        if x.shape[0] == 1:
            return Image.fromarray(x[0].numpy(), mode="L")
        return Image.fromarray(x.permute(1, 2, 0).contiguous().numpy(), mode="RGB")

    def __getitem__(self, index: int):
        img, target = self.pil(index), int(self.targets[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def subset(self, n: int | None) -> "TensorImageDataset":
        """The first n samples (all when n is None or larger), sharing memory."""
        if n is None or n >= len(self):
            return self
        return TensorImageDataset(self.images[:n], self.targets[:n], self.classes, self.name,
                                  self.transform, self.target_transform)
