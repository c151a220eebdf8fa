"""Claims C11 and C12 of the DOR paper (Wang, Li & Wei, ICML 2025): C11 (Proposition 3.1) from the simulated grid,
with estimator checks that say "not checked" when the grid holds nothing to compare; C12 (prompt tuning trades
calibration between base and new classes, DOR fixes both) from the base-to-new runs, each part beyond its noise."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from vlmcal.papers.common.paper_values import paper_value
from vlmcal.papers.common.rules import combine_tests, join_parts, threshold
from vlmcal.papers.common.verdict import Verdict, render
from vlmcal.papers.dor import theory
from vlmcal.papers.dor.base_to_new import Contrast

__all__ = ["EstimatorChecks", "estimator_checks", "step_tests", "outcome_text", "c11_max_softmax_increases",
           "C12_PARTS", "c12_contrasts", "c12_part_tests", "c12_paper_table", "c12_prompt_tuning_trade"]

BACKBONE = "none: Monte Carlo simulation and synthetic features"


def outcome_text(result: bool | None) -> str:
    """A check's result in words: ``"yes"``, ``"no"`` or ``"not checked"``."""
    return "not checked" if result is None else ("yes" if result else "no")


@dataclass(frozen=True)
class EstimatorChecks:
    """The two checks of the Monte Carlo estimator against exact values.

    ``sigma_zero``: the curve's rows at sigma = 0 (possibly none); ``quadrature``: its K = 2 estimates beside quadrature
    (:func:`vlmcal.papers.dor.theory.quadrature_comparison`); ``sigma_zero_exact``, ``quadrature_agrees``: every one is
    exact / agrees, None when the grid has no such row; ``max_stderrs``: the agreement tolerance, in standard errors."""

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
    """Check the estimates of a :func:`vlmcal.papers.dor.theory.max_softmax_curve` against exact values."""
    max_stderrs = threshold("c11_threshold_quadrature_stderrs")
    comparison = theory.quadrature_comparison(curve, max_stderrs)
    return EstimatorChecks(curve[curve["sigma"] == 0.0], theory.sigma_zero_exact(curve), comparison,
                           theory.all_agree(comparison), max_stderrs)


def step_tests(curve: pd.DataFrame) -> pd.DataFrame:
    """:func:`vlmcal.papers.dor.theory.monotonicity_tests` at the z of ``c11_threshold_step_z``."""
    return theory.monotonicity_tests(curve, z=threshold("c11_threshold_step_z"))


# Each failure of C11: the template of its text, and the numbers it names.
def _step_failure(steps: pd.DataFrame) -> tuple[str, dict]:
    unresolved = steps[~steps["resolved"]]
    weakest = unresolved.loc[unresolved["lower_bound"].idxmin()]
    numbers = dict(steps_unresolved=len(unresolved), steps_tested=len(steps), weakest_k=int(weakest["n_classes"]))
    numbers |= {f"weakest_{k}": weakest[k] for k in ("mu", "sigma_from", "sigma_to", "increase", "lower_bound")}
    return ("{steps_unresolved:count} of {steps_tested:count} steps up the sigma grid were not resolved as increases; "
            "the weakest, K = {weakest_k:count}, mu = {weakest_mu:g}, sigma {weakest_sigma_from:g} -> "
            "{weakest_sigma_to:g}, changed by {weakest_increase:.2e} "
            "with lower bound {weakest_lower_bound:.2e}"), numbers


def _sigma_zero_failure(checks: EstimatorChecks) -> tuple[str, dict]:
    at_zero = checks.sigma_zero
    off = at_zero[at_zero["mean"] != 1.0 / at_zero["n_classes"]]
    first = off.iloc[0]
    numbers = dict(zero_off=len(off), zero_estimates=len(at_zero), zero_off_k=int(first["n_classes"]),
                   zero_off_mu=first["mu"], zero_off_mean=first["mean"], zero_off_exact=1.0 / first["n_classes"])
    return ("{zero_off:count} of {zero_estimates:count} estimates at sigma = 0 differ from 1/K, which every draw "
            "equals exactly; at K = {zero_off_k:count}, mu = {zero_off_mu:g} it is {zero_off_mean:.6g} against "
            "{zero_off_exact:.6g}"), numbers


def _quadrature_disagreement(checks: EstimatorChecks) -> tuple[str, dict]:
    disagreeing = checks.quadrature[~checks.quadrature["agrees"]]
    worst = disagreeing.loc[(disagreeing["mean"] - disagreeing["quadrature"]).abs().idxmax()]
    numbers = dict(k2_disagreeing=len(disagreeing), k2_estimates=len(checks.quadrature),
                   worst_stderrs=abs(worst["error_in_stderrs"]), max_stderrs=checks.max_stderrs)
    numbers.update({f"worst_{key}": worst[key] for key in ("sigma", "mu", "mean", "quadrature")})
    distance = ("with a standard error of 0" if pd.isna(worst["error_in_stderrs"])
                else "{worst_stderrs:.1f} standard errors away, tolerance {max_stderrs:g}")
    return ("{k2_disagreeing:count} of {k2_estimates:count} K = 2 estimates disagree with quadrature; at sigma = "
            "{worst_sigma:g}, mu = {worst_mu:g} the estimate is {worst_mean:.5f} against {worst_quadrature:.5f} "
            f"({distance})"), numbers


def _quadrature_failure(checks: EstimatorChecks) -> str:
    return render(*_quadrature_disagreement(checks))


def _mechanism_failure(mechanism: pd.DataFrame) -> tuple[str, dict]:
    ordered = mechanism.sort_values("spread").reset_index(drop=True)
    columns = ["atfd", "logit_std", "confidence"]
    falling = ordered[columns].diff().iloc[1:] <= 0  # [steps, 3]: True where a quantity does not rise
    step = int(falling.any(axis=1).idxmax())
    names = ", ".join(c for c in columns if falling.loc[step, c])
    numbers = {"spread_from": ordered.loc[step - 1, "spread"], "spread_to": ordered.loc[step, "spread"]}
    return f"with the spread going from {{spread_from:g}} to {{spread_to:g}}, {names} did not rise", numbers


def c11_max_softmax_increases(steps: pd.DataFrame, checks: EstimatorChecks, mechanism: pd.DataFrame) -> Verdict:
    """C11: E[max softmax] of i.i.d. Gaussian logits increases strictly with sigma, for every mu.

    Holds when every step up the sigma grid is resolved as an increase and no check that could be made (sigma = 0
    exact, K = 2 against quadrature, the mechanism rising) failed; not tested when the grid has no step. ``steps``
    and ``checks`` are :func:`step_tests` and :func:`estimator_checks` of the same curve, ``mechanism`` the output of
    :func:`vlmcal.papers.dor.theory.dispersion_mechanism`."""
    mechanism_ok = theory.mechanism_increasing(mechanism)
    if steps.empty:
        return Verdict.of("C11", holds=None, backbone=BACKBONE, numbers={}, measured="no step up the sigma grid",
                          why="the sigma grid has fewer than two values, so there is no step to test")
    ks = {f"n_classes{i}": k for i, k in enumerate(sorted(int(k) for k in steps["n_classes"].unique()), 1)}
    mus = {f"mu{i}": mu for i, mu in enumerate(sorted(float(m) for m in steps["mu"].unique()), 1)}
    numbers = {"steps_resolved": int(steps["resolved"].sum()), "steps_tested": len(steps), **ks, **mus,
               "max_stderrs": checks.max_stderrs, "smallest_lower_bound": steps["lower_bound"].min()}
    checked = [  # (outcome, its failure, why it was not checked)
        (numbers["steps_resolved"] == len(steps), lambda: _step_failure(steps), ""),
        (checks.sigma_zero_exact, lambda: _sigma_zero_failure(checks),
         "sigma = 0 is not in the grid, so the estimates were not compared with the exact 1/K"),
        (checks.quadrature_agrees, lambda: _quadrature_disagreement(checks),
         "K = 2 is not in the grid, so the estimator was not compared with quadrature"),
        (mechanism_ok, lambda: _mechanism_failure(mechanism),
         "fewer than two spreads were simulated, so the mechanism has no step"),
    ]
    failed = [failure() for ok, failure, _ in checked if ok is False]
    for _, failure_numbers in failed:
        numbers.update(failure_numbers)
    k_slots, mu_slots = (", ".join(f"{{{key}}}" for key in keys) for keys in (ks, mus))  # shown as str() shows them
    zero, two, rising = (outcome_text(ok) for ok, _, _ in checked[1:])
    return Verdict.of(
        "C11", holds=not failed, backbone=BACKBONE, numbers=numbers,
        measured=("{steps_resolved:count} of {steps_tested:count} steps up the sigma grid resolved as increases "
                  f"(K in [{k_slots}], mu in [{mu_slots}]); m_K(0) = 1/K exactly: {zero}; "
                  f"K = 2 within {{max_stderrs:g}} standard errors of quadrature: {two}; "
                  f"dispersion -> spread -> confidence all increasing: {rising}"),
        interval="smallest step's lower bound {smallest_lower_bound:.2e}",
        why="; ".join([text for text, _ in failed] + [f"not checked: {note}" for ok, _, note in checked if ok is None]),
    )


# ----------------------------------------------------------------------------- C12
@dataclass(frozen=True)
class C12Part:
    """One part of C12: a figure of the runs and the side of 0 the claim puts it on.

    ``split``, ``metric``, ``a``, ``b``: the figure (:class:`vlmcal.papers.dor.base_to_new.Contrast`); ``sign``: +1
    when the claim says it is above 0, -1 below; ``says``, ``figure``: what the part claims and the figure, in words."""

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


def _c12_slot(metric: str, name: str) -> str:
    """A figure's placeholder in its unit: ECE, gaps and accuracies in signed points, feature divergence as is."""
    return f"{{{name}:+.3f}}" if metric == "fd" else f"{{{name}:points}} points"


def _c12_judge(name: str, part: C12Part, row) -> tuple[dict, dict]:
    """One part's row of :func:`c12_part_tests` with its texts as templates, and the numbers they name: the part holds
    when its interval and every seed are on the claim's side of 0, fails when all are on the other side."""
    per_seed = [float(v) for v in row["per_seed"]]
    lower, upper = float(row["lower"]), float(row["upper"])
    signed = [v * part.sign for v in (lower, upper, *per_seed)]  # above 0: on the claim's side
    numbers = {f"{name}_seed{i}": v for i, v in enumerate(per_seed, 1)}
    seeds_text = ", ".join(_c12_slot(part.metric, key) for key in numbers)
    numbers.update({name: row["estimate"], f"{name}_lower": lower, f"{name}_upper": upper})
    bounds = f"[{_c12_slot(part.metric, f'{name}_lower')}, {_c12_slot(part.metric, f'{name}_upper')}]"
    holds, why = None, ""
    if int(row["seeds"]) < 2:
        why = f"{part.says}: one seed only ({seeds_text}), so the spread between seeds is not measured"
    elif math.isnan(lower) or math.isnan(upper) or math.isnan(float(row["estimate"])):
        why = f"{part.says}: the figure is undefined here"
    elif all(v > 0 for v in signed):
        holds = True
    elif all(v < 0 for v in signed):
        holds = False
    elif (signed[0] > 0, signed[0] < 0) != (signed[1] > 0, signed[1] < 0):
        why = f"{part.says}: within noise, the 95% interval over test images {bounds} contains 0"
    else:
        why = f"{part.says}: the seeds disagree ({seeds_text})"
    return {"part": part.says, "figure": part.figure, "estimate": _c12_slot(part.metric, name),
            "interval": "no image noise (text features only)" if part.metric == "fd" else bounds,
            "per_seed": seeds_text, "outcome": outcome_text(holds) if holds is not None else "undecided",
            "holds": holds, "why": why}, numbers


def _c12_judged(figures: pd.DataFrame) -> list[tuple[dict, dict]]:
    missing = [name for name in C12_PARTS if name not in set(figures["name"])]
    if missing:
        raise ValueError(f"Expected `figures` to hold every part of C12 ({list(C12_PARTS)}), but it lacks {missing}")
    indexed = figures.set_index("name")
    return [_c12_judge(name, part, indexed.loc[name]) for name, part in C12_PARTS.items()]


def c12_part_tests(figures: pd.DataFrame) -> pd.DataFrame:
    """Each part of C12 with its figure and outcome, from the :func:`vlmcal.papers.dor.base_to_new.contrast_figures`
    of :func:`c12_contrasts`: one row per part, in :data:`C12_PARTS` order, with ``part`` (what it claims),
    ``figure``, ``estimate``, ``interval``, ``per_seed``, ``outcome`` and ``holds`` (True, False or None)."""
    return pd.DataFrame([{key: render(text, numbers) if isinstance(text, str) else text for key, text in row.items()}
                         for row, numbers in _c12_judged(figures)])


_C12_PAPER_ROWS = {"zero-shot": "zeroshot", "CoOp": "coop", "CoOp + DOR": "coop_dor", "KgCoOp": "kgcoop", "KgCoOp + DOR": "kgcoop_dor"}


def c12_paper_table() -> pd.DataFrame:
    """The DOR paper's base and new ECE (%, 11-dataset averages) as secondary summaries give them, verified or not."""
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
    """C12: CoOp over-confident on new classes (features diverging), KgCoOp under-confident on base, DOR fixing both.

    Holds when all five parts of :data:`C12_PARTS` hold beyond their noise (:func:`c12_part_tests` of ``figures``),
    does not hold when any fails, and is not tested otherwise; ``why`` names each failed or undecided part.
    ``backbone``: the run's model in words."""
    tests, part_numbers = zip(*_c12_judged(figures))
    seeds = int(figures["seeds"].min())
    numbers = {"seeds": seeds} | {key: value for part in part_numbers for key, value in part.items()}
    failures = [f"{t['part']} does not hold: {t['figure']} is {t['estimate']} (95% CI {t['interval']}; "
                f"seeds {t['per_seed']})" for t in tests if t["holds"] is False]
    measured = join_parts([f"{t['figure']}: {t['estimate']} ({t['outcome']})" for t in tests])
    interval = join_parts([f"{t['figure']}: {t['interval']}" for part, t in zip(C12_PARTS.values(), tests)
                           if part.metric != "fd"])
    return Verdict.of(
        "C12", holds=combine_tests([t["holds"] for t in tests]), backbone=backbone, numbers=numbers,
        measured=f"{measured} (mean over {{seeds:count}} seed{'s' if seeds != 1 else ''})", interval=interval,
        why=join_parts(failures + [t["why"] for t in tests if t["holds"] is None]), paper_figure=_c12_paper_figure(),
    )
