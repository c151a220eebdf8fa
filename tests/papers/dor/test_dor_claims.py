"""C11 (DOR, Proposition 3.1) decided from a simulated grid, and each of its checks broken on purpose.

A check that has nothing to compare (no K = 2, no sigma = 0) must say "not checked", never pass;
a check fed a broken input must fail and flip the verdict.
"""

from __future__ import annotations

import pandas as pd
import pytest

from vlmcal.papers.dor import theory
from vlmcal.papers.dor import claims as dor


@pytest.fixture(scope="module")
def curve() -> pd.DataFrame:
    return theory.max_softmax_curve([0.0, 0.5, 1.0, 2.0], [2, 10], mus=[0.0], n_draws=4000, seed=0)


@pytest.fixture(scope="module")
def mechanism() -> pd.DataFrame:
    return theory.dispersion_mechanism([0.0, 0.5, 1.0], n_classes=5, dim=32, n_images=200, seed=0)


def verdict_of(curve: pd.DataFrame, mechanism: pd.DataFrame):
    return dor.c11_max_softmax_increases(dor.step_tests(curve), dor.estimator_checks(curve), mechanism)


def test_c11_holds_on_a_correct_simulation(curve, mechanism):
    checks = dor.estimator_checks(curve)
    assert checks.sigma_zero_exact is True and checks.quadrature_agrees is True
    v = verdict_of(curve, mechanism)
    assert v.holds is True and v.why == ""
    steps = dor.step_tests(curve)
    assert v.measured.startswith(f"{len(steps)} of {len(steps)} steps")
    assert "m_K(0) = 1/K exactly: yes" in v.measured and "K = 2 within 4 standard errors of quadrature: yes" in v.measured
    assert f"{steps['lower_bound'].min():.2e}" in v.interval


def test_quadrature_mismatch_fails_the_check_and_the_verdict(curve, mechanism):
    broken = curve.copy()
    row = (broken["n_classes"] == 2) & (broken["sigma"] == 1.0)
    broken.loc[row, "mean"] += 10 * broken.loc[row, "stderr"]  # ten standard errors off the exact value
    checks = dor.estimator_checks(broken)
    assert checks.quadrature_agrees is False
    v = verdict_of(broken, mechanism)
    assert v.holds is False
    expected = checks.quadrature[row[broken["n_classes"] == 2].to_numpy()].iloc[0]
    assert "1 of 4 K = 2 estimates disagree with quadrature" in v.why
    assert f"{expected['mean']:.5f} against {expected['quadrature']:.5f}" in v.why
    assert f"{abs(expected['error_in_stderrs']):.1f} standard errors away, tolerance 4" in v.why
    assert abs(expected["error_in_stderrs"]) > 4


def test_a_mismatch_with_zero_standard_error_is_not_read_as_agreement(curve):
    """At sigma = 0 the error in standard errors is 0/0; the old check turned it into agreement (fillna(0))."""
    broken = curve.copy()
    broken.loc[(broken["n_classes"] == 2) & (broken["sigma"] == 0.0), "mean"] = 0.51
    comparison = theory.quadrature_comparison(broken, max_stderrs=4.0)
    assert not comparison.loc[comparison["sigma"] == 0.0, "agrees"].any()
    assert theory.all_agree(comparison) is False
    assert "with a standard error of 0" in dor._quadrature_failure(dor.estimator_checks(broken))


def test_missing_k2_is_not_checked_rather_than_passed(curve, mechanism):
    without_k2 = curve[curve["n_classes"] != 2]
    checks = dor.estimator_checks(without_k2)
    assert checks.quadrature.empty and checks.quadrature_agrees is None
    assert "(K = 2 is not in the grid)" in checks.describe()
    v = verdict_of(without_k2, mechanism)
    assert v.holds is True  # the proposition is still resolved; the estimator check is reported as missing
    assert "K = 2 within 4 standard errors of quadrature: not checked" in v.measured
    assert "not checked: K = 2 is not in the grid" in v.why


def test_missing_sigma_zero_is_not_checked_rather_than_passed(curve, mechanism):
    without_zero = curve[curve["sigma"] != 0.0]
    assert theory.sigma_zero_exact(without_zero) is None
    v = verdict_of(without_zero, mechanism)
    assert "m_K(0) = 1/K exactly: not checked" in v.measured and "not checked: sigma = 0 is not in the grid" in v.why


def test_sigma_zero_off_by_a_little_fails(curve, mechanism):
    broken = curve.copy()
    broken.loc[(broken["n_classes"] == 10) & (broken["sigma"] == 0.0), "mean"] = 0.1 + 1e-9
    v = verdict_of(broken, mechanism)
    assert v.holds is False
    assert "1 of 2 estimates at sigma = 0 differ from 1/K" in v.why and f"{0.1 + 1e-9:.6g} against 0.1" in v.why


def test_an_unresolved_step_fails(curve, mechanism):
    broken = curve.copy()
    row = (broken["n_classes"] == 10) & (broken["sigma"] == 2.0)
    broken.loc[row, "mean"] = broken.loc[(broken["n_classes"] == 10) & (broken["sigma"] == 1.0), "mean"].iloc[0] - 0.01
    steps = dor.step_tests(broken)
    v = verdict_of(broken, mechanism)
    assert v.holds is False
    weakest = steps.loc[steps["lower_bound"].idxmin()]
    assert f"1 of {len(steps)} steps up the sigma grid were not resolved" in v.why
    assert "K = 10, mu = 0, sigma 1 -> 2" in v.why and f"{weakest['increase']:.2e}" in v.why


def test_a_falling_mechanism_fails(curve, mechanism):
    broken = mechanism.copy()
    broken.loc[2, "confidence"] = broken.loc[1, "confidence"] - 0.01
    assert theory.mechanism_increasing(broken) is False
    v = verdict_of(curve, broken)
    assert v.holds is False and "with the spread going from 0.5 to 1, confidence did not rise" in v.why


def test_c11_not_tested_without_a_step(curve, mechanism):
    one_sigma = curve[curve["sigma"] == 1.0]
    v = verdict_of(one_sigma, mechanism)
    assert v.holds is None and "fewer than two values" in v.why
    assert theory.mechanism_increasing(mechanism.iloc[:1]) is None


# ----------------------------------------------------------------------------- C12


def _figures(**changes) -> pd.DataFrame:
    """C12's five figures, each on the claim's side by default; ``changes`` replaces parts' values."""
    claim_side = {
        "coop_new_overconfident": (0.03, 0.01, 0.05, [0.02, 0.03, 0.04]),
        "coop_new_divergence": (0.05, 0.05, 0.05, [0.04, 0.05, 0.06]),
        "kgcoop_base_underconfident": (-0.02, -0.03, -0.01, [-0.01, -0.02, -0.03]),
        "dor_lowers_coop_new_ece": (-0.06, -0.08, -0.04, [-0.05, -0.06, -0.07]),
        "dor_lowers_kgcoop_base_ece": (-0.01, -0.02, -0.005, [-0.01, -0.01, -0.01]),
    }
    claim_side.update(changes)
    return pd.DataFrame([{"name": name, "estimate": e, "lower": lo, "upper": hi, "per_seed": seeds, "seeds": len(seeds)}
                         for name, (e, lo, hi, seeds) in claim_side.items()])


def test_c12_holds_when_every_part_is_beyond_its_noise():
    verdict = dor.c12_prompt_tuning_trade(_figures(), backbone="`default`")
    assert verdict.holds is True and verdict.why == ""
    assert "+3.00 points" in verdict.measured and "mean over 3 seeds" in verdict.measured
    assert "14.58" in verdict.paper_figure and "unverified" in verdict.paper_figure


def test_c12_fails_when_a_part_is_on_the_other_side():
    verdict = dor.c12_prompt_tuning_trade(
        _figures(dor_lowers_coop_new_ece=(0.02, 0.01, 0.03, [0.01, 0.02, 0.03])), backbone="`default`")
    assert verdict.holds is False
    assert "DOR lowers CoOp's ECE on new classes does not hold" in verdict.why and "+2.00 points" in verdict.why


@pytest.mark.parametrize("change, reason", [
    ({"kgcoop_base_underconfident": (-0.01, -0.03, 0.01, [-0.01, -0.02, 0.0])}, "contains 0"),
    ({"coop_new_overconfident": (0.03, 0.01, 0.05, [0.05, 0.06, -0.01])}, "seeds disagree"),
    ({"coop_new_divergence": (0.05, 0.05, 0.05, [0.05])}, "one seed only"),
])
def test_c12_is_untested_when_a_part_is_within_noise(change, reason):
    verdict = dor.c12_prompt_tuning_trade(_figures(**change), backbone="`default`")
    assert verdict.holds is None and reason in verdict.why


def test_c12_part_tests_and_paper_table():
    tests = dor.c12_part_tests(_figures(coop_new_overconfident=(-0.03, -0.05, -0.01, [-0.02, -0.03, -0.04])))
    assert [h for h in tests["holds"]] == [False, True, True, True, True]
    assert tests.loc[1, "interval"] == "no image noise (text features only)"
    with pytest.raises(ValueError, match="lacks"):
        dor.c12_part_tests(_figures().iloc[:3])
    table = dor.c12_paper_table()
    assert table.loc["CoOp", "new ECE (%)"] == 14.58 and table.loc["CoOp + DOR", "status"] == "the summaries agree"
    assert (table.loc[["zero-shot", "KgCoOp", "KgCoOp + DOR"], "status"] == "unverified").all()
