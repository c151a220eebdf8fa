"""Post-hoc calibrators in scikit-learn's manner: fit on a labelled calibration set, then apply.

- :mod:`~vlmcal.calibration.temperature`: :class:`TemperatureScaling` (Guo et al., ICML 2017), logits / T, and
  :func:`fit_temperatures` for many calibration sets at once, with its settings in :class:`TemperatureSearch`.
- :mod:`~vlmcal.calibration.vector`: :class:`VectorScaling` (Guo et al.), a weight and a bias per class.
- :mod:`~vlmcal.calibration.histogram`: :class:`HistogramBinning` (Zadrozny and Elkan, 2001), on the bins of ECE.
- :mod:`~vlmcal.calibration.sampling`: :func:`stratified_sample` and :func:`fit_on_n_samples` ("temperature
  scaling with 40 labelled samples", the ES paper's few-sample claim).
"""

from __future__ import annotations

from vlmcal.calibration.histogram import HistogramBinning
from vlmcal.calibration.sampling import fit_on_n_samples, stratified_sample
from vlmcal.calibration.temperature import TemperatureScaling, TemperatureSearch, fit_temperatures
from vlmcal.calibration.vector import VectorScaling

__all__ = ["TemperatureSearch", "TemperatureScaling", "fit_temperatures", "VectorScaling", "HistogramBinning",
           "stratified_sample", "fit_on_n_samples"]
