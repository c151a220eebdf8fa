"""Percentile bootstrap intervals (Efron and Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13). Every
resample comes from :func:`_draws` (one CPU generator seeded with ``seed``: the same on any device), as row indices
(:func:`bootstrap_rows`) or multiplicities (:func:`bootstrap_weights`), the same for one seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Literal

import numpy as np
import torch

from vlmcal.metrics import toplabel
from vlmcal.metrics._validation import _as_tensor, _check_choice, _is_int, _is_real

NanPolicy = Literal["propagate", "omit"]
_NAN_POLICIES = ("propagate", "omit")


@dataclass(frozen=True)
class BootstrapResult:
    """A percentile bootstrap interval.

    Attributes:
        estimate: the metric on the full sample.
        lower, upper: the (1 - level) / 2 and (1 + level) / 2 percentiles of the resampled metrics.
        level: the nominal coverage (0.95).
    """

    estimate: float
    lower: float
    upper: float
    level: float
    n_resamples: int
    seed: int

    def __str__(self) -> str:
        return f"{self.estimate:.4f} ({self.level:.0%} CI [{self.lower:.4f}, {self.upper:.4f}])"


def bootstrap_ci(metric: Callable[..., float], probs, labels, n_resamples: int = 1000, level: float = 0.95,
                 seed: int = 0, **metric_kwargs) -> BootstrapResult:
    """Percentile bootstrap confidence interval for any ``metric(probs, labels, **kwargs)``, such as ``ece``.

    Args:
        probs, labels: [N, C] scores and [N] labels passed to ``metric``.
        **metric_kwargs: passed on to ``metric`` (``n_bins=20``, ``inputs="logits"``...).
    Example:
        >>> from vlmcal.metrics import accuracy
        >>> p = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.7, 0.3]])
        >>> r = bootstrap_ci(accuracy, p, np.array([0, 1, 1, 0]), n_resamples=200, seed=1)
        >>> r.lower <= r.estimate <= r.upper
        True
    """
    s, y = _as_tensor(probs, "probs"), _as_tensor(labels, "labels")
    _check_bootstrap(n_resamples, level, s.shape[0] if s.ndim else 0, f"`probs` has shape {tuple(s.shape)}")
    if y.shape[:1] != s.shape[:1]:
        raise ValueError(f"Expected `labels` to have one entry per row of `probs` ({s.shape[0]}), but got shape {tuple(y.shape)}")
    return bootstrap_rows(lambda idx: metric(s[idx.to(s.device)], y[idx.to(y.device)], **metric_kwargs),
                          s.shape[0], n_resamples, level, seed)


def _draws(n: int, n_resamples: int, seed: int, strata=None) -> Iterator[torch.Tensor]:
    """The one source of resamples: blocks of [s, N] row indices, ``randint(n_g, (S, n_g))`` per stratum in
    increasing label order (``strata=None``: one stratum, in blocks of at most ``CHUNK_ELEMENTS`` indices)."""
    gen = torch.Generator().manual_seed(int(seed))
    if strata is None:
        per_block = max(1, toplabel.CHUNK_ELEMENTS // n)
        for start in range(0, n_resamples, per_block):
            yield torch.randint(n, (min(per_block, n_resamples - start), n), generator=gen)  # [s, N]
        return
    g = _as_tensor(strata, "strata")
    if g.shape != (n,) or g.is_floating_point() or g.is_complex() or g.dtype == torch.bool:
        raise ValueError(f"Expected `strata` to be an integer array of shape [{n}] (one label per row), but got {g.dtype} of shape {tuple(g.shape)}")
    _, inverse, counts = torch.unique(g.cpu(), sorted=True, return_inverse=True, return_counts=True)
    draws = torch.empty(n_resamples, n, dtype=torch.long)  # [S, N]
    for rows in torch.argsort(inverse, stable=True).split(counts.tolist()):  # [n_g] rows of each stratum, increasing
        draws[:, rows] = rows[torch.randint(len(rows), (n_resamples, len(rows)), generator=gen)]  # [S, n_g]
    yield draws


def multiplicities(draws: torch.Tensor) -> torch.Tensor:
    """How often each of N rows was drawn: [S, N] row indices -> [S, N] float64 counts (``ece_weighted``'s weights)."""
    d = _as_tensor(draws, "draws")
    if d.ndim != 2 or d.is_floating_point() or d.is_complex() or d.dtype == torch.bool:
        raise ValueError(f"Expected `draws` to be an integer [S, N] array of row indices, but got {d.dtype} of shape {tuple(d.shape)}")
    if d.numel() and (int(d.min()) < 0 or int(d.max()) >= d.shape[1]):
        raise ValueError(f"Expected `draws` in [0, {d.shape[1] - 1}] (row indices), but got values in [{int(d.min())}, {int(d.max())}]")
    ones = torch.ones(d.shape, dtype=torch.float64, device=d.device)
    return torch.zeros_like(ones).scatter_add_(1, d.to(torch.long), ones)


def _check_bootstrap(n_resamples, level, n, rows: str | None = None, nan_policy: str = "propagate") -> None:
    """Validate a bootstrap's settings and its ``n`` rows (``rows``: where they come from; None: an argument)."""
    if not _is_int(n_resamples) or n_resamples < 1:
        raise ValueError(f"Expected argument `n_resamples` to be an integer larger than 0, but got {n_resamples!r}")
    if not (_is_real(level) and 0.0 < level < 1.0):
        raise ValueError(f"Expected argument `level` to be a number in (0, 1), but got {level!r}")
    _check_choice(nan_policy, _NAN_POLICIES, "nan_policy")
    if rows is None and (not _is_int(n) or n < 1):
        raise ValueError(f"Expected argument `n` (the number of rows to resample) to be an integer larger than 0, but got {n!r}")
    if rows is not None and n < 1:
        raise ValueError(f"Expected at least one row to resample, but {rows}")


def _percentile_result(estimate: float, values: np.ndarray, level: float, n_resamples: int, seed: int,
                       nan_policy: str = "propagate") -> BootstrapResult:
    alpha = (1.0 - level) / 2.0
    quantile = np.nanquantile if nan_policy == "omit" else np.quantile
    lower, upper = quantile(values, [alpha, 1.0 - alpha])
    return BootstrapResult(float(estimate), float(lower), float(upper), float(level), int(n_resamples), int(seed))


def bootstrap_rows(statistic: Callable[[torch.Tensor], float], n: int, n_resamples: int = 1000, level: float = 0.95,
                   seed: int = 0, strata=None, nan_policy: NanPolicy = "propagate") -> BootstrapResult:
    """Percentile bootstrap of any statistic of N rows, given as a function of row indices.

    Arrays that share their rows (many runs on the same images) are resampled alike;
    :func:`bootstrap_weights` draws the same resamples, much faster.

    Args:
        statistic: maps [N] row indices (``arange(N)`` for the estimate) to a float.
        strata: optional [N] integer labels, for a stratified bootstrap.
        nan_policy: ``"propagate"`` (a NaN resample makes the interval NaN) or ``"omit"`` (ignore NaNs).
    """
    _check_bootstrap(n_resamples, level, n, nan_policy=nan_policy)
    values = np.array([float(statistic(rows)) for block in _draws(n, n_resamples, seed, strata) for rows in block])
    return _percentile_result(float(statistic(torch.arange(n))), values, level, n_resamples, seed, nan_policy)


def bootstrap_weights(statistic: Callable[[torch.Tensor], torch.Tensor], n: int, n_resamples: int = 1000,
                      level: float = 0.95, seed: int = 0, strata=None,
                      nan_policy: NanPolicy = "propagate") -> BootstrapResult:
    """Percentile bootstrap of a statistic that takes every resample at once, as sample weights.

    The weights are the multiplicities of the draws of :func:`bootstrap_rows` (same seed and strata, same
    interval). Pair it with ``ece_weighted``.

    Args:
        statistic: maps [S, N] float64 weights to [S] values (a row of ones is the full sample).
        strata, nan_policy: as :func:`bootstrap_rows` (S = ``n_resamples``).
    Example:
        >>> x = torch.tensor([0.0, 1.0, 1.0, 1.0])  # [N]
        >>> r = bootstrap_weights(lambda w: (w * x).sum(dim=1) / w.sum(dim=1), 4, n_resamples=200)  # weighted means
        >>> r.estimate, r.lower <= 0.75 <= r.upper
        (0.75, True)
    """
    _check_bootstrap(n_resamples, level, n, nan_policy=nan_policy)
    counts = torch.cat([multiplicities(block) for block in _draws(n, n_resamples, seed, strata)])  # [S, N]
    values = torch.as_tensor(statistic(counts)).to("cpu", torch.float64).reshape(-1).numpy()
    if values.shape != (counts.shape[0],):
        raise ValueError(f"Expected `statistic` to return one value per resample ({counts.shape[0]}), but got shape {values.shape}")
    estimate = float(torch.as_tensor(statistic(torch.ones(1, n, dtype=torch.float64))).reshape(-1)[0])
    return _percentile_result(estimate, values, level, n_resamples, seed, nan_policy)
