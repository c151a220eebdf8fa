"""The trained image towers: a small CNN or an MLP on 28x28 grayscale images, and CLIP's learned scale."""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn

__all__ = ["FMNIST_MEAN", "FMNIST_STD", "ImageTower", "ContrastiveImageSide", "describe_tower"]

# Fashion-MNIST train-split pixel mean and std in [0, 1]: the towers normalise with them, so inputs stay in [0, 1].
FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530


class ImageTower(nn.Module):
    """Maps [B, 1, 28, 28] images in [0, 1] to [B, out_dim] (unnormalised) outputs.

    Args:
        kind: ``"cnn"`` (conv3x3/stride 2-BN-ReLU per width, average pool, linear) or ``"mlp"`` (Linear-ReLU
            per width, linear); ``widths`` are channels (cnn) or hidden units (mlp).
        out_dim: D for a VLM tower, the number of classes for a supervised one.
    """

    def __init__(self, kind: str, widths: Sequence[int], out_dim: int):
        super().__init__()
        if kind not in ("cnn", "mlp"):
            raise ValueError(f"Expected `kind` to be 'cnn' or 'mlp', but got {kind!r}")
        dims = [1 if kind == "cnn" else 28 * 28, *widths]  # each block's input width, then the last block's output
        layers: list[nn.Module] = [] if kind == "cnn" else [nn.Flatten()]
        for d_in, w in zip(dims, widths):
            if kind == "cnn":
                layers += [nn.Conv2d(d_in, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w),
                           nn.ReLU(inplace=True)]
            else:
                layers += [nn.Linear(d_in, w), nn.ReLU(inplace=True)]
        pool = [nn.AdaptiveAvgPool2d(1), nn.Flatten()] if kind == "cnn" else []
        self.net = nn.Sequential(*layers, *pool, nn.Linear(dims[-1], out_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net((images - FMNIST_MEAN) / FMNIST_STD)  # [B, 1, 28, 28] -> [B, out_dim]


class ContrastiveImageSide(nn.Module):
    """An image tower and CLIP's learnable logit scale (Radford et al., 2021, Sec. 2.5), kept as its log; it starts at
    ``init_scale`` (1/0.07 for CLIP) and is clamped at ``max_scale`` after each step (100 for CLIP)."""

    def __init__(self, tower: ImageTower, init_scale: float, max_scale: float):
        super().__init__()
        self.tower, self.max_scale = tower, float(max_scale)
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(init_scale)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.tower(images)  # [B, D] unnormalised features

    def logit_scale(self) -> torch.Tensor:
        """The scale as a 0-d tensor (differentiable in ``log_logit_scale``)."""
        return self.log_logit_scale.exp()

    @torch.no_grad()
    def clamp_(self) -> None:
        """Keep the scale in [1, max_scale] (CLIP's clamp, applied after each step)."""
        self.log_logit_scale.clamp_(0.0, math.log(self.max_scale))


def describe_tower(kind: str, widths: Sequence[int], out_dim: int) -> str:
    """The tower in words, for cards."""
    if kind == "cnn":
        return f"{len(widths)}-block CNN (conv3x3 stride 2-BN-ReLU, channels {tuple(widths)}), global average pool, linear to {out_dim}"
    return f"MLP (784 -> {' -> '.join(str(w) for w in widths)} -> {out_dim}, ReLU)"
