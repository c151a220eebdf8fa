"""Calibration metrics: binned ECE and its relatives, Brier, NLL, smooth ECE, bootstrap intervals.

Every binned metric and the reliability diagram go through one function,
:func:`bin_statistics`, which sorts values into bins and sums, per bin, the count, the
values and the hits. ECE is then ``sum_b |value_sum_b - hit_sum_b| / N`` (Guo et al.,
ICML 2017), with no division by bin counts, and MCE the largest per-bin gap.

Inputs are torch tensors (CPU or GPU) or numpy arrays: scores ``[N, C]`` and integer
labels ``[N]``. Whether the scores are probabilities or logits is said by the caller
(``inputs="probs"`` or ``inputs="logits"``), never guessed from their values. From an
``[N, C]`` input no second ``[N, C]`` array is made: logits are turned into probabilities
block by block (at most ``CHUNK_ELEMENTS`` numbers at a time).

Binning conventions (``convention=``), with ``n_bins`` equal-width bins whose edges are
the correctly rounded ``k / n_bins`` in the confidences' own dtype:

- ``"right"`` (default): bin b holds ``edge_b < conf <= edge_{b+1}``, 0 in the first bin.
  ES (15 bins) and C-TPT (20 bins) bin this way.
- ``"left"``: ``edge_b <= conf < edge_{b+1}``, 1 in the last bin (numpy.histogram, netcal).
- ``"torchmetrics"``: ``edge_b <= conf < edge_{b+1}``, and a confidence of exactly 1.0 in an
  extra bin of its own (torchmetrics, its issue #3510).

The DOR code base uses 10 bins. The conventions give the same ECE unless a confidence
lies exactly on an edge, and a top-label confidence of exactly 1.0 is common in float32
for CLIP's sharp softmax, so the choice matters in practice; ``tests/test_metrics.py`` shows
each difference. (torchmetrics also builds its edges with ``torch.linspace``, which for
some ``n_bins``, 15 among them, is one unit in the last place away from ``k / n_bins``.)

Smooth ECE follows Blasiok and Nakkiran, "Smooth ECE: Principled Reliability Diagrams via
Kernel Smoothing" (ICLR 2024), whose reference implementation is the ``relplot`` package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
import torch

__all__ = [
    "CHUNK_ELEMENTS",
    "ReliabilityData",
    "BootstrapResult",
    "probs_from_logits",
    "top_label",
    "bin_statistics",
    "reliability_data",
    "ece",
    "mce",
    "ece_weighted",
    "adaptive_ece",
    "classwise_ece",
    "brier_score",
    "nll",
    "accuracy",
    "mean_confidence",
    "confidence_gap",
    "confusion_matrix",
    "per_class_table",
    "smooth_ece",
    "smooth_ece_from_confidences",
    "bootstrap_ci",
    "bootstrap_rows",
    "bootstrap_weights",
    "multiplicities",
]

Inputs = Literal["probs", "logits"]
Convention = Literal["right", "left", "torchmetrics"]
_INPUTS = ("probs", "logits")
_CONVENTIONS = ("right", "left", "torchmetrics")

# Largest number of [rows x classes] entries held in a temporary block: 4M float32 = 16 MB.
CHUNK_ELEMENTS = 1 << 22


# ----------------------------------------------------------------------------- validation


def _as_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    try:
        if isinstance(x, np.ndarray):
            return torch.from_numpy(x)  # no copy
        return torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError) as err:
        what = f"a numpy array of dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"Expected `{name}` to be a numeric torch tensor or numpy array, but got {what}") from err


def _check_n_bins(n_bins) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"Expected argument `n_bins` to be an integer larger than 0, but got {n_bins!r}")
    return int(n_bins)


def _is_real(x) -> bool:
    """Whether ``x`` is a real number (a Python or numpy int or float, not a bool)."""
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _check_choice(value, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise ValueError(f"Expected argument `{name}` to be one of {allowed}, but got {value!r}")
    return value


def _row_blocks(n_rows: int, n_cols: int):
    step = max(1, CHUNK_ELEMENTS // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def _check_scores(scores, inputs: str, name: str | None = None) -> torch.Tensor:
    """Validate [N, C] scores without making a second [N, C] array (reductions only)."""
    _check_choice(inputs, _INPUTS, "inputs")
    name = name or inputs
    s = _as_tensor(scores, name)
    if s.ndim != 2 or s.shape[0] < 1 or s.shape[1] < 1:
        raise ValueError(f"Expected `{name}` of shape [N, C] with N >= 1 and C >= 1, but got shape {tuple(s.shape)}")
    if not s.is_floating_point():
        raise ValueError(f"Expected `{name}` to be a floating-point array, but got dtype {s.dtype}")
    lo, hi = (float(v) for v in torch.aminmax(s))  # NaN propagates through both
    if not (math.isfinite(lo) and math.isfinite(hi)):
        hint = "; to leave classes out, drop their columns instead of setting them to -inf" if lo == -math.inf and not math.isnan(hi) else ""
        raise ValueError(f"Expected finite `{name}`, but got NaN or inf entries (min {lo}, max {hi}){hint}")
    if inputs == "probs":
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"Expected `probs` in [0, 1], but got values in [{lo:.4g}, {hi:.4g}]; pass inputs='logits' for logits"
            )
        worst = float((s.sum(dim=1) - 1.0).abs().amax())  # [N] row sums, in the input's precision
        if worst > 1e-3:
            raise ValueError(f"Expected each row of `probs` to sum to 1, but a row is {worst:.3g} away from 1")
    return s


def _check_labels(labels, n: int, n_classes: int | None, device) -> torch.Tensor:
    y = _as_tensor(labels, "labels")
    if y.ndim != 1:
        raise ValueError(f"Expected `labels` of shape [N], but got shape {tuple(y.shape)}")
    if y.shape[0] != n:
        raise ValueError(f"Expected `labels` to have one entry per sample ({n}), but got {y.shape[0]}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"Expected integer `labels`, but got dtype {y.dtype}")
    y = y.to(device=device, dtype=torch.long)
    if n and n_classes is not None:
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= n_classes:
            raise ValueError(f"Expected `labels` in [0, {n_classes - 1}], but got values in [{lo}, {hi}]")
    return y


def _check_outcomes(confidences, correct, shape: str = "[N]") -> tuple[torch.Tensor, torch.Tensor]:
    """Validate confidences and their 0/1 outcomes: the input of the binned and smooth metrics.

    Args:
        confidences: values in [0, 1], of shape ``[N]`` (``shape="[N]"``) or ``[R, N]`` (``"[R, N]"``).
        correct: booleans or 0/1, of the same shape.
        shape: the shape expected, as the error message says it.

    Returns:
        ``(confidences, correct)`` as tensors (integer confidences made float64), on one device.
    """
    conf = _as_tensor(confidences, "confidences")
    hit = _as_tensor(correct, "correct").to(conf.device)
    ndim = shape.count(",") + 1
    if conf.ndim != ndim or min(conf.shape) < 1:
        raise ValueError(f"Expected `confidences` of shape {shape} with every size >= 1, but got shape {tuple(conf.shape)}")
    if hit.shape != conf.shape:
        raise ValueError(f"Expected `correct` of the shape of `confidences` {tuple(conf.shape)}, but got shape {tuple(hit.shape)}")
    if conf.is_complex() or conf.dtype == torch.bool:
        raise ValueError(f"Expected real-valued `confidences`, but got dtype {conf.dtype}")
    if not conf.is_floating_point():
        conf = conf.to(torch.float64)
    lo, hi = (float(v) for v in torch.aminmax(conf))  # NaN propagates through both
    if not (0.0 <= lo and hi <= 1.0):
        raise ValueError(f"Expected `confidences` in [0, 1], but got values in [{lo}, {hi}]")
    if hit.dtype != torch.bool:
        bad = hit[(hit != 0) & (hit != 1)] if not hit.is_complex() else hit.reshape(-1)
        if bad.numel():
            raise ValueError(f"Expected `correct` to hold only booleans or 0/1, but got the value {bad[0].item()!r}")
    return conf, hit


def _check_pair(scores, labels, inputs: str) -> tuple[torch.Tensor, torch.Tensor]:
    s = _check_scores(scores, inputs)
    y = _check_labels(labels, s.shape[0], s.shape[1], s.device)
    return s, y


def _work_dtype(s: torch.Tensor) -> torch.dtype:
    """Blocks are computed in the input's precision (float16/bfloat16 in float32); sums in float64."""
    return s.dtype if s.dtype in (torch.float32, torch.float64) else torch.float32


def _probs_block(s: torch.Tensor, inputs: str) -> torch.Tensor:
    """Probabilities of one block of rows."""
    if inputs == "probs":
        return s
    return torch.softmax(s.to(_work_dtype(s)), dim=1)


# ----------------------------------------------------------------------------- top label


def probs_from_logits(logits) -> torch.Tensor:
    """Softmax over classes: a new [N, C] array (the metrics never need it; pass inputs='logits').

    Args:
        logits: [N, C] logits (CLIP's already include the logit scale).

    Returns:
        [N, C] probabilities, same dtype and device as ``logits``.
    """
    z = _check_scores(logits, "logits")
    return torch.softmax(z, dim=1)


def top_label(scores, labels, inputs: Inputs = "probs") -> tuple[torch.Tensor, torch.Tensor]:
    """Top-label confidence and correctness of each prediction.

    For logits the confidence is ``1 / (1 + sum_{c != top} exp(z_c - z_top))``: the small
    sum is kept apart from the 1, so the confidence stays below 1 (in float64) even where
    the softmax in float32 would round to 1. Computed block by block.

    Args:
        scores: [N, C] probabilities or logits.
        labels: [N] integer labels in [0, C).
        inputs: ``"probs"`` or ``"logits"``.

    Returns:
        ``(confidences, correct)``: [N] floats (float64 from logits, the input's dtype from
        probabilities) and [N] booleans.

    Example:
        >>> conf, ok = top_label(np.array([[0.3, 0.7], [0.9, 0.1]]), np.array([1, 1]))
        >>> conf.tolist(), ok.tolist()
        ([0.7, 0.9], [True, False])
    """
    s, y = _check_pair(scores, labels, inputs)
    if inputs == "probs":
        conf, pred = s.max(dim=1)  # [N], [N]
        return conf, pred == y
    n = s.shape[0]
    conf = torch.empty(n, dtype=torch.float64, device=s.device)
    pred = torch.empty(n, dtype=torch.long, device=s.device)
    for rows in _row_blocks(n, s.shape[1]):
        z = s[rows].to(_work_dtype(s))  # [r, C]
        top, arg = z.max(dim=1)  # [r], [r]
        rest = torch.exp(z - top[:, None])  # [r, C], 1 at the top class
        rest.scatter_(1, arg[:, None], 0.0)  # drop the top class's 1
        conf[rows] = 1.0 / (1.0 + rest.sum(dim=1).to(torch.float64))  # [r]
        pred[rows] = arg
    return conf, pred == y


# ----------------------------------------------------------------------------- binning core


def _equal_width_edges(n_bins: int, dtype, device) -> torch.Tensor:
    # Correctly rounded k / n_bins (float64 division, then one rounding to the values' dtype).
    return (torch.arange(n_bins + 1, dtype=torch.float64, device=device) / n_bins).to(dtype)


def _bin_index(values: torch.Tensor, edges: torch.Tensor, convention: str) -> tuple[torch.Tensor, int]:
    """Bin of each value: ``(index [M] in [0, B'), B')`` with B' = B + 1 for ``"torchmetrics"``."""
    n_bins = edges.numel() - 1
    if convention == "right":  # (e_b, e_{b+1}]: number of inner edges strictly below the value
        return torch.searchsorted(edges[1:-1].contiguous(), values, side="left"), n_bins
    if convention == "left":  # [e_b, e_{b+1}), last bin closed: number of inner edges <= value
        return torch.searchsorted(edges[1:-1].contiguous(), values, side="right"), n_bins
    # torchmetrics: [e_b, e_{b+1}); value == e_B (1.0) lands in an extra bin B
    return torch.searchsorted(edges[1:].contiguous(), values, side="right"), n_bins + 1


def _binned_sums(values, hits, edges, convention, groups=None, n_groups=1):
    """The binning core: bin index of each value, then per (group, bin) count, value sum, hit sum.

    Args:
        values: [M] floats in [0, 1].
        hits: [M] booleans (or 0/1).
        edges: [B+1] increasing edges in ``values``' dtype.
        convention: ``"right"``, ``"left"`` or ``"torchmetrics"`` (see the module docstring).
        groups: optional [M] group index in [0, n_groups) (the class, for classwise ECE).
        n_groups: G.

    Returns:
        ``(count, value_sum, hit_sum)``, each [G, B'] float64 with B' = B + 1 for
        ``"torchmetrics"`` (its extra bin for 1.0) and B otherwise.
    """
    idx, n_bins = _bin_index(values, edges, convention)
    if groups is not None:
        idx = groups * n_bins + idx
    size = n_groups * n_bins
    count = torch.bincount(idx, minlength=size).to(torch.float64)  # [G*B']
    value_sum = torch.bincount(idx, weights=values.to(torch.float64), minlength=size)  # [G*B'], float64 sums
    misses_last = idx.masked_fill(~hits.to(torch.bool), size)  # misses counted in an extra slot
    hit_sum = torch.bincount(misses_last, minlength=size + 1)[:size].to(torch.float64)
    shape = (n_groups, n_bins)
    return count.reshape(shape), value_sum.reshape(shape), hit_sum.reshape(shape)


@dataclass(frozen=True)
class ReliabilityData:
    """Per-bin sums of one binning, with the metrics that follow from them.

    Attributes:
        edges: [B+1] bin edges.
        count: [B'] samples per bin (B' = B + 1 under ``"torchmetrics"``: the last bin holds 1.0).
        confidence_sum: [B'] sum of the confidences in each bin.
        correct_sum: [B'] number of correct predictions in each bin.
        convention: the binning convention used.
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

    @property
    def mean_confidence(self) -> np.ndarray:
        """[B'] mean confidence per bin (NaN where the bin is empty)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.confidence_sum / self.count, np.nan)

    @property
    def accuracy(self) -> np.ndarray:
        """[B'] accuracy per bin (NaN where the bin is empty)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.correct_sum / self.count, np.nan)

    @property
    def gap(self) -> np.ndarray:
        """[B'] mean confidence minus accuracy: > 0 over-confident, < 0 under-confident."""
        return self.mean_confidence - self.accuracy

    @property
    def ece(self) -> float:
        """sum_b (n_b / N) |conf_b - acc_b|."""
        return float(np.abs(self.confidence_sum - self.correct_sum).sum() / self.n)

    @property
    def mce(self) -> float:
        """max over non-empty bins of |conf_b - acc_b|."""
        return float(np.nanmax(np.abs(self.gap)))

    def to_frame(self):
        """One row per bin: lower, upper, count, mean confidence, accuracy, gap."""
        import pandas as pd

        lower, upper = self.edges[:-1], self.edges[1:]
        if self.n_bins == len(self.edges):  # torchmetrics' extra bin holds exactly 1.0
            lower, upper = np.append(lower, 1.0), np.append(upper, 1.0)
        return pd.DataFrame(
            {
                "lower": lower,
                "upper": upper,
                "count": self.count.astype(np.int64),
                "mean_confidence": self.mean_confidence,
                "accuracy": self.accuracy,
                "gap": self.gap,
            }
        )


def _check_edges(edges) -> torch.Tensor:
    """Validate bin edges: finite, non-decreasing, B + 1 >= 2 of them, covering [0, 1].

    Equal neighbouring edges are allowed: equal-mass edges of tied confidences are equal, and
    the zero-width bin between them stays empty.
    """
    e = _as_tensor(edges, "edges")
    if e.is_complex() or e.dtype == torch.bool:
        raise ValueError(f"Expected real-valued `edges`, but got dtype {e.dtype}")
    e = e.to(torch.float64)
    shown = e.tolist() if e.numel() <= 32 else f"{e.numel()} values from {float(e.reshape(-1)[0])} to {float(e.reshape(-1)[-1])}"
    if e.ndim != 1 or e.numel() < 2:
        raise ValueError(f"Expected `edges` of shape [B+1] with B >= 1, but got shape {tuple(e.shape)}")
    if not bool(torch.isfinite(e).all()):
        raise ValueError(f"Expected finite `edges`, but got {shown}")
    if bool((e[1:] < e[:-1]).any()):
        raise ValueError(f"Expected non-decreasing `edges`, but got {shown}")
    if float(e[0]) > 0.0 or float(e[-1]) < 1.0:
        raise ValueError(
            f"Expected `edges` that cover [0, 1] (first edge <= 0, last edge >= 1), but got {shown}"
        )
    return e


def bin_statistics(
    confidences, correct, n_bins: int = 15, convention: Convention = "right", edges=None
) -> ReliabilityData:
    """Bin confidences and sum, per bin, the count, the confidences and the correct predictions.

    The single binning function behind ECE, MCE, adaptive ECE and the reliability diagram.

    Args:
        confidences: [N] values in [0, 1] (usually top-label confidences).
        correct: [N] booleans, whether each prediction was right.
        n_bins: number of equal-width bins, used when ``edges`` is None.
        convention: ``"right"`` (lower, upper] with 0 in the first bin; ``"left"``
            [lower, upper) with 1 in the last bin; ``"torchmetrics"`` [lower, upper) and an
            extra bin for exactly 1.0.
        edges: optional [B+1] increasing edges from 0 to 1 (equal-mass bins, for example).

    Returns:
        A :class:`ReliabilityData`.

    Example:
        >>> stats = bin_statistics(np.array([0.75, 0.8, 0.6, 0.8, 0.99]), np.array([1, 1, 0, 1, 1]), n_bins=10)
        >>> round(stats.ece, 3), round(stats.mce, 3)  # the 0.6 prediction is wrong and alone in its bin
        (0.252, 0.6)
    """
    _check_choice(convention, _CONVENTIONS, "convention")
    conf, hit = _check_outcomes(confidences, correct)
    if edges is None:
        e = _equal_width_edges(_check_n_bins(n_bins), conf.dtype, conf.device)
    else:
        e = _check_edges(edges).to(device=conf.device, dtype=conf.dtype)
    count, conf_sum, hit_sum = _binned_sums(conf, hit, e, convention)
    return ReliabilityData(
        edges=e.to(torch.float64).cpu().numpy(),
        count=count[0].cpu().numpy(),
        confidence_sum=conf_sum[0].cpu().numpy(),
        correct_sum=hit_sum[0].cpu().numpy(),
        convention=convention,
    )


# ----------------------------------------------------------------------------- binned metrics


def reliability_data(
    scores, labels, n_bins: int = 15, convention: Convention = "right", inputs: Inputs = "probs"
) -> ReliabilityData:
    """Reliability-diagram data of top-label predictions: per bin, count, mean confidence, accuracy.

    Args:
        scores: [N, C] probabilities (or logits with ``inputs="logits"``).
        labels: [N] integer labels.
        n_bins: number of equal-width bins (ES: 15, C-TPT: 20, DOR: 10).
        convention: bin membership, see :func:`bin_statistics`.
        inputs: ``"probs"`` or ``"logits"``.

    Returns:
        A :class:`ReliabilityData` (draw it with ``vlmcal.plotting.plot_reliability_diagram``).
    """
    conf, ok = top_label(scores, labels, inputs)
    return bin_statistics(conf, ok, n_bins=n_bins, convention=convention)


def ece(probs, labels, n_bins: int = 15, convention: Convention = "right", inputs: Inputs = "probs") -> float:
    """Top-label expected calibration error with equal-width bins.

    ``ECE = sum_b (n_b / N) |acc_b - conf_b|`` (Guo et al., 2017), bins (lower, upper] by default.

    Args:
        probs: [N, C] probabilities (or logits with ``inputs="logits"``).
        labels: [N] integer labels in [0, C).
        n_bins: number of bins (default 15, as ES; C-TPT uses 20, DOR's code 10).
        convention: ``"right"``, ``"left"`` or ``"torchmetrics"``, see :func:`bin_statistics`.
        inputs: ``"probs"`` or ``"logits"``.

    Returns:
        ECE in [0, 1].

    Example:
        >>> p = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
        >>> round(ece(p, np.array([0, 1, 1]), n_bins=10), 4)  # bins: 0.9 right, 0.6 wrong, 0.8 right
        0.3
    """
    return reliability_data(probs, labels, n_bins, convention, inputs).ece


_FEW_WEIGHTINGS = 8  # up to this many weightings, ece_weighted bins each with bincount instead of one matmul


def ece_weighted(confidences, correct, weights, n_bins: int = 15, convention: Convention = "right") -> torch.Tensor:
    """Top-label ECE of many prediction sets under many weightings of their samples, as one matmul.

    Built for bootstraps: row ``r`` of ``confidences``/``correct`` is one run's N predictions
    (all runs on the same N images), row ``s`` of ``weights`` says how often each image was
    drawn in resample ``s``. The weighted ECE is
    ``sum_b |sum_i w_i (conf_i - hit_i) [i in b]| / sum_i w_i``, which with integer weights
    is exactly the ECE of the resampled set. Each run's per-bin gaps form an [N, B'] matrix, so
    every resample of every run costs one matrix product instead of one binning pass (for a
    few weightings, such as a single row of ones, one weighted bincount each is faster).

    Args:
        confidences: [R, N] values in [0, 1].
        correct: [R, N] booleans.
        weights: [S, N] non-negative weights (bootstrap multiplicities; a row of ones gives the
            plain ECE), each row with a positive sum.
        n_bins: number of equal-width bins.
        convention: bin membership, see :func:`bin_statistics`.

    Returns:
        [S, R] float64; entry ``(s, r)`` is the ECE of run ``r`` with sample ``i`` counted
        ``weights[s, i]`` times (for integer weights, :func:`bin_statistics` on the repeated rows).
    """
    _check_choice(convention, _CONVENTIONS, "convention")
    conf, hit = _check_outcomes(confidences, correct, "[R, N]")
    w = _as_tensor(weights, "weights").to(conf.device, torch.float64)
    if w.ndim != 2 or w.shape[1] != conf.shape[1]:
        raise ValueError(f"Expected `weights` of shape [S, {conf.shape[1]}] (one weight per sample), but got {tuple(w.shape)}")
    total = w.sum(dim=1)  # [S]
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or not bool((total > 0).all()):
        raise ValueError("Expected finite, non-negative `weights` whose every row has a positive sum")
    n_runs, n = conf.shape
    edges = _equal_width_edges(_check_n_bins(n_bins), conf.dtype, conf.device)
    idx, n_cols = _bin_index(conf.reshape(-1), edges, convention)
    idx = idx.view(n_runs, n)  # [R, N] bin of each prediction
    gap = conf.to(torch.float64) - hit.to(torch.float64)  # [R, N] confidence minus hit
    out = torch.empty(w.shape[0], n_runs, dtype=torch.float64, device=conf.device)
    if w.shape[0] <= _FEW_WEIGHTINGS:  # a weighted bincount per weighting beats building the [N, R*B'] matrix
        cell = (torch.arange(n_runs, device=conf.device)[:, None] * n_cols + idx).reshape(-1)  # [R*N] (run, bin) of each value
        for s, ws in enumerate(w):
            per_bin = torch.bincount(cell, weights=(gap * ws).reshape(-1), minlength=n_runs * n_cols)  # [R*B'] weighted gap per bin
            out[s] = per_bin.view(n_runs, n_cols).abs().sum(dim=1)
        return out / total[:, None]
    block = max(1, CHUNK_ELEMENTS // (n * n_cols))  # runs per block: an [N, r, B'] matrix of <= CHUNK_ELEMENTS
    for start in range(0, n_runs, block):
        runs = slice(start, min(start + block, n_runs))
        r = runs.stop - runs.start
        binned_gap = torch.zeros(n, r, n_cols, dtype=torch.float64, device=conf.device)  # [N, r, B']
        binned_gap.scatter_(2, idx[runs].T.unsqueeze(2), gap[runs].T.unsqueeze(2))  # each gap in its bin's column
        per_bin = w @ binned_gap.view(n, r * n_cols)  # [S, N] @ [N, r*B'] -> [S, r*B'] weighted gap per bin
        out[:, runs] = per_bin.view(-1, r, n_cols).abs().sum(dim=2)  # [S, r]
    return out / total[:, None]


def mce(probs, labels, n_bins: int = 15, convention: Convention = "right", inputs: Inputs = "probs") -> float:
    """Maximum calibration error: the largest |acc_b - conf_b| over non-empty equal-width bins.

    Args: as :func:`ece`.

    Returns:
        MCE in [0, 1].
    """
    return reliability_data(probs, labels, n_bins, convention, inputs).mce


def _quantile_edges(conf: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Edges at the k / n_bins quantiles of ``conf`` (linear interpolation), first 0 and last 1."""
    s = torch.sort(conf.to(torch.float64)).values.cpu().numpy()  # [N]
    e = np.quantile(s, np.linspace(0.0, 1.0, n_bins + 1))
    e[0], e[-1] = 0.0, 1.0
    return torch.from_numpy(np.maximum.accumulate(e)).to(device=conf.device, dtype=conf.dtype)


def adaptive_ece(probs, labels, n_bins: int = 15, convention: Convention = "right", inputs: Inputs = "probs") -> float:
    """ECE with equal-mass bins: edges at the k / n_bins quantiles of the top-label confidences.

    Args: as :func:`ece`; the outer edges are 0 and 1, the inner ones quantiles (numpy's
        linear interpolation), and ``convention`` decides which side a confidence lying on an
        edge belongs to.

    Returns:
        Adaptive ECE in [0, 1].
    """
    _check_n_bins(n_bins)
    conf, ok = top_label(probs, labels, inputs)
    return bin_statistics(conf, ok, convention=convention, edges=_quantile_edges(conf, n_bins)).ece


def classwise_ece(
    probs, labels, n_bins: int = 15, convention: Convention = "right", inputs: Inputs = "probs"
) -> float:
    """Classwise ECE (Kull et al., NeurIPS 2019): the mean over classes of the binned ECE of p_c.

    For each class c, every sample's probability of c is binned against whether c is the
    label; ``classwise_ece = (1/C) sum_c sum_b (n_cb / N) |mean p_c - freq(c)|`` over bin b.

    Args: as :func:`ece`.

    Returns:
        Classwise ECE in [0, 1].
    """
    s, y = _check_pair(probs, labels, inputs)
    n_bins = _check_n_bins(n_bins)
    _check_choice(convention, _CONVENTIONS, "convention")
    n, n_classes = s.shape
    edges = _equal_width_edges(n_bins, _work_dtype(s) if inputs == "logits" else s.dtype, s.device)
    classes = torch.arange(n_classes, device=s.device)
    total = None
    for rows in _row_blocks(n, n_classes):
        p = _probs_block(s[rows], inputs)  # [r, C]
        r = p.shape[0]
        groups = classes.repeat(r)  # [r*C]: class of each flattened entry
        hits = (y[rows, None] == classes[None, :]).reshape(-1)  # [r*C]
        sums = _binned_sums(p.reshape(-1), hits, edges, convention, groups, n_classes)
        total = sums if total is None else tuple(a + b for a, b in zip(total, sums))
    _, conf_sum, hit_sum = total  # [C, B']
    return float((conf_sum - hit_sum).abs().sum() / (n * n_classes))


# ----------------------------------------------------------------------------- proper scores


def brier_score(probs, labels, inputs: Inputs = "probs") -> float:
    """Multiclass Brier score: mean over samples of sum_c (p_c - 1[y = c])^2, in [0, 2].

    This is Brier's (1950) sum over classes; some papers divide it by C.

    Args:
        probs: [N, C] probabilities (or logits with ``inputs="logits"``).
        labels: [N] integer labels.
        inputs: ``"probs"`` or ``"logits"``.

    Returns:
        The Brier score.
    """
    s, y = _check_pair(probs, labels, inputs)
    total = 0.0
    for rows in _row_blocks(*s.shape):
        p = _probs_block(s[rows], inputs)  # [r, C]
        p_true = p.gather(1, y[rows, None])[:, 0].to(torch.float64)  # [r]
        sq = (p * p).sum(dim=1).to(torch.float64)  # [r]
        total += float((sq - 2.0 * p_true + 1.0).sum())  # sum_c p_c^2 - 2 p_y + 1
    return total / s.shape[0]


def nll(probs, labels, inputs: Inputs = "probs") -> float:
    """Mean negative log-likelihood of the labels (cross-entropy), in nats.

    From logits it is ``logsumexp(z) - z_y`` (stable for CLIP-scale logits); from
    probabilities ``-log p_y``, which is ``inf`` where ``p_y = 0``.

    Args:
        probs: [N, C] probabilities (or logits with ``inputs="logits"``).
        labels: [N] integer labels.
        inputs: ``"probs"`` or ``"logits"``.

    Returns:
        The mean NLL.
    """
    s, y = _check_pair(probs, labels, inputs)
    if inputs == "probs":
        p_true = s.gather(1, y[:, None])[:, 0].to(torch.float64)  # [N]
        return float(-torch.log(p_true).mean())
    total = 0.0
    for rows in _row_blocks(*s.shape):
        z = s[rows].to(_work_dtype(s))  # [r, C]
        total += float((torch.logsumexp(z, dim=1) - z.gather(1, y[rows, None])[:, 0]).to(torch.float64).sum())
    return total / s.shape[0]


def accuracy(probs, labels, inputs: Inputs = "probs") -> float:
    """Fraction of samples whose argmax is the label."""
    _, ok = top_label(probs, labels, inputs)
    return float(ok.to(torch.float64).mean())


def mean_confidence(probs, labels, inputs: Inputs = "probs") -> float:
    """Mean top-label confidence (labels are only validated, for a uniform signature)."""
    conf, _ = top_label(probs, labels, inputs)
    return float(conf.to(torch.float64).mean())


def confidence_gap(probs, labels, inputs: Inputs = "probs") -> float:
    """Mean confidence minus accuracy: > 0 over-confident, < 0 under-confident.

    Example:
        >>> p = np.array([[0.9, 0.1], [0.8, 0.2]])
        >>> round(confidence_gap(p, np.array([0, 1])), 4)  # confidence 0.85, accuracy 0.5
        0.35
    """
    conf, ok = top_label(probs, labels, inputs)
    return float(conf.to(torch.float64).mean() - ok.to(torch.float64).mean())


def confusion_matrix(scores, labels, inputs: Inputs = "probs") -> np.ndarray:
    """Counts of (true class, predicted class) pairs.

    Args:
        scores: [N, C] probabilities (or logits with ``inputs="logits"``).
        labels: [N] integer labels.
        inputs: ``"probs"`` or ``"logits"``.

    Returns:
        [C, C] int64 array: row = true class, column = predicted class.
    """
    s, y = _check_pair(scores, labels, inputs)
    n_classes = s.shape[1]
    pred = s.argmax(dim=1)  # [N]; softmax keeps the argmax, so logits need no conversion
    flat = torch.bincount(y * n_classes + pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).cpu().numpy()


def per_class_table(scores, labels, class_names=None, n_bins: int = 15, inputs: Inputs = "probs"):
    """Top-label calibration of the predictions on each class's samples.

    Args:
        scores: [N, C] probabilities (or logits with ``inputs="logits"``).
        labels: [N] integer labels.
        class_names: optional C names for the index.
        n_bins: bins of the per-class ECE.
        inputs: ``"probs"`` or ``"logits"``.

    Returns:
        A DataFrame, one row per class with samples: n, accuracy, mean confidence, gap
        (confidence minus accuracy) and ECE of the top-label predictions on that class's samples.
    """
    import pandas as pd

    n_bins = _check_n_bins(n_bins)
    s, y = _check_pair(scores, labels, inputs)
    conf, ok = top_label(s, y, inputs)
    names = list(class_names) if class_names is not None else list(range(s.shape[1]))
    if len(names) != s.shape[1]:
        raise ValueError(f"Expected {s.shape[1]} `class_names`, but got {len(names)}")
    rows = []
    for c in torch.unique(y).tolist():
        mask = y == c
        data = bin_statistics(conf[mask], ok[mask], n_bins=n_bins)
        acc = float(ok[mask].to(torch.float64).mean())
        mean_conf = float(conf[mask].to(torch.float64).mean())
        rows.append({"class": names[c], "n": data.n, "accuracy": acc, "mean confidence": mean_conf,
                     "gap": mean_conf - acc, "ECE": data.ece})
    return pd.DataFrame(rows).set_index("class")


# ----------------------------------------------------------------------------- smooth ECE


def _smooth_ece_at(f: np.ndarray, r: np.ndarray, sigma: float, n_grid: int) -> float:
    """Smooth ECE at bandwidth sigma: integral over t in [0, 1] of |(1/N) sum_i K_sigma(t, f_i) r_i|.

    K is the Gaussian kernel reflected at 0 and 1 (so it integrates to one on [0, 1]); the
    sum is computed on a grid of ``n_grid`` points: each residual is split between its two
    neighbouring grid points (linear interpolation, which keeps its mass and mean), then
    convolved with the sampled Gaussian with mirror boundaries.
    """
    from scipy import ndimage  # here, not at import: most pages never need it

    h = 1.0 / (n_grid - 1)
    pos = f * (n_grid - 1)
    left = np.clip(np.floor(pos).astype(np.int64), 0, n_grid - 2)
    frac = pos - left
    mass = np.bincount(left, weights=(1.0 - frac) * r, minlength=n_grid)
    mass += np.bincount(left + 1, weights=frac * r, minlength=n_grid)
    mass /= len(f)  # [n_grid]: (1/N) sum of residuals deposited at each grid point
    # Mirror boundaries (d c b | a b c d | c b a) reflect about the end grid points t = 0 and 1.
    smoothed = ndimage.gaussian_filter1d(mass, sigma=sigma / h, mode="mirror", truncate=8.0)
    # gaussian_filter1d's weights sum to 1, so smoothed_j ~ h * density_j: sum |.| is the integral
    # (trapezoid rule: half weight at the two ends).
    a = np.abs(smoothed)
    return float(a.sum() - 0.5 * (a[0] + a[-1]))


def smooth_ece_from_confidences(confidences, correct, sigma: float | None = None, n_grid: int | None = None):
    """Smooth ECE (Blasiok and Nakkiran) of confidences against 0/1 outcomes.

    With ``sigma=None`` the bandwidth is the fixed point ``smECE_sigma = sigma`` (unique,
    since smECE_sigma decreases with sigma), found by Brent's method to 1e-6.

    Args:
        confidences: [N] values in [0, 1].
        correct: [N] 0/1 outcomes.
        sigma: kernel bandwidth; None for the paper's self-consistent choice.
        n_grid: grid points on [0, 1]; default ``max(2001, 20 / sigma)``.

    Returns:
        ``(smooth_ece, sigma)``.
    """
    conf, hit = _check_outcomes(confidences, correct)
    if sigma is not None and not (_is_real(sigma) and 0.0 < sigma < math.inf):
        raise ValueError(f"Expected argument `sigma` to be a positive finite number or None, but got {sigma!r}")
    if n_grid is not None and (isinstance(n_grid, bool) or not isinstance(n_grid, (int, np.integer)) or n_grid < 2):
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
    """Smooth ECE of the top-label confidences (Blasiok and Nakkiran; ``relplot.smECE``).

    Args:
        probs: [N, C] probabilities (or logits with ``inputs="logits"``).
        labels: [N] integer labels.
        sigma: kernel bandwidth; None (default) for the self-consistent one.
        inputs: ``"probs"`` or ``"logits"``.

    Returns:
        Smooth ECE in [0, 1].
    """
    conf, ok = top_label(probs, labels, inputs)
    return smooth_ece_from_confidences(conf, ok, sigma)[0]


# ----------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class BootstrapResult:
    """A percentile bootstrap interval.

    Attributes:
        estimate: the metric on the full sample.
        lower: the (1 - level) / 2 percentile of the resampled metrics.
        upper: the (1 + level) / 2 percentile.
        level: the nominal coverage (0.95).
        n_resamples: how many resamples were drawn.
        seed: the seed of the resampling.
    """

    estimate: float
    lower: float
    upper: float
    level: float
    n_resamples: int
    seed: int

    def __str__(self) -> str:
        return f"{self.estimate:.4f} ({self.level:.0%} CI [{self.lower:.4f}, {self.upper:.4f}])"


def bootstrap_ci(
    metric: Callable[..., float],
    probs,
    labels,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    **metric_kwargs,
) -> BootstrapResult:
    """Percentile bootstrap confidence interval for any metric ``metric(probs, labels, **kwargs)``.

    Each resample draws N rows with replacement (one torch generator seeded with ``seed``,
    on the CPU, so the same seed gives the same interval on any device). Each resample
    copies the drawn rows, one resample at a time.

    Args:
        metric: e.g. ``vlmcal.metrics.ece``.
        probs: [N, C] scores passed to ``metric``.
        labels: [N] labels.
        n_resamples: number of bootstrap resamples (>= 1).
        level: coverage in (0, 1).
        seed: seed of the resampling.
        **metric_kwargs: passed on to ``metric`` (``n_bins=20``, ``inputs="logits"``...).

    Returns:
        A :class:`BootstrapResult`.

    Example:
        >>> p = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.7, 0.3]])
        >>> r = bootstrap_ci(accuracy, p, np.array([0, 1, 1, 0]), n_resamples=200, seed=1)
        >>> r.lower <= r.estimate <= r.upper
        True
    """
    s = _as_tensor(probs, "probs")
    y = _as_tensor(labels, "labels")
    _check_bootstrap(n_resamples, level, s.shape[0] if s.ndim else 0, f"`probs` has shape {tuple(s.shape)}")
    if y.shape[:1] != s.shape[:1]:
        raise ValueError(f"Expected `labels` to have one entry per row of `probs` ({s.shape[0]}), but got shape {tuple(y.shape)}")
    return bootstrap_rows(
        lambda idx: metric(s[idx.to(s.device)], y[idx.to(y.device)], **metric_kwargs), s.shape[0], n_resamples, level, seed
    )


def _resampled_rows(n: int, n_resamples: int, seed: int):
    """The bootstrap's draws: ``n_resamples`` times [N] row indices drawn with replacement.

    One CPU torch generator seeded with ``seed``, so a seed gives the same resamples on any
    device and in both :func:`bootstrap_rows` and :func:`bootstrap_weights`.
    """
    gen = torch.Generator().manual_seed(int(seed))
    for _ in range(int(n_resamples)):
        yield torch.randint(n, (n,), generator=gen)  # [N]


def multiplicities(draws: torch.Tensor) -> torch.Tensor:
    """How often each of N rows was drawn: [S, N] row indices -> [S, N] float64 counts (weights
    for :func:`ece_weighted`)."""
    d = _as_tensor(draws, "draws")
    if d.ndim != 2 or d.is_floating_point() or d.is_complex() or d.dtype == torch.bool:
        raise ValueError(f"Expected `draws` to be an integer [S, N] array of row indices, but got {d.dtype} of shape {tuple(d.shape)}")
    if d.numel() and (int(d.min()) < 0 or int(d.max()) >= d.shape[1]):
        raise ValueError(f"Expected `draws` in [0, {d.shape[1] - 1}] (row indices), but got values in [{int(d.min())}, {int(d.max())}]")
    d = d.to(torch.long)
    return torch.zeros(d.shape, dtype=torch.float64, device=d.device).scatter_add_(1, d, torch.ones(d.shape, dtype=torch.float64, device=d.device))


def _check_bootstrap(n_resamples, level, n, rows: str | None = None) -> None:
    """Validate a bootstrap's settings and its number of rows ``n`` (``rows`` says where they come
    from, e.g. "`probs` has shape (0, 3)"; None: the caller's argument ``n``)."""
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"Expected argument `n_resamples` to be an integer larger than 0, but got {n_resamples!r}")
    if not (_is_real(level) and 0.0 < level < 1.0):
        raise ValueError(f"Expected argument `level` to be a number in (0, 1), but got {level!r}")
    if rows is None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise ValueError(f"Expected argument `n` (the number of rows to resample) to be an integer larger than 0, but got {n!r}")
    if rows is not None and n < 1:
        raise ValueError(f"Expected at least one row to resample, but {rows}")


def _percentile_result(estimate: float, values: np.ndarray, level: float, n_resamples: int, seed: int) -> BootstrapResult:
    alpha = (1.0 - level) / 2.0
    lower, upper = np.quantile(values, [alpha, 1.0 - alpha])
    return BootstrapResult(float(estimate), float(lower), float(upper), float(level), int(n_resamples), int(seed))


def bootstrap_rows(
    statistic: Callable[[torch.Tensor], float], n: int, n_resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> BootstrapResult:
    """Percentile bootstrap of any statistic of N rows, given as a function of row indices.

    The core behind :func:`bootstrap_ci`. Use it directly when one figure draws on several
    arrays that share their rows (e.g. many runs on the same images): every array is then
    resampled with the same indices. When the statistic can take all resamples at once, as
    weights, :func:`bootstrap_weights` draws the same resamples and is much faster.

    Args:
        statistic: maps [N] row indices (``arange(N)`` for the estimate, draws with
            replacement for the resamples) to a float.
        n: N, the number of rows.
        n_resamples: number of resamples (one CPU torch generator seeded with ``seed``).
        level: coverage in (0, 1).
        seed: seed of the resampling.

    Returns:
        A :class:`BootstrapResult`.
    """
    _check_bootstrap(n_resamples, level, n)
    values = np.array([float(statistic(rows)) for rows in _resampled_rows(n, n_resamples, seed)])
    return _percentile_result(float(statistic(torch.arange(n))), values, level, n_resamples, seed)


def bootstrap_weights(
    statistic: Callable[[torch.Tensor], torch.Tensor], n: int, n_resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> BootstrapResult:
    """Percentile bootstrap of a statistic that takes every resample at once, as sample weights.

    Resample ``s`` is given as the multiplicities of the N rows in its draw; the draws are
    those of :func:`bootstrap_rows` with the same seed, so for the same statistic both give
    the same interval. Pair it with :func:`ece_weighted`.

    Args:
        statistic: maps [S, N] float64 weights to [S] values (a row of ones is the full sample).
        n: N, the number of rows.
        n_resamples: number of resamples (S).
        level: coverage in (0, 1).
        seed: seed of the resampling.

    Returns:
        A :class:`BootstrapResult`.
    """
    _check_bootstrap(n_resamples, level, n)
    draws = torch.stack(list(_resampled_rows(n, n_resamples, seed)))  # [S, N] row indices
    counts = multiplicities(draws)  # [S, N]
    values = torch.as_tensor(statistic(counts)).to("cpu", torch.float64).reshape(-1).numpy()
    if values.shape != (draws.shape[0],):
        raise ValueError(f"Expected `statistic` to return one value per resample ({draws.shape[0]}), but got shape {values.shape}")
    estimate = float(torch.as_tensor(statistic(torch.ones(1, n, dtype=torch.float64))).reshape(-1)[0])
    return _percentile_result(estimate, values, level, n_resamples, seed)
