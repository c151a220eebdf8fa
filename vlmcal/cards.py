"""What a stand-in scores: the measured half of its model card, computed from outside the model.

A stand-in's ``ModelCard`` (``vlmcal.backbones.standins``) records how it was trained. This
module, in the evaluation layer, measures what it scores on the Fashion-MNIST test split,
which training never reads: accuracy and top-label ECE (15 bins) on the clean images and under
each of ``CARD_SHIFTS``; for a VLM, zero-shot with two prompts pretraining never saw (the hard
prompt and CLIP's 80-template ensemble); and the temperature minimising clean test NLL. The
model layer never imports this module: the dependency runs one way, from here to the models.

Each table is cached (``vlmcal.cache.save_entry``, under ``cards/``) with an identity made of
the model's ``cache_identity``, the test images and what is measured, so a page shows it at
the cost of a file read after the first time.

Example:
    >>> model = load_backbone("default")
    >>> display(Markdown(card_markdown(model)))   # how it was trained, then what it scores
    >>> measure_card(model).rows[0]               # {'shift': 'clean', 'severity': 0, 'prompt': 'hard prompt', ...}
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any, Callable

import torch

from vlmcal import metrics
from vlmcal.backbones.base import Backbone, Classifier
from vlmcal.cache import cache_dir as resolve_cache_dir, content_key, load_entry, save_entry
from vlmcal.calibration import TemperatureScaling
from vlmcal.data.shifts import apply_shift
from vlmcal.data.templates import CLIP_TEMPLATES, HARD_PROMPT
from vlmcal.prompting.zeroshot import class_text_features, zero_shot_logits

__all__ = ["CARD_SHIFTS", "CARD_PROMPTS", "CardResults", "measure_card", "card_markdown"]

# The shifts each card reports: (name, severity). Severity 3 is the suite's middle; the
# domain shifts at 5 are the pure renderings.
CARD_SHIFTS: tuple[tuple[str, int], ...] = (
    ("gaussian_noise", 3),
    ("gaussian_blur", 3),
    ("contrast", 3),
    ("jpeg_compression", 3),
    ("elastic_transform", 3),
    ("invert", 5),
    ("sketch", 5),
)

# A VLM's card prompts: none of them is a pretraining caption (``vlmcal.data.templates.CAPTION_POOL``).
CARD_PROMPTS: dict[str, tuple[str, ...]] = {"hard prompt": (HARD_PROMPT,), "80-template ensemble": tuple(CLIP_TEMPLATES)}

N_BINS = 15  # as ES
SHIFT_SEED = 0  # the shifts' random draws
RESULTS_VERSION = 1  # bump when what `measure_card` computes changes; cached tables are then recomputed


@dataclass(frozen=True)
class CardResults:
    """What a model scores on the first ``n_test`` images of the Fashion-MNIST test split.

    Attributes:
        model: the model's name.
        n_test: how many test images were used.
        rows: one dict per (data set, prompt): ``shift`` ("clean" or a name from ``CARD_SHIFTS``),
            ``severity`` (0 when clean), ``prompt`` (a key of ``CARD_PROMPTS``; "-" for a
            classifier), ``accuracy`` and ``ece`` (15 bins).
        best_temperature: the temperature minimising clean test NLL with the first prompt (a
            diagnostic fitted on the test split itself: > 1 means over-confident, < 1 under-confident).
    """

    model: str
    n_test: int
    rows: tuple[dict[str, Any], ...]
    best_temperature: float

    def to_markdown(self) -> str:
        """A sentence on what was measured, then the table."""
        lines = [
            f"Measured by `vlmcal.cards` on the first {self.n_test:,} Fashion-MNIST test images (never used in training); "
            f"temperature minimising clean test NLL: {self.best_temperature:.2f}.",
            "",
            f"| test data | prompt | accuracy | ECE ({N_BINS} bins) |",
            "| --- | --- | --- | --- |",
        ]
        for r in self.rows:
            where = "clean" if r["shift"] == "clean" else f"{r['shift']} (severity {r['severity']})"
            lines.append(f"| {where} | {r['prompt']} | {r['accuracy']:.3f} | {r['ece']:.3f} |")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


def _check_model(model) -> None:
    if not isinstance(model, (Backbone, Classifier)) or tuple(getattr(model, "input_shape", ())) != (1, 28, 28) or not hasattr(
        model, "cache_identity"
    ):
        raise ValueError(
            "Expected one of vlmcal's stand-ins (a backbone or classifier that takes [1, 28, 28] Fashion-MNIST images "
            f"and has a `cache_identity`), but got {model!r:.200}"
        )


def _check_n(n) -> int | None:
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"Expected `n` to be a positive integer (the first n test images) or None (all), but got {n!r}")
    return n


def _scorer(model: Backbone | Classifier, class_names: list[str]) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    """``images [N, 1, 28, 28] -> {prompt key: [N, C] logits}`` for a VLM (zero-shot) or a classifier."""
    if isinstance(model, Classifier):
        if list(model.class_names) != class_names:
            raise ValueError(f"Expected a classifier of the test split's classes {class_names}, but got {model.class_names}")
        return lambda x: {"-": model.logits(x)}  # [N, C]
    text = {key: class_text_features(model, class_names, list(templates)) for key, templates in CARD_PROMPTS.items()}  # each [C, D]

    def score(x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = model.encode_images(x)  # [N, D], once for every prompt
        return {key: zero_shot_logits(feats, t, model.logit_scale) for key, t in text.items()}  # each [N,D] @ [D,C] -> [N,C]

    return score


@torch.no_grad()
def _measure(model: Backbone | Classifier, images: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> dict[str, Any]:
    """The card's rows and best temperature, as plain data (the cached payload)."""
    score = _scorer(model, class_names)
    rows, best_t = [], math.nan
    for shift, severity in (("clean", 0), *CARD_SHIFTS):
        x = images if shift == "clean" else apply_shift(images, shift, severity, seed=SHIFT_SEED)  # [N, 1, 28, 28]
        for i, (key, logits) in enumerate(score(x).items()):
            logits = logits.float().cpu()  # [N, C]
            probs = logits.softmax(dim=-1)
            acc, ece = metrics.accuracy(probs, labels), metrics.ece(probs, labels, n_bins=N_BINS)
            rows.append({"shift": shift, "severity": severity, "prompt": key, "accuracy": float(acc), "ece": float(ece)})
            if shift == "clean" and i == 0:
                best_t = float(TemperatureScaling().fit(logits, labels).temperature_)
    return {"rows": rows, "best_temperature": best_t}


def measure_card(
    model: Backbone | Classifier, n: int | None = None, cache_dir: str | os.PathLike | None = None
) -> CardResults:
    """What a stand-in scores on the test split: read from the cache, or measured and cached.

    Args:
        model: a stand-in VLM (``vlmcal.backbones.standins.load_default``) or the supervised
            baseline (``load_supervised``).
        n: use the first n test images (None: all 10,000).
        cache_dir: vlmcal's cache directory (default: ``vlmcal.cache.cache_dir()``).

    Returns:
        A :class:`CardResults`: clean and ``CARD_SHIFTS`` rows, per prompt for a VLM.

    Raises:
        ValueError: ``model`` is not a stand-in (an open_clip model has a card of its own), or ``n`` is not positive.
    """
    from vlmcal.data.datasets import load_fashion_mnist

    _check_model(model)
    n = _check_n(n)
    test = load_fashion_mnist("test")
    images, labels = test.images_float()[:n], test.labels[:n]  # [N, 1, 28, 28], [N]
    identity = {
        "results": RESULTS_VERSION, "model": model.cache_identity, "data": test.identity, "n": len(labels),
        "shifts": CARD_SHIFTS, "shift_seed": SHIFT_SEED, "n_bins": N_BINS,
        "prompts": None if isinstance(model, Classifier) else CARD_PROMPTS,
    }
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", model.name)
    path = resolve_cache_dir(cache_dir) / "cards" / f"{name}-{content_key(**identity)}.pt"
    payload = load_entry(path, identity)
    if payload is None:
        payload = _measure(model, images, labels, list(test.class_names))
        save_entry(path, payload, identity)
    return CardResults(model=model.name, n_test=len(labels), rows=tuple(payload["rows"]), best_temperature=payload["best_temperature"])


def card_markdown(model: Backbone | Classifier, n: int | None = None, cache_dir: str | os.PathLike | None = None) -> str:
    """A model's card for a page: how it was trained (its ``card``), then what it scores (:func:`measure_card`).

    A model without a vlmcal card (an open_clip model) gets a sentence pointing to its own card.
    """
    card = getattr(model, "card", None)
    if card is None:
        if model.name.startswith("openclip:"):
            return f"`{model.name}` is an open_clip model: see its own model card."
        return f"`{model.name}` has no vlmcal model card (vlmcal writes one for each stand-in it trains)."
    return card.to_markdown() + "\n\n" + measure_card(model, n, cache_dir).to_markdown()
