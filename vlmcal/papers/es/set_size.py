"""ECE after TS against the calibration-set size (C6), and the plateau the claim reads."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from vlmcal import metrics
from vlmcal.calibration import fit_temperatures, stratified_sample
from vlmcal.pipeline.runs import Run, _ece_of_rows, _top_labels

__all__ = ["calibration_set_size", "CalibrationSizePlan", "plan_calibration_sizes", "smallest_sufficient_n", "gap_to_full_set"]


def calibration_set_size(runs: Run | Sequence[Run], sizes: Sequence[int | str], calibration_rows, evaluation_rows,
                         n_draws: int = 20, seed: int = 0, n_bins: int = 15) -> pd.DataFrame:
    """ECE after TS fitted on n calibration samples, over repeated stratified draws shared by every model (C6).

    Args:
        runs: clean runs, one per model (or a single run).
        sizes: calibration-set sizes; ``"all"`` means every calibration row (drawn once).
        calibration_rows, evaluation_rows: the pool the samples are drawn from, and where ECE is measured.
        seed: base seed; draw ``d`` of size ``n`` uses its own derived seed.
    Returns:
        One row per (model, size, draw): model, kind, n, size, draw, temperature, ece_after.
    """
    runs = [runs] if isinstance(runs, Run) else list(runs)
    calibration_rows, evaluation_rows = torch.as_tensor(calibration_rows), torch.as_tensor(evaluation_rows)
    cal_labels = runs[0].labels[calibration_rows]  # [P] the pool's labels
    if any(not torch.equal(run.labels[calibration_rows], cal_labels) for run in runs[1:]):
        raise ValueError("Expected runs on the same images (equal labels); fit each data set's runs separately")
    if len(sizes) == 0 or len({str(size) for size in sizes}) != len(sizes):
        raise ValueError(f"Expected one or more distinct calibration sizes, but got {list(sizes)!r}")
    draws_by_size = {}  # size label -> [D, n] sample indices into the pool
    for size in sizes:
        if size == "all":
            draws_by_size["all"] = torch.arange(len(cal_labels))[None]  # the whole pool, once
            continue
        n = int(size)
        if not 1 <= n <= len(cal_labels):
            raise ValueError(f"Expected calibration sizes in [1, {len(cal_labels)}] or 'all', but got {size!r}")
        draws_by_size[str(size)] = torch.stack([
            torch.as_tensor(stratified_sample(cal_labels, n, seed=seed * 100_003 + n * 1_009 + d), dtype=torch.long)
            for d in range(n_draws)])
    cal_logits = torch.stack([run.logits[calibration_rows] for run in runs])  # [M, P, C], M models
    fits_by_model = [[] for _ in runs]  # per model: (size label, n, draw, temperature)
    for size, draws in draws_by_size.items():
        with warnings.catch_warnings():  # tiny draws often have every prediction right: T on its bound is expected
            warnings.simplefilter("ignore", RuntimeWarning)
            temperatures = fit_temperatures(
                cal_logits[:, draws].flatten(0, 1),  # [M, D, n, C] -> [M*D, n, C]: every model's draws at once
                cal_labels[draws].repeat(len(runs), 1),  # [M*D, n]
            ).view(len(runs), len(draws))  # [M, D]
        for model_fits, model_temperatures in zip(fits_by_model, temperatures):
            model_fits += [(size, draws.shape[1], d, float(t)) for d, t in enumerate(model_temperatures)]
    frames = []
    for run, fits in zip(runs, fits_by_model):
        frame = pd.DataFrame(fits, columns=["size", "n", "draw", "temperature"])
        # Every fitted temperature on the evaluation set, then all ECEs in one pass.
        conf, correct = _top_labels([run.subset(evaluation_rows)] * len(fits), frame["temperature"].tolist())  # [F, n]
        frames.append(frame.assign(model=run.model, kind=run.kind, ece_after=_ece_of_rows(conf, correct, n_bins)))
    return pd.concat(frames, ignore_index=True)[["model", "kind", "n", "size", "draw", "temperature", "ece_after"]]


@dataclass(frozen=True)
class CalibrationSizePlan:
    """Which calibration-set sizes a run can draw from its pool of ``pool`` images (``kept``: integers <= ``pool``,
    and ``"all"``), and which it must skip (``skipped``: the larger integers), each in the given order."""

    kept: tuple[int | str, ...]
    skipped: tuple[int, ...]
    pool: int

    def describe(self) -> str:
        """The plan in a sentence, for the page (Markdown)."""
        kept = ", ".join(map(str, self.kept))
        text = f"Calibration-set sizes run: {kept} (the pool holds {self.pool} calibration images)."
        if self.skipped:
            text += f" **Skipped, as larger than the pool: {', '.join(map(str, self.skipped))}.**"
        return text


def plan_calibration_sizes(sizes: Sequence[int | str], pool: int) -> CalibrationSizePlan:
    """Split the requested calibration-set sizes into those the pool can supply (the plan's ``kept``, which
    :func:`calibration_set_size` accepts) and those it cannot.

    Args:
        sizes: integers >= 1 and/or ``"all"`` (the whole pool).
    Example:
        >>> plan_calibration_sizes([5, 50, 500, "all"], pool=60).skipped
        (500,)
    """
    if isinstance(pool, bool) or not isinstance(pool, (int, np.integer)) or pool < 1:
        raise ValueError(f"Expected `pool` to be an integer larger than 0, but got {pool!r}")
    kept, skipped = [], []
    for size in sizes:
        if size == "all":
            kept.append(size)
        elif isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"Expected calibration sizes to be integers >= 1 or 'all', but got {size!r}")
        elif size > pool:
            skipped.append(int(size))
        else:
            kept.append(int(size))
    return CalibrationSizePlan(tuple(kept), tuple(skipped), int(pool))


def smallest_sufficient_n(table: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Per model of ``table`` (:func:`calibration_set_size` output for one seed), the smallest n whose mean ECE after
    TS is within ``tolerance`` (absolute; C6: ``c6_threshold_plateau_ece``) of the full set's: one row per model with
    full_ece and smallest_n (NaN when no size below the full set qualifies)."""
    out = []
    for model, group in table.groupby("model"):
        means = group.groupby("n")["ece_after"].mean().sort_index()
        full = float(group.loc[group["size"] == "all", "ece_after"].mean())
        close = means[(means <= full + tolerance) & (means.index < means.index.max())]
        out.append({"model": model, "full_ece": full, "smallest_n": int(close.index.min()) if len(close) else np.nan})
    return pd.DataFrame(out)


def gap_to_full_set(table: pd.DataFrame, n: int, n_resamples: int = 200, seed: int = 0) -> metrics.BootstrapResult:
    """Mean post-TS ECE with n calibration samples minus the full-set ECE, averaged over models (C6).

    The interval is a 95% percentile bootstrap over the draws at size n (e.g. the paper's 50), resampled within each
    model (strata); all NaN when ``table`` (:func:`calibration_set_size` output for one seed) has no draws of size n.
    """
    at_n = table[(table["n"] == n) & (table["size"] != "all")]
    full = table[table["size"] == "all"].set_index("model")["ece_after"]
    if at_n.empty:
        return metrics.BootstrapResult(float("nan"), float("nan"), float("nan"), 0.95, int(n_resamples), int(seed))
    models, strata = np.unique(at_n["model"].to_numpy(), return_inverse=True)  # [M] names, [D] the model of each draw
    strata = torch.as_tensor(strata)
    ece_after = torch.tensor(at_n["ece_after"].to_numpy(), dtype=torch.float64)  # [D]
    full_ece = torch.tensor(full.reindex(models).to_numpy(), dtype=torch.float64)  # [M]; NaN: no full-set row
    per_model = torch.bincount(strata).to(torch.float64)  # [M] draws per model

    def mean_gap(weights: torch.Tensor) -> torch.Tensor:  # [S, D] -> [S]
        means = torch.zeros(len(weights), len(models), dtype=torch.float64).index_add_(1, strata, weights * ece_after) / per_model  # [S, M]
        return (means - full_ece).nanmean(dim=1)
    return metrics.bootstrap_weights(mean_gap, len(ece_after), n_resamples, seed=seed, strata=strata)
