"""Post-hoc calibrators in scikit-learn's manner: fit on a labelled calibration set, then apply.

- :class:`TemperatureScaling` (Guo et al., ICML 2017): one positive number T, logits / T.
  The temperature is found as a bounded one-dimensional problem in log T (Brent's method,
  ``scipy.optimize.minimize_scalar(method="bounded")``, as scikit-learn's calibration
  module does), so T > 0 by construction. It works on CLIP's logits as they come, with the
  logit scale (100) already in them: the fitted T multiplies that scale by 1 / T.
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
from scipy import optimize

from vlmcal import metrics
from vlmcal.metrics import _as_tensor, _check_pair, _row_blocks

__all__ = [
    "TemperatureSearch",
    "TemperatureScaling",
    "VectorScaling",
    "HistogramBinning",
    "stratified_sample",
    "fit_on_n_samples",
]


def _like(result: torch.Tensor, template):
    """Return numpy when the caller passed numpy, a tensor otherwise."""
    return result.cpu().numpy() if isinstance(template, np.ndarray) else result


def _nll_at(z: torch.Tensor, y: torch.Tensor, temperature: float) -> float:
    """Mean NLL of softmax(z / T), block by block in float64 (no second [N, C] array)."""
    total = 0.0
    for rows in _row_blocks(*z.shape):
        zt = z[rows].to(torch.float64) / temperature  # [r, C]
        total += float((torch.logsumexp(zt, dim=1) - zt.gather(1, y[rows, None])[:, 0]).sum())
    return total / z.shape[0]


def _not_fitted(obj) -> RuntimeError:
    return RuntimeError(f"This {type(obj).__name__} is not fitted yet; call fit(...) first")


def _check_n_classes(obj, z: torch.Tensor) -> None:
    if z.shape[1] != obj.n_classes_:
        raise ValueError(f"Expected {obj.n_classes_} classes as at fit time, but got {z.shape[1]}")


@dataclass(frozen=True)
class TemperatureSearch:
    """Settings of the search for T.

    Attributes:
        lower: smallest T tried. 1e-3 covers raw cosine similarities passed without CLIP's
            logit scale of 100 (which would need T = 0.01).
        upper: largest T tried; 1e3 flattens any softmax of CLIP-scale logits to near uniform.
        xatol: absolute tolerance in log T, i.e. a relative tolerance of about 1e-6 in T.
    """

    lower: float = 1e-3
    upper: float = 1e3
    xatol: float = 1e-6

    def __post_init__(self) -> None:
        if not (0 < self.lower < 1 < self.upper < math.inf):
            raise ValueError(f"Expected 0 < lower < 1 < upper < inf, but got lower={self.lower}, upper={self.upper}")
        if not self.xatol > 0:
            raise ValueError(f"Expected argument `xatol` to be positive, but got {self.xatol}")


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
        s = self.search
        before = _nll_at(z, y, 1.0)
        result = optimize.minimize_scalar(
            lambda log_t: _nll_at(z, y, math.exp(log_t)),
            bounds=(math.log(s.lower), math.log(s.upper)),
            method="bounded",
            options={"xatol": s.xatol},
        )
        if not result.success:
            raise RuntimeError(f"Temperature search failed: {result.message}")
        # Brent's answer, unless a bound or T = 1 does at least as well: NLL that keeps falling
        # towards a bound, or flattens to 0 in floating point (every prediction right), gives
        # the bound; T = 1 guarantees the fit is never worse than leaving the logits alone.
        candidates = [(_nll_at(z, y, t), rank, t) for rank, t in enumerate((s.lower, s.upper, math.exp(float(result.x))))]
        after, _, temperature = min(candidates)
        if after > before:
            temperature, after = 1.0, before
        if temperature in (s.lower, s.upper):
            warnings.warn(
                f"The fitted temperature {temperature:.4g} lies on the search bound [{s.lower:g}, {s.upper:g}]: "
                "NLL keeps falling beyond it (e.g. every prediction right, or a single sample)",
                RuntimeWarning,
                stacklevel=2,
            )
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
        return self

    def transform(self, scores):
        """Calibrated top-label confidences [N] (numpy) of ``scores`` [N, C]."""
        if not hasattr(self, "bin_accuracy_"):
            raise _not_fitted(self)
        s = metrics._check_scores(scores, self.inputs)
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
    if y.ndim != 1 or y.is_floating_point() or y.dtype == torch.bool:
        raise ValueError(f"Expected integer `labels` of shape [N], but got dtype {y.dtype} and shape {tuple(y.shape)}")
    y = y.cpu().numpy().astype(np.int64)
    if len(y) and y.min() < 0:
        raise ValueError(f"Expected non-negative `labels`, but got a minimum of {y.min()}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= len(y):
        raise ValueError(f"Expected argument `n` to be an integer in [1, {len(y)}], but got {n!r}")
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
