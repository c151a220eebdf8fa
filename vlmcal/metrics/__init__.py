"""Calibration metrics: binned ECE (Guo et al., ICML 2017) and its relatives, Brier, NLL, smooth ECE (Blasiok and
Nakkiran, ICLR 2024), bootstrap intervals, of [N, C] scores (``inputs="probs"`` or ``"logits"``) and [N] integer
labels, torch tensors (CPU or GPU) or numpy arrays. Bins: ES uses 15, C-TPT 20 (both ``convention="right"``, the
default), DOR's code 10. The conventions differ only for a confidence on an edge, such as the 1.0 common in float32
for CLIP's sharp softmax. Edges are the correctly rounded ``k / n_bins`` in the confidences' dtype; torchmetrics'
``torch.linspace`` edges are one unit in the last place off for some ``n_bins``, 15 among them."""

from __future__ import annotations

from vlmcal.metrics import binning, bootstrap, scores, smooth, toplabel
from vlmcal.metrics._validation import Convention, Inputs
from vlmcal.metrics.binning import ReliabilityData, bin_index, bin_statistics
from vlmcal.metrics.bootstrap import BootstrapResult, bootstrap_ci, bootstrap_rows, bootstrap_weights, multiplicities
from vlmcal.metrics.paired import outcome_figures, paired_bootstrap
from vlmcal.metrics.scores import (accuracy, adaptive_ece, brier_score, classwise_ece, confidence_gap, confusion_matrix,
                                   ece, ece_weighted, mce, mean_confidence, nll, per_class_table, reliability_data)
from vlmcal.metrics.smooth import smooth_ece, smooth_ece_from_confidences
from vlmcal.metrics.toplabel import CHUNK_ELEMENTS, probs_from_logits, top_label

__all__ = ["CHUNK_ELEMENTS", "Convention", "Inputs", "ReliabilityData", "BootstrapResult", "probs_from_logits",
           "top_label", "bin_index", "bin_statistics", "reliability_data", "ece", "mce", "ece_weighted", "adaptive_ece",
           "classwise_ece", "brier_score", "nll", "accuracy", "mean_confidence", "confidence_gap", "confusion_matrix",
           "per_class_table", "smooth_ece", "smooth_ece_from_confidences", "bootstrap_ci", "bootstrap_rows",
           "bootstrap_weights", "multiplicities", "outcome_figures", "paired_bootstrap"]
