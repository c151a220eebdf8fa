"""Prompt learning on few labelled shots, backbone frozen, from cached image features: CoOp, KgCoOp, either with DOR.

- **CoOp** (Zhou et al., IJCV 2022): cross-entropy of ``logit_scale * f_img @ t_c``; context of 16 tokens from
  N(0, 0.02^2); SGD (momentum 0.9, weight decay 5e-4) at lr 0.002, cosine-annealed, after a first epoch at 1e-5.
- **KgCoOp** (Yao et al., CVPR 2023): adds ``w * (1 - mean_c cos(t_c, t0_c))``, ``t0_c`` the frozen zero-shot
  feature of ``template``; w = 8, context from "a photo of a".
- **DOR** (Wang, Li & Wei, ICML 2025): adds ``lambda * (1 - mean_o cos(t_o, t0_o))`` to either, over outlier labels
  ``o`` (:mod:`vlmcal.adaptation.outliers`), one per base class, redrawn every step.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from vlmcal.adaptation.outliers import OutlierPool
from vlmcal.backbones.base import Backbone
from vlmcal.prompting.dispersion import feature_divergence
from vlmcal.prompting.prompt_learner import PromptLearner, PromptSettings
from vlmcal.prompting.zeroshot import class_text_features, zero_shot_logits

__all__ = ["BASE_METHODS", "METHODS", "PromptTuningSettings", "method_settings", "anchor_loss", "learning_rate",
           "TrackedSplit", "PromptTuner"]

BASE_METHODS = ("CoOp", "KgCoOp")
METHODS = ("zero-shot", "CoOp", "CoOp + DOR", "KgCoOp", "KgCoOp + DOR")  # the rows of the DOR paper's tables
DOR_SUFFIX = " + DOR"


@dataclass(frozen=True)
class PromptTuningSettings:
    """One prompt-learning method and its training schedule.

    Attributes:
        method: ``"CoOp"`` or ``"KgCoOp"`` (the base method).
        dor_weight: lambda, the weight of DOR's outlier regulariser; 0 for the base method alone.
        n_ctx, init_phrase: the context length M, and the phrase (of M tokens) it starts from, or None for N(0, 0.02^2).
        kg_weight: w, the weight of KgCoOp's regulariser (used only by KgCoOp).
        template: the zero-shot template of the frozen features both regularisers pull towards.
        epochs, batch_size: passes over the shots, and shots per step.
        lr, momentum, weight_decay: SGD's peak learning rate, momentum and weight decay.
        warmup_epochs, warmup_lr: epochs at the constant ``warmup_lr`` before the cosine schedule.
        fd_neighbours: M of the feature divergence that :meth:`PromptTuner.fit` follows.
        seed: seeds the context's initialisation, the batch order and the outlier draws.
    """
    method: str = "CoOp"
    dor_weight: float = 0.0
    n_ctx: int = 16  # CoOp
    init_phrase: str | None = None  # CoOp: random context
    kg_weight: float = 8.0  # KgCoOp's w
    template: str = "a photo of a {}."
    epochs: int = 10
    batch_size: int = 32
    lr: float = 0.002
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 1
    warmup_lr: float = 1e-5
    fd_neighbours: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in BASE_METHODS:
            raise ValueError(f"Expected `method` to be one of {BASE_METHODS}, but got {self.method!r} "
                             f"(DOR is added with dor_weight > 0, or by name through method_settings('{self.method} + DOR'))")
        for name in ("dor_weight", "kg_weight", "weight_decay", "momentum", "lr", "warmup_lr"):
            value, positive = getattr(self, name), name in ("lr", "warmup_lr")
            if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                    or value < 0 or (positive and value == 0)):
                raise ValueError(f"Expected `{name}` to be a finite number {'>' if positive else '>='} 0, "
                                 f"but got {value!r}")
        for name, low in (("epochs", 1), ("batch_size", 1), ("n_ctx", 1), ("fd_neighbours", 1), ("warmup_epochs", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"Expected `{name}` to be an integer >= {low}, but got {value!r}")
        if not isinstance(self.template, str) or self.template.count("{}") != 1:
            raise ValueError(f"Expected `template` to hold one '{{}}' for the class name, like 'a photo of a {{}}.', but got {self.template!r}")

    @property
    def name(self) -> str:
        """The method's name in the tables: ``"CoOp"``, ``"KgCoOp + DOR"``, ..."""
        return self.method + (DOR_SUFFIX if self.dor_weight > 0 else "")

    @property
    def prompt(self) -> PromptSettings:
        """The learnable context's shape and initialisation."""
        return PromptSettings(n_ctx=self.n_ctx, init_phrase=self.init_phrase, seed=self.seed)


# Each base method's published settings; DOR's lambda per base method (a secondary source: 8 for CoOp, 2 for others).
_METHOD_DEFAULTS = {"CoOp": {"n_ctx": 16, "init_phrase": None},
                    "KgCoOp": {"n_ctx": 4, "init_phrase": "a photo of a", "kg_weight": 8.0}}
DOR_WEIGHTS = {"CoOp": 8.0, "KgCoOp": 2.0}


def method_settings(name: str, **overrides) -> PromptTuningSettings:
    """The settings of a method named as in the tables (``"CoOp"``, ``"KgCoOp + DOR"``), with overrides.

    Example:
        >>> method_settings("KgCoOp + DOR", epochs=5).dor_weight
        2.0
    """
    trainable = [m for m in METHODS if m != "zero-shot"]
    if name not in trainable:
        raise ValueError(f"Expected a method name among {trainable}, but got {name!r}")
    base = name.removesuffix(DOR_SUFFIX)
    dor_weight = DOR_WEIGHTS[base] if name.endswith(DOR_SUFFIX) else 0.0
    return PromptTuningSettings(**{"method": base, **_METHOD_DEFAULTS[base], "dor_weight": dor_weight, **overrides})


def anchor_loss(tuned_features: torch.Tensor, frozen_features: torch.Tensor) -> torch.Tensor:
    """``1 - mean cos(tuned, frozen)`` over rows: the regulariser of KgCoOp (on the classes) and DOR (on outliers).

    Both [K, D]: the labels' text features through the learned context, and their zero-shot features (detached).
    """
    if tuned_features.shape != frozen_features.shape:
        raise ValueError(f"Expected tuned and frozen features of one shape, but got {tuple(tuned_features.shape)} "
                         f"and {tuple(frozen_features.shape)}")
    return 1.0 - F.cosine_similarity(tuned_features, frozen_features.detach(), dim=-1).mean()


def learning_rate(settings: PromptTuningSettings, epoch: int) -> float:
    """The learning rate of epoch ``epoch`` (0-based): constant warm-up, then cosine from ``lr`` to 0.

    Example:
        >>> s = PromptTuningSettings(epochs=4, warmup_epochs=1)
        >>> [round(learning_rate(s, e), 6) for e in range(4)]
        [1e-05, 0.001707, 0.001, 0.000293]
    """
    if epoch < settings.warmup_epochs:
        return settings.warmup_lr
    # Cosine over the whole run, indexed by the epoch as CoOp's scheduler counts it.
    return 0.5 * settings.lr * (1.0 + math.cos(math.pi * epoch / settings.epochs)) if settings.epochs > 1 else settings.lr


@dataclass(frozen=True)
class TrackedSplit:
    """A held-out split that training follows epoch by epoch (never trains on).

    Attributes:
        image_features: [N, D] L2-normalised image features.
        labels: [N] labels indexing ``class_names``, the split's classes.
    """
    image_features: torch.Tensor
    labels: torch.Tensor
    class_names: Sequence[str]


def _check_features(image_features, labels, n_classes: int, what: str, device) -> tuple[torch.Tensor, torch.Tensor]:
    feats, labels = torch.as_tensor(image_features), torch.as_tensor(labels)
    if feats.ndim != 2 or labels.ndim != 1 or feats.shape[0] != labels.shape[0] or feats.shape[0] == 0:
        raise ValueError(f"Expected {what} image features [N, D] and labels [N] with N >= 1, but got shapes "
                         f"{tuple(feats.shape)} and {tuple(labels.shape)}")
    if not torch.isfinite(feats).all():
        raise ValueError(f"Expected finite {what} image features, but got NaN or inf entries")
    if labels.dtype.is_floating_point or labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"Expected {what} labels to be integers in [0, {n_classes - 1}], but got values "
                         f"{labels.min().item()}..{labels.max().item()} of dtype {labels.dtype}")
    return feats.float().to(device), labels.long().to(device)


class PromptTuner:
    """CoOp or KgCoOp, with or without DOR, trained on cached image features.

    Args:
        outliers: DOR's outlier pool (:func:`vlmcal.adaptation.outliers.outlier_pool`); required if ``dor_weight > 0``.
    Attributes:
        learner_: the trained :class:`PromptLearner` over the base classes (set by :meth:`fit`, as are the others).
        history_: one row per epoch (0 = before training): loss, cross-entropy, regulariser, lr, seconds,
            and per tracked split ``<split>_fd``, ``<split>_accuracy`` and ``<split>_confidence``.
        seconds_per_epoch_: mean training time of an epoch (following the tracked splits excluded).
    Example:
        >>> tuner = PromptTuner(backbone, method_settings("KgCoOp", epochs=5)).fit(feats, labels, base_names)
        >>> logits = tuner.logits(test_feats, new_names)  # [N, D] @ [D, C_new] -> [N, C_new]
    """

    def __init__(self, backbone: Backbone, settings: PromptTuningSettings = PromptTuningSettings(),
                 outliers: "OutlierPool | None" = None):
        if not isinstance(settings, PromptTuningSettings):
            raise TypeError(f"Expected `settings` to be a PromptTuningSettings, but got {type(settings).__name__}")
        if settings.dor_weight > 0 and outliers is None:
            raise ValueError(f"{settings.name} needs outlier labels: pass outliers=outlier_pool(backbone, base_class_names) "
                             "(vlmcal.adaptation.outliers), or set dor_weight=0")
        self.backbone, self.settings, self.outliers = backbone, settings, outliers

    def _step_loss(self, learner: PromptLearner, feats: torch.Tensor, labels: torch.Tensor, frozen: torch.Tensor | None,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s = self.settings
        n_classes = len(learner.class_names)
        if s.dor_weight > 0:  # DOR: as many outlier labels as classes, redrawn at every step
            drawn = self.outliers.sample(n_classes, generator)  # [C] indices into the pool
            # One pass of the text tower for the class and outlier prompts together.
            text_all = learner(learner.class_names + [self.outliers.names[i] for i in drawn.tolist()])  # [2C, D]
            text, tuned_outliers = text_all[:n_classes], text_all[n_classes:]  # [C, D], [C, D]
        else:
            text = learner()  # [C, D]
        logits = zero_shot_logits(feats, text, self.backbone.logit_scale)  # [b, D] @ [D, C] -> [b, C]
        ce = F.cross_entropy(logits, labels)
        # KgCoOp: the base classes stay near their zero-shot features
        regulariser = torch.zeros((), device=ce.device) if frozen is None else s.kg_weight * anchor_loss(text, frozen)
        if s.dor_weight > 0:  # DOR: the outlier labels stay near theirs; the classes are left free
            frozen_outliers = self.outliers.text_features[drawn].to(tuned_outliers.device)  # [C, D]
            regulariser = regulariser + s.dor_weight * anchor_loss(tuned_outliers, frozen_outliers)
        return ce + regulariser, ce, regulariser

    @torch.no_grad()
    def _follow(self, learner: PromptLearner, tracked: Mapping[str, TrackedSplit]) -> dict[str, float]:
        row = {}
        for split, data in tracked.items():
            text = learner(data.class_names)  # [C, D]
            probs = zero_shot_logits(data.image_features, text, self.backbone.logit_scale).softmax(dim=-1)  # [N, C]
            confidence, predicted = probs.max(dim=-1)
            row[f"{split}_fd"] = float(feature_divergence(text, self.settings.fd_neighbours))
            row[f"{split}_accuracy"] = float((predicted == data.labels).float().mean())
            row[f"{split}_confidence"] = float(confidence.mean())
        return row

    def fit(self, image_features, labels, class_names: Sequence[str], *, track: Mapping[str, TrackedSplit] | None = None,
            progress: bool = True) -> "PromptTuner":
        """Train the context on the shots; returns self.

        Args:
            image_features: [N, D] L2-normalised image features of the shots.
            labels: [N] labels indexing the C base ``class_names``.
            track: named held-out splits to follow each epoch (under ``torch.no_grad``).
        """
        s, bb = self.settings, self.backbone
        learner = PromptLearner(bb, class_names, s.prompt)
        feats, labels = _check_features(image_features, labels, len(learner.class_names), "training", bb.device)
        tracked = {}
        for name, split in (track or {}).items():
            x, y = _check_features(split.image_features, split.labels, len(split.class_names), name, bb.device)
            tracked[name] = replace(split, image_features=x, labels=y)
        frozen = class_text_features(bb, learner.class_names, s.template).to(bb.device) if s.method == "KgCoOp" else None  # [C, D]
        optimizer = torch.optim.SGD(learner.parameters(), lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)
        generator = torch.Generator().manual_seed(s.seed)
        rows = [{"epoch": 0, "loss": math.nan, "cross_entropy": math.nan, "regulariser": math.nan, "lr": math.nan,
                 "seconds": 0.0, **self._follow(learner, tracked)}]
        for epoch in tqdm(range(s.epochs), desc=s.name, unit="epoch", disable=not progress, leave=False):
            lr = learning_rate(s, epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            started, sums, n_seen = time.perf_counter(), torch.zeros(3), 0
            order = torch.randperm(len(labels), generator=generator).to(bb.device)
            for batch in order.split(s.batch_size):
                loss, ce, regulariser = self._step_loss(learner, feats[batch], labels[batch], frozen, generator)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                sums += torch.stack([loss, ce, regulariser]).detach().cpu() * len(batch)
                n_seen += len(batch)
            means = dict(zip(("loss", "cross_entropy", "regulariser"), (sums / n_seen).tolist()))
            rows.append({"epoch": epoch + 1, **means, "lr": lr, "seconds": time.perf_counter() - started,
                         **self._follow(learner, tracked)})
        self.learner_, self.history_ = learner, pd.DataFrame(rows)
        self.seconds_per_epoch_ = float(self.history_["seconds"].iloc[1:].mean())
        return self

    def _fitted(self) -> PromptLearner:
        if not hasattr(self, "learner_"):
            raise RuntimeError("This PromptTuner is not fitted yet: call fit(image_features, labels, class_names) first")
        return self.learner_

    @torch.no_grad()
    def text_features(self, class_names: Sequence[str] | None = None) -> torch.Tensor:
        """[C, D] text features of ``class_names`` (default: the base classes) through the learned context."""
        return self._fitted()(class_names)

    @torch.no_grad()
    def logits(self, image_features, class_names: Sequence[str] | None = None) -> torch.Tensor:
        """[N, C] logits of cached image features against ``class_names`` (default: the base classes)."""
        text = self.text_features(class_names)  # [C, D]
        feats = torch.as_tensor(image_features).float().to(text.device)
        return zero_shot_logits(feats, text, self.backbone.logit_scale)  # [N, D] @ [D, C] -> [N, C]
