"""Prompt choice and calibration: one point per hard prompt, and how dispersion tracks ECE (C8).

C-TPT (Yoon et al., ICLR 2024, Sec. 3) scores CLIP's 80 templates by accuracy, ECE (20 bins) and ATFD, and within
3 points of the best accuracy finds ATFD and ECE negatively correlated (Pearson -0.70 RN50, -0.76 ViT-B/16).
DOR (Wang, Li & Wei, ICML 2025, Prop. 3.1) predicts that sign only for under-confident prompts.

Example:
    >>> points = sweep_condition("default", max_samples=2000)  # doctest: +SKIP
    >>> print(dispersion_correlation(near_top(points, window=0.03)).pearson)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from vlmcal import metrics
from vlmcal.backbones.base import Backbone
from vlmcal.data import templates as T
from vlmcal.data.shifts import check_shift
from vlmcal.metrics.bootstrap import _check_bootstrap
from vlmcal.pipeline import predictions
from vlmcal.pipeline.features import image_features
from vlmcal.pipeline.runs import condition_name
from vlmcal.prompting.dispersion import text_feature_dispersion
from vlmcal.prompting.zeroshot import class_text_features, zero_shot_logits

__all__ = ["REGIMES", "regime_of", "template_points", "sweep_condition", "near_top", "DispersionCorrelation",
           "dispersion_correlation", "correlation_by_regime"]

REGIMES = ("over-confident", "under-confident")
"""The values of the ``regime`` column: mean confidence above accuracy, or not (a gap of 0 is under-confident)."""


def regime_of(gap: float) -> str:
    """The confidence regime of a mean-confidence-minus-accuracy gap: over-confident above 0, else under-confident."""
    return REGIMES[0] if gap > 0 else REGIMES[1]


_MIN_ROWS = 3  # with 2 points a correlation is +-1 whatever they are: no evidence either way


def _check_templates(templates) -> list[str]:
    if isinstance(templates, str) or not hasattr(templates, "__len__") or len(templates) == 0:
        raise ValueError(f"Expected `templates` to be a non-empty list of template strings (each one row), but got "
                         f"{templates!r:.200}; wrap a single template in a list")
    not_strings = [t for t in templates if not isinstance(t, str)]
    if not_strings:
        raise ValueError(f"Expected every template to be a string with one '{{}}' (it names its row), but got "
                         f"{not_strings[0]!r}")
    return list(templates)


def template_points(
    image_features: torch.Tensor, labels: torch.Tensor, backbone: Backbone, class_names: Sequence[str],
    templates: Sequence[str], n_bins: int = 20,
) -> pd.DataFrame:
    """One calibration point per template, each used alone as a hard prompt.

    Args:
        image_features, labels: [N, D] L2-normalised image features and [N] integer labels in [0, C).
        backbone: encodes the prompts; its ``logit_scale`` applies.
        templates: T template strings, each with one ``{}`` for the class name.
        n_bins: equal-width ECE bins, ``lower < conf <= upper`` (20: C-TPT's protocol).
    Returns:
        T rows in the order of ``templates``, with columns ``template``, ``accuracy``, ``ece``, ``confidence`` (mean
        top-label probability), ``gap`` (confidence - accuracy), ``regime`` (:data:`REGIMES`), ``atfd``
        and ``logit_spread`` (mean over images of the population std of the C logits: DOR's "wider logits").
    """
    templates = _check_templates(templates)
    image_features, labels = torch.as_tensor(image_features), torch.as_tensor(labels)
    if image_features.ndim != 2 or not image_features.is_floating_point():
        raise ValueError(f"Expected `image_features` to be a floating-point [N, D] array, but got "
                         f"{image_features.dtype} of shape {tuple(image_features.shape)}")
    if labels.shape != image_features.shape[:1]:
        raise ValueError(f"Expected `labels` of shape [{image_features.shape[0]}] (one per image feature), but got "
                         f"shape {tuple(labels.shape)}")
    rows = []
    with torch.no_grad():
        for template in templates:
            text = class_text_features(backbone, class_names, [template])  # [C, D]
            logits = zero_shot_logits(image_features, text, backbone.logit_scale)  # [N,D] @ [D,C] -> [N,C]
            accuracy = metrics.accuracy(logits, labels, inputs="logits")
            confidence = metrics.mean_confidence(logits, labels, inputs="logits")
            gap = confidence - accuracy
            ece = metrics.ece(logits, labels, n_bins=n_bins, convention="right", inputs="logits")
            rows.append({"template": template, "accuracy": accuracy, "ece": ece, "confidence": confidence, "gap": gap,
                         "regime": regime_of(gap), "atfd": float(text_feature_dispersion(text)),
                         "logit_spread": float(logits.std(dim=1, correction=0).mean())})  # [N, C] -> [N] -> mean
    return pd.DataFrame(rows)


def sweep_condition(
    model: str, dataset: str = "fashion-mnist", shift: str = "clean", severity: int = 0,
    templates: Sequence[str] | None = None, class_names: Sequence[str] | None = None, max_samples: int | None = None,
    n_bins: int = 20, device: str | None = None, cache_dir: str | os.PathLike | None = None, progress: bool = True,
) -> pd.DataFrame:
    """:func:`template_points` of a named backbone on one condition, its image features cached as ``predict``'s.

    Returns its rows with ``condition`` (``"clean"`` or ``"<shift>-<severity>"``), ``shift`` and ``severity`` added.

    Args:
        model: a backbone name (``"default"``, ``"openclip:<arch>:<pretrained>"``...); not the supervised baseline.
        dataset, shift, severity, class_names, max_samples, device, cache_dir, progress: as for
            :func:`vlmcal.pipeline.predictions.predict`.
        templates: the templates to score (default: CLIP's 80, ``vlmcal.data.templates.CLIP_TEMPLATES``).
    """
    if predictions.is_supervised(model):
        raise ValueError(f"Expected a vision-language backbone name (e.g. 'default'), but got {model!r}, the "
                         "supervised baseline: it has no text tower, so there are no prompts to sweep")
    templates = _check_templates(list(T.CLIP_TEMPLATES) if templates is None else templates)
    if shift != "clean":
        check_shift(shift, severity, "shift", also=("clean",))  # before int(): 2.7 is an error, not severity 2
    severity = 0 if shift == "clean" else int(severity)
    data = predictions.load_test_data(dataset, shift, severity, max_samples=max_samples)
    identity = {"split": "test", "dataset": dataset, **data.identity}  # the identity predict() caches features under
    cache = None if cache_dir is None else str(cache_dir)
    backbone = predictions.load_model(model, device, cache)
    clean = predictions.clean_data(dataset, "test")
    inputs, identity["preprocessing"] = predictions.model_inputs(backbone, data, clean)
    feats = image_features(backbone, inputs, identity, cache_dir=cache, progress=progress,
                           num_workers=0 if inputs is data else None)
    class_names = predictions.prompt_class_names(dataset, data) if class_names is None else class_names
    points = template_points(feats.features, feats.labels, backbone, class_names, templates, n_bins=n_bins)
    return points.assign(condition=condition_name(shift, severity), shift=shift, severity=severity)


def _check_columns(points, columns: Sequence[str], name: str = "points") -> None:
    if not isinstance(points, pd.DataFrame):
        raise ValueError(f"Expected `{name}` to be a pandas DataFrame (e.g. from template_points), but got "
                         f"{type(points).__name__}")
    missing = [c for c in columns if c not in points.columns]
    if missing:
        raise ValueError(f"Expected `{name}` to have the columns {list(columns)}, but it lacks {missing} "
                         f"(it has {list(points.columns)})")


def near_top(points: pd.DataFrame, window: float) -> pd.DataFrame:
    """The rows of ``points`` (in order, with their index) whose accuracy is within ``window`` of the best (inclusive).

    C-TPT's near-top set. ``points`` has an ``accuracy`` column (a fraction); the best is per ``condition`` if it has
    one. ``window`` is a fraction (3 points = 0.03; 0 keeps only the best).
    """
    _check_columns(points, ["accuracy"])
    is_number = isinstance(window, (int, float, np.integer, np.floating)) and not isinstance(window, (bool, np.bool_))
    if not is_number or not 0 <= window <= 1:
        raise ValueError(f"Expected `window` to be a fraction in [0, 1] (3 accuracy points = 0.03), but got {window!r}")
    accuracy = points["accuracy"].astype(float)
    best = accuracy.groupby(points["condition"]).transform("max") if "condition" in points.columns else accuracy.max()
    return points[accuracy >= best - window - 1e-9]  # 1e-9: 0.83 - 0.03 is 0.7999999999999999 in floats


@dataclass(frozen=True)
class DispersionCorrelation:
    """How one column of prompt points tracks another over ``n`` prompts: Pearson's r and Spearman's rho (average
    ranks for ties), each with its percentile bootstrap interval over prompts (NaN with fewer than 3 rows)."""

    n: int
    pearson: metrics.BootstrapResult
    spearman: metrics.BootstrapResult


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r of two [n] arrays; NaN when either is constant (r is then undefined)."""
    if x.max() == x.min() or y.max() == y.min():  # exact test: centring constant values can leave rounding noise
        return math.nan
    xc, yc = x - x.mean(), y - y.mean()  # [n], [n]
    return float(np.clip(xc @ yc / math.sqrt((xc @ xc) * (yc @ yc)), -1.0, 1.0))


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho: Pearson's r of the average ranks."""
    from scipy.stats import rankdata  # here, not at import: scipy costs a page's kernel seconds
    return _pearson(rankdata(x), rankdata(y))


def dispersion_correlation(
    points: pd.DataFrame, x: str = "atfd", y: str = "ece", n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> DispersionCorrelation:
    """Pearson and Spearman correlation of ``x`` (ATFD) against ``y`` (ECE) over prompts, with bootstrap intervals.

    ``points``: one row per prompt, e.g. :func:`near_top` of :func:`template_points`. Percentile intervals at ``level``
    over resamples of rows (:func:`vlmcal.metrics.bootstrap_rows`), NaN ones dropped; NaN with fewer than 3 rows.

    Example:
        >>> pts = pd.DataFrame({"atfd": [0.20, 0.25, 0.30, 0.35], "ece": [0.09, 0.08, 0.05, 0.04]})
        >>> r = dispersion_correlation(pts, n_resamples=200)
        >>> r.n, round(r.pearson.estimate, 2)
        (4, -0.98)
    """
    _check_columns(points, [x, y])
    _check_bootstrap(n_resamples, level, n=1)  # the settings; the rows are counted below
    values = points[[x, y]].to_numpy(dtype=float)  # [n, 2]
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).any(axis=1).sum())
        raise ValueError(f"Expected finite `{x}` and `{y}` in every row, but got NaN or inf in {bad} of {len(values)} "
                         "rows; drop those rows first")
    xs, ys, n = values[:, 0], values[:, 1], len(values)  # [n], [n]
    if n < _MIN_ROWS:
        undefined = metrics.BootstrapResult(math.nan, math.nan, math.nan, float(level), int(n_resamples), int(seed))
        return DispersionCorrelation(n, undefined, undefined)

    def interval(correlation) -> metrics.BootstrapResult:
        def statistic(rows: torch.Tensor) -> float:  # [n] row indices of one resample
            return correlation(xs[rows.numpy()], ys[rows.numpy()])

        with warnings.catch_warnings():  # every resample constant (all prompts alike): the interval is NaN, said above
            warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
            return metrics.bootstrap_rows(statistic, n, n_resamples, level, seed, nan_policy="omit")

    return DispersionCorrelation(n, interval(_pearson), interval(_spearman))


def correlation_by_regime(
    points: pd.DataFrame, by: str | Sequence[str] = ("stage", "regime"), x: str = "atfd", y: str = "ece",
    n_resamples: int = 1000, seed: int = 0, level: float = 0.95,
) -> pd.DataFrame:
    """:func:`dispersion_correlation` within each group of prompts, each resampled with the same ``seed``.

    Args:
        by: the column or columns of ``points`` (one row per prompt) that define the groups.
        x, y, n_resamples, seed, level: as :func:`dispersion_correlation`.
    Returns:
        One row per group, in order of first appearance, with the ``by`` columns, ``n``, ``pearson``,
        ``pearson_lower``, ``pearson_upper``, ``spearman``, ``spearman_lower``, ``spearman_upper`` (NaN where n < 3).
    """
    by = [by] if isinstance(by, str) else list(by)
    if not by:
        raise ValueError("Expected `by` to name at least one column, but got none; for one correlation over all rows "
                         "use dispersion_correlation")
    _check_columns(points, [*by, x, y])
    rows, figures = [], [f"{name}{end}" for name in ("pearson", "spearman") for end in ("", "_lower", "_upper")]
    for key, group in points.groupby(by, sort=False, dropna=False):
        result = dispersion_correlation(group, x, y, n_resamples=n_resamples, seed=seed, level=level)
        row = dict(zip(by, key), n=result.n)
        for name, r in (("pearson", result.pearson), ("spearman", result.spearman)):
            row.update({name: r.estimate, f"{name}_lower": r.lower, f"{name}_upper": r.upper})
        rows.append(row)
    return pd.DataFrame(rows, columns=[*by, "n", *figures])
