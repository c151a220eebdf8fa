"""Stratified samples of a labelled set, and fitting a calibrator on one (the ES paper's 40-sample claim)."""

from __future__ import annotations

import numpy as np
import torch

from vlmcal.metrics._validation import _as_tensor, _is_int


def stratified_sample(labels, n: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``n`` of the [N] integer ``labels`` (1 <= n <= N), drawn without replacement, each class
    in proportion to its frequency.

    Quotas are ``n * N_c / N`` rounded down, the rest going to the largest remainders (random ties), so
    with fewer samples than classes (40 samples, 1000 classes) each chosen class gets one.

    Example:
        >>> idx = stratified_sample(np.array([0, 0, 0, 0, 1, 1, 1, 1]), 4, seed=0)
        >>> np.bincount(np.array([0, 0, 0, 0, 1, 1, 1, 1])[idx]).tolist()
        [2, 2]
    """
    y = _as_tensor(labels, "labels")
    if y.ndim != 1 or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"Expected integer `labels` of shape [N], but got dtype {y.dtype} and shape {tuple(y.shape)}")
    if len(y) == 0:
        raise ValueError("Expected `labels` with at least one entry to sample from, but got an empty array")
    y = y.cpu().numpy().astype(np.int64)
    if y.min() < 0:
        raise ValueError(f"Expected non-negative `labels`, but got a minimum of {y.min()}")
    if not _is_int(n) or not 1 <= n <= len(y):
        raise ValueError(f"Expected argument `n` (how many samples, at most one per label) to be an integer in [1, {len(y)}], but got {n!r}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    exact = n * counts / len(y)  # [K] ideal quotas
    quota = np.floor(exact).astype(np.int64)
    left = n - int(quota.sum())
    if left:
        order = np.lexsort((rng.random(len(classes)), -(exact - quota)))  # largest remainder first, random ties
        quota[order[:left]] += 1
    chosen = [rng.choice(np.flatnonzero(y == c), size=q, replace=False) for c, q in zip(classes, quota) if q]
    return np.sort(np.concatenate(chosen))


def fit_on_n_samples(calibrator, logits, labels, n: int, seed: int = 0):
    """Fit ``calibrator`` (a fresh one) on a stratified sample of ``n`` of the [N, C] ``logits`` (any scores it
    takes) and [N] integer ``labels``; returns it, with ``sample_indices_`` set to the indices used.

    Example:
        >>> from vlmcal.calibration import TemperatureScaling
        >>> rng = np.random.default_rng(0)
        >>> z, y = rng.normal(size=(500, 10)) * 3, rng.integers(0, 10, 500)
        >>> ts = fit_on_n_samples(TemperatureScaling(), z, y, n=40, seed=0)
        >>> len(ts.sample_indices_)
        40
    """
    z, y = _as_tensor(logits, "logits"), _as_tensor(labels, "labels")
    if z.shape[0] != y.shape[0]:
        raise ValueError(f"Expected `labels` to have one entry per row of `logits` ({z.shape[0]}), but got {y.shape[0]}")
    idx = stratified_sample(y, n, seed)
    calibrator.fit(z[torch.from_numpy(idx).to(z.device)], y[torch.from_numpy(idx).to(y.device)])
    calibrator.sample_indices_ = idx
    return calibrator
