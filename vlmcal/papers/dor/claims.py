"""Claims C11 and C12 of the DOR paper (Wang, Li & Wei, ICML 2025): C11 (its Proposition 3.1)
decided from the simulation, C12 (prompt tuning trades calibration between base and new
classes; DOR fixes both sides) from prompt-learning runs in the base-to-new protocol.

C12 (:func:`c12_prompt_tuning_trade`) has five parts, each a figure of the runs
(:data:`C12_PARTS`, computed by :func:`vlmcal.papers.dor.base_to_new.contrast_figures`), averaged over
seeds, with the side of zero the claim puts it on:

- CoOp is over-confident on new classes: its mean confidence minus accuracy there is above 0;
- the mechanism: CoOp's new-class text features diverge more than zero-shot's (feature
  divergence after training minus zero-shot's, above 0);
- KgCoOp is under-confident on base classes: its gap there is below 0;
- DOR lowers CoOp's new-class ECE, and KgCoOp's base-class ECE (differences below 0).

A part is decided only beyond its noise: it holds when the 95% interval over test images
(paired bootstrap) and every seed's own value are on the claim's side of 0, fails when both are
on the other side, and is left undecided otherwise (an interval containing 0, seeds that
disagree, or a single seed, whose spread between seeds is unmeasured). The feature divergence
has no image noise, so only its seeds decide. The claim holds when every part holds and fails
when any part fails.

C11, the proposition:

The proposition: for K logits i.i.d. N(mu, sigma^2), E[max softmax] increases strictly with
sigma, for every mu. The page estimates it on a grid (:mod:`vlmcal.papers.dor.theory`); this module
decides what the grid shows. Three checks back the estimator and the paper's mechanism, and
each one reports None ("not checked") when the grid gives it nothing to compare, so that a
check never passes by comparing nothing:

- at sigma = 0 every estimate must be exactly 1/K;
- for K = 2 every estimate must lie within ``c11_threshold_quadrature_stderrs`` standard
  errors of the quadrature value;
- text-feature dispersion, logit spread and confidence must all rise with the spread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from vlmcal.papers.common.paper_values import paper_value
from vlmcal.papers.common.rules import combine_tests, join_parts, statement, threshold
from vlmcal.papers.common.verdict import Verdict
from vlmcal.papers.dor import theory
from vlmcal.papers.dor.base_to_new import Contrast

__all__ = [
    "EstimatorChecks", "estimator_checks", "step_tests", "outcome_text", "c11_max_softmax_increases", "C12_PARTS", "c12_contrasts",
    "c12_part_tests", "c12_paper_table", "c12_prompt_tuning_trade",
]

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
        quadrature: the K = 2 estimates beside quadrature (:func:`vlmcal.papers.dor.theory.quadrature_comparison`).
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
    """Check the estimates of :func:`vlmcal.papers.dor.theory.max_softmax_curve` against exact values.

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
    """:func:`vlmcal.papers.dor.theory.monotonicity_tests` at the z of ``c11_threshold_step_z``: one row per step up the sigma grid."""
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
        mechanism: :func:`vlmcal.papers.dor.theory.dispersion_mechanism` output.

    Returns:
        The :class:`~vlmcal.papers.common.verdict.Verdict` of C11; not tested when the grid has no step.
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


# ----------------------------------------------------------------------------- C12


@dataclass(frozen=True)
class C12Part:
    """One part of C12: a figure of the runs and the side of 0 the claim puts it on.

    Attributes:
        split, metric, a, b: the figure (:class:`vlmcal.papers.dor.base_to_new.Contrast`).
        sign: +1 when the claim says the figure is above 0, -1 below.
        says: what the part claims, in words.
        figure: the figure in words.
    """

    split: str
    metric: str
    a: str
    b: str | None
    sign: int
    says: str
    figure: str


C12_PARTS = {
    "coop_new_overconfident": C12Part("new", "gap", "CoOp", None, +1, "CoOp is over-confident on new classes",
                                      "CoOp's mean confidence minus accuracy on new classes"),
    "coop_new_divergence": C12Part("new", "fd", "CoOp", "zero-shot", +1, "CoOp's new-class text features diverge",
                                   "feature divergence of CoOp's new-class text features minus zero-shot's"),
    "kgcoop_base_underconfident": C12Part("base", "gap", "KgCoOp", None, -1, "KgCoOp is under-confident on base classes",
                                          "KgCoOp's mean confidence minus accuracy on base classes"),
    "dor_lowers_coop_new_ece": C12Part("new", "ece", "CoOp + DOR", "CoOp", -1, "DOR lowers CoOp's ECE on new classes",
                                       "ECE of CoOp + DOR minus CoOp's on new classes"),
    "dor_lowers_kgcoop_base_ece": C12Part("base", "ece", "KgCoOp + DOR", "KgCoOp", -1, "DOR lowers KgCoOp's ECE on base classes",
                                          "ECE of KgCoOp + DOR minus KgCoOp's on base classes"),
}


def c12_contrasts() -> dict:
    """:data:`C12_PARTS` as :class:`vlmcal.papers.dor.base_to_new.Contrast` objects, for ``contrast_figures``."""

    return {name: Contrast(p.split, p.metric, p.a, p.b) for name, p in C12_PARTS.items()}


def _c12_value(metric: str, x: float) -> str:
    """A figure in its unit: ECE, gaps and accuracies in signed points, feature divergence as is."""
    return f"{x:+.3f}" if metric == "fd" else f"{100.0 * x:+.2f} points"


def _c12_test(part: C12Part, row) -> tuple[bool | None, str]:
    """Whether one part holds (None: undecided), and why it is not decided when it is not."""
    def on_claim_side(v: float) -> bool:
        return v * part.sign > 0

    def on_other_side(v: float) -> bool:
        return v * part.sign < 0

    per_seed = [float(v) for v in row["per_seed"]]
    seeds_text = ", ".join(_c12_value(part.metric, v) for v in per_seed)
    if int(row["seeds"]) < 2:
        return None, f"{part.says}: one seed only ({seeds_text}), so the spread between seeds is not measured"
    lower, upper = float(row["lower"]), float(row["upper"])
    if math.isnan(lower) or math.isnan(upper) or math.isnan(float(row["estimate"])):
        return None, f"{part.says}: the figure is undefined here"
    if on_claim_side(lower) and on_claim_side(upper) and all(map(on_claim_side, per_seed)):
        return True, ""
    if on_other_side(lower) and on_other_side(upper) and all(map(on_other_side, per_seed)):
        return False, ""
    if not (on_claim_side(lower) == on_claim_side(upper) and on_other_side(lower) == on_other_side(upper)):
        return None, (f"{part.says}: within noise, the 95% interval over test images "
                      f"[{_c12_value(part.metric, lower)}, {_c12_value(part.metric, upper)}] contains 0")
    return None, f"{part.says}: the seeds disagree ({seeds_text})"


def c12_part_tests(figures: pd.DataFrame) -> pd.DataFrame:
    """Each part of C12 with its figure and outcome.

    Args:
        figures: :func:`vlmcal.papers.dor.base_to_new.contrast_figures` of :func:`c12_contrasts`
            (columns ``name``, ``estimate``, ``lower``, ``upper``, ``per_seed``, ``seeds``).

    Returns:
        One row per part, in :data:`C12_PARTS` order: ``part`` (what it claims), ``figure``,
        ``estimate``, ``interval``, ``per_seed``, ``outcome`` and ``holds`` (True, False or None).
    """
    missing = [name for name in C12_PARTS if name not in set(figures["name"])]
    if missing:
        raise ValueError(f"Expected `figures` to hold every part of C12 ({list(C12_PARTS)}), but it lacks {missing}")
    rows = []
    indexed = figures.set_index("name")
    for name, part in C12_PARTS.items():
        row = indexed.loc[name]
        holds, why = _c12_test(part, row)
        interval = ("no image noise (text features only)" if part.metric == "fd" else
                    f"[{_c12_value(part.metric, row['lower'])}, {_c12_value(part.metric, row['upper'])}]")
        rows.append({"part": part.says, "figure": part.figure, "estimate": _c12_value(part.metric, row["estimate"]),
                     "interval": interval, "per_seed": ", ".join(_c12_value(part.metric, v) for v in row["per_seed"]),
                     "outcome": outcome_text(holds) if holds is not None else "undecided", "holds": holds, "why": why})
    return pd.DataFrame(rows)


_C12_PAPER_ROWS = {"zero-shot": "zeroshot", "CoOp": "coop", "CoOp + DOR": "coop_dor", "KgCoOp": "kgcoop", "KgCoOp + DOR": "kgcoop_dor"}


def c12_paper_table() -> pd.DataFrame:
    """The DOR paper's base and new ECE (%, 11-dataset averages) as found in secondary summaries,
    each row marked verified (the summaries agree) or not."""
    rows = []
    for method, key in _C12_PAPER_ROWS.items():
        base, new = paper_value(f"c12_{key}_base_ece"), paper_value(f"c12_{key}_new_ece")
        rows.append({"method": method, "base ECE (%)": base.value, "new ECE (%)": new.value,
                     "status": "unverified" if str(base["source"]).startswith("UNVERIFIED") else "the summaries agree"})
    return pd.DataFrame(rows).set_index("method")


def _c12_paper_figure() -> str:
    coop = {k: paper_value(f"c12_{k}").value for k in ("coop_base_ece", "coop_new_ece", "coop_dor_base_ece", "coop_dor_new_ece")}
    return (f"CoOp's ECE (11-dataset averages, %): base {coop['coop_base_ece']:.2f}, new {coop['coop_new_ece']:.2f}; "
            f"with DOR base {coop['coop_dor_base_ece']:.2f}, new {coop['coop_dor_new_ece']:.2f} (the row the secondary "
            f"summaries agree on; their zero-shot and KgCoOp rows are unverified) [{paper_value('c12_coop_new_ece')['source']}]")


def c12_prompt_tuning_trade(figures: pd.DataFrame, backbone: str) -> Verdict:
    """C12: CoOp over-confident on new classes (its text features diverging), KgCoOp
    under-confident on base classes, and DOR fixing both.

    Test: every part of :data:`C12_PARTS` decided beyond its noise (:func:`c12_part_tests`).
    The claim holds when all five hold, does not hold when any fails, and is not tested when
    none fails and at least one is undecided; ``why`` names each part that failed or was
    undecided, with its numbers.

    Args:
        figures: :func:`vlmcal.papers.dor.base_to_new.contrast_figures` of :func:`c12_contrasts`.
        backbone: the run's model in words.

    Returns:
        The :class:`~vlmcal.papers.common.verdict.Verdict` of C12.
    """
    tests = c12_part_tests(figures)
    measured = join_parts([f"{row.figure}: {row.estimate} ({row.outcome})" for row in tests.itertuples()])
    interval = join_parts([f"{row.figure}: {row.interval}" for part, row in zip(C12_PARTS.values(), tests.itertuples())
                           if part.metric != "fd"])
    failures = [f"{row.part} does not hold: {row.figure} is {row.estimate} (95% CI {row.interval}; seeds {row.per_seed})"
                for row in tests.itertuples() if row.holds is False]
    undecided = [row.why for row in tests.itertuples() if row.holds is None]
    seeds = int(figures["seeds"].min())
    return Verdict(claim="C12", statement=statement("C12"), paper_figure=_c12_paper_figure(),
                   measured=f"{measured} (mean over {seeds} seed{'s' if seeds != 1 else ''})", interval=interval,
                   holds=combine_tests([None if h is None else bool(h) for h in tests["holds"]]), backbone=backbone, why=join_parts(failures + undecided))
