"""Runs (one model's logits on one condition) and the calibration/evaluation split of the study tables (ES, Tu
et al., ICML 2024: stratified halves of the clean test split, the same indices for every shift)."""

from __future__ import annotations

import os
import zlib
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from vlmcal import metrics
from vlmcal.calibration import stratified_sample
from vlmcal.data.published import PUBLISHED_SPECS

__all__ = ["Run", "coverage_label", "COVERAGE_LABELS", "condition_name", "restrict_to_classes", "split_calibration",
           "model_temperatures"]

# A condition's coverage: did the model's training data show this shift? (``Run.coverage``)
CLEAN, COVERED, HELD_OUT, UNKNOWN = "clean", "covered", "held out", "unknown"
COVERAGE_LABELS: tuple[str, ...] = (CLEAN, COVERED, HELD_OUT, UNKNOWN)  # also the order tables show them in


def coverage_label(shift: str, covered_shifts: Collection[str] | None) -> str:
    """The coverage label of ``shift`` (or ``"clean"``) for a model whose training data shows ``covered_shifts``
    (None: not known): ``"clean"``, ``"covered"``, ``"held out"`` or ``"unknown"``.

    Example:
        >>> coverage_label("pixelate", ("gaussian_noise",)), coverage_label("pixelate", None)
        ('held out', 'unknown')
    """
    if shift == CLEAN:
        return CLEAN
    if covered_shifts is None:
        return UNKNOWN
    return COVERED if shift in covered_shifts else HELD_OUT


@dataclass(frozen=True)
class Run:
    """One model's logits on one condition.

    Attributes:
        model: the model's name (``"default"``, ``"supervised"``, ``"openclip:ViT-B-32:openai"``).
        kind: ``"VLM"`` (zero-shot) or ``"supervised"``.
        shift, severity: ``"clean"`` and 0, or the name of a distribution shift and its severity.
        logits, labels: [N, C] logits (a VLM's already carry its logit scale) and [N] integer labels in [0, C).
        covered_shifts: the shifts its model's training data shows (supervised baseline: ``()``); None if unknown.
    """

    model: str
    kind: str
    shift: str
    severity: int
    logits: torch.Tensor = field(repr=False)
    labels: torch.Tensor = field(repr=False)
    covered_shifts: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("VLM", "supervised"):
            raise ValueError(f"Expected `kind` to be 'VLM' or 'supervised', but got {self.kind!r}")
        if self.covered_shifts is not None:
            if isinstance(self.covered_shifts, str) or not all(isinstance(s, str) for s in self.covered_shifts):
                raise ValueError(f"Expected `covered_shifts` to be a tuple of shift names or None, but got {self.covered_shifts!r}")
            object.__setattr__(self, "covered_shifts", tuple(self.covered_shifts))
        if self.logits.ndim != 2 or self.labels.shape != self.logits.shape[:1]:
            raise ValueError(f"Expected logits [N, C] and labels [N], but got {tuple(self.logits.shape)} "
                             f"and {tuple(self.labels.shape)}")

    @property
    def condition(self) -> str:
        return condition_name(self.shift, self.severity)

    @property
    def paired(self) -> bool:
        """Whether its images are the clean test images (clean or synthetically shifted), row for row; a data-set
        shift (:func:`is_dataset_shift`) has images of its own."""
        return not is_dataset_shift(self.shift)

    def evaluation_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Its rows standing for the clean ``rows``: those rows if :attr:`paired`, else as many of its own rows,
        drawn at random (seeded by the clean rows), so that a paired bootstrap over positions resamples each set
        independently."""
        rows = torch.as_tensor(rows)
        if self.paired:
            return rows
        if len(rows) > len(self.labels):
            raise ValueError(f"{self.condition} holds {len(self.labels)} images, fewer than the {len(rows)} clean "
                             f"evaluation images it is compared with; lower `max_samples` to at most {2 * len(self.labels)}")
        generator = torch.Generator().manual_seed(zlib.crc32(rows.to(torch.long).numpy().tobytes()))
        return torch.randperm(len(self.labels), generator=generator)[: len(rows)]

    @property
    def coverage(self) -> str:
        """``"clean"``, ``"covered"``, ``"held out"`` or ``"unknown"`` (:func:`vlmcal.papers.es.coverage_label`)."""
        return coverage_label(self.shift, self.covered_shifts)

    def subset(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, labels) of the given clean rows (:meth:`evaluation_rows`)."""
        rows = self.evaluation_rows(rows)
        return self.logits[rows], self.labels[rows]


def is_dataset_shift(shift: str) -> bool:
    """Whether a shift is another data set's spec (``"imagenet-sketch:/data/sketch"``), not a synthetic shift's name."""
    return ":" in shift


def condition_name(shift: str, severity: int) -> str:
    """A condition's name in tables: ``"clean"``, ``"<shift>-<severity>"`` (``"gaussian_noise-3"``), or a data-set
    shift's spec without its root (``"imagenet-sketch"``, ``"imagenet-c:fog:3"``, ``"imagefolder:<folder name>"``)."""
    if shift == "clean":
        return "clean"
    if not is_dataset_shift(shift):
        return f"{shift}-{severity}"
    head, root = shift.rsplit(":", 1)
    return head if head.partition(":")[0] in PUBLISHED_SPECS else f"{head}:{os.path.basename(root.rstrip('/'))}"


def restrict_to_classes(logits: torch.Tensor, labels: torch.Tensor, classes: Sequence[int]):
    """Keep the samples of ``classes`` and those classes' logits, relabelled 0..len(classes)-1 (for a zero-shot
    VLM, exactly its classifier over ``classes``: a class's logit depends on its prompt alone).

    Args:
        logits, labels: [N, C] and [N] in [0, C).
        classes: the K class indices to keep, in the order of their new labels.
    Returns:
        ``(logits [M, K], labels [M], rows [M])`` where ``rows`` are the kept samples' indices.
    """
    classes_t = torch.as_tensor(list(classes), dtype=torch.long)
    if classes_t.numel() < 2 or classes_t.unique().numel() != classes_t.numel():
        raise ValueError(f"Expected at least two distinct classes, but got {list(classes)}")
    remap = torch.full((logits.shape[1],), -1, dtype=torch.long)
    remap[classes_t] = torch.arange(classes_t.numel())
    new_labels = remap[labels]  # [N], -1 outside the subset
    rows = torch.nonzero(new_labels >= 0).squeeze(1)  # [M]
    return logits[rows][:, classes_t], new_labels[rows], rows


def split_calibration(labels: torch.Tensor, seed: int, calibration_fraction: float = 0.5):
    """Stratified, seeded split of the indices of the clean test split (``labels`` [N]) into ``(calibration_rows,
    evaluation_rows)``, sorted index tensors that partition 0..N-1; ``calibration_fraction`` of each class goes to
    calibration."""
    if not 0.0 < calibration_fraction < 1.0:
        raise ValueError(f"Expected `calibration_fraction` in (0, 1), but got {calibration_fraction!r}")
    n_calib = int(round(calibration_fraction * len(labels)))
    calib = torch.as_tensor(stratified_sample(labels, n_calib, seed=seed), dtype=torch.long).sort().values
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[calib] = False
    return calib, torch.nonzero(mask).squeeze(1)


def _ece(logits, labels, n_bins):
    return metrics.ece(logits, labels, n_bins=n_bins, inputs="logits")


def _top_labels(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], temperatures: Sequence[float] | None = None):
    """Top-label confidence and correctness of R prediction sets of one size: ``([R, n], [R, n])``.

    ``pairs`` are R ``(logits [n, C], labels [n])`` (C may differ), ``temperatures`` R divisors (None: 1).
    Runs with the same C go through :func:`vlmcal.metrics.top_label` together, ``4 * CHUNK_ELEMENTS`` at most.
    """
    if not pairs:
        raise ValueError("Expected at least one run, but got none")
    temperatures = [1.0] * len(pairs) if temperatures is None else list(temperatures)
    conf, correct, start = [], [], 0
    while start < len(pairs):
        n, n_classes = pairs[start][0].shape
        stop = start + 1
        while stop < len(pairs) and stop - start < max(1, 4 * metrics.CHUNK_ELEMENTS // (n * n_classes)) and pairs[stop][0].shape[1] == n_classes:
            stop += 1
        logits = torch.stack([z for z, _ in pairs[start:stop]])  # [r, n, C]
        work = torch.promote_types(logits.dtype, torch.float32)  # T is not rounded to float16 (or an integer)
        scale = torch.tensor(temperatures[start:stop], dtype=work, device=logits.device)[:, None, None]  # [r, 1, 1]
        labels = torch.stack([y for _, y in pairs[start:stop]])  # [r, n]
        c, k = metrics.top_label((logits / scale).reshape(-1, n_classes), labels.reshape(-1), inputs="logits")  # [r * n] each
        conf.append(c.view(stop - start, n))
        correct.append(k.view(stop - start, n))
        start = stop
    return torch.cat(conf), torch.cat(correct)  # [R, n], [R, n]


def _run_top_labels(runs: Sequence[Run], rows: torch.Tensor, temperatures: dict[str, float] | None = None):
    """:func:`_top_labels` of every run on ``rows``, after its model's temperature when given."""
    scale = None if temperatures is None else [temperatures[run.model] for run in runs]
    return _top_labels([run.subset(rows) for run in runs], scale)


def _ece_of_rows(confidences: torch.Tensor, correct: torch.Tensor, n_bins: int) -> np.ndarray:
    """[R] ECE of each row of [R, n] confidences and hits, all rows in one pass."""
    unit = torch.ones(1, confidences.shape[1], dtype=torch.float64)  # every sample counted once
    return metrics.ece_weighted(confidences, correct, unit, n_bins=n_bins)[0].cpu().numpy()


def model_temperatures(table: pd.DataFrame) -> dict[str, float]:
    """Each model's fitted temperature, from :func:`vlmcal.papers.es.ts_across_shifts` output for one seed."""
    if "seed" in table and table["seed"].nunique() > 1:
        raise ValueError(f"Expected the table of one seed, but got seeds {sorted(table['seed'].unique())}")
    return {model: float(t) for model, t in table.groupby("model")["temperature"].first().items()}


def _of_kind(runs: Sequence[Run], kind: str) -> list[Run]:
    return [run for run in runs if run.kind == kind]
