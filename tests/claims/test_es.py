"""Each ES claim function on synthetic results: on each side of its threshold, and when it cannot be tested.

Every case checks ``holds`` and that the verdict's text cites the numbers it was given,
formatted as the function formats them (ECE with 4 decimals, shares as percentages).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vlmcal import study
from vlmcal.claims import es
from vlmcal.claims._common import compare_with_bar, threshold
from vlmcal.metrics import BootstrapResult

BACKBONE = "`openclip:some-model:weights`"


def ci(estimate: float, lower: float, upper: float) -> BootstrapResult:
    return BootstrapResult(estimate, lower, upper, 0.95, 200, 0)


def assert_cites(text: str, *numbers: str) -> None:
    for number in numbers:
        assert number in text, f"{number!r} not cited in: {text}"


def assert_no_stand_in_wording(verdict) -> None:
    for text in (verdict.measured, verdict.why, verdict.statement):
        assert "stand-in" not in text.lower()


# ----------------------------------------------------------------------------- the noise rule


@pytest.mark.parametrize(
    "interval, expected, decided_by",
    [
        (ci(0.02, 0.01, 0.03), True, "interval"),  # wholly at most the bar
        (ci(0.08, 0.06, 0.10), False, "interval"),  # wholly above it
        (ci(0.048, 0.03, 0.06), True, "estimate"),  # straddles, narrower than the margin
        (ci(0.04, -0.02, 0.10), None, "noise"),  # straddles, as wide as the margin
        (ci(float("nan"), float("nan"), float("nan")), None, "noise"),
    ],
)
def test_compare_with_bar(interval, expected, decided_by):
    test = compare_with_bar(interval, bar=0.05, margin=0.05, at_most=True)
    assert test.holds is expected and test.decided_by == decided_by


def test_thresholds_come_from_the_data_file_with_their_reading():
    from vlmcal.paper_values import paper_value

    for value_id in ("c1_threshold_similar_ece", "c2_threshold_ece_ratio", "c3_threshold_ts_helps_share",
                     "c3_threshold_stable_rise", "c4_threshold_recovery_share", "c6_threshold_plateau_ece"):
        assert paper_value(value_id)["source"].startswith("vlmcal's reading of")
    assert threshold("c6_threshold_plateau_ece") == 0.01  # absolute ECE, not relative to the full-set ECE
    with pytest.raises(ValueError, match="statement"):
        threshold("c1_statement")


# ----------------------------------------------------------------------------- C1


def _c1_table(vlm: tuple[float, float], supervised: tuple[float, float] | None) -> pd.DataFrame:
    rows = [("VLM", "m", "clean", "clean", vlm[0]), ("VLM", "m", "noise", "noise-5", vlm[1])]
    if supervised is not None:
        rows += [("supervised", "s", "clean", "clean", supervised[0]), ("supervised", "s", "noise", "noise-5", supervised[1])]
    return pd.DataFrame(rows, columns=["kind", "model", "shift", "condition", "ece_before"])


def test_c1_holds_when_vlms_are_worse_calibrated():
    v = es.c1_vlms_not_better_calibrated(_c1_table((0.10, 0.20), (0.05, 0.15)), ci(0.05, 0.04, 0.06), BACKBONE)
    assert v.holds is True and v.backbone == BACKBONE
    assert_cites(v.measured, "0.1500", "0.1000", "+0.0500", "-0.0100")
    assert_cites(v.interval, "[+0.0400, +0.0600]")


def test_c1_fails_when_vlms_are_better_calibrated_beyond_the_margin():
    v = es.c1_vlms_not_better_calibrated(_c1_table((0.02, 0.08), (0.07, 0.13)), ci(-0.05, -0.06, -0.04), BACKBONE)
    assert v.holds is False
    assert_cites(v.why, "0.0500", "0.0100", "VLMs 0.0200", "supervised 0.0700")
    assert_no_stand_in_wording(v)


def test_c1_not_tested_without_a_supervised_baseline():
    v = es.c1_vlms_not_better_calibrated(_c1_table((0.02, 0.08), None), None, BACKBONE)
    assert v.holds is None
    assert v.why == "no supervised baseline was in this run, so the VLMs' ECE had nothing to be compared with"
    assert_cites(v.measured, "0.0500")


def test_c1_not_tested_when_the_interval_is_wider_than_the_margin():
    v = es.c1_vlms_not_better_calibrated(_c1_table((0.05, 0.05), (0.055, 0.055)), ci(-0.005, -0.03, 0.02), BACKBONE)
    assert v.holds is None
    assert_cites(v.why, "not testable at this sample size", "[-0.0300, +0.0200]", "0.0250", "0.0100")


def test_c1_decided_by_the_estimate_when_the_interval_is_narrow():
    v = es.c1_vlms_not_better_calibrated(_c1_table((0.05, 0.05), (0.058, 0.058)), ci(-0.008, -0.014, -0.002), BACKBONE)
    assert v.holds is True


# ----------------------------------------------------------------------------- C2


def _c2_table(before: tuple[float, float], after: tuple[float, float], temperature: float = 1.1) -> pd.DataFrame:
    return pd.DataFrame({
        "kind": "VLM", "model": "m", "shift": ["clean", "noise"], "condition": ["clean", "noise-5"],
        "temperature": temperature, "ece_before": before, "ece_after": after,
    })


def test_c2_holds_when_ts_more_than_halves_ece():
    v = es.c2_ts_improves_markedly(_c2_table((0.15, 0.25), (0.04, 0.06)), ci(0.25, 0.2, 0.3), BACKBONE)
    assert v.holds is True
    assert_cites(v.measured, "0.2000", "0.0500", "25%", "50%")
    assert_cites(v.interval, "[20%, 30%]")


def test_c2_fails_and_says_ts_had_little_to_fix():
    v = es.c2_ts_improves_markedly(_c2_table((0.02, 0.04), (0.015, 0.035)), ci(0.83, 0.7, 0.95), BACKBONE)
    assert v.holds is False
    assert_cites(v.why, "83%", "50%", "from 0.0200 to 0.0150", "0.05", "little to fix", "from 0.0400 to 0.0350", "m 1.10")
    assert_no_stand_in_wording(v)


def test_c2_premise_not_claimed_when_clean_ece_was_high():
    v = es.c2_ts_improves_markedly(_c2_table((0.20, 0.30), (0.15, 0.25)), ci(0.8, 0.7, 0.9), BACKBONE)
    assert v.holds is False and "little to fix" not in v.why
    assert_cites(v.why, "from 0.2000 to 0.1500")


def test_c2_not_tested_when_the_ratio_is_too_noisy():
    v = es.c2_ts_improves_markedly(_c2_table((0.05, 0.05), (0.03, 0.03)), ci(0.6, 0.1, 1.2), BACKBONE)
    assert v.holds is None
    assert_cites(v.why, "not testable at this sample size", "[10%, 120%]", "55%", "50%")


def test_c2_not_tested_when_there_is_nothing_to_improve():
    v = es.c2_ts_improves_markedly(_c2_table((0.0, 0.0), (0.0, 0.0)), ci(float("nan"), float("nan"), float("nan")), BACKBONE)
    assert v.holds is None
    assert_cites(v.why, "0.0000", "nothing for TS to improve")


# ----------------------------------------------------------------------------- C3


def _c3_table(shifted_before: list[float], shifted_after: list[float]) -> pd.DataFrame:
    n = len(shifted_before)
    return pd.DataFrame({
        "kind": "VLM", "model": "m",
        "shift": ["clean"] + [f"shift{i}" for i in range(n)],
        "condition": ["clean"] + [f"shift{i}-1" for i in range(n)],
        "accuracy": [0.9] + [0.5] * n,
        "ece_before": [0.10] + shifted_before,
        "ece_after": [0.03] + shifted_after,
        "confidence_after": [0.88] + [0.6] * n,
    })


def test_c3_holds_when_ts_helps_everywhere_and_ece_barely_rises():
    v = es.c3_ts_stable_under_shift(_c3_table([0.2] * 4, [0.05] * 4), ci(0.02, 0.01, 0.03), BACKBONE)
    assert v.holds is True and v.why == ""
    assert_cites(v.measured, "100%", "90%", "0.0500", "0.0300", "+0.0200", "+0.0500")


def test_c3_fails_when_ts_rarely_helps():
    v = es.c3_ts_stable_under_shift(_c3_table([0.2, 0.2, 0.05, 0.05], [0.05, 0.05, 0.09, 0.12]), ci(0.02, 0.01, 0.03), BACKBONE)
    assert v.holds is False
    assert_cites(v.why, "50%", "90%", "shift3 0.1200", "accuracy 0.50", "confidence after TS 0.60")
    assert_no_stand_in_wording(v)


def test_c3_fails_when_ece_rises_beyond_the_bar():
    v = es.c3_ts_stable_under_shift(_c3_table([0.3] * 4, [0.11] * 4), ci(0.08, 0.07, 0.09), BACKBONE)
    assert v.holds is False
    assert_cites(v.why, "0.0800", "0.0300", "0.0500")


def test_c3_not_tested_when_the_rise_is_too_noisy():
    v = es.c3_ts_stable_under_shift(_c3_table([0.2] * 4, [0.07] * 4), ci(0.04, -0.02, 0.10), BACKBONE)
    assert v.holds is None
    assert_cites(v.why, "not testable at this sample size", "[-0.0200, +0.1000]", "0.0600", "0.0500")


def test_c3_not_tested_without_shifts():
    v = es.c3_ts_stable_under_shift(_c3_table([], []), None, BACKBONE)
    assert v.holds is None
    assert_cites(v.why, "no shifted condition was in this run")
    assert_cites(v.measured, "0.0300")


# ----------------------------------------------------------------------------- C4


def _c4_table(with_source: list[float], with_target: list[float]) -> pd.DataFrame:
    """Three VLM cells with ECE 0.10 before TS and the given ECEs after each temperature."""
    return pd.DataFrame({
        "kind": "VLM", "model": "m", "target": ["new", "all", "base"], "source": ["base", "base", "new"],
        "ece_before": 0.10, "ece_source_ts": with_source, "ece_target_ts": with_target,
        "temperature_source": [1.2, 1.2, 1.5], "temperature_target": [1.1, 1.3, 1.4],
    })


INTERVALS = {"fitted on base": ci(0.9, 0.7, 1.1), "fitted on new": ci(0.8, 0.6, 1.0)}


def test_c4_holds_when_most_of_the_reduction_transfers():
    v = es.c4_ts_transfers_across_labels(_c4_table([0.05, 0.05, 0.06], [0.04, 0.05, 0.05]), INTERVALS, BACKBONE)
    assert v.holds is True  # (0.10 - 0.0533) / (0.10 - 0.0467) = 87.5%
    assert_cites(v.measured, "88%", "80%", "0.1000", "0.0533", "0.0467", "3 VLM")
    assert_cites(v.interval, "fitted on base [70%, 110%]", "fitted on new [60%, 100%]")


def test_c4_fails_when_little_transfers():
    v = es.c4_ts_transfers_across_labels(_c4_table([0.08, 0.07, 0.09], [0.04, 0.05, 0.06]), INTERVALS, BACKBONE)
    assert v.holds is False  # (0.10 - 0.08) / (0.10 - 0.05) = 40%
    assert_cites(v.why, "+0.0200", "0.0500", "40%", "80%", "base 1.20 (target 1.20)", "new 1.50 (target 1.40)")
    assert_no_stand_in_wording(v)


def test_c4_is_a_ratio_of_means_not_a_mean_of_ratios():
    """A cell with almost nothing to recover must not swamp the rest (its own ratio here is -100x)."""
    v = es.c4_ts_transfers_across_labels(_c4_table([0.05, 0.05, 0.11], [0.05, 0.05, 0.0999]), INTERVALS, BACKBONE)
    assert v.holds is True and "90%" in v.measured  # (0.10 - 0.07) / (0.10 - 0.0666); the mean of ratios is -3267%


def test_c4_not_tested_when_there_is_no_reduction_to_recover():
    v = es.c4_ts_transfers_across_labels(_c4_table([0.12, 0.10, 0.11], [0.10, 0.11, 0.10]), INTERVALS, BACKBONE)
    assert v.holds is None
    assert_cites(v.why, "0.1000 before", "0.1033 after", "no reduction to recover")


# ----------------------------------------------------------------------------- C5


def _c5_points(accuracy, confidence) -> pd.DataFrame:
    n = len(accuracy)
    return pd.DataFrame({"kind": "VLM", "model": "m", "condition": [f"c{i}" for i in range(n)], "labels": "all",
                         "accuracy": accuracy, "confidence_after": confidence})


CORRELATIONS = {"r2": ci(0.95, 0.9, 0.99), "spearman": ci(0.97, 0.93, 1.0)}


def test_c5_holds_when_confidence_tracks_accuracy():
    accuracy = np.linspace(0.2, 0.9, 8)
    points = _c5_points(accuracy, accuracy + 0.01 * np.sin(np.arange(8)))
    v = es.c5_confidence_tracks_accuracy(points, CORRELATIONS, BACKBONE)
    stats = study.confidence_vs_accuracy(points)
    assert v.holds is True
    assert_cites(v.measured, f"R^2 = {stats['r2']:.3f}", f"Spearman rho = {stats['spearman']:.3f}", "0.90", "8 VLM points")
    assert_cites(v.interval, "[0.900, 0.990]", "[0.930, 1.000]")


def test_c5_fails_when_confidence_does_not_track_accuracy():
    accuracy = np.array([0.2, 0.4, 0.6, 0.8, 0.3, 0.7])
    confidence = np.array([0.9, 0.5, 0.85, 0.6, 0.8, 0.55])
    points = _c5_points(accuracy, confidence)
    v = es.c5_confidence_tracks_accuracy(points, CORRELATIONS, BACKBONE)
    stats = study.confidence_vs_accuracy(points)
    assert v.holds is False
    assert_cites(v.why, f"R^2 is {stats['r2']:.3f}", f"{0.90 - stats['r2']:.3f} below 0.90", f"{(confidence - accuracy).mean():+.3f}",
                 "m on c0 (all labels): confidence 0.90, accuracy 0.20")
    assert_no_stand_in_wording(v)


def test_c5_not_tested_with_too_few_or_flat_points():
    v = es.c5_confidence_tracks_accuracy(_c5_points([0.5, 0.6], [0.5, 0.6]), None, BACKBONE)
    assert v.holds is None and "only 2 VLM point(s)" in v.why
    v = es.c5_confidence_tracks_accuracy(_c5_points([0.5] * 4, [0.4, 0.5, 0.6, 0.7]), None, BACKBONE)
    assert v.holds is None
    assert_cites(v.why, "0.500 to 0.500", "0.400 to 0.700", "4 VLM points")


# ----------------------------------------------------------------------------- C6


def _c6_table(ece_by_size: dict[int, float], full: float, pool: int = 100) -> pd.DataFrame:
    rows = []
    for n, ece in ece_by_size.items():
        rows += [("m", "VLM", n, str(n), d, 1.0, ece + (d - 1) * 0.001, 0) for d in range(3)]  # three draws around ece
    rows.append(("m", "VLM", pool, "all", 0, 1.0, full, 0))
    return pd.DataFrame(rows, columns=["model", "kind", "n", "size", "draw", "temperature", "ece_after", "seed"])


def _full(half_width: float, full: float = 0.02) -> dict[str, BootstrapResult]:
    return {"m": ci(full, full - half_width, full + half_width)}


def test_c6_holds_when_a_few_samples_reach_the_plateau():
    plan = study.plan_calibration_sizes([5, 10, 50, 200, "all"], pool=100)
    v = es.c6_few_samples_suffice(_c6_table({5: 0.06, 10: 0.025, 50: 0.021}, 0.02), _full(0.004), plan, 10, BACKBONE)
    assert v.holds is True
    assert_cites(v.measured, "median smallest sufficient n over 1 VLM(s) and 1 (model, seed) pair(s): 10", "0.0100", "0.0200",
                 "at most 50 samples", "at n = 50", "+0.0010")
    assert_cites(v.interval, "0.0040")
    assert_cites(v.why, "size 200 was not run: larger than the calibration pool of 100 images", "10 classes", "345")


def test_c6_fails_when_no_small_size_reaches_the_plateau():
    plan = study.plan_calibration_sizes([5, 10, 50, "all"], pool=100)
    v = es.c6_few_samples_suffice(_c6_table({5: 0.10, 10: 0.08, 50: 0.05}, 0.02), _full(0.004), plan, 1000, BACKBONE)
    assert v.holds is False
    assert_cites(v.measured, "none within the tolerance")
    assert_cites(v.why, "at n = 50 the mean ECE after TS is 0.0500, 0.0300 above the full-set ECE of 0.0200", "0.0100")
    assert "classes" not in v.why and "not run" not in v.why  # many classes, nothing skipped: no notes
    assert_no_stand_in_wording(v)


def test_c6_not_tested_when_the_tolerance_is_below_the_noise():
    plan = study.plan_calibration_sizes([5, 10, 50, "all"], pool=100)
    v = es.c6_few_samples_suffice(_c6_table({5: 0.06, 10: 0.025, 50: 0.021}, 0.02), _full(0.02), plan, 10, BACKBONE)
    assert v.holds is None
    assert_cites(v.why, "not testable at this sample size", "half-width on the evaluation half is 0.0200", "tolerance of 0.0100")


def test_c6_not_tested_when_no_small_size_was_run():
    plan = study.plan_calibration_sizes([100, 500, 600, "all"], pool=200)
    v = es.c6_few_samples_suffice(_c6_table({100: 0.03}, 0.02, pool=200), _full(0.004), plan, 10, BACKBONE)
    assert v.holds is None
    assert_cites(v.why, "no calibration-set size of at most 50 was run", "sizes 500, 600 were not run", "pool of 200")


def test_sufficient_sizes_uses_the_absolute_tolerance():
    table = _c6_table({5: 0.035, 10: 0.029}, 0.02)  # 0.015 and 0.009 above the full set: only n = 10 is within 0.01
    assert es.sufficient_sizes(table).loc[0, "smallest_n"] == 10
