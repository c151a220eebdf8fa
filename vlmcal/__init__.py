"""vlmcal: calibration of vision-language models, reproduced claim by claim.

Importable as ``vlmcal.<name>``: metrics (:func:`ece`, :func:`reliability_data`, :func:`bootstrap_ci`, ...),
calibrators (:class:`TemperatureScaling`, ...), :func:`load_backbone`, :class:`ZeroShotClassifier`, :func:`tpt`
(TPT, C-TPT), :class:`PromptTuner` (CoOp, KgCoOp, DOR) and :func:`predict`. The book's code (``vlmcal.standins``,
``vlmcal.papers``, ``vlmcal.book``) sits above the library, which never imports it.

Example:
    >>> import torch, vlmcal
    >>> logits = torch.tensor([[4.0, 0.0], [0.0, 1.0], [2.0, 2.5]])
    >>> labels = torch.tensor([0, 1, 0])
    >>> round(float(vlmcal.ece(logits, labels, inputs="logits", n_bins=10)), 4)
    0.3031
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public name -> its module, imported on first use (PEP 562) so that ``import vlmcal`` stays cheap.
_EXPORTS = {
    **dict.fromkeys(["ece", "mce", "adaptive_ece", "classwise_ece", "smooth_ece", "nll", "brier_score", "accuracy",
                     "reliability_data", "bootstrap_ci", "probs_from_logits"], "vlmcal.metrics"),
    **dict.fromkeys(["TemperatureScaling", "VectorScaling", "HistogramBinning", "fit_temperatures"], "vlmcal.calibration"),
    **dict.fromkeys(["load_backbone", "list_backbones", "Backbone"], "vlmcal.backbones"),
    **dict.fromkeys(["ZeroShotClassifier", "class_text_features", "zero_shot_logits"], "vlmcal.prompting.zeroshot"),
    **dict.fromkeys(["tpt", "TPTSettings", "TPTResult", "PromptTuner", "method_settings"], "vlmcal.adaptation"),
    "predict": "vlmcal.pipeline.predictions",
    "image_features": "vlmcal.pipeline.features",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vlmcal' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # the next look-up is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
