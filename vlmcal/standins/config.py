"""What a stand-in is: its config, the named family, and the code version in its cache key."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from vlmcal.standins.corpus import CorpusConfig

__all__ = ["CODE_VERSION", "StandInConfig", "VARIANTS"]

# Bump when a change to this package changes what a config trains into; old cache entries are then ignored.
CODE_VERSION = "3"  # 3: pretrained on captioned scenes with a learned logit scale


@dataclass(frozen=True)
class StandInConfig:
    """How one stand-in VLM is built and trained; every default is the ``default`` stand-in's, its reason beside it."""

    tower: Literal["cnn", "mlp"] = "cnn"  # a CNN is the natural image tower for 28x28 images; "mlp" gives a different inductive bias
    widths: tuple[int, ...] = (16, 32, 64)  # channels of 3 strided conv blocks (28 -> 14 -> 7 -> 4 px); strides instead of max-pools: 5x cheaper on CPU
    epochs: int = 3  # 702 steps over 60,000 scenes; the book trains several stand-ins, so each stays short
    corpus: CorpusConfig = field(default_factory=CorpusConfig)  # captioned scenes, half of them styled (``vlmcal.standins.corpus``)
    augment: bool = False  # random 2-px shifts and flips on top; no variant uses them (scenes already vary position and size)
    batch_size: int = 256  # CLIP needs many negatives per batch; 256 keeps a CPU step cheap
    lr: float = 2e-3  # AdamW's usual rate for a small CNN trained from scratch
    weight_decay: float = 0.1  # CLIP's and LiT's AdamW weight decay (not on gains, biases or the logit scale)
    warmup_steps: int = 50  # a short linear warm-up, then cosine decay, as in CLIP
    init_logit_scale: float = 1 / 0.07  # CLIP's initial temperature 0.07; the scale is then learned
    max_logit_scale: float = 100.0  # CLIP's clamp
    seed: int = 0  # fixes init and data order (the corpus has its own seed)

    def __post_init__(self):
        if self.tower not in ("cnn", "mlp"):
            raise ValueError(f"Expected `tower` to be 'cnn' or 'mlp', but got {self.tower!r}")
        if not self.widths or any(int(w) < 1 for w in self.widths):
            raise ValueError(f"Expected `widths` to be positive integers, but got {self.widths!r}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError(f"Expected `epochs` >= 1 and `batch_size` >= 2, but got {self.epochs} and {self.batch_size}")
        if not isinstance(self.corpus, CorpusConfig):
            raise ValueError(f"Expected `corpus` to be a vlmcal.standins.corpus.CorpusConfig, but got {self.corpus!r:.100}")
        if not (0 < self.init_logit_scale <= self.max_logit_scale < math.inf):
            raise ValueError(f"Expected 0 < `init_logit_scale` <= `max_logit_scale` < inf, "
                             f"but got {self.init_logit_scale!r} and {self.max_logit_scale!r}")


# The family. Each differs from `default` in one respect, named by its suffix.
VARIANTS: dict[str, StandInConfig] = {
    "default": StandInConfig(),
    "default-wide": StandInConfig(widths=(32, 64, 128)),  # width: twice the channels
    "default-short": StandInConfig(epochs=1),  # training length: one epoch, an under-trained tower
    "default-mlp": StandInConfig(tower="mlp", widths=(512, 256)),  # tower: no convolutions, a different inductive bias
    "default-plain": StandInConfig(corpus=CorpusConfig(families=())),  # coverage: the same scenes, never styled
    # The ablation: pretrained on the test task itself (single clean items, class captions).
    "default-task": StandInConfig(corpus=CorpusConfig(kind="task", families=())),
}
