"""Training a stand-in's image tower with CLIP's recipe (Radford et al., 2021) against frozen caption features.

Deterministic for a seed on one machine and thread count; ``fit_tower`` is shared with the supervised baseline."""

from __future__ import annotations

import contextlib
import math
import time
from typing import Callable, Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F

from vlmcal.standins.card import ModelCard
from vlmcal.standins.config import StandInConfig
from vlmcal.standins.corpus import make_corpus
from vlmcal.standins.text import TEXT_WIDTH, caption_features
from vlmcal.standins.towers import ContrastiveImageSide, ImageTower, describe_tower

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
    dy, dx = torch.randint(0, 2 * pad + 1, (2, b), generator=gen)  # [B] each
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(b, 1, h, w + 2 * pad)  # [B, 1, H, W+2p]
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(b, 1, h, w)  # [B, 1, H, W]
    out = F.pad(x, (pad, pad, pad, pad)).gather(2, rows).gather(3, cols)  # [B, 1, H+2p, W+2p] -> [B, 1, H, W]
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
    return lr * 0.5 * (1 + math.cos(math.pi * ((step - warmup) / max(1, total - warmup))))


def fit_tower(tower: nn.Module, images: torch.Tensor, labels: torch.Tensor, loss_fn: LossFn, config: TrainingSettings,
              desc: str, progress: bool, after_step: Callable[[], None] | None = None) -> float:
    """The shared training loop (AdamW, warm-up + cosine); returns the wall-clock seconds.

    Args:
        tower: the module to train (left in eval mode, without gradients).
        images, labels: [N, 1, 28, 28] training images in [0, 1]; [N] class labels, or caption ids for a VLM.
        after_step: called after every optimiser step (a VLM clamps its logit scale there).
    """
    from tqdm.auto import tqdm
    gen = torch.Generator().manual_seed(config.seed)
    params = list(tower.parameters())
    # No weight decay on gains, biases or a logit scale (fewer than 2 dimensions), as in CLIP's training code.
    opt = torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
                             {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}], lr=config.lr)
    steps_per_epoch = max(1, len(images) // config.batch_size)  # full batches: contrastive loss needs many negatives
    total = steps_per_epoch * config.epochs
    tower.train()
    start = time.perf_counter()
    with tqdm(total=total, desc=desc, disable=not progress, unit="step", mininterval=1.0) as bar:
        for step in range(total):
            k = step % steps_per_epoch
            if k == 0:  # a new epoch
                order = torch.randperm(len(images), generator=gen)
            idx = order[k * config.batch_size : (k + 1) * config.batch_size]
            x = augment_batch(images[idx], gen) if config.augment else images[idx]  # [B, 1, 28, 28]
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, config.warmup_steps, config.lr)
            loss = loss_fn(tower(x), labels[idx], gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step()
            bar.update(1)
            if (step + 1) % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
    opt.zero_grad(set_to_none=True)  # the trained tower carries no stale gradients
    tower.eval()
    return time.perf_counter() - start


def clip_loss(caption_feats: torch.Tensor, scale: Callable[[], torch.Tensor]) -> LossFn:
    """CLIP's symmetric contrastive loss of ``(image outputs [B, D], caption ids [B], generator)``, with identical
    captions in a batch counted as positives: they have identical frozen features, so this equals CLIP's loss with
    the diagonal as targets, in value and gradient. ``caption_feats`` [K, D] are the frozen text features of the
    corpus's distinct captions; ``scale()`` returns the current (learned) logit scale, a 0-d tensor."""

    def loss_fn(outputs: torch.Tensor, caption_ids: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        img = F.normalize(outputs, dim=-1)  # [B, D]
        txt = caption_feats[caption_ids]  # [B, D] each image's caption
        logits = scale() * img @ txt.T  # [B,D] @ [D,B] -> [B,B]
        same = (caption_ids[:, None] == caption_ids[None, :]).float()  # [B, B] symmetric, ones on the diagonal
        target = same / same.sum(dim=1, keepdim=True)  # [B, B] rows sum to 1
        image_to_text = -(target * logits.log_softmax(dim=1)).sum(dim=1).mean()
        text_to_image = -(target * logits.T.log_softmax(dim=1)).sum(dim=1).mean()
        return 0.5 * (image_to_text + text_to_image)

    return loss_fn


def train_default(name: str, config: StandInConfig, device: torch.device | str = "cpu", progress: bool = True,
                  cache_dir=None) -> tuple[ContrastiveImageSide, ModelCard]:
    """Pretrain one stand-in's image side (tower and logit scale) on its corpus; return it and its card (no caching)."""
    corpus = make_corpus(config.corpus, progress=progress)
    feats = caption_features(corpus.captions, str(torch.device(device)), cache_dir, progress)  # [K, D]
    with deterministic():
        torch.manual_seed(config.seed)
        side = ContrastiveImageSide(ImageTower(config.tower, config.widths, TEXT_WIDTH), config.init_logit_scale, config.max_logit_scale)
        seconds = fit_tower(side, corpus.images, corpus.caption_ids, clip_loss(feats, side.logit_scale), config,
                            f"training {name}", progress, after_step=side.clamp_)
    summary = corpus.summary()
    learned = float(side.logit_scale().detach())
    what = "single clean train items captioned by class (the test task itself)" if summary["kind"] == "task" else "captioned scenes of 1-4 train items"
    return side, ModelCard(
        name=name, kind="vlm stand-in",
        data=f"{summary['scenes']:,} {what}, {summary['distinct_captions']:,} distinct captions, built from the Fashion-MNIST train split (vlmcal.standins.corpus); the test split is never used in training",
        architecture=f"image: {describe_tower(config.tower, config.widths, TEXT_WIDTH)}; text: all-MiniLM-L6-v2, frozen (mean pooling, D = {TEXT_WIDTH})",
        n_params=sum(p.numel() for p in side.parameters()),
        epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, seed=config.seed,
        augmentation="random 2-px shifts and horizontal flips" if config.augment else "none",
        logit_scale=f"{learned:.2f}, learned (initialised at {config.init_logit_scale:.2f}, clamped at {config.max_logit_scale:g}); nothing rescales it at test time",
        train_seconds=seconds, threads=torch.get_num_threads(), learned_logit_scale=learned, corpus=summary)
