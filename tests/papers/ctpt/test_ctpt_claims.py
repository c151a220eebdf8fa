"""Each C-TPT claim function (C7–C10) on synthetic intervals: on each side of its bar, and when it cannot be tested.

Every case checks ``holds`` and that the verdict's text cites the numbers it was given, formatted
as the function formats them (ECE, accuracy and confidence in percentage points with 2 decimals,
ratios as percentages, correlations with 3 decimals).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from vlmcal.papers.ctpt import claims as ctpt
from vlmcal.papers.common.rules import threshold
from vlmcal.metrics import BootstrapResult
from vlmcal.papers.common.paper_values import paper_value, paper_values

BACKBONE = "`openclip:some-model:weights`"
NAN = float("nan")


def ci(estimate: float, lower: float, upper: float) -> BootstrapResult:
    return BootstrapResult(estimate, lower, upper, 0.95, 200, 0)


def assert_cites(text: str, *numbers: str) -> None:
    for number in numbers:
        assert number in text, f"{number!r} not cited in: {text}"


# ----------------------------------------------------------------------------- the data file

THRESHOLDS = ("c7_threshold_ece_rise", "c7_margin_overconfidence", "c7_margin_accuracy_change", "c8_min_prompts",
              "c8_margin_correlation", "c9_threshold_ece_ratio", "c9_threshold_accuracy_drop", "c10_margin_ece_difference")


def test_thresholds_are_rows_with_vlmcals_reading_and_statements_exist():
    for value_id in THRESHOLDS:
        assert paper_value(value_id)["source"].startswith("vlmcal's reading of Yoon et al., ICLR 2024, ")
        assert paper_value(value_id)["paper"] == "CTPT"
    for claim in ("c7", "c8", "c9", "c10"):
        assert paper_value(f"{claim}_statement").value is None
    assert threshold("c9_threshold_ece_ratio") == 0.67 and threshold("c8_min_prompts") == 5


def test_every_threshold_is_above_what_the_paper_reports_as_no_effect():
    """The paper's own figures are on the claim's side of each bar: the bars do not ask more than the paper shows."""
    rise = (paper_value("c7_ece_tpt").value - paper_value("c7_ece_init").value) / 100.0
    assert rise >= threshold("c7_threshold_ece_rise")
    assert paper_value("c8_pearson_rn50").value < 0 and paper_value("c8_pearson_vitb16").value < 0
    ratio = paper_value("c9_vitb16_hard_ctpt_ece").value / paper_value("c9_vitb16_hard_tpt_ece").value
    assert ratio <= threshold("c9_threshold_ece_ratio")


# ----------------------------------------------------------------------------- C7

RISE, GAIN, OVER = ci(0.07, 0.05, 0.09), ci(0.013, 0.006, 0.02), ci(0.09, 0.07, 0.11)


def test_c7_holds_when_ece_rises_accuracy_rises_and_the_model_is_over_confident():
    v = ctpt.c7_tpt_worsens_calibration(RISE, GAIN, OVER, BACKBONE)
    assert v.holds is True and v.why == "" and v.backbone == BACKBONE and v.claim == "C7"
    assert_cites(v.measured, "+7.00 points", "at least +1.00 points", "+1.30 points (TPT raised accuracy)",
                 "+9.00 points (over-confident)")
    assert_cites(v.interval, "[+5.00, +9.00] points", "[+0.60, +2.00] points", "[+7.00, +11.00] points")
    assert_cites(v.paper_figure, "4.43 percent", "11.6 percent", "accuracy 63.7 -> 65.0")
    assert v.statement == paper_value("c7_statement")["quantity"]


def test_c7_accuracy_unchanged_within_noise_is_stated_but_does_not_decide():
    v = ctpt.c7_tpt_worsens_calibration(RISE, ci(0.003, -0.005, 0.011), OVER, BACKBONE)
    assert v.holds is True
    assert_cites(v.measured, "+0.30 points (accuracy unchanged within noise)")
    assert_cites(v.why, "accuracy unchanged within noise", "+0.30 points", "[-0.50, +1.10] points", "contains 0")


def test_c7_a_narrow_accuracy_drop_straddling_zero_does_not_fail_the_claim():
    v = ctpt.c7_tpt_worsens_calibration(RISE, ci(-0.002, -0.006, 0.002), OVER, BACKBONE)
    assert v.holds is True
    assert_cites(v.why, "accuracy unchanged within noise", "-0.20 points")


def test_c7_fails_when_tpt_lowered_accuracy():
    v = ctpt.c7_tpt_worsens_calibration(RISE, ci(-0.02, -0.03, -0.01), OVER, BACKBONE)
    assert v.holds is False
    assert_cites(v.why, "TPT lowered accuracy here", "-2.00 points", "[-3.00, -1.00] points")
    assert_cites(v.measured, "(TPT lowered accuracy)")


def test_c7_fails_when_ece_does_not_rise_by_a_point():
    v = ctpt.c7_tpt_worsens_calibration(ci(0.002, -0.001, 0.005), GAIN, OVER, BACKBONE)
    assert v.holds is False
    assert_cites(v.why, "rose by only +0.20 points", "[-0.10, +0.50] points", "+1.00 points")


def test_c7_fails_when_the_model_is_under_confident_after_tpt():
    v = ctpt.c7_tpt_worsens_calibration(RISE, GAIN, ci(-0.04, -0.06, -0.02), BACKBONE)
    assert v.holds is False
    assert_cites(v.measured, "-4.00 points (under-confident)")
    assert_cites(v.why, "under-confident", "4.00 points below its accuracy", "[-6.00, -2.00] points")


def test_c7_not_tested_when_the_rise_is_too_noisy():
    v = ctpt.c7_tpt_worsens_calibration(ci(0.015, -0.01, 0.04), GAIN, OVER, BACKBONE)
    assert v.holds is None
    assert_cites(v.why, "not testable at this sample size", "[-1.00, +4.00] points", "2.50 points", "1.00 points")


def test_c7_not_tested_when_over_confidence_is_too_noisy():
    v = ctpt.c7_tpt_worsens_calibration(RISE, GAIN, ci(0.01, -0.03, 0.05), BACKBONE)
    assert v.holds is None
    assert_cites(v.why, "mean confidence minus accuracy", "[-3.00, +5.00] points", "4.00 points")
    assert_cites(v.measured, "undecided within noise")


def test_c7_a_failure_outweighs_noise():
    v = ctpt.c7_tpt_worsens_calibration(ci(0.015, -0.01, 0.04), ci(-0.02, -0.03, -0.01), OVER, BACKBONE)
    assert v.holds is False
    assert_cites(v.why, "TPT lowered accuracy here", "not testable at this sample size")


def test_c7_reports_the_shifted_sets_as_a_second_result():
    shifted = ci(-0.01, -0.02, 0.0)  # a fall on shifted sets does not decide
    v = ctpt.c7_tpt_worsens_calibration(RISE, GAIN, OVER, BACKBONE, shifted_ece_rise=shifted)
    assert v.holds is True
    assert_cites(v.measured, "Shifted sets (a second result, which does not decide the verdict)", "-1.00 points",
                 "[-2.00, +0.00] points", "at least +1.00 points: no", "ECE 5.04 -> 12.0 percent")


# ----------------------------------------------------------------------------- C8


def _regimes(rows: list[tuple[str, str, int, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["stage", "regime", "n", "pearson", "pearson_lower", "pearson_upper"])


BOTH_REGIMES = _regimes([
    ("zero-shot", "under-confident", 8, -0.6, -0.9, -0.2),
    ("after TPT", "over-confident", 9, 0.5, 0.2, 0.8),
    ("after TPT", "under-confident", 2, NAN, NAN, NAN),
])


def test_c8_holds_when_the_correlation_is_negative_by_its_interval():
    v = ctpt.c8_dispersion_correlates_negatively(ci(-0.55, -0.8, -0.2), ci(-0.5, -0.75, -0.1), 12, BACKBONE)
    assert v.holds is True and v.why == ""
    assert_cites(v.measured, "over 12 prompts within 3 points of the best accuracy", "-0.550 (negative", "-0.500")
    assert_cites(v.interval, "Pearson [-0.800, -0.200]", "Spearman [-0.750, -0.100]")
    assert_cites(v.paper_figure, "-0.7 coefficient", "-0.76 coefficient", "3 percentage points")


def test_c8_fails_when_the_correlation_is_positive_by_its_interval():
    v = ctpt.c8_dispersion_correlates_negatively(ci(0.4, 0.1, 0.7), ci(0.3, 0.0, 0.6), 12, BACKBONE)
    assert v.holds is False
    assert_cites(v.why, "correlates positively", "+0.400", "[+0.100, +0.700]", "opposite sign")


def test_c8_not_tested_when_the_interval_straddles_zero_widely():
    v = ctpt.c8_dispersion_correlates_negatively(ci(-0.2, -0.6, 0.3), ci(-0.1, -0.5, 0.4), 12, BACKBONE)
    assert v.holds is None
    assert_cites(v.why, "not testable at this sample size", "[-0.600, +0.300]", "0.450", "0.100")


def test_c8_decided_by_the_estimate_when_the_interval_straddles_zero_narrowly():
    v = ctpt.c8_dispersion_correlates_negatively(ci(-0.05, -0.12, 0.02), ci(-0.05, -0.1, 0.0), 40, BACKBONE)
    assert v.holds is True


def test_c8_not_tested_with_too_few_prompts():
    v = ctpt.c8_dispersion_correlates_negatively(ci(-0.9, -1.0, -0.8), ci(-0.9, -1.0, -0.8), 3, BACKBONE)
    assert v.holds is None and v.interval == ""
    assert_cites(v.why, "only 3 prompt(s) lie within 3 points of the best accuracy", "at least 5")


def test_regime_sentence_names_each_sign_with_its_numbers():
    text = ctpt.regime_sentence(BOTH_REGIMES)
    assert text.startswith("By confidence regime, the correlation of ATFD with ECE is negative, C-TPT's reading")
    assert_cites(text, "the zero-shot, under-confident group (n = 8, r = -0.600, 95% CI [-0.900, -0.200])",
                 "positive, DOR's reading for an over-confident model",
                 "the after TPT, over-confident group (n = 9, r = +0.500, 95% CI [+0.200, +0.800])",
                 "not computed (too few prompts to correlate) in the after TPT, under-confident group (n = 2)",
                 "in 2 of 2 decided group(s)")


def test_regime_sentence_counts_a_sign_against_the_mechanism_and_an_undecided_group():
    regimes = _regimes([("zero-shot", "over-confident", 10, -0.5, -0.8, -0.1), ("after TPT", "under-confident", 10, 0.1, -0.4, 0.6)])
    text = ctpt.regime_sentence(regimes)
    assert_cites(text, "negative, C-TPT's reading (more dispersion, lower ECE), in the zero-shot, over-confident group",
                 "undecided (its 95% CI contains 0", "the after TPT, under-confident group (n = 10, r = +0.100",
                 "in 0 of 1 decided group(s)")
    assert "positive, DOR" not in text


def test_regime_sentence_says_what_input_it_needs():
    with pytest.raises(ValueError, match="pearson_lower"):
        ctpt.regime_sentence(BOTH_REGIMES.drop(columns="pearson_lower"))


def test_c8_failure_is_explained_by_the_over_confident_regime():
    v = ctpt.c8_dispersion_correlates_negatively(ci(0.4, 0.1, 0.7), ci(0.3, 0.0, 0.6), 12, BACKBONE, regimes=BOTH_REGIMES)
    assert v.holds is False
    assert_cites(v.measured, "By confidence regime (a second result, which does not decide the verdict)",
                 "n = 9, r = +0.500")
    assert_cites(v.why, "positive where the model is over-confident", "n = 9, r = +0.500",
                 "more dispersion, wider logits, more confidence, higher ECE")


def test_c8_holding_overall_still_notes_a_positive_over_confident_regime():
    v = ctpt.c8_dispersion_correlates_negatively(ci(-0.55, -0.8, -0.2), ci(-0.5, -0.75, -0.1), 12, BACKBONE,
                                                 regimes=BOTH_REGIMES)
    assert v.holds is True
    assert_cites(v.why, "positive where the model is over-confident", "n = 9")
    all_negative = _regimes([("zero-shot", "under-confident", 8, -0.6, -0.9, -0.2)])
    quiet = ctpt.c8_dispersion_correlates_negatively(ci(-0.55, -0.8, -0.2), ci(-0.5, -0.75, -0.1), 12, BACKBONE,
                                                     regimes=all_negative)
    assert quiet.holds is True and quiet.why == ""


# ----------------------------------------------------------------------------- C9

SAME_ACCURACY = ci(-0.002, -0.008, 0.004)


def test_c9_holds_when_ece_is_more_than_a_third_lower_at_the_same_accuracy():
    v = ctpt.c9_ctpt_halves_ece(ci(0.48, 0.40, 0.56), SAME_ACCURACY, BACKBONE)
    assert v.holds is True and v.why == ""
    assert_cites(v.measured, "48% of ECE with TPT", "at most 67%", "-0.20 points", "a drop of at most 1.00 points")
    assert_cites(v.interval, "[40%, 56%]", "[-0.80, +0.40] points")


def test_c9_paper_figure_is_computed_from_the_rows():
    v = ctpt.c9_ctpt_halves_ece(ci(0.48, 0.40, 0.56), SAME_ACCURACY, BACKBONE)
    t1 = [paper_value(f"c9_{m}_{i}_ctpt_ece").value / paper_value(f"c9_{m}_{i}_tpt_ece").value
          for m in ("rn50", "vitb16") for i in ("hard", "ens")]
    assert_cites(v.paper_figure, "11.6 percent", "5.13 percent", f"Table 1, computed from its rows: ECE with C-TPT is "
                 f"{min(t1):.0%}-{max(t1):.0%} of ECE with TPT", "Table 2")


def test_c9_fails_when_the_ratio_is_above_the_bar():
    v = ctpt.c9_ctpt_halves_ece(ci(0.85, 0.78, 0.92), SAME_ACCURACY, BACKBONE)
    assert v.holds is False
    assert_cites(v.why, "85% of ECE with TPT", "[78%, 92%]", "above the bar of 67%")


def test_c9_fails_when_c_tpt_costs_accuracy():
    v = ctpt.c9_ctpt_halves_ece(ci(0.48, 0.40, 0.56), ci(-0.03, -0.04, -0.02), BACKBONE)
    assert v.holds is False
    assert_cites(v.why, "lowered accuracy by 3.00 points", "[-4.00, -2.00] points", "1.00-point tolerance")


def test_c9_not_tested_when_the_ratio_is_too_noisy_and_says_which_part():
    v = ctpt.c9_ctpt_halves_ece(ci(0.7, 0.2, 1.2), SAME_ACCURACY, BACKBONE)
    assert v.holds is None
    assert_cites(v.why, "the ECE ratio is not testable at this sample size", "[20%, 120%]", "50%", "33%")
    assert "accuracy change is" not in v.why


def test_c9_not_tested_when_the_accuracy_change_is_too_noisy():
    v = ctpt.c9_ctpt_halves_ece(ci(0.48, 0.40, 0.56), ci(-0.01, -0.04, 0.02), BACKBONE)
    assert v.holds is None
    assert_cites(v.why, "the accuracy change is not testable", "[-4.00, +2.00] points", "3.00 points", "-1.00 points")


def test_c9_a_failure_outweighs_noise():
    v = ctpt.c9_ctpt_halves_ece(ci(0.7, 0.2, 1.2), ci(-0.03, -0.04, -0.02), BACKBONE)
    assert v.holds is False
    assert_cites(v.why, "lowered accuracy by 3.00 points", "the ECE ratio is not testable")


def test_c9_not_tested_when_the_ratio_is_undefined():
    v = ctpt.c9_ctpt_halves_ece(ci(NAN, NAN, NAN), SAME_ACCURACY, BACKBONE)
    assert v.holds is None
    assert_cites(v.why, "undefined")
    assert_cites(v.measured, "-0.20 points")


def test_c9_reports_other_settings_without_deciding():
    others = pd.DataFrame({"init": ["ensemble", "hard prompt"], "side": ["clean", "shifted"],
                           "ratio": [0.5, 0.9], "lower": [0.4, 0.8], "upper": [0.6, 1.0]})
    v = ctpt.c9_ctpt_halves_ece(ci(0.48, 0.40, 0.56), SAME_ACCURACY, BACKBONE, others=others)
    assert v.holds is True
    assert_cites(v.measured, "Other settings (a second result, which does not decide the verdict)",
                 "ensemble, clean: 50% (95% CI [40%, 60%]), at most 67%: yes",
                 "hard prompt, shifted: 90% (95% CI [80%, 100%]), at most 67%: no")
    with pytest.raises(ValueError, match="upper"):
        ctpt.c9_ctpt_halves_ece(ci(0.48, 0.40, 0.56), SAME_ACCURACY, BACKBONE, others=others.drop(columns="upper"))


# ----------------------------------------------------------------------------- C10


def test_c10_holds_when_c_tpt_has_the_lower_ece():
    v = ctpt.c10_ctpt_beats_tpt_ts(ci(-0.015, -0.025, -0.005), 1.31, "the labelled calibration half", BACKBONE)
    assert v.holds is True and v.why == ""
    assert_cites(v.measured, "-1.50 points (C-TPT lower", "TS temperature 1.31, fitted on the labelled calibration half",
                 f"{paper_value('c10_ts_temperature_vit').value:.2f} (ViT)", f"{paper_value('c10_ts_temperature_rn').value:.2f} (RN)")
    assert_cites(v.interval, "[-2.50, -0.50] points")
    assert_cites(v.paper_figure, "1.16 temperature")


def test_c10_fails_when_tpt_with_ts_has_the_lower_ece():
    v = ctpt.c10_ctpt_beats_tpt_ts(ci(0.012, 0.005, 0.02), 1.31, "ImageNet-like data", BACKBONE)
    assert v.holds is False
    assert_cites(v.measured, "+1.20 points (TPT + TS lower")
    assert_cites(v.why, "temperature 1.31 (fitted on ImageNet-like data)", "1.20 points higher", "[+0.50, +2.00] points",
                 "softening", "1.16 for ViT")


def test_c10_not_tested_when_the_difference_is_too_noisy():
    v = ctpt.c10_ctpt_beats_tpt_ts(ci(-0.005, -0.03, 0.02), 0.9, "ImageNet-like data", BACKBONE)
    assert v.holds is None
    assert_cites(v.why, "not testable at this sample size", "[-3.00, +2.00] points", "2.50 points", "1.00 points")


def test_c10_decided_by_the_estimate_when_the_interval_straddles_zero_narrowly():
    v = ctpt.c10_ctpt_beats_tpt_ts(ci(0.003, -0.002, 0.008), 0.9, "ImageNet-like data", BACKBONE)
    assert v.holds is False
    assert_cites(v.why, "0.30 points higher", "sharpening")


@pytest.mark.parametrize("temperature", [0.0, -1.0, math.nan])
def test_c10_rejects_an_impossible_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        ctpt.c10_ctpt_beats_tpt_ts(ci(-0.015, -0.025, -0.005), temperature, "x", BACKBONE)


def test_later_paper_rows_show_each_papers_own_figures_and_mark_what_it_does_not_report():
    rows = ctpt.later_paper_rows()
    otpt = rows.xs(("CLIP-ViT-B/16", "O-TPT"), level=("backbone", "method")).iloc[0]
    assert (float(otpt["accuracy (%)"]), float(otpt["ECE (%)"])) == (paper_value("otpt_t1_vitb16_hard_acc").value,
                                                                    paper_value("otpt_t1_vitb16_hard_ece").value)
    zero = rows.xs("ZERO", level="method")
    assert (zero["ECE (%)"] == "not reported").all()  # ZERO's tables give accuracy only
    assert sorted(map(float, zero["accuracy (%)"])) == sorted(paper_value(f"zero_{k}_vitb16_zero_acc").value
                                                              for k in ("fg", "nds"))
    # every source names its paper and where the figure was read
    for paper, prefix in (("Sharifdeen et al., CVPR 2025", "otpt_"), ("Farina et al., NeurIPS 2024", "zero_")):
        sources = [paper_value(i)["source"] for i in paper_values()["id"] if i.startswith(prefix)]
        assert sources and all(s.startswith(paper) and "project page" in s for s in sources)
