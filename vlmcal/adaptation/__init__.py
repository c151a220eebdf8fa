"""Adapting a frozen backbone's prompts: test-time adaptation (``tpt``: TPT, C-TPT, O-TPT and ZERO) and prompt learning on
labelled shots (``prompt_learning``: CoOp, KgCoOp, either with DOR, whose outlier pool is ``outliers``), all tuning
the learnable context of ``vlmcal.prompting.prompt_learner``. :func:`tpt` is the batched engine :func:`tpt_batched`;
:func:`tpt_reference` is the one-image-at-a-time reference it is tested against.
"""

from vlmcal.adaptation.prompt_learning import (
    METHODS as PROMPT_LEARNING_METHODS, PromptTuner, PromptTuningSettings, TrackedSplit, anchor_loss, learning_rate,
    method_settings,
)
from vlmcal.adaptation.tpt import (
    PHASES, TPTResult, TPTSettings, ZeroResult, augmented_views, confident_views, ensemble_features, initial_contexts,
    input_normalization, marginal_entropy, tpt_batched, tpt_batched as tpt, tpt_reference, zero_batched, zero_reference,
)

__all__ = [
    "PHASES", "TPTSettings", "TPTResult", "augmented_views", "confident_views", "marginal_entropy", "tpt",
    "tpt_batched", "tpt_reference", "ensemble_features", "initial_contexts", "input_normalization", "ZeroResult",
    "zero_batched", "zero_reference",
    "PROMPT_LEARNING_METHODS", "PromptTuner", "PromptTuningSettings", "TrackedSplit", "anchor_loss", "learning_rate",
    "method_settings",
]
