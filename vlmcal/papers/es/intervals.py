"""Bootstrap intervals behind the ES verdicts, resampling the evaluation images (``vlmcal.metrics``' bootstrap core).
The runs of one interval share the same draws (a paired bootstrap). In every function, ``evaluation_rows`` are the
evaluation images' indices (shared by every run), and ``n_bins``, ``n_resamples``, ``seed``: ECE bins, bootstrap
resamples and their seed."""

from __future__ import annotations

import warnings
from collections.abc import Collection
from typing import Callable, Sequence

import pandas as pd
import torch

from vlmcal import metrics
from vlmcal.papers.es.coverage import SIDES, shifted_rows, side_rows
from vlmcal.papers.es.tables import confidence_vs_accuracy
from vlmcal.pipeline.runs import Run, _of_kind, _run_top_labels, _top_labels, restrict_to_classes

__all__ = ["mean_ece_bootstrap", "vlm_minus_supervised_ece", "ts_ece_ratio", "shift_rise_after_ts",
           "shift_rise_by_side", "bootstrap_label_shift", "bootstrap_confidence_vs_accuracy",
           "bootstrap_confidence_vs_accuracy_by_side", "full_set_ece"]


def mean_ece_bootstrap(
    groups: dict[str, Sequence[Run]], evaluation_rows, combine: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    temperatures: dict[str, float] | None = None, n_bins: int = 15, n_resamples: int = 200, seed: int = 0,
) -> metrics.BootstrapResult:
    """Bootstrap a figure built from mean ECEs of groups of runs, resampling the evaluation images (paired).
    Args:
        groups: name -> runs; each group's figure is the mean ECE over its runs.
        combine: maps ``{group name: [S] mean ECEs}`` to the [S] figures (e.g. a difference).
        temperatures: model -> temperature to apply first (None: raw logits).
    """
    rows = torch.as_tensor(evaluation_rows)
    stacked = {name: _run_top_labels(runs, rows, temperatures) for name, runs in groups.items()}  # [R, n], [R, n] each

    def statistic(weights: torch.Tensor) -> torch.Tensor:  # [S, n] -> [S]
        means = {name: metrics.ece_weighted(c, k, weights, n_bins=n_bins).mean(dim=1) for name, (c, k) in stacked.items()}
        return combine(means)
    return metrics.bootstrap_weights(statistic, len(rows), n_resamples=n_resamples, seed=seed)


def vlm_minus_supervised_ece(runs: Sequence[Run], evaluation_rows, n_bins: int = 15, n_resamples: int = 200,
                             seed: int = 0) -> metrics.BootstrapResult | None:
    """Mean ECE before TS of the VLM runs minus that of the supervised runs, with a paired bootstrap (C1), in ECE
    units (positive: the VLMs are worse calibrated); None without a supervised run (or a VLM run)."""
    vlm, supervised = _of_kind(runs, "VLM"), _of_kind(runs, "supervised")
    if not vlm or not supervised:
        return None
    return mean_ece_bootstrap({"vlm": vlm, "sup": supervised}, evaluation_rows, lambda m: m["vlm"] - m["sup"],
                              n_bins=n_bins, n_resamples=n_resamples, seed=seed)


def ts_ece_ratio(runs: Sequence[Run], temperatures: dict[str, float], evaluation_rows, n_bins: int = 15,
                 n_resamples: int = 200, seed: int = 0) -> metrics.BootstrapResult:
    """The VLM runs' mean ECE after TS over that before TS (0.5: TS halves it), with a paired bootstrap (C2);
    ``temperatures``: model -> temperature fitted on clean calibration data."""
    vlm = _of_kind(runs, "VLM")
    if not vlm:
        raise ValueError("Expected at least one VLM run, but got none")
    rows = torch.as_tensor(evaluation_rows)
    before, after = _run_top_labels(vlm, rows), _run_top_labels(vlm, rows, temperatures)  # each [R, n], [R, n]

    def ratio(weights: torch.Tensor) -> torch.Tensor:  # [S, n] -> [S]
        ece_before, ece_after = (metrics.ece_weighted(c, k, weights, n_bins=n_bins).mean(1) for c, k in (before, after))
        return ece_after / ece_before
    return metrics.bootstrap_weights(ratio, len(rows), n_resamples=n_resamples, seed=seed)


def shift_rise_after_ts(runs: Sequence[Run], temperatures: dict[str, float], evaluation_rows, n_bins: int = 15,
                        n_resamples: int = 200, seed: int = 0,
                        coverage: Collection[str] | None = None) -> metrics.BootstrapResult | None:
    """The VLMs' mean ECE after TS on shifted runs minus that on clean runs, with a paired bootstrap (C3), in ECE
    units (positive: calibration worsens under shift); None without such a shifted (or a clean) VLM run.
    ``temperatures``: as for :func:`ts_ece_ratio`; ``coverage``: count only the shifted runs whose
    :attr:`Run.coverage` is one of these labels (None: all)."""
    if isinstance(coverage, str):
        raise ValueError(f"Expected `coverage` to be a collection of coverage labels, e.g. ('held out',), but got the string {coverage!r}")
    vlm = _of_kind(runs, "VLM")
    shifted = [run for run in vlm if run.shift != "clean" and (coverage is None or run.coverage in coverage)]
    clean = [run for run in vlm if run.shift == "clean"]
    if not shifted or not clean:
        return None
    return mean_ece_bootstrap({"shifted": shifted, "clean": clean}, evaluation_rows, lambda m: m["shifted"] - m["clean"],
                              temperatures=temperatures, n_bins=n_bins, n_resamples=n_resamples, seed=seed)


def shift_rise_by_side(runs: Sequence[Run], temperatures: dict[str, float], evaluation_rows, n_bins: int = 15,
                       n_resamples: int = 200, seed: int = 0) -> dict[str, metrics.BootstrapResult | None]:
    """:func:`shift_rise_after_ts` on each side of the shifts (``vlmcal.papers.es.coverage.SIDES``), for C3:
    ``{"paper-like": rise or None, "held out": rise or None}``, None where the side has no shifted VLM run."""
    return {side: shift_rise_after_ts(runs, temperatures, evaluation_rows, n_bins=n_bins, n_resamples=n_resamples,
                                      seed=seed, coverage=labels) for side, labels in SIDES.items()}


def bootstrap_label_shift(runs: Sequence[Run], table: pd.DataFrame, target_classes: dict[str, Sequence[int]],
                          evaluation_rows, n_bins: int = 15, n_resamples: int = 200,
                          seed: int = 0) -> metrics.BootstrapResult:
    """Bootstrap the share of the attainable ECE reduction that a temperature from other labels achieves (C4).
    The share is a ratio of means over the (model, target) cells of ``table``: ``mean(ECE before - ECE with the source
    T) / mean(ECE before - ECE with the target T)`` (a mean of per-cell ratios would let a cell with almost nothing to
    recover swamp the rest). Each cell's images are resampled within that cell (strata); the temperatures come from
    ``table``. NaN where the attainable reduction is not positive."""
    evaluation_rows = torch.as_tensor(evaluation_rows)
    cells = []  # per (model, target): ([3, n], [3, n]) top labels before TS, with the source T, with the target T
    for run in runs:
        ev_logits, ev_labels = run.subset(evaluation_rows)
        for name, classes in target_classes.items():
            row = table[(table["model"] == run.model) & (table["target"] == name)].iloc[0]
            cells.append(_top_labels([restrict_to_classes(ev_logits, ev_labels, classes)[:2]] * 3,
                                     [1.0, row["temperature_source"], row["temperature_target"]]))
    sizes = [conf.shape[1] for conf, _ in cells]
    strata = torch.repeat_interleave(torch.arange(len(cells)), torch.tensor(sizes))  # [sum n] the cell of each row

    def share(weights: torch.Tensor) -> torch.Tensor:  # [S, sum n] -> [S]
        ece = torch.stack([metrics.ece_weighted(conf, ok, w, n_bins=n_bins)
                           for (conf, ok), w in zip(cells, weights.split(sizes, dim=1))])  # [cells, S, 3]
        before, source, target = ece.mean(dim=0).unbind(dim=1)  # each [S], means over cells
        gain = before - target
        return torch.where(gain > 0, (before - source) / gain, torch.nan)
    return metrics.bootstrap_weights(share, len(strata), n_resamples, seed=seed, strata=strata, nan_policy="omit")


def bootstrap_confidence_vs_accuracy(points: pd.DataFrame, n_resamples: int = 200, seed: int = 0,
                                     side: str | None = None) -> dict[str, metrics.BootstrapResult]:
    """95% bootstraps over the VLM points of R^2 and Spearman's rho of calibrated confidence against accuracy (C5),
    as ``{"r2": BootstrapResult, "spearman": BootstrapResult}``.
    Args:
        points: :func:`confidence_accuracy_points` output; only rows of kind ``"VLM"`` count.
        side: None for every point, or a side of ``vlmcal.papers.es.coverage.SIDES`` (with the clean points).
    """
    vlm = points[points["kind"] == "VLM"]
    vlm = (vlm if side is None else side_rows(vlm, side)).reset_index(drop=True)
    if len(vlm) < 3:
        raise ValueError(f"Expected at least 3 VLM points to correlate{'' if side is None else f' on the {side} side'}, but got {len(vlm)}")

    def statistic(name: str):
        return lambda pick: confidence_vs_accuracy(vlm.iloc[pick.numpy()])[name]
    with warnings.catch_warnings():  # a resample whose points all share one accuracy has no correlation: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return {name: metrics.bootstrap_rows(statistic(name), len(vlm), n_resamples, seed=seed) for name in ("r2", "spearman")}


def bootstrap_confidence_vs_accuracy_by_side(points: pd.DataFrame, n_resamples: int = 200,
                                             seed: int = 0) -> dict[str, dict[str, metrics.BootstrapResult] | None]:
    """:func:`bootstrap_confidence_vs_accuracy` per side of the shifts (``vlmcal.papers.es.coverage.SIDES``), for C5:
    ``{"paper-like": intervals or None, "held out": intervals or None}``, None where the side has no shifted VLM
    point, or fewer than 3 points with the clean ones."""
    vlm = points[points["kind"] == "VLM"]
    return {side: bootstrap_confidence_vs_accuracy(points, n_resamples, seed=seed, side=side)
            if not shifted_rows(vlm, side).empty and len(side_rows(vlm, side)) >= 3 else None
            for side in SIDES}


def full_set_ece(runs: Sequence[Run], table: pd.DataFrame, evaluation_rows, n_bins: int = 15, n_resamples: int = 200,
                 seed: int = 0) -> dict[str, metrics.BootstrapResult]:
    """model -> each VLM's ECE after TS fitted on the whole calibration pool, with its bootstrap over images (C6),
    whose half-width is the noise of the figure every calibration-set size is compared with.
    Args:
        runs: clean runs, one per model (only VLMs count).
        table: :func:`calibration_set_size` output for the seed whose ``evaluation_rows`` these are.
    """
    if "seed" in table and table["seed"].nunique() > 1:
        raise ValueError(f"Expected the table of one seed, but got seeds {sorted(table['seed'].unique())}")
    full = table[table["size"] == "all"].groupby("model")["temperature"].first()
    return {run.model: mean_ece_bootstrap({run.model: [run]}, evaluation_rows, lambda m, name=run.model: m[name],
                                          temperatures={run.model: float(full[run.model])}, n_bins=n_bins,
                                          n_resamples=n_resamples, seed=seed)
            for run in _of_kind(runs, "VLM") if run.model in full.index}
