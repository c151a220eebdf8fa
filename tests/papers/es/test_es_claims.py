"""Each ES claim function on synthetic results: on each side of its threshold, and when it cannot be tested.

Every case checks ``holds`` and that the verdict's text cites the numbers it was given,
formatted as the function formats them (ECE with 4 decimals, shares as percentages).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vlmcal.papers import es as study
from vlmcal.papers.es import claims as es
from vlmcal.papers.common.rules import compare_with_bar, threshold
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
    from vlmcal.papers.common.paper_values import paper_value

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

COVERED_SHIFTS = ["gaussian_noise", "defocus_blur", "brightness", "invert", "sketch", "shot_noise", "motion_blur", "edges", "zoom_blur", "speckle_noise"]
HELD_OUT_SHIFTS = ["contrast", "elastic_transform", "pixelate", "jpeg_compression"]


def _c3_table(shifted_before: list[float], shifted_after: list[float], held_out_before: list[float] = (),
              held_out_after: list[float] = (), coverage: str = "covered", model: str = "m") -> pd.DataFrame:
    """One VLM: clean (ECE 0.10 before TS, 0.03 after), then cells of covered shifts and cells of held-out shifts.

    ``coverage`` labels the first group of shifted cells ("covered", or "unknown" for a model of unknown coverage).
    """
    n, k = len(shifted_before), len(held_out_before)
    return pd.DataFrame({
        "kind": "VLM", "model": model,
        "shift": ["clean"] + COVERED_SHIFTS[:n] + HELD_OUT_SHIFTS[:k],
        "condition": ["clean"] + [f"{s}-1" for s in COVERED_SHIFTS[:n] + HELD_OUT_SHIFTS[:k]],
        "coverage": ["clean"] + [coverage] * n + ["held out"] * k,
        "accuracy": [0.9] + [0.5] * (n + k),
        "ece_before": [0.10] + list(shifted_before) + list(held_out_before),
        "ece_after": [0.03] + list(shifted_after) + list(held_out_after),
        "confidence_after": [0.88] + [0.6] * (n + k),
    })


def _rises(paper_like: BootstrapResult | None, held_out: BootstrapResult | None = None) -> dict:
    return {"paper-like": paper_like, "held out": held_out}


def test_c3_holds_when_ts_helps_everywhere_and_ece_barely_rises():
    v = es.c3_ts_stable_under_shift(_c3_table([0.2] * 4, [0.05] * 4), _rises(ci(0.02, 0.01, 0.03)), BACKBONE)
    assert v.holds is True and v.why == ""
    assert_cites(v.measured, "the 4 shift(s) covered by the VLMs' pretraining data", "100%", "90%", "0.0500", "0.0300",
                 "+0.0200", "+0.0500")
    assert "Held-out" not in v.measured  # no held-out shift in this run: no second result
    assert_cites(v.interval, "95% CI of the rise on covered shifts [+0.0100, +0.0300]")


@pytest.mark.parametrize("n_helped, holds", [(9, True), (8, False)])  # 90% is enough ("at least"), 80% is not
def test_c3_helps_share_on_each_side_of_its_bar(n_helped, holds):
    before = [0.2] * n_helped + [0.04] * (10 - n_helped)  # TS raises ECE (0.04 -> 0.05) in the other cells
    v = es.c3_ts_stable_under_shift(_c3_table(before, [0.05] * 10), _rises(ci(0.02, 0.01, 0.03)), BACKBONE)
    assert v.holds is holds
    assert_cites(v.measured, f"{n_helped * 10}% of 10 shifted VLM cells")
    if not holds:
        assert_cites(v.why, "lowered ECE in 80% of the shifted cells, short of 90%")


def test_c3_fails_when_ts_rarely_helps():
    table = _c3_table([0.2, 0.2, 0.05, 0.05], [0.05, 0.05, 0.09, 0.12])
    v = es.c3_ts_stable_under_shift(table, _rises(ci(0.02, 0.01, 0.03)), BACKBONE)
    assert v.holds is False
    assert_cites(v.why, "50%", "90%", "invert 0.1200", "accuracy 0.50", "confidence after TS 0.60")
    assert_no_stand_in_wording(v)


@pytest.mark.parametrize(
    "rise, holds, cited",
    [
        (ci(0.045, 0.04, 0.049), True, "+0.0450"),  # wholly at most the bar
        (ci(0.08, 0.07, 0.09), False, "rises by 0.0800 under shift, 0.0300 more than 0.0500"),  # wholly above it
        (ci(0.052, 0.03, 0.07), False, "rises by 0.0520"),  # straddles, narrower than the margin: the estimate decides
        (ci(0.048, 0.03, 0.07), True, "+0.0480"),
        (ci(0.04, -0.02, 0.10), None, "not testable at this sample size"),  # straddles, as wide as the margin
    ],
)
def test_c3_rise_on_each_side_of_its_bar(rise, holds, cited):
    v = es.c3_ts_stable_under_shift(_c3_table([0.3] * 4, [0.11] * 4), _rises(rise), BACKBONE)
    assert v.holds is holds
    assert_cites(v.measured if holds else v.why, cited)


def test_c3_not_tested_when_the_rise_is_too_noisy():
    v = es.c3_ts_stable_under_shift(_c3_table([0.2] * 4, [0.07] * 4), _rises(ci(0.04, -0.02, 0.10)), BACKBONE)
    assert v.holds is None
    assert_cites(v.why, "not testable at this sample size", "[-0.0200, +0.1000]", "0.0600", "0.0500")


def test_c3_terrible_held_out_shifts_do_not_decide():
    table = _c3_table([0.2] * 4, [0.05] * 4, held_out_before=[0.1] * 3, held_out_after=[0.4] * 3)
    v = es.c3_ts_stable_under_shift(table, _rises(ci(0.02, 0.01, 0.03), ci(0.37, 0.35, 0.39)), BACKBONE)
    assert v.holds is True and v.why == ""
    assert_cites(v.measured, "Held-out shifts (a second result, which does not decide the verdict), 3 shift(s)",
                 "lowers ECE in 0% of 3 shifted VLM cells", "0.4000", "+0.3700", "[+0.3500, +0.3900]",
                 "on their own they would not meet the bars")


def test_c3_good_held_out_shifts_do_not_rescue_bad_covered_ones():
    table = _c3_table([0.3] * 4, [0.2] * 4, held_out_before=[0.2] * 3, held_out_after=[0.04] * 3)
    v = es.c3_ts_stable_under_shift(table, _rises(ci(0.17, 0.16, 0.18), ci(0.01, 0.005, 0.015)), BACKBONE)
    assert v.holds is False
    assert_cites(v.why, "rises by 0.1700")
    assert "contrast" not in v.why  # the worst shifts named are covered ones
    assert_cites(v.measured, "on their own they would meet both bars", "+0.0100")


def test_c3_held_out_side_too_noisy_is_said_so():
    table = _c3_table([0.2] * 4, [0.05] * 4, held_out_before=[0.2] * 3, held_out_after=[0.07] * 3)
    v = es.c3_ts_stable_under_shift(table, _rises(ci(0.02, 0.01, 0.03), ci(0.04, -0.02, 0.10)), BACKBONE)
    assert v.holds is True
    assert_cites(v.measured, "their rise is too noisy to compare with the bar")


def test_c3_decides_on_every_shift_when_coverage_is_unknown():
    table = _c3_table([0.2] * 4, [0.05] * 4, coverage="unknown")
    v = es.c3_ts_stable_under_shift(table, _rises(ci(0.02, 0.01, 0.03)), BACKBONE)
    assert v.holds is True
    assert_cites(v.measured, "all 4 shift(s), as the pretraining coverage of `m` is unknown", "100% of 4 shifted VLM cells")
    assert_cites(v.interval, "on all shifts")
    bad = es.c3_ts_stable_under_shift(_c3_table([0.3] * 4, [0.11] * 4, coverage="unknown"), _rises(ci(0.08, 0.07, 0.09)), BACKBONE)
    assert bad.holds is False and "0.0800" in bad.why


def test_c3_mixed_run_decides_on_covered_and_unknown_shifts():
    table = pd.concat([_c3_table([0.2] * 2, [0.05] * 2, held_out_before=[0.2], held_out_after=[0.3]),
                       _c3_table([0.2] * 3, [0.05] * 3, coverage="unknown", model="clip")], ignore_index=True)
    v = es.c3_ts_stable_under_shift(table, _rises(ci(0.02, 0.01, 0.03), ci(0.27, 0.25, 0.29)), BACKBONE)
    assert v.holds is True
    assert_cites(v.measured, "covered by the VLMs' pretraining data or of unknown coverage (that of `clip`)",
                 "100% of 5 shifted VLM cells", "1 shift(s)")
    assert_cites(v.interval, "on covered shifts and shifts of unknown coverage [+0.0100, +0.0300]")


def test_c3_not_tested_when_every_shift_is_held_out():
    table = _c3_table([], [], held_out_before=[0.2] * 3, held_out_after=[0.05] * 3)
    v = es.c3_ts_stable_under_shift(table, _rises(None, ci(0.02, 0.01, 0.03)), BACKBONE)
    assert v.holds is None and v.interval == ""
    assert_cites(v.why, "not testable on this run's shifts", "none of its 3 shift(s) (contrast, elastic_transform, pixelate)",
                 "all are held out", "the paper's shifts resemble covered ones")
    assert_cites(v.measured, "100% of 3 shifted VLM cells", "+0.0200", "on their own they would meet both bars")


def test_c3_not_tested_without_shifts():
    v = es.c3_ts_stable_under_shift(_c3_table([], []), None, BACKBONE)
    assert v.holds is None
    assert_cites(v.why, "no shifted condition was in this run")
    assert_cites(v.measured, "0.0300")


def test_c3_says_what_input_it_needs():
    with pytest.raises(ValueError, match="coverage.*ts_across_shifts"):
        es.c3_ts_stable_under_shift(_c3_table([0.2], [0.05]).drop(columns="coverage"), _rises(ci(0.02, 0.01, 0.03)), BACKBONE)
    with pytest.raises(TypeError, match="shift_rise_by_side"):
        es.c3_ts_stable_under_shift(_c3_table([0.2], [0.05]), ci(0.02, 0.01, 0.03), BACKBONE)
    with pytest.raises(ValueError, match="paper-like.*shift_rise_by_side"):
        es.c3_ts_stable_under_shift(_c3_table([0.2], [0.05]), _rises(None), BACKBONE)


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


def _c5_points(accuracy, confidence, coverage="covered", model="m") -> pd.DataFrame:
    """One VLM's points: the first on clean data, the others on shifted conditions labelled ``coverage``."""
    n = len(accuracy)
    names = HELD_OUT_SHIFTS if coverage == "held out" else COVERED_SHIFTS
    return pd.DataFrame({"kind": "VLM", "model": model, "shift": ["clean"] + [names[i % len(names)] for i in range(n - 1)],
                         "condition": [f"{model}{i}" for i in range(n)], "labels": "all",
                         "coverage": ["clean"] + [coverage] * (n - 1), "accuracy": accuracy, "confidence_after": confidence})


def _with_held_out(points: pd.DataFrame, accuracy, confidence) -> pd.DataFrame:
    n = len(accuracy)
    held_out = pd.DataFrame({"kind": "VLM", "model": "m", "shift": [HELD_OUT_SHIFTS[i % 4] for i in range(n)],
                             "condition": [f"h{i}" for i in range(n)], "labels": "all",
                             "coverage": "held out", "accuracy": accuracy, "confidence_after": confidence})
    return pd.concat([points, held_out], ignore_index=True)


CORRELATIONS = {"paper-like": {"r2": ci(0.95, 0.9, 0.99), "spearman": ci(0.97, 0.93, 1.0)}, "held out": None}
TRACKING = np.linspace(0.2, 0.9, 8)  # accuracy, and confidence that tracks it closely
GOOD = (TRACKING, TRACKING + 0.01 * np.sin(np.arange(8)))
BAD = (np.array([0.2, 0.4, 0.6, 0.8, 0.3, 0.7]), np.array([0.9, 0.5, 0.85, 0.6, 0.8, 0.55]))


def test_c5_holds_when_confidence_tracks_accuracy():
    points = _c5_points(*GOOD)
    v = es.c5_confidence_tracks_accuracy(points, CORRELATIONS, BACKBONE)
    stats = study.confidence_vs_accuracy(points)
    assert v.holds is True
    assert_cites(v.measured, f"R^2 = {stats['r2']:.3f}", f"Spearman rho = {stats['spearman']:.3f}", "0.90", "8 VLM points",
                 "the 7 shift(s) covered by the VLMs' pretraining data")
    assert_cites(v.interval, "95% CI on clean data and covered shifts", "[0.900, 0.990]", "[0.930, 1.000]")


def test_c5_fails_when_confidence_does_not_track_accuracy():
    points = _c5_points(*BAD)
    v = es.c5_confidence_tracks_accuracy(points, CORRELATIONS, BACKBONE)
    stats = study.confidence_vs_accuracy(points)
    assert v.holds is False
    assert_cites(v.why, f"R^2 is {stats['r2']:.3f}", f"{0.90 - stats['r2']:.3f} below 0.90", f"{(BAD[1] - BAD[0]).mean():+.3f}",
                 "m on m0 (all labels): confidence 0.90, accuracy 0.20")
    assert_no_stand_in_wording(v)


def _r2_and_rho(accuracy, confidence):
    stats = study.confidence_vs_accuracy(_c5_points(accuracy, confidence))
    return stats["r2"], stats["spearman"]


@pytest.mark.parametrize("power, holds", [(1.5, True), (4.0, False)])
def test_c5_r2_on_each_side_of_its_bar(power, holds):
    """Confidence a monotone power of accuracy: rho is 1, and R^2 falls as the curve bends."""
    accuracy = np.linspace(0.05, 1.0, 12)
    confidence = accuracy**power
    r2, rho = _r2_and_rho(accuracy, confidence)
    assert rho == pytest.approx(1.0) and (r2 > 0.90) is holds  # the case is on the side it claims
    v = es.c5_confidence_tracks_accuracy(_c5_points(accuracy, confidence), None, BACKBONE)
    assert v.holds is holds and v.interval == ""
    if not holds:
        assert_cites(v.why, f"R^2 is {r2:.3f}, {0.90 - r2:.3f} below 0.90")
        assert "Spearman" not in v.why


def test_c5_rho_below_its_bar_fails_although_r2_is_high():
    """Two far points carry R^2; the shuffled cluster between them keeps rho low."""
    accuracy = np.array([0.0, 1.0, 0.50, 0.51, 0.52, 0.53, 0.54, 0.55])
    confidence = np.array([0.0, 1.0, 0.55, 0.53, 0.51, 0.54, 0.50, 0.52])
    r2, rho = _r2_and_rho(accuracy, confidence)
    assert r2 > 0.90 and rho < 0.90
    v = es.c5_confidence_tracks_accuracy(_c5_points(accuracy, confidence), None, BACKBONE)
    assert v.holds is False
    assert_cites(v.why, f"Spearman rho is {rho:.3f}, {0.90 - rho:.3f} below 0.90")
    assert "R^2 is" not in v.why


def test_c5_terrible_held_out_points_do_not_decide():
    points = _with_held_out(_c5_points(*GOOD), *BAD)
    held_out = study.confidence_vs_accuracy(pd.concat([points.iloc[:1], points.iloc[8:]]))
    correlations = {**CORRELATIONS, "held out": {"r2": ci(0.1, 0.0, 0.4), "spearman": ci(-0.2, -0.6, 0.3)}}
    v = es.c5_confidence_tracks_accuracy(points, correlations, BACKBONE)
    assert v.holds is True and v.why == ""
    assert_cites(v.measured, "8 VLM points after TS", "Held-out shifts (a second result, which does not decide the verdict)",
                 "pooled over 7 VLM points (clean and held-out)", f"R^2 = {held_out['r2']:.3f}", "[0.000, 0.400]",
                 "on their own they would not meet the bars")


def test_c5_good_held_out_points_do_not_rescue_bad_covered_ones():
    bad_covered = _c5_points(np.r_[0.5, BAD[0]], np.r_[0.5, BAD[1]])  # clean on the identity line, covered shifts off it
    points = _with_held_out(bad_covered, *GOOD)
    v = es.c5_confidence_tracks_accuracy(points, None, BACKBONE)
    assert v.holds is False
    assert " on h" not in v.why  # no held-out point among the largest gaps
    assert_cites(v.measured, "on their own they would meet the bars", "Pooled over 7 VLM points after TS",
                 "pooled over 9 VLM points (clean and held-out)")


def test_c5_decides_on_every_shift_when_coverage_is_unknown():
    v = es.c5_confidence_tracks_accuracy(_c5_points(*GOOD, coverage="unknown"), CORRELATIONS, BACKBONE)
    assert v.holds is True
    assert_cites(v.measured, "all 7 shift(s), as the pretraining coverage of `m` is unknown", "8 VLM points")
    v = es.c5_confidence_tracks_accuracy(_c5_points(*BAD, coverage="unknown"), None, BACKBONE)
    assert v.holds is False


def test_c5_not_tested_when_every_shift_is_held_out():
    points = _c5_points(*GOOD, coverage="held out")
    v = es.c5_confidence_tracks_accuracy(points, None, BACKBONE)
    stats = study.confidence_vs_accuracy(points)
    assert v.holds is None and v.interval == ""
    assert_cites(v.why, "not testable on this run's shifts", "none of its 4 shift(s) (contrast, elastic_transform, pixelate, jpeg_compression)",
                 "how confidence tracks accuracy")
    assert_cites(v.measured, "pooled over 8 VLM points (clean and held-out)", f"R^2 = {stats['r2']:.3f}", "would meet the bars")


def test_c5_not_tested_without_shifts_or_with_too_few_or_flat_points():
    v = es.c5_confidence_tracks_accuracy(_c5_points([0.5], [0.5]), None, BACKBONE)
    assert v.holds is None and "no shifted condition was in this run" in v.why
    v = es.c5_confidence_tracks_accuracy(_c5_points([0.5, 0.6], [0.5, 0.6]), None, BACKBONE)
    assert v.holds is None and "only 2 VLM point(s)" in v.why
    v = es.c5_confidence_tracks_accuracy(_c5_points([0.5] * 4, [0.4, 0.5, 0.6, 0.7]), None, BACKBONE)
    assert v.holds is None
    assert_cites(v.why, "0.500 to 0.500", "0.400 to 0.700", "4 VLM points")


def test_c5_says_what_input_it_needs():
    with pytest.raises(ValueError, match="coverage.*confidence_accuracy_points"):
        es.c5_confidence_tracks_accuracy(_c5_points(*GOOD).drop(columns="coverage"), None, BACKBONE)
    with pytest.raises(TypeError, match="bootstrap_confidence_vs_accuracy_by_side"):
        es.c5_confidence_tracks_accuracy(_c5_points(*GOOD), CORRELATIONS["paper-like"], BACKBONE)


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
