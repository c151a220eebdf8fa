"""C-TPT: "Calibrated Test-Time Prompt Tuning for Vision-Language Models via Text Feature Dispersion" (Yoon et al., ICLR 2024): C7-C10.

TPT and C-TPT runs (and O-TPT and ZERO beside them), cached, with the methods' table, TPT + TS and a paired bootstrap (``tpt_runs``); one
calibration point per prompt template and the ATFD-ECE correlations by regime (``prompt_sweep``); the
claim functions (``claims``).
"""

from vlmcal.papers.common.page_note import backbone_note
from vlmcal.papers.ctpt import claims, figures
from vlmcal.papers.ctpt.prompt_sweep import (REGIMES, DispersionCorrelation, correlation_by_regime,
                                             dispersion_correlation, near_top, regime_of, sweep_condition,
                                             template_points)
from vlmcal.papers.ctpt.settings import TPTPageSettings
from vlmcal.papers.ctpt.tpt_runs import (ALL_METHODS, METHODS, TPTGrid, TPTRun, claim_intervals, fit_tpt_temperature, lambda_sweep,
                                         method_contrast, method_table, paper_layout, predict_tpt, split_rows,
                                         template_prefix, tpt_bootstrap, tpt_grid, tpt_outcomes, tpt_template_points,
                                         best_calibrated, ranking_text)

__all__ = [
    "backbone_note", "claims", "figures", "REGIMES", "DispersionCorrelation", "correlation_by_regime",
    "dispersion_correlation", "near_top", "regime_of", "sweep_condition", "template_points",
    "TPTPageSettings", "METHODS", "TPTGrid", "TPTRun", "claim_intervals", "fit_tpt_temperature", "lambda_sweep",
    "method_contrast", "method_table", "paper_layout", "predict_tpt", "split_rows", "template_prefix",
    "tpt_bootstrap", "tpt_grid", "tpt_outcomes", "tpt_template_points", "ALL_METHODS", "best_calibrated", "ranking_text",
]
