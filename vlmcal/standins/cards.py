"""What a stand-in scores on the Fashion-MNIST test split, measured from outside the model.

Accuracy and top-label ECE (15 bins), clean and under each of ``CARD_SHIFTS``, each row labelled by
:func:`coverage`; for a VLM, zero-shot with the hard prompt and CLIP's 80-template ensemble; and the
temperature minimising clean test NLL. Each table is cached under ``cards/``."""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch

from vlmcal import metrics
from vlmcal.backbones.base import Backbone, Classifier
from vlmcal.calibration import TemperatureScaling
from vlmcal.data import datasets  # looked up at call time: the tests watch which split is read
from vlmcal.data.shifts import apply_shift
from vlmcal.data.templates import CLIP_TEMPLATES, HARD_PROMPT
from vlmcal.pipeline.cache import cached, entry_path
from vlmcal.pipeline.runs import coverage_label
from vlmcal.prompting.zeroshot import class_text_features, zero_shot_logits
from vlmcal.standins import SUPERVISED_VARIANTS, VARIANTS, load_default, load_supervised
from vlmcal.standins.corpus import COVERED_FAMILIES, HELD_OUT_FAMILIES, covered_shifts, held_out_shifts

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CARD_SHIFTS", "CARD_PROMPTS", "COVERAGE_LABELS", "CardResults", "coverage", "measure_card", "card_markdown",
           "load_family", "FAMILY_GROUPS", "family_table", "family_comparison"]

# (name, severity): severity 3 is the suite's middle, 5 the pure renderings. The default corpus
# covers the first five (noise, blur, weather, rendition) and holds out the last four (digital).
CARD_SHIFTS: tuple[tuple[str, int], ...] = (
    ("gaussian_noise", 3), ("gaussian_blur", 3), ("brightness", 3), ("invert", 5), ("sketch", 5),
    ("contrast", 3), ("pixelate", 3), ("jpeg_compression", 3), ("elastic_transform", 3),
)

# A VLM's card prompts: none of them is a pretraining caption (``vlmcal.data.templates.CAPTION_POOL``).
CARD_PROMPTS: dict[str, tuple[str, ...]] = {"hard prompt": (HARD_PROMPT,), "80-template ensemble": tuple(CLIP_TEMPLATES)}

# A row's ``coverage`` labels, in the order the summaries list them.
COVERAGE_LABELS: tuple[str, ...] = ("clean", "covered", "held out", "not in training", "unknown")

N_BINS = 15  # as ES
SHIFT_SEED = 0  # the shifts' random draws
RESULTS_VERSION = 2  # bump when what `measure_card` computes changes (2: coverage, 9 shifts)


def coverage(model: Backbone | Classifier, shift: str) -> str:
    """What a model's training showed of a shift ("clean" or a name of ``vlmcal.data.shifts``): "clean" for clean
    data; for a classifier "not in training"; for a backbone whose ``covered_shifts`` is None "unknown"; else
    "covered" or "held out" (``COVERAGE_LABELS``)."""
    if isinstance(model, Classifier):
        return "clean" if shift == "clean" else "not in training"
    return coverage_label(shift, getattr(model, "covered_shifts", None))


def _means_phrase(m: dict[str, Any]) -> str:
    """``"clean accuracy 0.812, ECE 0.034"``, ``"5 covered shifts: mean accuracy ..."``, ``"1 held-out shift: ..."``."""
    if m["coverage"] == "clean":
        return f"clean accuracy {m['accuracy']:.3f}, ECE {m['ece']:.3f}"
    k, noun = m["n_shifts"], "shift" if m["n_shifts"] == 1 else "shifts"
    shifts = {"covered": f"{k} covered {noun}", "held out": f"{k} held-out {noun}",
              "not in training": f"{k} {noun} not in training"}.get(m["coverage"], f"{k} {noun} of unknown coverage")
    return f"{shifts}: mean accuracy {m['accuracy']:.3f}, mean ECE {m['ece']:.3f}"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


@dataclass(frozen=True)
class CardResults:
    """What a model scores on the first ``n_test`` images of the Fashion-MNIST test split.
    Attributes:
        rows: one dict per (data set, prompt): ``shift``, ``severity``, ``coverage``, ``prompt`` ("-" for a
            classifier), ``accuracy`` and ``ece``.
        best_temperature: the temperature minimising clean test NLL with the first prompt (> 1: over-confident).
    """

    model: str
    n_test: int
    rows: tuple[dict[str, Any], ...]
    best_temperature: float

    def coverage_means(self) -> list[dict[str, Any]]:
        """Mean accuracy and ECE per (prompt, coverage label): dicts of ``prompt``, ``coverage``, ``n_shifts``,
        ``accuracy``, ``ece``, in row, then label order."""
        picks = {(prompt, label): [r for r in self.rows if r["prompt"] == prompt and r["coverage"] == label]
                 for prompt in dict.fromkeys(r["prompt"] for r in self.rows) for label in COVERAGE_LABELS}
        return [{"prompt": prompt, "coverage": label, "n_shifts": len(picked),
                 "accuracy": _mean([r["accuracy"] for r in picked]), "ece": _mean([r["ece"] for r in picked])}
                for (prompt, label), picked in picks.items() if picked]

    def summary_lines(self) -> list[str]:
        """One markdown list item per prompt: clean, then mean accuracy and ECE per coverage label."""
        means = self.coverage_means()
        return [("- " if prompt == "-" else f"- {prompt}: ")
                + "; ".join(_means_phrase(m) for m in means if m["prompt"] == prompt)
                for prompt in dict.fromkeys(r["prompt"] for r in self.rows)]

    def to_markdown(self) -> str:
        """A sentence on what was measured, the table, then the means per coverage label and prompt."""
        lines = [f"Measured by `vlmcal.standins.cards` on the first {self.n_test:,} Fashion-MNIST test images (never "
                 f"used in training); temperature minimising clean test NLL: {self.best_temperature:.2f}. Coverage "
                 "says whether the model's training data showed each shift (its corpus covered it, or held it out).",
                 "", f"| test data | coverage | prompt | accuracy | ECE ({N_BINS} bins) |",
                 "| --- | --- | --- | --- | --- |"]
        for r in self.rows:
            where = "clean" if r["shift"] == "clean" else f"{r['shift']} (severity {r['severity']})"
            lines.append(f"| {where} | {r['coverage']} | {r['prompt']} | {r['accuracy']:.3f} | {r['ece']:.3f} |")
        lines += ["", "Means by coverage (unweighted over shifts):", "", *self.summary_lines()]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


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
def _measure(model: Backbone | Classifier, images: torch.Tensor, labels: torch.Tensor, class_names: list[str],
             coverages: dict[str, str]) -> dict[str, Any]:
    """The card's rows and best temperature (the cached payload); ``coverages`` maps each shift to its label."""
    score = _scorer(model, class_names)
    rows, best_t = [], math.nan
    for shift, severity in (("clean", 0), *CARD_SHIFTS):
        x = images if shift == "clean" else apply_shift(images, shift, severity, seed=SHIFT_SEED)  # [N, 1, 28, 28]
        for i, (key, logits) in enumerate(score(x).items()):
            logits = logits.float().cpu()  # [N, C]
            probs = logits.softmax(dim=-1)
            rows.append({"shift": shift, "severity": severity, "coverage": coverages[shift], "prompt": key,
                         "accuracy": float(metrics.accuracy(probs, labels)),
                         "ece": float(metrics.ece(probs, labels, n_bins=N_BINS))})
            if shift == "clean" and i == 0:
                best_t = float(TemperatureScaling().fit(logits, labels).temperature_)
    return {"rows": rows, "best_temperature": best_t}


def measure_card(model: Backbone | Classifier, n: int | None = None,
                 cache_dir: str | os.PathLike | None = None) -> CardResults:
    """What a stand-in scores on the clean and ``CARD_SHIFTS`` test split: read from the cache, or measured and cached.
    Args:
        n: use the first n test images (None: all 10,000).
    Raises:
        ValueError: ``model`` is not a stand-in (e.g. an open_clip model), or ``n`` is not positive.
    """
    if (not isinstance(model, (Backbone, Classifier)) or tuple(getattr(model, "input_shape", ())) != (1, 28, 28)
            or not hasattr(model, "cache_identity")):
        raise ValueError("Expected one of vlmcal's stand-ins (a backbone or classifier that takes [1, 28, 28] "
                         f"Fashion-MNIST images and has a `cache_identity`), but got {model!r:.200}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"Expected `n` to be a positive integer (the first n test images) or None (all), but got {n!r}")
    test = datasets.load_fashion_mnist("test")
    images, labels = test.images_float()[:n], test.labels[:n]  # [N, 1, 28, 28], [N]
    coverages = {shift: coverage(model, shift) for shift, _ in (("clean", 0), *CARD_SHIFTS)}
    identity = {"results": RESULTS_VERSION, "model": model.cache_identity, "data": test.identity, "n": len(labels),
                "shifts": CARD_SHIFTS, "coverage": coverages, "shift_seed": SHIFT_SEED, "n_bins": N_BINS,
                "prompts": None if isinstance(model, Classifier) else CARD_PROMPTS}
    payload = cached(entry_path("cards", model.name, identity, cache_dir), identity,
                     lambda: _measure(model, images, labels, list(test.class_names), coverages))
    return CardResults(model=model.name, n_test=len(labels), rows=tuple(payload["rows"]), best_temperature=payload["best_temperature"])


def card_markdown(model: Backbone | Classifier, n: int | None = None, cache_dir: str | os.PathLike | None = None) -> str:
    """A model's card for a page: how it was trained (its ``card``), then what it scores (:func:`measure_card`)."""
    card = getattr(model, "card", None)
    if card is None:
        if model.name.startswith("openclip:"):
            return f"`{model.name}` is an open_clip model: see its own model card."
        return f"`{model.name}` has no vlmcal model card (vlmcal writes one for each stand-in it trains)."
    return card.to_markdown() + "\n\n" + measure_card(model, n, cache_dir).to_markdown()


def load_family(names: Sequence[str], device: str | torch.device | None = None,
                cache_dir: str | os.PathLike | None = None) -> list[Backbone | Classifier]:
    """Stand-ins and supervised baselines by name, in that order, every name checked before any is loaded (or trained).
    Args:
        device, cache_dir: as for :func:`vlmcal.standins.load_default`.
    Raises:
        ValueError: a name is neither a stand-in VLM nor a supervised baseline.
    """
    if isinstance(names, str):
        raise ValueError(f"Expected a list of model names, but got one string {names!r}; wrap it in a list")
    unknown = [name for name in names if name not in VARIANTS and name not in SUPERVISED_VARIANTS]
    if unknown:
        raise ValueError(f"Unknown models {unknown} for the family table: expected stand-ins ({', '.join(VARIANTS)}) "
                         f"or supervised baselines ({', '.join(SUPERVISED_VARIANTS)}); "
                         "open_clip models have no vlmcal card")
    return [(load_supervised if name in SUPERVISED_VARIANTS else load_default)(name, device=device, cache_dir=cache_dir)
            for name in names]


# The card shifts of the families the default corpus covers, and of the family it holds out.
FAMILY_GROUPS: dict[str, tuple[str, ...]] = {
    ", ".join(COVERED_FAMILIES): tuple(s for s, _ in CARD_SHIFTS if s in covered_shifts()),
    ", ".join(HELD_OUT_FAMILIES): tuple(s for s, _ in CARD_SHIFTS if s in held_out_shifts()),
}


def _group_label(labels: list[str]) -> str:
    """One coverage label for a group of rows: the label when all agree, else the counts of each."""
    counts = Counter(labels)
    return labels[0] if len(counts) == 1 else "mixed: " + ", ".join(
        f"{counts[label]} {label}" for label in COVERAGE_LABELS if label in counts)


def family_table(models: Sequence[Backbone | Classifier], n: int | None = None,
                 cache_dir: str | os.PathLike | None = None) -> "pd.DataFrame":
    """One row per model (:func:`load_family`): learned logit scale, clean and shifted accuracy and ECE from its card.
    Args:
        n, cache_dir: as for :func:`measure_card`.
    Returns:
        A DataFrame indexed by model name, columns ("pretraining", "learned logit scale"), ("clean", "accuracy" /
        "ECE") and per group of ``FAMILY_GROUPS`` ("coverage" / "accuracy" / "ECE", means over its shifts).
    Raises:
        ValueError: a model is not a stand-in (see :func:`measure_card`), or two share a name.
    """
    import pandas as pd
    names = [getattr(m, "name", repr(m)) for m in models]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"Expected each model once in the family table, but got {repeated} more than once")
    records = []
    for model in models:
        results = measure_card(model, n, cache_dir)
        prompt = results.rows[0]["prompt"]  # the first prompt: the hard prompt, or "-" for a classifier
        rows = {r["shift"]: r for r in results.rows if r["prompt"] == prompt}
        scale = math.nan if isinstance(model, Classifier) else float(model.logit_scale)
        record = {("pretraining", "learned logit scale"): scale,
                  ("clean", "accuracy"): rows["clean"]["accuracy"], ("clean", "ECE"): rows["clean"]["ece"]}
        for group, shifts in FAMILY_GROUPS.items():
            picked = [rows[s] for s in shifts]
            record[(group, "coverage")] = _group_label([r["coverage"] for r in picked])
            record[(group, "accuracy")] = _mean([r["accuracy"] for r in picked])
            record[(group, "ECE")] = _mean([r["ece"] for r in picked])
        records.append(record)
    columns = pd.MultiIndex.from_tuples(
        [("pretraining", "learned logit scale"), ("clean", "accuracy"), ("clean", "ECE")]
        + [(group, what) for group in FAMILY_GROUPS for what in ("coverage", "accuracy", "ECE")])
    return pd.DataFrame(records, index=pd.Index(names, name="model"), columns=columns)


def family_comparison(table: "pd.DataFrame") -> str:
    """Markdown paragraphs that read a :func:`family_table` for a page: what each model loses from clean to each group
    of shifts (or a sentence saying why there is nothing to compare)."""
    compared = [name for name in ("default", "default-plain", "default-task", "supervised") if name in table.index]
    if len(compared) < 2:
        return ("The family table holds fewer than two of `default`, `default-plain`, `default-task` and `supervised`: "
                "no comparison to state.")

    def drop(name: str, group: str) -> tuple[float, float]:
        row = table.loc[name]
        return row[("clean", "accuracy")] - row[(group, "accuracy")], row[(group, "ECE")] - row[("clean", "ECE")]

    def change(name: str, group: str) -> str:
        lost, gained = drop(name, group)
        return (f"`{name}` ({table.loc[name, (group, 'coverage')]}) {'loses' if lost >= 0 else 'gains'} {abs(lost):.3f} accuracy "
                f"and its ECE {'grows' if gained >= 0 else 'falls'} by {abs(gained):.3f}")

    lines = [f"From clean to the shifts of {group} (means over {len(shifts)} shifts): "
             + "; ".join(change(name, group) for name in compared) + "." for group, shifts in FAMILY_GROUPS.items()]
    if {"default", "default-plain"} <= set(compared):
        for group in FAMILY_GROUPS:
            (lost, gained), (plain_lost, plain_gained) = drop("default", group), drop("default-plain", group)
            a, b = (table.loc[name, (group, "coverage")] for name in ("default", "default-plain"))
            lines.append(
                f"On the shifts of {group}, `default` ({a}) loses {'less' if lost < plain_lost else 'no less'} accuracy "
                f"than `default-plain` ({b}): {lost:.3f} against {plain_lost:.3f}; its ECE changes by {gained:+.3f} "
                f"against {plain_gained:+.3f}, {'less' if gained < plain_gained else 'no less'}.")
    return "\n\n".join(lines)
