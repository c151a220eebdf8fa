"""C-TPT: "Calibrated Test-Time Prompt Tuning for Vision-Language Models via Text Feature Dispersion"
(Yoon et al., ICLR 2024): claims C7-C10, the TPT runs (``tpt_runs``) and the prompt sweep (``prompt_sweep``).
"""

from vlmcal.papers.common.page_note import backbone_note
from vlmcal.papers.ctpt import claims, figures
from vlmcal.papers.ctpt.prompt_sweep import (REGIMES, DispersionCorrelation, correlation_by_regime,
                                             dispersion_correlation, near_top, regime_of, sweep_condition,
                                             template_points)
from vlmcal.papers.ctpt.settings import TPTPageSettings
from vlmcal.papers.ctpt.tpt_runs import (ALL_METHODS, METHODS, TPTGrid, TPTRun, best_calibrated, claim_intervals,
                                         fit_tpt_temperature, lambda_sweep, method_contrast, method_table, paper_layout,
                                         predict_tpt, ranking_text, split_rows, template_prefix, tpt_bootstrap,
                                         tpt_grid, tpt_outcomes, tpt_template_points)

__all__ = [
    "backbone_note", "claims", "figures", "REGIMES", "DispersionCorrelation", "correlation_by_regime",
    "dispersion_correlation", "near_top", "regime_of", "sweep_condition", "template_points",
    "TPTPageSettings", "METHODS", "TPTGrid", "TPTRun", "claim_intervals", "fit_tpt_temperature", "lambda_sweep",
    "method_contrast", "method_table", "paper_layout", "predict_tpt", "split_rows", "template_prefix",
    "tpt_bootstrap", "tpt_grid", "tpt_outcomes", "tpt_template_points", "ALL_METHODS", "best_calibrated",
    "ranking_text",
]
