"""The study's tables (runs to DataFrames): ECE before and after TS across shifts (C1-C3), under label
shift (C4), and calibrated confidence against accuracy (C5)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from vlmcal import metrics
from vlmcal.calibration import TemperatureScaling
from vlmcal.data.shifts import SHIFT_FAMILIES
from vlmcal.papers.es.coverage import SIDES, shifted_rows, side_rows
from vlmcal.pipeline.runs import Run, _ece, _ece_of_rows, _run_top_labels, _top_labels, is_dataset_shift, restrict_to_classes

__all__ = ["ts_across_shifts", "label_shift", "confidence_vs_accuracy", "confidence_accuracy_points", "confidence_vs_accuracy_by_side"]


def _family(shift: str) -> str:
    """The shift's family in ``vlmcal.data.shifts.SHIFT_FAMILIES`` (an ImageNet-C spec: its corruption's); ``"clean"``;
    ``"natural"`` for another data set; ``"other"`` outside them."""
    if shift.startswith("imagenet-c:"):
        shift = shift.split(":")[1]
    elif is_dataset_shift(shift):
        return "natural"
    return "clean" if shift == "clean" else next((f for f, names in SHIFT_FAMILIES.items() if shift in names), "other")


def ts_across_shifts(runs: Sequence[Run], calibration_rows, evaluation_rows, n_bins: int = 15) -> pd.DataFrame:
    """ECE before and after temperature scaling fitted on clean calibration data (C1, C2, C3).

    Each model's temperature is fitted on ``calibration_rows`` of its clean run (``shift == "clean"``; every model of
    ``runs`` needs one) and applied, unchanged, to ``evaluation_rows`` of every run of that model.

    Args:
        n_bins: ECE bins (ES: 15).
    Returns:
        One row per run: model, kind, shift, severity, condition, family ("clean" for clean data), coverage
        (:attr:`Run.coverage`), temperature, accuracy, ece_before, ece_after, confidence_before, confidence_after.
    """
    temperatures = {run.model: TemperatureScaling().fit(*run.subset(calibration_rows)).temperature_
                    for run in runs if run.shift == "clean"}
    missing = sorted({r.model for r in runs} - set(temperatures))
    if missing:
        raise ValueError(f"Expected a clean run for every model to fit its temperature, but none for {missing}")
    evaluation_rows = torch.as_tensor(evaluation_rows)
    conf_before, correct = _run_top_labels(runs, evaluation_rows)  # [R, n], [R, n]
    conf_after, correct_after = _run_top_labels(runs, evaluation_rows, temperatures)  # [R, n], [R, n]
    return pd.DataFrame({
        **{key: [getattr(run, key) for run in runs] for key in ("model", "kind", "shift", "severity", "condition")},
        "family": [_family(run.shift) for run in runs], "coverage": [run.coverage for run in runs],
        "temperature": [temperatures[run.model] for run in runs],
        "accuracy": correct.double().mean(dim=1).cpu().numpy(),
        "ece_before": _ece_of_rows(conf_before, correct, n_bins),
        "confidence_before": conf_before.mean(dim=1).cpu().numpy(),
        "ece_after": _ece_of_rows(conf_after, correct_after, n_bins),
        "confidence_after": conf_after.mean(dim=1).cpu().numpy(),
    })


def label_shift(runs: Sequence[Run], source_classes: Sequence[int], target_classes: dict[str, Sequence[int]],
                calibration_rows, evaluation_rows, n_bins: int = 15) -> pd.DataFrame:
    """TS fitted on one label set, evaluated on others (C4), against TS fitted on the target labels.

    Args:
        runs: clean runs, one per model.
        source_classes: the classes whose calibration samples fit the temperature (e.g. base).
        target_classes: name -> classes to evaluate on (e.g. ``{"new": [...], "all": [...]}``).
    Returns:
        One row per (model, target): temperature_source, temperature_target, ece_before, ece_source_ts,
        ece_target_ts, and ``recovered``: the share of the target-fitted TS's ECE reduction that the
        source-fitted temperature achieves.
    """
    rows = []
    for run in runs:
        calibration = run.subset(torch.as_tensor(calibration_rows))  # (logits, labels)
        ev_logits, ev_labels = run.subset(torch.as_tensor(evaluation_rows))
        t_source = TemperatureScaling().fit(*restrict_to_classes(*calibration, source_classes)[:2]).temperature_
        for name, classes in target_classes.items():
            t_target = TemperatureScaling().fit(*restrict_to_classes(*calibration, classes)[:2]).temperature_
            logits, labels, _ = restrict_to_classes(ev_logits, ev_labels, classes)
            before = _ece(logits, labels, n_bins)
            with_source, with_target = _ece(logits / t_source, labels, n_bins), _ece(logits / t_target, labels, n_bins)
            gain = before - with_target
            rows.append({"model": run.model, "kind": run.kind, "target": name, "n_classes": len(classes),
                         "accuracy": metrics.accuracy(logits, labels, inputs="logits"), "temperature_source": t_source,
                         "temperature_target": t_target, "ece_before": before, "ece_source_ts": with_source,
                         "ece_target_ts": with_target,
                         "recovered": (before - with_source) / gain if gain > 0 else np.nan})
    return pd.DataFrame(rows)


def confidence_vs_accuracy(points: pd.DataFrame, confidence: str = "confidence_after", accuracy: str = "accuracy") -> dict:
    """How well mean calibrated confidence (column ``confidence``) tracks accuracy across conditions, one per row (C5).

    Returns:
        ``{"r2": R^2 of the least-squares line, "r2_identity": 1 - SS(acc - conf) / SS(acc - mean),``
        ``"spearman": Spearman's rho, "pearson": Pearson's r, "n": number of conditions}``.
    """
    x, y = points[confidence].to_numpy(dtype=float), points[accuracy].to_numpy(dtype=float)
    if len(x) < 3:
        raise ValueError(f"Expected at least 3 conditions to correlate, but got {len(x)}")
    pearson = float(np.corrcoef(x, y)[0, 1])
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    spearman = float(np.corrcoef(pd.Series(x).rank(), pd.Series(y).rank())[0, 1])  # r of the ranks, ties averaged
    return {"r2": pearson**2, "r2_identity": 1.0 - float(np.sum((y - x) ** 2)) / ss_tot if ss_tot > 0 else np.nan,
            "spearman": spearman, "pearson": pearson, "n": int(len(x))}


def confidence_accuracy_points(runs: Sequence[Run], temperatures: dict[str, float], evaluation_rows,
                               class_sets: dict[str, Sequence[int]]) -> pd.DataFrame:
    """Accuracy and mean confidence (before and after TS) per (model, condition, label set) (C5).

    Args:
        temperatures: model -> temperature (fitted on clean, all-class calibration data).
        class_sets: name -> classes; each set restricts the logits and images to those classes.
    Returns:
        One row per (run, label set): model, kind, shift, condition, coverage (:attr:`Run.coverage`), labels,
        accuracy, confidence_before, confidence_after.
    """
    if not class_sets:
        raise ValueError("Expected at least one label set in `class_sets`, but got none")
    other = sorted({run.condition for run in runs if run.logits.shape[1] != runs[0].logits.shape[1]})
    if other:
        raise ValueError(f"Label sets are sets of the clean data's classes, which {other} do not have (ImageNet-A and -R "
                         f"hold 200 of ImageNet's classes): leave them out of `shifts` on this page")
    evaluation = [run.subset(torch.as_tensor(evaluation_rows)) for run in runs]
    scale = [temperatures[run.model] for run in runs]
    frames = []
    for name, classes in class_sets.items():
        restricted = [restrict_to_classes(logits, labels, classes)[:2] for logits, labels in evaluation]
        conf_before, correct = _top_labels(restricted)  # [R, m], [R, m]
        conf_after, _ = _top_labels(restricted, scale)  # [R, m]
        frames.append(pd.DataFrame({
            **{key: [getattr(run, key) for run in runs] for key in ("model", "kind", "shift", "condition", "coverage")},
            "labels": name, "accuracy": correct.double().mean(dim=1).cpu().numpy(),
            "confidence_before": conf_before.double().mean(dim=1).cpu().numpy(),
            "confidence_after": conf_after.double().mean(dim=1).cpu().numpy(),
        }))
    # one row per (run, label set), in that order
    return pd.concat(frames).sort_index(kind="stable").reset_index(drop=True)


def confidence_vs_accuracy_by_side(points: pd.DataFrame, confidences: Sequence[str] = ("confidence_before", "confidence_after")) -> pd.DataFrame:
    """:func:`confidence_vs_accuracy` per model and side of the shifts (C5's table).

    Each side (``vlmcal.papers.es.coverage.SIDES``) pools the model's clean points with its shifted points of that
    side, over every label set; ``points`` is :func:`confidence_accuracy_points` output.

    Returns:
        One row per (model, side with shifted points, confidence column): kind, model, side, confidence,
        r2, r2_identity, spearman, pearson, n. Sides with fewer than 3 points are left out.
    """
    rows = []
    for (kind, model), group in points.groupby(["kind", "model"], sort=False):
        for side in SIDES:
            pooled = side_rows(group, side)
            if shifted_rows(group, side).empty or len(pooled) < 3:
                continue
            rows += [{"kind": kind, "model": model, "side": side, "confidence": column,
                      **confidence_vs_accuracy(pooled, confidence=column)} for column in confidences]
    return pd.DataFrame(rows, columns=["kind", "model", "side", "confidence", "r2", "r2_identity", "spearman", "pearson", "n"])
