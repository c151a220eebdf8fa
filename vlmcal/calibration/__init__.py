"""Post-hoc calibrators in scikit-learn's manner (fit on a labelled calibration set, then apply): temperature and
vector scaling (Guo et al., ICML 2017), histogram binning (Zadrozny and Elkan, 2001), and fitting on a stratified
few-sample set (the ES paper's "temperature scaling with 40 labelled samples")."""

from __future__ import annotations

from vlmcal.calibration.histogram import HistogramBinning
from vlmcal.calibration.sampling import fit_on_n_samples, stratified_sample
from vlmcal.calibration.temperature import TemperatureScaling, TemperatureSearch, fit_temperatures
from vlmcal.calibration.vector import VectorScaling

__all__ = ["TemperatureSearch", "TemperatureScaling", "fit_temperatures", "VectorScaling", "HistogramBinning",
           "stratified_sample", "fit_on_n_samples"]
