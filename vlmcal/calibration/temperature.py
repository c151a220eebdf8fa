"""Temperature scaling (Guo et al., ICML 2017): one positive number T, logits / T. NLL is convex in b = 1 / T, with
closed-form derivatives, so T is found by a safeguarded Newton search on b, for G problems at once. CLIP's logits
are taken with their logit scale (100) in them."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from vlmcal.calibration._common import _fitted_input, _like, _LogitsToLogits
from vlmcal.metrics import toplabel
from vlmcal.metrics._validation import _as_tensor, _check_pair
from vlmcal.metrics.toplabel import _row_blocks


@dataclass(frozen=True)
class TemperatureSearch:
    """Settings of the search for T.

    Attributes:
        lower: smallest T tried; 1e-3 covers raw cosine similarities without CLIP's logit scale of 100.
        upper: largest T tried; 1e3 flattens any softmax of CLIP-scale logits to near uniform.
        xatol: stop when a step changes log T by less than this (about 1e-6 relative in T).
        max_iter: most Newton (or bisection) steps per problem.
    """

    lower: float = 1e-3
    upper: float = 1e3
    xatol: float = 1e-6
    max_iter: int = 100

    def __post_init__(self) -> None:
        if not (0 < self.lower < 1 < self.upper < math.inf):
            raise ValueError(f"Expected 0 < lower < 1 < upper < inf, but got lower={self.lower}, upper={self.upper}")
        if not self.xatol > 0:
            raise ValueError(f"Expected argument `xatol` to be positive, but got {self.xatol}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise ValueError(f"Expected argument `max_iter` to be a positive integer, but got {self.max_iter!r}")


def _nll_derivatives(z: torch.Tensor, y: torch.Tensor, inverse_t: torch.Tensor):
    """Mean NLL of softmax(b z) ([G, N, C] z, [G, N] y, [G] b) and its first two derivatives in b, each [G] float64."""
    n_problems, n, n_classes = z.shape
    b = inverse_t[:, None, None]  # [G, 1, 1]
    nll, first, second = (torch.zeros(n_problems, dtype=torch.float64, device=z.device) for _ in range(3))
    for rows in _row_blocks(n, 4 * n_problems * n_classes):  # a few [G, r, C] float64 temporaries
        zb = z[:, rows].to(torch.float64)  # [G, r, C]
        z_true = zb.gather(2, y[:, rows, None])[..., 0]  # [G, r] logit of the true class
        scaled = b * zb  # [G, r, C]
        lse = torch.logsumexp(scaled, dim=2)  # [G, r]
        p = torch.exp(scaled - lse[..., None])  # [G, r, C] softmax(b z)
        mean_z = (p * zb).sum(dim=2)  # [G, r] E_p[z]
        nll += (lse - inverse_t[:, None] * z_true).sum(dim=1)
        first += (mean_z - z_true).sum(dim=1)  # d/db = mean_i (E_p[z_i] - z_iy)
        second += (p * (zb - mean_z[..., None]) ** 2).sum(dim=2).sum(dim=1)  # d2/db2 = mean_i Var_p[z_i] >= 0
    return nll / n, first / n, second / n


def _search_temperatures(z: torch.Tensor, y: torch.Tensor, search: TemperatureSearch):
    """Safeguarded Newton search of b = 1 / T for G problems; returns [G] ``(T, nll_before, nll_after, on_bound)``."""
    n_problems = z.shape[0]
    if z.numel() <= toplabel.CHUNK_ELEMENTS:  # small: one float64 copy now, not one per evaluation
        z = z.to(torch.float64)
    f64 = dict(dtype=torch.float64, device=z.device)
    lo = torch.full((n_problems,), 1.0 / search.upper, **f64)  # smallest b: the largest T
    hi = torch.full((n_problems,), 1.0 / search.lower, **f64)
    to_upper_t = _nll_derivatives(z, y, lo)[1] >= 0  # NLL rises in b from the start: the largest T is best
    to_lower_t = (_nll_derivatives(z, y, hi)[1] <= 0) & ~to_upper_t  # NLL still falls at the largest b: the smallest T
    b = torch.where(to_upper_t, lo, torch.where(to_lower_t, hi, 1.0))
    active = ~(to_upper_t | to_lower_t)
    for _ in range(search.max_iter):
        todo = torch.nonzero(active).squeeze(1)
        if todo.numel() == 0:
            break
        if todo.numel() == n_problems or z.numel() > toplabel.CHUNK_ELEMENTS:
            # all problems still searching (always, for G = 1), or z too large to copy each step: evaluate all
            first, second = (d[todo] for d in _nll_derivatives(z, y, b)[1:])
        else:
            _, first, second = _nll_derivatives(z[todo], y[todo], b[todo])
        rising = first > 0  # the minimum lies below b
        hi[todo] = torch.where(rising, b[todo], hi[todo])
        lo[todo] = torch.where(rising, lo[todo], b[todo])
        newton = b[todo] - first / second  # second > 0 inside the bracket, unless the softmax saturated
        inside = (second > 0) & (newton > lo[todo]) & (newton < hi[todo])
        step = torch.where(inside, newton, torch.sqrt(lo[todo] * hi[todo]))  # else the bracket's geometric midpoint
        done = (torch.log(step) - torch.log(b[todo])).abs() < search.xatol
        b[todo] = step
        active[todo[done]] = False
    if bool(active.any()):
        warnings.warn(f"The temperature search stopped after max_iter={search.max_iter} steps with {int(active.sum())} "
                      f"problem(s) not converged to xatol={search.xatol:g}; their last step is returned",
                      RuntimeWarning, stacklevel=3)
    temperature = torch.where(to_upper_t, search.upper, torch.where(to_lower_t, search.lower, 1.0 / b))
    nll_before, _, _ = _nll_derivatives(z, y, torch.ones_like(b))
    nll_after, _, _ = _nll_derivatives(z, y, 1.0 / temperature)
    # Never worse than T = 1, and T = 1 unless another T is better beyond rounding (e.g. rows of equal logits).
    worse = nll_after > nll_before - 1e-12 * nll_before.abs().clamp(min=1.0)
    temperature = torch.where(worse, 1.0, temperature)
    nll_after = torch.where(worse, nll_before, nll_after)
    return temperature, nll_before, nll_after, (temperature == search.lower) | (temperature == search.upper)


def _warn_on_bound(search: TemperatureSearch, what: str) -> None:
    warnings.warn(f"{what} on the search bound [{search.lower:g}, {search.upper:g}]: NLL keeps falling beyond it "
                  "(e.g. every prediction right, or a single sample)", RuntimeWarning, stacklevel=3)


class TemperatureScaling(_LogitsToLogits):
    """Divide the logits by one temperature T > 0 fitted to minimise NLL on a calibration set.

    ``T > 1`` softens, ``T < 1`` sharpens; the predicted class never changes, and T is never worse than
    T = 1 on the fit set. If NLL keeps falling towards a bound, the bound is returned with a warning.

    Attributes:
        temperature_: the fitted T.
        nll_before_, nll_after_: NLL on the fit set at T = 1 and at ``temperature_``.
        n_classes_, n_samples_: C and N seen at fit time.
    Example:
        >>> logits = torch.tensor([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [3.0, 0.0]])
        >>> ts = TemperatureScaling().fit(logits, torch.tensor([0, 1, 1, 0]))
        >>> ts.temperature_ > 1  # one confident mistake: soften
        True
    """

    def __init__(self, search: TemperatureSearch = TemperatureSearch()):
        self.search = search

    def fit(self, logits, labels) -> "TemperatureScaling":
        """Fit T on ``logits`` [N, C] (any scale, CLIP's included) and integer ``labels`` [N]."""
        z, y = _check_pair(logits, labels, "logits")
        temperature, before, after, on_bound = (float(v[0]) for v in _search_temperatures(z[None], y[None], self.search))
        if on_bound:
            _warn_on_bound(self.search, f"The fitted temperature {temperature:.4g} lies")
        self.temperature_, self.nll_before_, self.nll_after_ = temperature, before, after
        self.n_samples_, self.n_classes_ = int(z.shape[0]), int(z.shape[1])
        return self

    def transform(self, logits):
        """Calibrated logits: ``logits / temperature_`` ([N, C], same type as the input)."""
        z = _fitted_input(self, logits, "temperature_")
        return _like(z / self.temperature_, logits)

    def __repr__(self) -> str:
        fitted = f", temperature_={self.temperature_:.4g}" if hasattr(self, "temperature_") else ""
        return f"TemperatureScaling(search={self.search}{fitted})"


def fit_temperatures(logits, labels, search: TemperatureSearch = TemperatureSearch()) -> torch.Tensor:
    """Temperature scaling of G calibration sets at once: G ``TemperatureScaling().fit`` calls in one search.

    Returns the [G] float64 temperatures of [G, N, C] ``logits`` and [G, N] integer ``labels`` (G sets of N samples);
    warns once if any lies on a search bound.

    Example:
        >>> gen = torch.Generator().manual_seed(0)
        >>> z = 2 * torch.randn(20, 400, 10, generator=gen)  # 20 calibration sets of 400 samples
        >>> y = torch.multinomial(z.softmax(-1).view(-1, 10), 1, generator=gen).view(20, 400)  # calibrated
        >>> t = fit_temperatures(3 * z, y)  # the same model, 3x over-confident
        >>> t.shape, bool(((t > 2) & (t < 4.5)).all())
        (torch.Size([20]), True)
    """
    z, y = _as_tensor(logits, "logits"), _as_tensor(labels, "labels")
    if z.ndim != 3 or y.shape != z.shape[:2] or z.shape[1] < 1 or z.shape[2] < 1:
        raise ValueError(f"Expected `logits` [G, N, C] and `labels` [G, N] with N, C >= 1, but got {tuple(z.shape)} and {tuple(y.shape)}")
    _check_pair(z.reshape(-1, z.shape[2]), y.reshape(-1), "logits")  # finite logits, labels in range
    temperature, _, _, on_bound = _search_temperatures(z, y.to(z.device).long(), search)
    if bool(on_bound.any()):
        _warn_on_bound(search, f"{int(on_bound.sum())} of {len(on_bound)} fitted temperatures lie")
    return temperature
