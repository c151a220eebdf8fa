"""The supervised baseline, the book's stand-in for the papers' "ImageNet-trained models".

A cross-entropy CNN with the default VLMs' train split, image tower and recipe, so that a comparison
isolates labels against text features as class "weights". Trained on first use, then cached."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from vlmcal.backbones.base import Classifier, default_device
from vlmcal.data import datasets  # looked up at call time: the tests watch which split is read
from vlmcal.data.templates import FASHION_MNIST_CLASSNAMES
from vlmcal.standins.card import ModelCard
from vlmcal.standins.checkpoints import checkpoint_path, load_or_train
from vlmcal.standins.config import CODE_VERSION
from vlmcal.standins.towers import ImageTower, describe_tower
from vlmcal.standins.training import deterministic, fit_tower, train_subset

__all__ = ["SupervisedConfig", "SupervisedClassifier", "SUPERVISED_VARIANTS", "load_supervised", "train_supervised"]


@dataclass(frozen=True)
class SupervisedConfig:
    """How the supervised baseline is built and trained (the ``default`` VLM's recipe, by design)."""

    tower: Literal["cnn", "mlp"] = "cnn"  # the default VLM's image tower, with a 10-way linear head instead of the 384-d projection
    widths: tuple[int, ...] = (16, 32, 64)  # as the default VLM
    epochs: int = 3  # as the default VLM
    augment: bool = False  # as the default VLM
    batch_size: int = 256  # as the default VLM
    lr: float = 2e-3  # as the default VLM
    weight_decay: float = 0.1  # as the default VLM
    warmup_steps: int = 50  # as the default VLM
    seed: int = 0  # fixes init, data order and augmentation
    n_train: int | None = None  # seeded random subset of the train split (None: all 60,000); tests use a few hundred


SUPERVISED_VARIANTS: dict[str, SupervisedConfig] = {"supervised": SupervisedConfig()}


class SupervisedClassifier(Classifier):
    """A trained cross-entropy CNN, with its ``config``, its ``card`` of training facts, the 10 Fashion-MNIST
    ``class_names``, and the ``input_shape`` that ``logits`` takes per image: [1, 28, 28] in [0, 1]."""

    input_shape = (1, 28, 28)

    def __init__(self, name: str, config: SupervisedConfig, tower: ImageTower, class_names: list[str], card: ModelCard, device: torch.device):
        self.name, self.config, self.card, self.device, self.class_names = name, config, card, device, list(class_names)
        # What fixes this model's outputs, for cache keys of its logits.
        self.cache_identity = {"name": name, "config": asdict(config), "code": CODE_VERSION, "classes": self.class_names}
        self.tower = tower.to(device).eval().requires_grad_(False)

    def __repr__(self) -> str:
        return f"SupervisedClassifier(name={self.name!r}, config={self.config})"

    @torch.no_grad()
    def logits(self, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """[B, 1, 28, 28] images in [0, 1] -> [B, 10] logits."""
        if images.ndim != 4 or images.shape[1:] != (1, 28, 28):
            raise ValueError(f"Expected images of shape [B, 1, 28, 28] in [0, 1], but got {tuple(images.shape)}")
        return torch.cat([self.tower(images[i : i + batch_size].to(self.device).float()) for i in range(0, len(images), batch_size)])


def train_supervised(name: str, config: SupervisedConfig, progress: bool = True) -> tuple[ImageTower, ModelCard]:
    """Train the baseline on CPU and write its card (no caching here, see ``load_supervised``)."""
    train = datasets.load_fashion_mnist("train")
    idx = train_subset(len(train), config.n_train, config.seed)
    images, labels = train.images_float()[idx], train.labels[idx]  # [N, 1, 28, 28], [N]
    n_classes = len(train.class_names)
    with deterministic():
        torch.manual_seed(config.seed)
        tower = ImageTower(config.tower, config.widths, n_classes)
        seconds = fit_tower(tower, images, labels, lambda logits, y, gen: F.cross_entropy(logits, y),  # logits: [B, 10]
                            config, f"training {name}", progress)
    return tower, ModelCard(
        name=name, kind="supervised",
        data=(f"Fashion-MNIST train split ({len(idx):,} images, labels): clean single items only, as an ImageNet model "
              "trains on ImageNet (no scenes, no styles); the test split is never used in training"),
        architecture=describe_tower(config.tower, config.widths, n_classes),
        n_params=sum(p.numel() for p in tower.parameters()), epochs=config.epochs, batch_size=config.batch_size,
        lr=config.lr, seed=config.seed, train_seconds=seconds, threads=torch.get_num_threads(),
        augmentation="random 2-px shifts and horizontal flips" if config.augment else "none",
        logit_scale="none: logits learned by cross-entropy")


def load_supervised(name: str = "supervised", device: str | torch.device | None = None,
                    cache_dir: str | Path | None = None, progress: bool = True,
                    config: SupervisedConfig | None = None) -> SupervisedClassifier:
    """The supervised baseline: loaded from the cache, or trained (and cached) on first use; its ``card`` says how.

    Args:
        name, config: ``"supervised"``; or any name, with a custom ``SupervisedConfig`` (e.g. a tiny one for tests).
        device, cache_dir, progress: as for :func:`vlmcal.standins.load_default`.
    Example:
        >>> clf = load_supervised()
        >>> clf.logits(torch.rand(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    if config is None:
        if name not in SUPERVISED_VARIANTS:
            raise ValueError(f"Unknown supervised model {name!r}; known: {', '.join(SUPERVISED_VARIANTS)} (or pass `config`)")
        config = SUPERVISED_VARIANTS[name]
    device = default_device(device)
    identity = {"name": name, "config": asdict(config), "code": CODE_VERSION, "data": "fashion-mnist/train", "kind": "supervised"}
    tower, card = load_or_train(
        checkpoint_path(identity, cache_dir), identity,
        lambda: ImageTower(config.tower, config.widths, len(FASHION_MNIST_CLASSNAMES)),
        lambda: train_supervised(name, config, progress=progress))
    return SupervisedClassifier(name, config, tower, FASHION_MNIST_CLASSNAMES, card, device)
