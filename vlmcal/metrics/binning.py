"""The binning core (every binned number in vlmcal goes through :func:`_bin_index`): which bin each confidence
falls in, and what each bin holds. Conventions, for edges ``e_0 <= ... <= e_B`` covering [0, 1]:

- ``"right"`` (default): bin b holds ``e_b < conf <= e_{b+1}``, 0 in the first bin.
- ``"left"``: ``e_b <= conf < e_{b+1}``, 1 in the last bin (numpy.histogram, netcal).
- ``"torchmetrics"``: ``e_b <= conf < e_{b+1}``, and ``e_B`` (1.0) in an extra bin B (torchmetrics, its issue #3510).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vlmcal.metrics._validation import (_CONVENTIONS, Convention, _as_tensor, _check_choice, _check_edges,
                                        _check_n_bins, _check_outcomes)


def _equal_width_edges(n_bins: int, dtype, device) -> torch.Tensor:
    """[B+1] edges k / n_bins, each correctly rounded: float64 division, then one rounding to ``dtype``."""
    return (torch.arange(n_bins + 1, dtype=torch.float64, device=device) / n_bins).to(dtype)


def _bin_index(values: torch.Tensor, edges: torch.Tensor, convention: str) -> tuple[torch.Tensor, int]:
    """:func:`bin_index` on checked tensors (``edges`` in ``values``' dtype and device)."""
    # The bin is the number of inner edges below the value ("right") or <= it ("left", "torchmetrics"); under
    # "torchmetrics" e_B counts as an inner edge, so a value equal to it (1.0) lands in an extra bin B.
    torchmetrics = convention == "torchmetrics"
    inner = (edges[1:] if torchmetrics else edges[1:-1]).contiguous()
    side = "left" if convention == "right" else "right"
    return torch.searchsorted(inner, values, side=side), edges.numel() - 1 + int(torchmetrics)


def bin_index(values, edges, convention: Convention = "right") -> tuple[torch.Tensor, int]:
    """The bin of each value under a convention, compared with the edges in the values' dtype (not range-checked).

    Args:
        values, edges: floats in [0, 1] of any shape, and [B+1] non-decreasing edges, the first <= 0, the last >= 1.
    Returns:
        ``(index, B')``: int64 indices of ``values``' shape in [0, B'); B' = B + 1 under ``"torchmetrics"``, else B.
    Example:
        >>> edges = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
        >>> conf = torch.tensor([0.0, 0.5, 0.6, 1.0])
        >>> [bin_index(conf, edges, c)[0].tolist() for c in ("right", "left", "torchmetrics")]
        [[0, 1, 2, 3], [0, 2, 2, 3], [0, 2, 2, 4]]
    """
    _check_choice(convention, _CONVENTIONS, "convention")
    v = _as_tensor(values, "values")
    return _bin_index(v, _as_tensor(edges, "edges").to(device=v.device, dtype=v.dtype), convention)


def _binned_sums(values, hits, edges, convention, groups=None, n_groups=1):
    """Per (group, bin), [G, B'] float64: the count, value sum and hit sum of [M] ``values`` and ``hits``
    (``edges`` in ``values``' dtype; optional ``groups`` [M] in [0, n_groups), the class for classwise ECE)."""
    idx, n_bins = _bin_index(values, edges, convention)  # [M]
    if groups is not None:
        idx = groups * n_bins + idx  # [M] (group, bin) cell
    size = n_groups * n_bins
    count = torch.bincount(idx, minlength=size)  # [G*B'] integer counts, as hit_sum below: exact
    value_sum = torch.bincount(idx, weights=values.to(torch.float64), minlength=size)
    misses_last = idx.masked_fill(~hits.to(torch.bool), size)  # misses counted in an extra cell, then dropped
    hit_sum = torch.bincount(misses_last, minlength=size + 1)[:size]
    return tuple(t.to(torch.float64).reshape(n_groups, n_bins) for t in (count, value_sum, hit_sum))


@dataclass(frozen=True)
class ReliabilityData:
    """Per-bin sums of one binning, with the metrics that follow from them.

    Attributes:
        edges: [B+1] bin edges.
        count: [B'] samples per bin (B' = B + 1 under ``"torchmetrics"``: the last bin holds 1.0).
        confidence_sum, correct_sum: [B'] sum of the confidences, and number of correct predictions, in each bin.
    """

    edges: np.ndarray
    count: np.ndarray
    confidence_sum: np.ndarray
    correct_sum: np.ndarray
    convention: str

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.count.sum())

    @property
    def n_bins(self) -> int:
        return len(self.count)

    def _per_bin_mean(self, sums: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, sums / self.count, np.nan)

    @property
    def mean_confidence(self) -> np.ndarray:
        """[B'] mean confidence per bin (NaN where the bin is empty)."""
        return self._per_bin_mean(self.confidence_sum)

    @property
    def accuracy(self) -> np.ndarray:
        """[B'] accuracy per bin (NaN where the bin is empty)."""
        return self._per_bin_mean(self.correct_sum)

    @property
    def gap(self) -> np.ndarray:
        """[B'] mean confidence minus accuracy: > 0 over-confident, < 0 under-confident."""
        return self.mean_confidence - self.accuracy

    @property
    def ece(self) -> float:
        """``sum_b (n_b / N) |conf_b - acc_b|``."""
        return float(np.abs(self.confidence_sum - self.correct_sum).sum() / self.n)

    @property
    def mce(self) -> float:
        """max over non-empty bins of ``|conf_b - acc_b|``."""
        return float(np.nanmax(np.abs(self.gap)))

    def to_frame(self):
        """One row per bin: lower, upper, count, mean confidence, accuracy, gap."""
        import pandas as pd
        lower, upper = self.edges[:-1], self.edges[1:]
        if self.n_bins == len(self.edges):  # torchmetrics' extra bin holds exactly 1.0
            lower, upper = np.append(lower, 1.0), np.append(upper, 1.0)
        return pd.DataFrame({"lower": lower, "upper": upper, "count": self.count.astype(np.int64),
                             "mean_confidence": self.mean_confidence, "accuracy": self.accuracy, "gap": self.gap})


def bin_statistics(confidences, correct, n_bins: int = 15, convention: Convention = "right",
                   edges=None) -> ReliabilityData:
    """Bin confidences and sum, per bin, the count, the confidences and the correct predictions.

    Args:
        confidences, correct: [N] values in [0, 1] (usually top-label confidences) and whether each was right.
        n_bins: number of equal-width bins, used when ``edges`` is None.
        edges: optional [B+1] increasing edges from 0 to 1 (equal-mass bins, for example).
    Example:
        >>> stats = bin_statistics(np.array([0.75, 0.8, 0.6, 0.8, 0.99]), np.array([1, 1, 0, 1, 1]), n_bins=10)
        >>> round(stats.ece, 3), round(stats.mce, 3)  # the 0.6 prediction is wrong and alone in its bin
        (0.252, 0.6)
    """
    _check_choice(convention, _CONVENTIONS, "convention")  # before the arrays: a bad option is named first
    conf, hit = _check_outcomes(confidences, correct)
    e = (_equal_width_edges(_check_n_bins(n_bins), conf.dtype, conf.device) if edges is None
         else _check_edges(edges).to(device=conf.device, dtype=conf.dtype))
    count, conf_sum, hit_sum = (t[0].cpu().numpy() for t in _binned_sums(conf, hit, e, convention))
    return ReliabilityData(e.to(torch.float64).cpu().numpy(), count, conf_sum, hit_sum, convention)


def _quantile_edges(conf: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Edges at the k / n_bins quantiles of ``conf`` (linear interpolation), first 0 and last 1."""
    e = np.quantile(torch.sort(conf.to(torch.float64)).values.cpu().numpy(), np.linspace(0.0, 1.0, n_bins + 1))
    e[0], e[-1] = 0.0, 1.0
    return torch.from_numpy(np.maximum.accumulate(e)).to(device=conf.device, dtype=conf.dtype)
