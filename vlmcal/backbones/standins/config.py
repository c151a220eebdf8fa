"""What a stand-in is: its config, the named family, and the code version in its cache key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["CODE_VERSION", "StandInConfig", "VARIANTS"]

# Bump when a change to this package changes what a config trains into; old cache entries are then ignored.
CODE_VERSION = "2"  # 2: pretraining captions disjoint from the evaluation prompts


@dataclass(frozen=True)
class StandInConfig:
    """How one stand-in VLM is built and trained.

    Every default is the ``default`` stand-in's setting; the reason is beside it. How its card
    is measured (test images, shifts) is not part of the model: see ``vlmcal.cards``.
    """

    tower: Literal["cnn", "mlp"] = "cnn"  # a CNN is the natural image tower for 28x28 images; "mlp" gives a different inductive bias
    widths: tuple[int, ...] = (16, 32, 64)  # channels of 3 strided conv blocks (28 -> 14 -> 7 -> 4 px); strides instead of max-pools: 5x cheaper on CPU
    epochs: int = 3  # 702 steps: clean zero-shot accuracy ~0.87 (see the card); the book trains the whole family, so each stays short
    augment: bool = False  # plain pretraining; the "-aug" variant adds random shifts and flips
    batch_size: int = 256  # CLIP needs many negatives per batch; 256 keeps a CPU step cheap
    lr: float = 2e-3  # AdamW's usual rate for a small CNN trained from scratch
    weight_decay: float = 0.1  # CLIP's and LiT's AdamW weight decay for the trained tower
    warmup_steps: int = 50  # a short linear warm-up, then cosine decay, as in CLIP
    logit_scale: float = 100.0  # fixed at CLIP's clamp; see the package docstring
    seed: int = 0  # fixes init, data order, template draws and augmentation
    n_train: int | None = None  # use a seeded random subset of this many training images (None: all 60,000); tests use a few hundred

    def __post_init__(self):
        if self.tower not in ("cnn", "mlp"):
            raise ValueError(f"Expected `tower` to be 'cnn' or 'mlp', but got {self.tower!r}")
        if not self.widths or any(int(w) < 1 for w in self.widths):
            raise ValueError(f"Expected `widths` to be positive integers, but got {self.widths!r}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError(f"Expected `epochs` >= 1 and `batch_size` >= 2, but got {self.epochs} and {self.batch_size}")
        if not self.logit_scale > 0:
            raise ValueError(f"Expected a positive `logit_scale`, but got {self.logit_scale!r}")


# The family. Each differs from `default` in one respect, named by its suffix.
VARIANTS: dict[str, StandInConfig] = {
    "default": StandInConfig(),
    "default-wide": StandInConfig(widths=(32, 64, 128), epochs=1),  # ~4x the conv compute per image, so one epoch for a similar budget
    "default-short": StandInConfig(epochs=1),  # one epoch: an under-trained tower
    "default-aug": StandInConfig(augment=True),  # random 2-pixel shifts and horizontal flips during training
    "default-mlp": StandInConfig(tower="mlp", widths=(512, 256)),  # no convolutions: a different inductive bias
}
