"""Preprocessing: how a picture becomes the network's input, the same in training and prediction."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Preprocessing:
    """Resize to `size`, ToTensor (0..1 floats), then Normalize when mean/std are set.

    Stored in every checkpoint, so a prediction uses exactly what training used.
    """

    size: tuple[int, int] = (32, 32)
    channels: int = 3
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"size": list(self.size), "channels": self.channels,
                "mean": None if self.mean is None else list(self.mean),
                "std": None if self.std is None else list(self.std)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Preprocessing":
        mean, std = d.get("mean"), d.get("std")
        return cls(size=tuple(int(x) for x in d["size"]), channels=int(d["channels"]),
                   mean=None if mean is None else tuple(float(x) for x in mean),
                   std=None if std is None else tuple(float(x) for x in std))

    def batch(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [N, C, H, W] → float [N, C, H, W], ToTensor's /255 then Normalize, batched on any device."""
        x = images.float().div_(255)
        if self.mean is not None and self.std is not None:
            mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
            std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
            x = (x - mean) / std
        return x
