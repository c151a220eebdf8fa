"""Top-label histogram binning (Zadrozny and Elkan, ICML 2001), on the bins of ``vlmcal.metrics``."""

from __future__ import annotations

import numpy as np
import torch

from vlmcal import metrics
from vlmcal.calibration._common import _fitted_input
from vlmcal.metrics._validation import _CONVENTIONS, _INPUTS, Convention, Inputs, _as_tensor, _check_choice, _check_n_bins


class HistogramBinning:
    """Top-label histogram binning: a confidence becomes its bin's accuracy on the calibration set.

    The bins are those of ``vlmcal.metrics.ece`` with the same ``n_bins`` and ``convention``; a bin empty at fit time
    leaves its confidences unchanged. The predicted class is kept.

    Attributes:
        n_classes_: C seen at fit time (``transform`` takes scores with C columns only).
        edges_, bin_accuracy_, bin_count_: [B+1] bin edges, and [B'] accuracy (NaN where empty) and samples per bin
            on the fit set (B' = B + 1 under ``"torchmetrics"``).
    Example:
        >>> probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
        >>> hb = HistogramBinning(n_bins=2).fit(probs, np.array([0, 1, 0, 1]))  # (0.5, 1]: 3 of 4 right
        >>> hb.transform(np.array([[0.8, 0.2]])).tolist()
        [0.75]
    """

    def __init__(self, n_bins: int = 15, inputs: Inputs = "probs", convention: Convention = "right"):
        self.n_bins = _check_n_bins(n_bins)
        self.inputs = _check_choice(inputs, _INPUTS, "inputs")
        self.convention = _check_choice(convention, _CONVENTIONS, "convention")

    def fit(self, scores, labels) -> "HistogramBinning":
        """Learn per-bin accuracies from ``scores`` [N, C] and ``labels`` [N]."""
        conf, ok = metrics.top_label(scores, labels, self.inputs)  # [N], [N]
        data = metrics.bin_statistics(conf, ok, n_bins=self.n_bins, convention=self.convention)
        self.edges_, self.bin_accuracy_, self.bin_count_ = data.edges, data.accuracy, data.count
        self.n_classes_ = int(_as_tensor(scores, "scores").shape[1])
        return self

    def transform(self, scores):
        """Calibrated top-label confidences [N] (numpy) of ``scores`` [N, C]."""
        s = _fitted_input(self, scores, "bin_accuracy_", self.inputs, "scores")
        conf, _ = metrics.top_label(s, torch.zeros(s.shape[0], dtype=torch.long, device=s.device), self.inputs)
        conf = conf.to(torch.float64).cpu()  # [N]; the fit-time edges, stored in float64, hold their dtype's values exactly
        idx, _ = metrics.bin_index(conf, torch.from_numpy(self.edges_), self.convention)  # [N] bin of each confidence
        mapped = self.bin_accuracy_[idx.numpy()]
        return np.where(np.isnan(mapped), conf.numpy(), mapped)
