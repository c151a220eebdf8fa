"""Scores of [N, C] predictions: binned ECE (``sum_b |conf_sum_b - hit_sum_b| / N``, Guo et al., ICML 2017, with no
division by bin counts, binned by :mod:`vlmcal.metrics.binning`) and its relatives, proper scores, top-label
summaries."""

from __future__ import annotations

import numpy as np
import torch

from vlmcal.metrics import toplabel
from vlmcal.metrics._validation import (_CONVENTIONS, Convention, Inputs, _as_tensor, _check_choice, _check_n_bins,
                                        _check_outcomes, _check_pair)
from vlmcal.metrics.binning import (ReliabilityData, _bin_index, _binned_sums, _equal_width_edges, _quantile_edges,
                                    bin_statistics)
from vlmcal.metrics.toplabel import _probs_block, _row_blocks, _work_dtype, top_label


def reliability_data(scores, labels, n_bins: int = 15, convention: Convention = "right",
                     inputs: Inputs = "probs") -> ReliabilityData:
    """Reliability-diagram data of top-label predictions: per bin, count, mean confidence, accuracy. Arguments as
    :func:`ece`; draw the result with ``vlmcal.papers.common.figures.plot_reliability_diagram``."""
    conf, ok = top_label(scores, labels, inputs)
    return bin_statistics(conf, ok, n_bins=n_bins, convention=convention)


def ece(probs, labels, n_bins: int = 15, convention: Convention = "right", inputs: Inputs = "probs") -> float:
    """Top-label expected calibration error with equal-width bins, in [0, 1].

    ``ECE = sum_b (n_b / N) |acc_b - conf_b|`` over the bins b of the top-label confidence.

    Args:
        probs, labels: [N, C] probabilities (or logits with ``inputs="logits"``) and [N] integer labels in [0, C).
        n_bins: number of bins (default 15, as ES; C-TPT uses 20, DOR's code 10).
        convention: ``"right"``, ``"left"`` or ``"torchmetrics"``, see :func:`bin_statistics`.
    Example:
        >>> p = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
        >>> round(ece(p, np.array([0, 1, 1]), n_bins=10), 4)  # bins: 0.9 right, 0.6 wrong, 0.8 right
        0.3
    """
    return reliability_data(probs, labels, n_bins, convention, inputs).ece


def ece_weighted(confidences, correct, weights, n_bins: int = 15, convention: Convention = "right") -> torch.Tensor:
    """Top-label ECE of many prediction sets under many weightings of their samples, as one matmul.

    For bootstraps: rows of ``confidences``/``correct`` are runs on the same N images, rows of ``weights`` resamples.
    ``sum_b |sum_i w_i (conf_i - hit_i) [i in b]| / sum_i w_i`` is, for integer weights, exactly the resampled ECE.
    Args:
        confidences, correct: [R, N] values in [0, 1] and booleans.
        weights: [S, N] non-negative weights, each row with a positive sum (a row of ones: plain ECE).
        n_bins, convention: as :func:`ece`.
    Returns:
        [S, R] float64: entry ``(s, r)`` is the ECE of run ``r`` with sample ``i`` counted ``weights[s, i]`` times.
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
    idx, n_cols = _bin_index(conf, edges, convention)  # [R, N] bin of each prediction
    gap = conf.to(torch.float64) - hit.to(torch.float64)  # [R, N] confidence minus hit
    out = torch.empty(w.shape[0], n_runs, dtype=torch.float64, device=conf.device)
    if w.shape[0] <= 8:  # for a few weightings, per-bin sums for each one beat building the [N, R*B'] matrix
        cell = (torch.arange(n_runs, device=conf.device)[:, None] * n_cols + idx).reshape(-1)  # [R*N] (run, bin) of each value
        for s, ws in enumerate(w):
            per_bin = torch.bincount(cell, weights=(gap * ws).reshape(-1), minlength=n_runs * n_cols)  # [R*B']
            out[s] = per_bin.view(n_runs, n_cols).abs().sum(dim=1)
        return out / total[:, None]
    block = max(1, toplabel.CHUNK_ELEMENTS // (n * n_cols))  # runs per block: an [N, r, B'] matrix of <= CHUNK_ELEMENTS
    for start in range(0, n_runs, block):
        runs = slice(start, min(start + block, n_runs))
        r = runs.stop - runs.start
        binned_gap = torch.zeros(n, r, n_cols, dtype=torch.float64, device=conf.device)  # [N, r, B']
        binned_gap.scatter_(2, idx[runs].T.unsqueeze(2), gap[runs].T.unsqueeze(2))  # each gap in its bin's column
        per_bin = w @ binned_gap.view(n, r * n_cols)  # [S, N] @ [N, r*B'] -> [S, r*B'] weighted gap per bin
        out[:, runs] = per_bin.view(-1, r, n_cols).abs().sum(dim=2)  # [S, r]
    return out / total[:, None]


def mce(probs, labels, n_bins: int = 15, convention: Convention = "right", inputs: Inputs = "probs") -> float:
    """Maximum calibration error, in [0, 1]: the largest ``|acc_b - conf_b|`` over non-empty equal-width bins.
    Arguments as :func:`ece`."""
    return reliability_data(probs, labels, n_bins, convention, inputs).mce


def adaptive_ece(probs, labels, n_bins: int = 15, convention: Convention = "right", inputs: Inputs = "probs") -> float:
    """ECE with equal-mass bins, in [0, 1]: edges 0, the k / n_bins quantiles of the top-label confidences, and 1.
    Arguments as :func:`ece`; the quantiles interpolate linearly (numpy's default)."""
    _check_n_bins(n_bins)
    conf, ok = top_label(probs, labels, inputs)
    return bin_statistics(conf, ok, convention=convention, edges=_quantile_edges(conf, n_bins)).ece


def classwise_ece(probs, labels, n_bins: int = 15, convention: Convention = "right", inputs: Inputs = "probs") -> float:
    """Classwise ECE (Kull et al., NeurIPS 2019): the mean over classes of the binned ECE of p_c.

    ``(1/C) sum_c sum_b (n_cb / N) |mean p_c - freq(c)|``, in [0, 1], binning every p_c against whether c is the
    label. Arguments as :func:`ece`."""
    s, y = _check_pair(probs, labels, inputs)
    n_bins = _check_n_bins(n_bins)
    _check_choice(convention, _CONVENTIONS, "convention")
    n, n_classes = s.shape
    edges = _equal_width_edges(n_bins, _work_dtype(s) if inputs == "logits" else s.dtype, s.device)
    classes = torch.arange(n_classes, device=s.device)
    conf_sum = hit_sum = 0.0
    for rows in _row_blocks(n, n_classes):
        p = _probs_block(s[rows], inputs)  # [r, C]
        hits = (y[rows, None] == classes[None, :]).reshape(-1)  # [r*C]
        _, c, h = _binned_sums(p.reshape(-1), hits, edges, convention, classes.repeat(p.shape[0]), n_classes)
        conf_sum, hit_sum = conf_sum + c, hit_sum + h  # [C, B']
    return float((conf_sum - hit_sum).abs().sum() / (n * n_classes))


def brier_score(probs, labels, inputs: Inputs = "probs") -> float:
    """Multiclass Brier score (Brier, 1950; not divided by C): mean of sum_c (p_c - 1[y = c])^2, in [0, 2].
    Arguments as :func:`ece`."""
    s, y = _check_pair(probs, labels, inputs)
    total = 0.0
    for rows in _row_blocks(*s.shape):
        p = _probs_block(s[rows], inputs)  # [r, C]
        p_true = p.gather(1, y[rows, None])[:, 0].to(torch.float64)  # [r]
        total += float(((p * p).sum(dim=1).to(torch.float64) - 2.0 * p_true + 1.0).sum())  # sum_c p_c^2 - 2 p_y + 1
    return total / s.shape[0]


def nll(probs, labels, inputs: Inputs = "probs") -> float:
    """Mean negative log-likelihood of the labels (cross-entropy), in nats.
    From logits ``logsumexp(z) - z_y`` (stable at CLIP's scale); from probs ``-log p_y`` (``inf`` if ``p_y = 0``).
    Arguments as :func:`ece`."""
    s, y = _check_pair(probs, labels, inputs)
    if inputs == "probs":
        return float(-torch.log(s.gather(1, y[:, None])[:, 0].to(torch.float64)).mean())  # [N] p_y
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
    """Counts of (true class, predicted class) pairs: a [C, C] int64 array, row = true class, column = predicted
    class. Arguments as :func:`ece`."""
    s, y = _check_pair(scores, labels, inputs)
    n_classes = s.shape[1]
    flat = torch.bincount(y * n_classes + s.argmax(dim=1), minlength=n_classes * n_classes)  # softmax keeps the argmax
    return flat.reshape(n_classes, n_classes).cpu().numpy()


def per_class_table(scores, labels, class_names=None, n_bins: int = 15, inputs: Inputs = "probs"):
    """Top-label calibration of the predictions on each class's samples: a DataFrame, one row per class with samples
    (n, accuracy, mean confidence, gap and ECE), indexed by ``class_names`` if given. Arguments as :func:`ece`."""
    import pandas as pd
    n_bins = _check_n_bins(n_bins)
    s, y = _check_pair(scores, labels, inputs)
    conf, ok = top_label(s, y, inputs)
    names = list(range(s.shape[1]) if class_names is None else class_names)
    if len(names) != s.shape[1]:
        raise ValueError(f"Expected {s.shape[1]} `class_names`, but got {len(names)}")
    rows = []
    for c in torch.unique(y).tolist():
        mask = y == c
        data = bin_statistics(conf[mask], ok[mask], n_bins=n_bins)
        acc, mean_conf = (float(t[mask].to(torch.float64).mean()) for t in (ok, conf))
        rows.append({"class": names[c], "n": data.n, "accuracy": acc, "mean confidence": mean_conf,
                     "gap": mean_conf - acc, "ECE": data.ece})
    return pd.DataFrame(rows).set_index("class")

