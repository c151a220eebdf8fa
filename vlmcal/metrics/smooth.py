"""Smooth ECE (Blasiok and Nakkiran, "Smooth ECE: Principled Reliability Diagrams via Kernel Smoothing", ICLR 2024;
``relplot``): no bins, the integral of the absolute residuals ``conf - hit`` smoothed by a Gaussian kernel reflected
at 0 and 1."""

from __future__ import annotations

import math

import numpy as np
import torch

from vlmcal.metrics._validation import Inputs, _check_outcomes, _is_int, _is_real
from vlmcal.metrics.toplabel import top_label


def _smooth_ece_at(f: np.ndarray, r: np.ndarray, sigma: float, n_grid: int) -> float:
    """Smooth ECE at bandwidth sigma: integral over t in [0, 1] of |(1/N) sum_i K_sigma(t, f_i) r_i| on a grid."""
    from scipy import ndimage  # here, not at import: most pages never need it
    h = 1.0 / (n_grid - 1)
    pos = f * (n_grid - 1)  # each residual is split linearly between its two grid neighbours, then smoothed
    left = np.clip(np.floor(pos).astype(np.int64), 0, n_grid - 2)
    frac = pos - left
    mass = np.bincount(left, weights=(1.0 - frac) * r, minlength=n_grid)
    mass += np.bincount(left + 1, weights=frac * r, minlength=n_grid)
    mass /= len(f)  # [n_grid]: (1/N) sum of residuals deposited at each grid point
    # Mirror boundaries (d c b | a b c d | c b a) reflect about the end grid points t = 0 and 1.
    smoothed = ndimage.gaussian_filter1d(mass, sigma=sigma / h, mode="mirror", truncate=8.0)
    # gaussian_filter1d's weights sum to 1, so smoothed_j ~ h * density_j: sum |.| is the integral (trapezoid rule).
    a = np.abs(smoothed)
    return float(a.sum() - 0.5 * (a[0] + a[-1]))


def smooth_ece_from_confidences(confidences, correct, sigma: float | None = None, n_grid: int | None = None):
    """Smooth ECE (Blasiok and Nakkiran) of [N] confidences in [0, 1] against 0/1 outcomes: ``(smooth_ece, sigma)``.

    Args:
        sigma: kernel bandwidth; None for the paper's self-consistent choice, the unique fixed point
            ``smECE_sigma = sigma``, found by Brent's method.
        n_grid: grid points on [0, 1]; default ``max(2001, 20 / sigma)``.
    """
    conf, hit = _check_outcomes(confidences, correct)
    if sigma is not None and not (_is_real(sigma) and 0.0 < sigma < math.inf):
        raise ValueError(f"Expected argument `sigma` to be a positive finite number or None, but got {sigma!r}")
    if n_grid is not None and (not _is_int(n_grid) or n_grid < 2):
        raise ValueError(f"Expected argument `n_grid` to be an integer larger than 1 or None, but got {n_grid!r}")
    f = conf.detach().to(torch.float64).cpu().numpy()
    r = f - hit.detach().to(torch.float64).cpu().numpy()

    def at(s: float) -> float:
        return _smooth_ece_at(f, r, s, n_grid or max(2001, int(math.ceil(20.0 / s)) + 1))
    if sigma is not None:
        return at(float(sigma)), float(sigma)
    lo = 1e-3
    if at(lo) <= lo:  # calibrated to within the finest bandwidth
        return at(lo), lo
    from scipy import optimize
    s_star = optimize.brentq(lambda s: at(s) - s, lo, 1.0, xtol=1e-7)
    return at(s_star), float(s_star)


def smooth_ece(probs, labels, sigma: float | None = None, inputs: Inputs = "probs") -> float:
    """Smooth ECE of the top-label confidences, in [0, 1] (Blasiok and Nakkiran; ``relplot.smECE``).

    Arguments as :func:`ece`; ``sigma`` is the kernel bandwidth, None (default) for the self-consistent one."""
    conf, ok = top_label(probs, labels, inputs)
    return smooth_ece_from_confidences(conf, ok, sigma)[0]
