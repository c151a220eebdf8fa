"""Claim C11: Proposition 3.1 of the DOR paper (Wang, Li & Wei, ICML 2025), decided from the simulation.

The proposition: for K logits i.i.d. N(mu, sigma^2), E[max softmax] increases strictly with
sigma, for every mu. The page estimates it on a grid (:mod:`vlmcal.theory`); this module
decides what the grid shows. Three checks back the estimator and the paper's mechanism, and
each one reports None ("not checked") when the grid gives it nothing to compare, so that a
check never passes by comparing nothing:

- at sigma = 0 every estimate must be exactly 1/K;
- for K = 2 every estimate must lie within ``c11_threshold_quadrature_stderrs`` standard
  errors of the quadrature value;
- text-feature dispersion, logit spread and confidence must all rise with the spread.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from vlmcal import theory
from vlmcal.claims._common import statement, threshold
from vlmcal.paper_values import paper_value
from vlmcal.verdict import Verdict

__all__ = ["EstimatorChecks", "estimator_checks", "step_tests", "outcome_text", "c11_max_softmax_increases"]

BACKBONE = "none: Monte Carlo simulation and synthetic features"


def outcome_text(result: bool | None) -> str:
    """A check's result in words: ``"yes"``, ``"no"`` or ``"not checked"``."""
    return "not checked" if result is None else ("yes" if result else "no")


@dataclass(frozen=True)
class EstimatorChecks:
    """The two checks of the Monte Carlo estimator against exact values.

    Attributes:
        sigma_zero: the estimates at sigma = 0 (rows of the curve; possibly none).
        sigma_zero_exact: every estimate at sigma = 0 is exactly 1/K; None without sigma = 0 in the grid.
        quadrature: the K = 2 estimates beside quadrature (:func:`vlmcal.theory.quadrature_comparison`).
        quadrature_agrees: every K = 2 estimate agrees; None without K = 2 in the grid.
        max_stderrs: the agreement tolerance, in standard errors.
    """

    sigma_zero: pd.DataFrame
    sigma_zero_exact: bool | None
    quadrature: pd.DataFrame
    quadrature_agrees: bool | None
    max_stderrs: float

    def describe(self) -> str:
        """Both results in two lines, saying why a check was not made."""
        zero = outcome_text(self.sigma_zero_exact) + (" (sigma = 0 is not in the grid)" if self.sigma_zero_exact is None else "")
        two = outcome_text(self.quadrature_agrees) + (" (K = 2 is not in the grid)" if self.quadrature_agrees is None else "")
        return (f"m_K(0) == 1/K exactly for every K and mu: {zero}\n"
                f"K = 2 Monte Carlo within {self.max_stderrs:g} standard errors of quadrature at every sigma: {two}")


def estimator_checks(curve: pd.DataFrame) -> EstimatorChecks:
    """Check the estimates of :func:`vlmcal.theory.max_softmax_curve` against exact values.

    Args:
        curve: one row per (K, mu, sigma): n_classes, mu, sigma, mean, stderr.

    Returns:
        An :class:`EstimatorChecks`.
    """
    max_stderrs = threshold("c11_threshold_quadrature_stderrs")
    comparison = theory.quadrature_comparison(curve, max_stderrs)
    at_zero = curve[curve["sigma"] == 0.0]
    return EstimatorChecks(at_zero, theory.sigma_zero_exact(curve), comparison, theory.all_agree(comparison), max_stderrs)


def step_tests(curve: pd.DataFrame) -> pd.DataFrame:
    """:func:`vlmcal.theory.monotonicity_tests` at the z of ``c11_threshold_step_z``: one row per step up the sigma grid."""
    return theory.monotonicity_tests(curve, z=threshold("c11_threshold_step_z"))


def _step_failure(steps: pd.DataFrame) -> str:
    unresolved = steps[~steps["resolved"]]
    weakest = unresolved.loc[unresolved["lower_bound"].idxmin()]
    return (f"{len(unresolved)} of {len(steps)} steps up the sigma grid were not resolved as increases; the weakest, "
            f"K = {int(weakest['n_classes'])}, mu = {weakest['mu']:g}, sigma {weakest['sigma_from']:g} -> {weakest['sigma_to']:g}, "
            f"changed by {weakest['increase']:.2e} with lower bound {weakest['lower_bound']:.2e}")


def _sigma_zero_failure(checks: EstimatorChecks) -> str:
    at_zero = checks.sigma_zero
    off = at_zero[at_zero["mean"] != 1.0 / at_zero["n_classes"]]
    first = off.iloc[0]
    return (f"{len(off)} of {len(at_zero)} estimates at sigma = 0 differ from 1/K, which every draw equals exactly; "
            f"at K = {int(first['n_classes'])}, mu = {first['mu']:g} it is {first['mean']:.6g} against {1.0 / first['n_classes']:.6g}")


def _quadrature_failure(checks: EstimatorChecks) -> str:
    disagreeing = checks.quadrature[~checks.quadrature["agrees"]]
    worst = disagreeing.loc[(disagreeing["mean"] - disagreeing["quadrature"]).abs().idxmax()]
    distance = ("with a standard error of 0" if pd.isna(worst["error_in_stderrs"])
                else f"{abs(worst['error_in_stderrs']):.1f} standard errors away, tolerance {checks.max_stderrs:g}")
    return (f"{len(disagreeing)} of {len(checks.quadrature)} K = 2 estimates disagree with quadrature; at sigma = {worst['sigma']:g}, "
            f"mu = {worst['mu']:g} the estimate is {worst['mean']:.5f} against {worst['quadrature']:.5f} ({distance})")


def _mechanism_failure(mechanism: pd.DataFrame) -> str:
    ordered = mechanism.sort_values("spread").reset_index(drop=True)
    columns = ["atfd", "logit_std", "confidence"]
    falling = ordered[columns].diff().iloc[1:] <= 0  # [steps, 3]: True where a quantity does not rise
    step = int(falling.any(axis=1).idxmax())
    names = ", ".join(c for c in columns if falling.loc[step, c])
    return (f"with the spread going from {ordered.loc[step - 1, 'spread']:g} to {ordered.loc[step, 'spread']:g}, "
            f"{names} did not rise")


def c11_max_softmax_increases(steps: pd.DataFrame, checks: EstimatorChecks, mechanism: pd.DataFrame) -> Verdict:
    """C11: E[max softmax] of i.i.d. Gaussian logits increases strictly with sigma, for every mu.

    Test: every step up the sigma grid is resolved as an increase (:func:`step_tests`), and
    no check that could be made failed: sigma = 0 exact, K = 2 against quadrature, and the
    mechanism (dispersion -> logit spread -> confidence) rising. A check that could not be
    made is reported as "not checked" and does not decide.

    Args:
        steps: :func:`step_tests` output.
        checks: :func:`estimator_checks` of the same curve.
        mechanism: :func:`vlmcal.theory.dispersion_mechanism` output.

    Returns:
        The :class:`~vlmcal.verdict.Verdict` of C11; not tested when the grid has no step.
    """
    mechanism_ok = theory.mechanism_increasing(mechanism)
    common = dict(claim="C11", statement=statement("C11"), paper_figure=paper_value("c11_statement").describe(), backbone=BACKBONE)
    if steps.empty:
        return Verdict(**common, measured="no step up the sigma grid", interval="", holds=None,
                       why="the sigma grid has fewer than two values, so there is no step to test")
    resolved = int(steps["resolved"].sum())
    measured = (
        f"{resolved} of {len(steps)} steps up the sigma grid resolved as increases "
        f"(K in {sorted(int(k) for k in steps['n_classes'].unique())}, mu in {sorted(float(m) for m in steps['mu'].unique())}); "
        f"m_K(0) = 1/K exactly: {outcome_text(checks.sigma_zero_exact)}; "
        f"K = 2 within {checks.max_stderrs:g} standard errors of quadrature: {outcome_text(checks.quadrature_agrees)}; "
        f"dispersion -> spread -> confidence all increasing: {outcome_text(mechanism_ok)}"
    )
    failures, notes = [], []
    if resolved < len(steps):
        failures.append(_step_failure(steps))
    if checks.sigma_zero_exact is False:
        failures.append(_sigma_zero_failure(checks))
    elif checks.sigma_zero_exact is None:
        notes.append("not checked: sigma = 0 is not in the grid, so the estimates were not compared with the exact 1/K")
    if checks.quadrature_agrees is False:
        failures.append(_quadrature_failure(checks))
    elif checks.quadrature_agrees is None:
        notes.append("not checked: K = 2 is not in the grid, so the estimator was not compared with quadrature")
    if mechanism_ok is False:
        failures.append(_mechanism_failure(mechanism))
    elif mechanism_ok is None:
        notes.append("not checked: fewer than two spreads were simulated, so the mechanism has no step")
    return Verdict(
        **common, measured=measured, interval=f"smallest step's lower bound {steps['lower_bound'].min():.2e}",
        holds=not failures, why="; ".join(failures + notes),
    )
