"""Training a stand-in's image tower: CLIP's contrastive loss against frozen caption features.

The loop (``fit_tower``: AdamW, linear warm-up then cosine decay, as in CLIP) is shared with the
supervised baseline, which swaps in cross-entropy. Training is deterministic for a seed on one
machine and thread count: ``torch.use_deterministic_algorithms`` is on, and every random draw
(initialisation, data order, caption templates, augmentation) comes from the seed.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Callable, Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F

from vlmcal.backbones.standins.card import ModelCard
from vlmcal.backbones.standins.config import StandInConfig
from vlmcal.backbones.standins.text import caption_features, load_text_tower
from vlmcal.backbones.standins.towers import ImageTower, describe_tower

__all__ = ["LossFn", "TrainingSettings", "deterministic", "augment_batch", "train_subset", "lr_at", "fit_tower", "clip_loss", "train_default"]

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]
"""``(outputs [B, out], labels [B], generator) -> scalar``: the loss of one batch."""


class TrainingSettings(Protocol):
    """What ``fit_tower`` reads from a config (``StandInConfig`` and ``SupervisedConfig`` both have it)."""

    epochs: int
    augment: bool
    batch_size: int
    lr: float
    weight_decay: float
    warmup_steps: int
    seed: int


@contextlib.contextmanager
def deterministic():
    """``torch.use_deterministic_algorithms(True)`` inside, the previous setting restored after."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def augment_batch(x: torch.Tensor, gen: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Random translations by up to ``pad`` pixels (zero fill) and horizontal flips, per image."""
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))  # [B, 1, H+2p, W+2p]
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(b, 1, h, w + 2 * pad)  # [B, 1, H, W+2p]
    out = padded.gather(2, rows)  # [B, 1, H, W+2p]
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(b, 1, h, w)  # [B, 1, H, W]
    out = out.gather(3, cols)  # [B, 1, H, W]
    flip = torch.rand(b, generator=gen) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


def train_subset(n_total: int, n_train: int | None, seed: int) -> torch.Tensor:
    """The training rows: all ``n_total``, or a seeded random ``n_train`` of them, sorted."""
    if n_train is None or n_train >= n_total:
        return torch.arange(n_total)
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed + 7919))[:n_train].sort().values


def lr_at(step: int, total: int, warmup: int, lr: float) -> float:
    """The learning rate of ``step`` of ``total``: linear warm-up over ``warmup`` steps, then cosine decay to 0."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return lr * 0.5 * (1 + math.cos(math.pi * progress))


def fit_tower(
    tower: nn.Module, images: torch.Tensor, labels: torch.Tensor, loss_fn: LossFn, config: TrainingSettings, desc: str, progress: bool
) -> float:
    """The shared training loop (AdamW, warm-up + cosine); returns the wall-clock seconds.

    Args:
        tower: the module to train (left in eval mode, without gradients).
        images: [N, 1, 28, 28] training images in [0, 1].
        labels: [N] their labels.
        loss_fn: the loss of one batch (see ``LossFn``).
        config: the training settings.
        desc: the progress bar's label.
        progress: show a progress bar.
    """
    from tqdm.auto import tqdm

    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW(tower.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = len(images)
    steps_per_epoch = max(1, n // config.batch_size)  # drop the last partial batch: contrastive batches need many negatives
    total = steps_per_epoch * config.epochs
    tower.train()
    start = time.perf_counter()
    with tqdm(total=total, desc=desc, disable=not progress, unit="step", mininterval=1.0) as bar:
        step = 0
        for _ in range(config.epochs):
            order = torch.randperm(n, generator=gen)
            for k in range(steps_per_epoch):
                idx = order[k * config.batch_size : (k + 1) * config.batch_size]
                x = images[idx]  # [B, 1, 28, 28]
                if config.augment:
                    x = augment_batch(x, gen)
                for group in opt.param_groups:
                    group["lr"] = lr_at(step, total, config.warmup_steps, config.lr)
                loss = loss_fn(tower(x), labels[idx], gen)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                bar.update(1)
                if step % 20 == 0:
                    bar.set_postfix(loss=f"{loss.item():.3f}")
    opt.zero_grad(set_to_none=True)  # the trained tower carries no stale gradients
    tower.eval()
    return time.perf_counter() - start


def clip_loss(caption_feats: torch.Tensor, scale: float) -> LossFn:
    """CLIP's symmetric InfoNCE against one caption per image, its template drawn per image.

    Args:
        caption_feats: [T, C, D] frozen text features of every (template, class) caption.
        scale: the fixed logit scale.
    """
    n_templates = caption_feats.shape[0]

    def loss_fn(outputs: torch.Tensor, labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        img = F.normalize(outputs, dim=-1)  # [B, D]
        t = torch.randint(0, n_templates, (len(labels),), generator=gen)  # [B] a template per image
        txt = caption_feats[t, labels]  # [B, D] its caption's feature
        logits = scale * img @ txt.T  # [B,D] @ [D,B] -> [B,B]
        target = torch.arange(len(labels))
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))

    return loss_fn


def train_default(name: str, config: StandInConfig, device: torch.device | str = "cpu", progress: bool = True) -> tuple[ImageTower, ModelCard]:
    """Train one stand-in's image tower on the Fashion-MNIST train split and write its card.

    No caching here (see ``load_default``), and no evaluation: the test split is not read.

    Returns:
        (the trained image tower, its card of training facts).
    """
    from vlmcal.data.datasets import load_fashion_mnist
    from vlmcal.data.templates import CAPTION_POOL

    device = torch.device(device)
    text = load_text_tower(str(device))
    train = load_fashion_mnist("train")
    idx = train_subset(len(train), config.n_train, config.seed)
    images, labels = train.images_float()[idx], train.labels[idx]  # [N, 1, 28, 28], [N]

    caption_feats = caption_features(tuple(CAPTION_POOL), tuple(train.class_names), str(device))  # [T, C, D]

    with deterministic():
        torch.manual_seed(config.seed)
        tower = ImageTower(config.tower, config.widths, text.width)
        seconds = fit_tower(tower, images, labels, clip_loss(caption_feats, config.logit_scale), config, f"training {name}", progress)

    card = ModelCard(
        name=name,
        kind="vlm stand-in",
        data=f"Fashion-MNIST train split ({len(idx):,} images, all 10 classes), captions from {len(CAPTION_POOL)} templates; the test split is never used in training",
        architecture=f"image: {describe_tower(config.tower, config.widths, text.width)}; text: all-MiniLM-L6-v2, frozen (mean pooling, D = {text.width})",
        n_params=sum(p.numel() for p in tower.parameters()),
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        augmentation="random 2-px shifts and horizontal flips" if config.augment else "none",
        logit_scale=f"{config.logit_scale:g}, fixed (CLIP's regime: its learned scale sits at the clamp of 100)",
        seed=config.seed,
        train_seconds=seconds,
        threads=torch.get_num_threads(),
    )
    return tower, card
