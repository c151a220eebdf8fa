"""Post-hoc calibrators in scikit-learn's manner: fit on a labelled calibration set, then apply.

- :class:`TemperatureScaling` (Guo et al., ICML 2017): one positive number T, logits / T.
  NLL is convex in the inverse temperature b = 1 / T, with first and second derivatives in
  closed form (the mean over samples of E_p[z] - z_y and of Var_p[z]), so T is found by
  Newton's method on b, safeguarded by a bracket within the search bounds: a few passes over
  the data, T > 0 by construction. :func:`fit_temperatures` solves many such problems at
  once (one per row of a [G, N, C] array), as the calibration-set-size study needs; the
  estimator calls the same search with G = 1. It works on CLIP's logits as they come, with
  the logit scale (100) already in them: the fitted T multiplies that scale by 1 / T.
- :class:`VectorScaling` (Guo et al.): one weight and one bias per class, by L-BFGS.
- :class:`HistogramBinning` (Zadrozny and Elkan, 2001), top-label: each confidence is
  replaced by the accuracy of its equal-width bin on the calibration set; it uses the
  binning core of ``vlmcal.metrics``, so its bins are exactly those of ECE.
- :func:`stratified_sample` and :func:`fit_on_n_samples`: "temperature scaling with 40
  labelled samples" (the ES paper's few-sample claim) in one call.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from vlmcal import metrics
from vlmcal.metrics import _as_tensor, _check_pair, _row_blocks

__all__ = [
    "TemperatureSearch",
    "TemperatureScaling",
    "fit_temperatures",
    "VectorScaling",
    "HistogramBinning",
    "stratified_sample",
    "fit_on_n_samples",
]


def _like(result: torch.Tensor, template):
    """Return numpy when the caller passed numpy, a tensor otherwise."""
    return result.cpu().numpy() if isinstance(template, np.ndarray) else result


def _nll_derivatives(z: torch.Tensor, y: torch.Tensor, inverse_t: torch.Tensor):
    """Mean NLL of softmax(b z) and its first two derivatives in b, for G problems at once.

    ``d/db = mean_i (E_p[z_i] - z_iy)`` and ``d2/db2 = mean_i Var_p[z_i] >= 0`` with
    p = softmax(b z_i): NLL is convex in b. Computed block by block in float64.

    Args:
        z: [G, N, C] logits.
        y: [G, N] labels.
        inverse_t: [G] float64 values of b = 1 / T.

    Returns:
        ``(nll, first, second)``, each [G] float64.
    """
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
        first += (mean_z - z_true).sum(dim=1)
        second += (p * (zb - mean_z[..., None]) ** 2).sum(dim=2).sum(dim=1)  # Var_p[z], summed over rows
    return nll / n, first / n, second / n


def _search_temperatures(z: torch.Tensor, y: torch.Tensor, search: "TemperatureSearch"):
    """Minimise NLL over T in [search.lower, search.upper] for each of G problems.

    Newton's method on b = 1 / T (NLL is convex in b), kept inside a bracket [b_lo, b_hi]
    where the derivative changes sign; a step that would leave the bracket is replaced by
    its geometric midpoint. When the derivative has one sign over the whole range, the
    optimum is the bound it points to.

    Args:
        z: [G, N, C] logits.
        y: [G, N] labels.
        search: the bounds and tolerances.

    Returns:
        ``(temperature, nll_before, nll_after, on_bound)``, each [G]: the fitted T (never worse
        than T = 1 on the fit set), NLL at T = 1 and at T, and whether T is a search bound.
    """
    n_problems = z.shape[0]
    if z.numel() <= metrics.CHUNK_ELEMENTS:  # small: one float64 copy now, not one per evaluation
        z = z.to(torch.float64)
    f64 = dict(dtype=torch.float64, device=z.device)
    lo = torch.full((n_problems,), 1.0 / search.upper, **f64)  # smallest b: the largest T
    hi = torch.full((n_problems,), 1.0 / search.lower, **f64)
    _, first_lo, _ = _nll_derivatives(z, y, lo)
    _, first_hi, _ = _nll_derivatives(z, y, hi)
    to_upper_t = first_lo >= 0  # NLL rises in b from the start: the largest T is best
    to_lower_t = (first_hi <= 0) & ~to_upper_t  # NLL still falls at the largest b: the smallest T
    b = torch.where(to_upper_t, lo, torch.where(to_lower_t, hi, torch.ones_like(lo)))
    active = ~(to_upper_t | to_lower_t)
    for _ in range(search.max_iter):
        todo = torch.nonzero(active).squeeze(1)
        if todo.numel() == 0:
            break
        if todo.numel() == n_problems or z.numel() > metrics.CHUNK_ELEMENTS:
            # every problem still searching (always, for G = 1), or z too large to copy each step:
            # evaluate all problems and keep the ones still searching
            _, first, second = _nll_derivatives(z, y, b)
            first, second = first[todo], second[todo]
        else:
            _, first, second = _nll_derivatives(z[todo], y[todo], b[todo])
        rising = first > 0  # the minimum lies below b
        hi[todo] = torch.where(rising, b[todo], hi[todo])
        lo[todo] = torch.where(rising, lo[todo], b[todo])
        newton = b[todo] - first / second  # second > 0 inside the bracket, unless the softmax saturated
        inside = (second > 0) & (newton > lo[todo]) & (newton < hi[todo])
        step = torch.where(inside, newton, torch.sqrt(lo[todo] * hi[todo]))
        done = (torch.log(step) - torch.log(b[todo])).abs() < search.xatol
        b[todo] = step
        active[todo[done]] = False
    if bool(active.any()):
        warnings.warn(
            f"The temperature search stopped after max_iter={search.max_iter} steps with {int(active.sum())} problem(s) "
            f"not converged to xatol={search.xatol:g}; their last step is returned",
            RuntimeWarning,
            stacklevel=3,
        )
    temperature = torch.where(to_upper_t, torch.full_like(b, search.upper), torch.where(to_lower_t, torch.full_like(b, search.lower), 1.0 / b))
    nll_before, _, _ = _nll_derivatives(z, y, torch.ones_like(b))
    nll_after, _, _ = _nll_derivatives(z, y, 1.0 / temperature)
    # Never worse than leaving the logits alone, and T = 1 unless another T is better beyond
    # rounding (when NLL does not depend on T at all, e.g. rows of equal logits, T stays 1).
    worse = nll_after > nll_before - 1e-12 * nll_before.abs().clamp(min=1.0)
    temperature = torch.where(worse, torch.ones_like(b), temperature)
    nll_after = torch.where(worse, nll_before, nll_after)
    on_bound = (temperature == search.lower) | (temperature == search.upper)
    return temperature, nll_before, nll_after, on_bound


def _warn_on_bound(search: "TemperatureSearch", what: str) -> None:
    warnings.warn(
        f"{what} on the search bound [{search.lower:g}, {search.upper:g}]: NLL keeps falling beyond it "
        "(e.g. every prediction right, or a single sample)",
        RuntimeWarning,
        stacklevel=3,
    )


def _not_fitted(obj) -> RuntimeError:
    return RuntimeError(f"This {type(obj).__name__} is not fitted yet; call fit(...) first")


def _check_n_classes(obj, z: torch.Tensor, name: str = "logits") -> None:
    if z.shape[1] != obj.n_classes_:
        raise ValueError(
            f"Expected {obj.n_classes_} classes as at fit time, but got {z.shape[1]} (`{name}` of shape "
            f"{tuple(z.shape)}); pass scores over the classes {type(obj).__name__} was fitted on"
        )


@dataclass(frozen=True)
class TemperatureSearch:
    """Settings of the search for T.

    Attributes:
        lower: smallest T tried. 1e-3 covers raw cosine similarities passed without CLIP's
            logit scale of 100 (which would need T = 0.01).
        upper: largest T tried; 1e3 flattens any softmax of CLIP-scale logits to near uniform.
        xatol: the search stops when a step changes log T by less than this (a relative
            tolerance of about 1e-6 in T).
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


class TemperatureScaling:
    """Divide the logits by one temperature T > 0 fitted to minimise NLL on a calibration set.

    ``T > 1`` softens an over-confident model, ``T < 1`` sharpens an under-confident one;
    the predicted class never changes. The search is in log T within
    ``[search.lower, search.upper]``; the result is never worse than T = 1 on the fit set
    (if the optimiser ended higher, T = 1 is kept). When NLL keeps falling towards a bound
    (every prediction right makes T -> 0 optimal; one wrong prediction alone, T -> inf) the
    bound is returned with a warning.

    Args:
        search: a :class:`TemperatureSearch`.

    Attributes:
        temperature_: the fitted T.
        nll_before_: NLL on the fit set at T = 1.
        nll_after_: NLL on the fit set at ``temperature_``.
        n_classes_: C seen at fit time.
        n_samples_: N seen at fit time.

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
        self.temperature_ = temperature
        self.nll_before_, self.nll_after_ = before, after
        self.n_samples_, self.n_classes_ = int(z.shape[0]), int(z.shape[1])
        return self

    def transform(self, logits):
        """Calibrated logits: ``logits / temperature_`` ([N, C], same type as the input)."""
        if not hasattr(self, "temperature_"):
            raise _not_fitted(self)
        z = metrics._check_scores(logits, "logits")
        _check_n_classes(self, z)
        return _like(z / self.temperature_, logits)

    def predict_proba(self, logits):
        """Calibrated probabilities: ``softmax(logits / temperature_)`` ([N, C])."""
        z = self.transform(_as_tensor(logits, "logits"))
        return _like(torch.softmax(z, dim=1), logits)

    def __repr__(self) -> str:
        fitted = f", temperature_={self.temperature_:.4g}" if hasattr(self, "temperature_") else ""
        return f"TemperatureScaling(search={self.search}{fitted})"


def fit_temperatures(logits, labels, search: TemperatureSearch = TemperatureSearch()) -> torch.Tensor:
    """Temperature scaling of G calibration sets of one size at once: what G ``TemperatureScaling().fit``
    calls would give, from one vectorised search.

    Args:
        logits: [G, N, C] logits (G sets of N samples).
        labels: [G, N] integer labels.
        search: a :class:`TemperatureSearch`.

    Returns:
        [G] float64 temperatures. Warns once if any lies on a search bound.

    Example:
        >>> gen = torch.Generator().manual_seed(0)
        >>> z = 2 * torch.randn(20, 400, 10, generator=gen)  # 20 calibration sets of 400 samples
        >>> y = torch.multinomial(z.softmax(-1).view(-1, 10), 1, generator=gen).view(20, 400)  # calibrated
        >>> t = fit_temperatures(3 * z, y)  # the same model, 3x over-confident
        >>> t.shape, bool(((t > 2) & (t < 4.5)).all())
        (torch.Size([20]), True)
    """
    z = _as_tensor(logits, "logits")
    y = _as_tensor(labels, "labels")
    if z.ndim != 3 or y.shape != z.shape[:2] or z.shape[1] < 1 or z.shape[2] < 1:
        raise ValueError(f"Expected `logits` [G, N, C] and `labels` [G, N] with N, C >= 1, but got {tuple(z.shape)} and {tuple(y.shape)}")
    _check_pair(z.reshape(-1, z.shape[2]), y.reshape(-1), "logits")  # finite logits, labels in range
    temperature, _, _, on_bound = _search_temperatures(z, y.to(z.device).long(), search)
    if bool(on_bound.any()):
        _warn_on_bound(search, f"{int(on_bound.sum())} of {len(on_bound)} fitted temperatures lie")
    return temperature


class VectorScaling:
    """Per-class affine map of the logits, ``z * w + b`` (w, b in R^C), fitted by L-BFGS on NLL.

    It contains temperature scaling (``w = 1 / T``, ``b = 0``), so its NLL on the fit set is
    at most that of TS. Starting from the identity, the result is never worse than it on the
    fit set. With separable data (every prediction right) the optimum is at infinity and
    L-BFGS stops after ``max_iter`` iterations with large weights.

    Args:
        max_iter: L-BFGS iterations (200: ample for C <= 1000 on a calibration set).

    Attributes:
        weight_: [C] per-class scale.
        bias_: [C] per-class offset.
        nll_before_, nll_after_: NLL on the fit set before and after.
        n_classes_: C.
    """

    def __init__(self, max_iter: int = 200):
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"Expected argument `max_iter` to be an integer larger than 0, but got {max_iter!r}")
        self.max_iter = max_iter

    def fit(self, logits, labels) -> "VectorScaling":
        """Fit w and b on ``logits`` [N, C] and integer ``labels`` [N]."""
        z, y = _check_pair(logits, labels, "logits")
        z = z.detach().to(torch.float64)  # [N, C]: the calibration set, usually small
        n_classes = z.shape[1]
        w = torch.ones(n_classes, dtype=torch.float64, device=z.device, requires_grad=True)
        b = torch.zeros(n_classes, dtype=torch.float64, device=z.device, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=self.max_iter, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(z * w + b, y)
            loss.backward()
            return loss

        with torch.no_grad():
            before = float(torch.nn.functional.cross_entropy(z, y))
        opt.step(closure)
        with torch.no_grad():
            after = float(torch.nn.functional.cross_entropy(z * w + b, y))
        if not math.isfinite(after) or after > before:
            w, b, after = torch.ones_like(w), torch.zeros_like(b), before
        self.weight_, self.bias_ = w.detach(), b.detach()
        self.nll_before_, self.nll_after_ = before, after
        self.n_classes_ = int(n_classes)
        return self

    def transform(self, logits):
        """Calibrated logits ``logits * weight_ + bias_`` ([N, C])."""
        if not hasattr(self, "weight_"):
            raise _not_fitted(self)
        z = metrics._check_scores(logits, "logits")
        _check_n_classes(self, z)
        out = z.to(torch.float64) * self.weight_.to(z.device) + self.bias_.to(z.device)
        return _like(out, logits)

    def predict_proba(self, logits):
        """Calibrated probabilities ``softmax(logits * weight_ + bias_)`` ([N, C])."""
        z = self.transform(_as_tensor(logits, "logits"))
        return _like(torch.softmax(z, dim=1), logits)


class HistogramBinning:
    """Top-label histogram binning: a confidence becomes its bin's accuracy on the calibration set.

    The bins are those of ``vlmcal.metrics.ece`` (equal width, (lower, upper]); a bin that
    was empty at fit time leaves confidences in it unchanged. The predicted class is not
    changed; the calibrator returns top-label confidences, to be scored with
    ``vlmcal.metrics.bin_statistics``.

    Args:
        n_bins: number of equal-width bins.
        inputs: whether ``fit`` and ``transform`` receive ``"probs"`` or ``"logits"``.

    Attributes:
        n_classes_: C seen at fit time (``transform`` takes scores with C columns only).
        edges_: [B+1] bin edges.
        bin_accuracy_: [B] accuracy per bin on the fit set (NaN where the bin was empty).
        bin_count_: [B] samples per bin on the fit set.
    """

    def __init__(self, n_bins: int = 15, inputs: metrics.Inputs = "probs"):
        self.n_bins = metrics._check_n_bins(n_bins)
        self.inputs = metrics._check_choice(inputs, metrics._INPUTS, "inputs")

    def fit(self, scores, labels) -> "HistogramBinning":
        """Learn per-bin accuracies from ``scores`` [N, C] and ``labels`` [N]."""
        conf, ok = metrics.top_label(scores, labels, self.inputs)
        data = metrics.bin_statistics(conf, ok, n_bins=self.n_bins)
        self.edges_, self.bin_accuracy_, self.bin_count_ = data.edges, data.accuracy, data.count
        self.n_classes_ = int(metrics._as_tensor(scores, "scores").shape[1])
        return self

    def transform(self, scores):
        """Calibrated top-label confidences [N] (numpy) of ``scores`` [N, C]."""
        if not hasattr(self, "bin_accuracy_"):
            raise _not_fitted(self)
        s = metrics._check_scores(scores, self.inputs, "scores")
        _check_n_classes(self, s, "scores")
        dummy = torch.zeros(s.shape[0], dtype=torch.long, device=s.device)
        conf, _ = metrics.top_label(s, dummy, self.inputs)
        conf = conf.to(torch.float64).cpu().numpy()
        # The same membership as the binning core: bin b holds edge_b < conf <= edge_{b+1}.
        idx = np.searchsorted(self.edges_[1:-1], conf, side="left")
        mapped = self.bin_accuracy_[idx]
        return np.where(np.isnan(mapped), conf, mapped)


def stratified_sample(labels, n: int, seed: int = 0) -> np.ndarray:
    """Indices of ``n`` samples drawn without replacement, each class in proportion to its frequency.

    Class quotas are ``n * N_c / N`` rounded down, and the samples left over go to the
    classes with the largest remainders (ties broken at random by ``seed``), so that with
    fewer samples than classes (40 samples, 1000 classes) each chosen class gets one.

    Args:
        labels: [N] integer labels.
        n: how many samples, 1 <= n <= N.
        seed: seed of the draw.

    Returns:
        [n] sorted indices into ``labels``.

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
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= len(y):
        raise ValueError(f"Expected argument `n` (how many samples, at most one per label) to be an integer in [1, {len(y)}], but got {n!r}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    exact = n * counts / len(y)  # [K] ideal quotas
    quota = np.floor(exact).astype(np.int64)
    left = n - int(quota.sum())
    if left:
        remainder = exact - quota
        order = np.lexsort((rng.random(len(classes)), -remainder))  # largest remainder first, random ties
        quota[order[:left]] += 1
    chosen = [rng.choice(np.flatnonzero(y == c), size=q, replace=False) for c, q in zip(classes, quota) if q]
    return np.sort(np.concatenate(chosen))


def fit_on_n_samples(calibrator, logits, labels, n: int, seed: int = 0):
    """Fit ``calibrator`` on a stratified sample of ``n`` labelled samples; returns the calibrator.

    Args:
        calibrator: any of this module's calibrators (a fresh instance).
        logits: [N, C] scores the calibrator takes.
        labels: [N] integer labels.
        n: number of labelled samples to fit on.
        seed: seed of the sample.

    Returns:
        The fitted calibrator, with ``sample_indices_`` set to the indices used.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> z, y = rng.normal(size=(500, 10)) * 3, rng.integers(0, 10, 500)
        >>> ts = fit_on_n_samples(TemperatureScaling(), z, y, n=40, seed=0)
        >>> len(ts.sample_indices_)
        40
    """
    z = _as_tensor(logits, "logits")
    y = _as_tensor(labels, "labels")
    if z.shape[0] != y.shape[0]:
        raise ValueError(f"Expected `labels` to have one entry per row of `logits` ({z.shape[0]}), but got {y.shape[0]}")
    idx = stratified_sample(y, n, seed)
    rows = torch.from_numpy(idx)
    calibrator.fit(z[rows.to(z.device)], y[rows.to(y.device)])
    calibrator.sample_indices_ = idx
    return calibrator
