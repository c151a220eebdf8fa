"""ES: "An Empirical Study Into What Matters for Calibrating Vision-Language Models" (Tu et al., ICML 2024): C1-C6,
from backbone names to the pages' tables, intervals and verdicts.

Example:
    >>> from vlmcal.papers import es
    >>> settings = es.StudySettings(backbones=["default"], supervised="supervised", dataset="fashion-mnist",
    ...                             seeds=[0], n_bins=15, device="", cache_dir="")  # doctest: +SKIP
    >>> runs = es.collect_runs(settings)  # doctest: +SKIP
"""

from vlmcal.papers.common.page_note import backbone_note
from vlmcal.papers.es import claims, figures
from vlmcal.papers.es.coverage import (PAPER_LIKE, SIDES, CoveragePanel, coverage_note, coverage_panels, model_coverage,
                                       shifted_rows, side_rows)
from vlmcal.papers.es.intervals import (bootstrap_confidence_vs_accuracy, bootstrap_confidence_vs_accuracy_by_side,
                                        bootstrap_label_shift, full_set_ece, mean_ece_bootstrap, shift_rise_after_ts,
                                        shift_rise_by_side, ts_ece_ratio, vlm_minus_supervised_ece)
from vlmcal.papers.es.runs import collect_runs
from vlmcal.papers.es.set_size import (CalibrationSizePlan, calibration_set_size, gap_to_full_set,
                                       plan_calibration_sizes, smallest_sufficient_n)
from vlmcal.papers.es.settings import Calibration101Settings, SetSizeSettings, StudySettings, ZeroShotSettings
from vlmcal.papers.es.tables import (confidence_accuracy_points, confidence_vs_accuracy, confidence_vs_accuracy_by_side,
                                     label_shift, ts_across_shifts)
from vlmcal.pipeline.predictions import covered_shifts_of, load_test_data, model_inputs, predict, prompt_templates
from vlmcal.pipeline.runs import Run, coverage_label, model_temperatures, restrict_to_classes, split_calibration

__all__ = [
    "backbone_note", "claims", "figures", "PAPER_LIKE", "SIDES", "CoveragePanel", "coverage_note", "coverage_panels",
    "model_coverage", "shifted_rows", "side_rows", "bootstrap_confidence_vs_accuracy",
    "bootstrap_confidence_vs_accuracy_by_side", "bootstrap_label_shift", "full_set_ece", "mean_ece_bootstrap",
    "shift_rise_after_ts", "shift_rise_by_side", "ts_ece_ratio", "vlm_minus_supervised_ece", "collect_runs",
    "CalibrationSizePlan", "calibration_set_size", "gap_to_full_set", "plan_calibration_sizes", "smallest_sufficient_n",
    "Calibration101Settings", "SetSizeSettings", "StudySettings", "ZeroShotSettings", "confidence_accuracy_points",
    "confidence_vs_accuracy", "confidence_vs_accuracy_by_side", "label_shift", "ts_across_shifts", "covered_shifts_of",
    "load_test_data", "model_inputs", "predict", "prompt_templates", "Run", "coverage_label", "model_temperatures",
    "restrict_to_classes", "split_calibration",
]
