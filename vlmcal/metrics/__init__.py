"""Calibration metrics: binned ECE and its relatives, Brier, NLL, smooth ECE, bootstrap intervals.

The package, one idea a module:

- :mod:`~vlmcal.metrics.binning`: the binning core. :func:`bin_index` decides which bin each
  confidence falls in, under one of three conventions; :func:`bin_statistics` sums, per bin,
  the count, the confidences and the hits. Everything binned goes through it: ECE, MCE,
  adaptive and classwise ECE, the bootstraps' weighted ECE, the reliability diagram and
  ``vlmcal.calibration.HistogramBinning``.
- :mod:`~vlmcal.metrics.toplabel`: [N, C] scores to top-label confidences, block by block.
- :mod:`~vlmcal.metrics.scores`: ECE (``sum_b |conf_sum_b - hit_sum_b| / N``, Guo et al., ICML
  2017, with no division by bin counts), MCE, adaptive, classwise and weighted ECE, Brier,
  NLL, accuracy and confidence, the confusion matrix and the per-class table.
- :mod:`~vlmcal.metrics.smooth`: smooth ECE (Blasiok and Nakkiran, ICLR 2024; ``relplot``).
- :mod:`~vlmcal.metrics.bootstrap`: the one source of resamples and the percentile intervals.
- :mod:`~vlmcal.metrics._validation`: the input checks every public function starts with.

Inputs are torch tensors (CPU or GPU) or numpy arrays: scores ``[N, C]`` and integer
labels ``[N]``. Whether the scores are probabilities or logits is said by the caller
(``inputs="probs"`` or ``inputs="logits"``), never guessed from their values. From an
``[N, C]`` input no second ``[N, C]`` array is made: logits are turned into probabilities
block by block (at most ``CHUNK_ELEMENTS`` numbers at a time; the value read is
``vlmcal.metrics.toplabel.CHUNK_ELEMENTS``).

Binning conventions (``convention=``), with ``n_bins`` equal-width bins whose edges are
the correctly rounded ``k / n_bins`` in the confidences' own dtype:

- ``"right"`` (default): bin b holds ``edge_b < conf <= edge_{b+1}``, 0 in the first bin.
  ES (15 bins) and C-TPT (20 bins) bin this way.
- ``"left"``: ``edge_b <= conf < edge_{b+1}``, 1 in the last bin (numpy.histogram, netcal).
- ``"torchmetrics"``: ``edge_b <= conf < edge_{b+1}``, and a confidence of exactly 1.0 in an
  extra bin of its own (torchmetrics, its issue #3510).

The DOR code base uses 10 bins. The conventions give the same ECE unless a confidence
lies exactly on an edge, and a top-label confidence of exactly 1.0 is common in float32
for CLIP's sharp softmax, so the choice matters in practice; ``tests/metrics/test_metrics.py`` shows
each difference. (torchmetrics also builds its edges with ``torch.linspace``, which for
some ``n_bins``, 15 among them, is one unit in the last place away from ``k / n_bins``.)
"""

from __future__ import annotations

from vlmcal.metrics import binning, bootstrap, scores, smooth, toplabel
from vlmcal.metrics._validation import Convention, Inputs
from vlmcal.metrics.binning import ReliabilityData, bin_index, bin_statistics
from vlmcal.metrics.bootstrap import BootstrapResult, bootstrap_ci, bootstrap_rows, bootstrap_weights, multiplicities
from vlmcal.metrics.paired import outcome_figures, paired_bootstrap
from vlmcal.metrics.scores import (
    accuracy,
    adaptive_ece,
    brier_score,
    classwise_ece,
    confidence_gap,
    confusion_matrix,
    ece,
    ece_weighted,
    mce,
    mean_confidence,
    nll,
    per_class_table,
    reliability_data,
)
from vlmcal.metrics.smooth import smooth_ece, smooth_ece_from_confidences
from vlmcal.metrics.toplabel import CHUNK_ELEMENTS, probs_from_logits, top_label

__all__ = [
    "CHUNK_ELEMENTS",
    "Convention",
    "Inputs",
    "ReliabilityData",
    "BootstrapResult",
    "probs_from_logits",
    "top_label",
    "bin_index",
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
    "outcome_figures",
    "paired_bootstrap",
]
