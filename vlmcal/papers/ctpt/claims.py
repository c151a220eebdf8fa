"""Claims C7–C10 of C-TPT (Yoon et al., ICLR 2024), each decided from a page's measured intervals.

Each function takes the bootstrap intervals a page computes and returns the claim's
:class:`vlmcal.papers.common.verdict.Verdict`: whether the claim holds here, the figures behind the decision,
and, when it does not hold or cannot be tested, a reason built from those figures. The models
are named only by ``backbone``, so a page re-run with CLIP explains CLIP's result.

What each verdict decides, and from what:

- C7 (:func:`c7_tpt_worsens_calibration`): TPT raises accuracy but worsens calibration. From
  the paired (over images) change of ECE from zero-shot to TPT with the hard prompt on the
  clean test set, which must be a rise of at least ``c7_threshold_ece_rise``; from mean
  confidence minus accuracy after TPT, which must be above 0 (over-confidence); and from the
  accuracy change, which makes the claim fail only when its whole interval is below 0. A
  change whose interval contains 0 is reported as "unchanged within noise" and does not decide.
  The mean rise over shifted sets (the analogue of the paper's Table 2) is a second result.
- C8 (:func:`c8_dispersion_correlates_negatively`): among the prompts within
  ``c8_accuracy_window`` points of the best accuracy, ATFD correlates negatively with ECE.
  From the Pearson correlation over those prompts (bootstrap over prompts): negative by its
  interval, or by its estimate when the interval contains 0 but is narrower than
  ``c8_margin_correlation``; not testable with fewer than ``c8_min_prompts`` prompts. The
  correlation within each confidence regime (:func:`regime_sentence`) is a second result.
- C9 (:func:`c9_ctpt_halves_ece`): C-TPT cuts TPT's ECE by about half at about the same
  accuracy. From ECE(C-TPT) / ECE(TPT) (at most ``c9_threshold_ece_ratio``) and the accuracy
  change of C-TPT against TPT (a drop of at most ``c9_threshold_accuracy_drop``), both
  paired over images, hard prompt, clean set. Other initialisations and shifted sets are
  second results.
- C10 (:func:`c10_ctpt_beats_tpt_ts`): C-TPT's ECE is lower than that of TPT followed by a
  fixed temperature fitted on other labelled data. From the mean over sets of
  ECE(C-TPT) − ECE(TPT + TS), paired: at most 0, by its interval, or by its estimate when the
  interval is narrower than ``c10_margin_ece_difference``.

Background to C8. C-TPT reads its correlation as "more dispersion of the class text features,
lower ECE", and turns it into a loss that rewards dispersion. DOR (Wang, Li & Wei, ICML 2025)
gives the mechanism behind it: more divergent text features spread the logits wider, and wider
logits make the max softmax larger (its Proposition 3.1; claim C11). More confidence lowers
ECE for a model that is under-confident but raises it for one that is over-confident, so the
sign of the correlation is expected to depend on the regime: negative (C-TPT's reading) where
the model is under-confident, positive where it is over-confident. :func:`regime_sentence`
states, from the numbers, which sign each regime shows.

Every bar is a row of ``vlmcal/papers/common/paper_values.csv`` (its ``source`` says it is vlmcal's
reading of the paper), and every decision against a bar goes through
:func:`vlmcal.papers.common.rules.compare_with_bar`: a bar narrower than the measurement's noise
leaves the claim "not tested here", with both numbers in ``why``.

Units: inputs are fractions (ECE 0.05); the texts show ECE, accuracy and confidence in
percentage points with 2 decimals, as the paper does, ratios as percentages, correlations
with 3 decimals.
"""

from __future__ import annotations

import math

import pandas as pd

from vlmcal.metrics import BootstrapResult
from vlmcal.papers.common.paper_values import paper_value
from vlmcal.papers.common.rules import BarTest, combine_tests, compare_with_bar, join_parts, statement, threshold
from vlmcal.papers.common.verdict import Verdict

__all__ = [
    "c7_tpt_worsens_calibration",
    "c8_dispersion_correlates_negatively",
    "regime_sentence",
    "c9_ctpt_halves_ece",
    "c10_ctpt_beats_tpt_ts",
    "paper_tables",
]

_SECOND_RESULT = "a second result, which does not decide the verdict"
_REGIME_COLUMNS = ("stage", "regime", "n", "pearson", "pearson_lower", "pearson_upper")
_OTHERS_COLUMNS = ("init", "side", "ratio", "lower", "upper")


# ----------------------------------------------------------------------------- formatting


def _points(x: float) -> str:
    """A fraction as signed percentage points: ``0.0717`` -> ``"+7.17"``."""
    return f"{100.0 * x:+.2f}"


def _points_ci(interval: BootstrapResult) -> str:
    return f"[{_points(interval.lower)}, {_points(interval.upper)}] points"


def _share_ci(interval: BootstrapResult) -> str:
    return f"[{interval.lower:.0%}, {interval.upper:.0%}]"


def _r_ci(lower: float, upper: float) -> str:
    return f"[{lower:+.3f}, {upper:+.3f}]"



def _noise_reason(what: str, interval_text: str, bar_text: str, half_width_text: str, margin_text: str) -> str:
    """Why a :class:`BarTest` was left open, from preformatted numbers."""
    return (f"not testable at this sample size: the 95% CI of {what} {interval_text} contains the bar ({bar_text}) "
            f"and its half-width {half_width_text} is not below the margin of {margin_text}")


def _outcome_word(test: BarTest, yes: str, no: str) -> str:
    return "undecided within noise" if test.holds is None else (yes if test.holds else no)


def _require_columns(frame: pd.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"Expected `{name}` to have the columns {list(columns)}, but it lacks {missing} "
                         f"(columns: {list(frame.columns)})")



# ----------------------------------------------------------------------------- C7


def _c7_paper_figure() -> str:
    accuracy = (f"accuracy {paper_value('c9_vitb16_hard_init_acc').value:#.3g} -> {paper_value('c9_vitb16_hard_tpt_acc').value:#.3g} "
                f"percent [{paper_value('c9_vitb16_hard_tpt_acc')['source']}]")
    return join_parts([paper_value("c7_ece_init").describe(), paper_value("c7_ece_tpt").describe(), accuracy])


def _c7_shifted_text(shifted_ece_rise: BootstrapResult, rise_bar: float) -> str:
    test = compare_with_bar(shifted_ece_rise, bar=rise_bar, margin=rise_bar, at_most=False)
    paper = (f"paper, Table 2, CLIP-ViT-B/16, hard prompt: ECE {paper_value('t2_vitb16_hard_init_ece').value:#.3g} -> "
             f"{paper_value('t2_vitb16_hard_tpt_ece').value:#.3g} percent")
    return (f"Shifted sets ({_SECOND_RESULT}): mean ECE rise from zero-shot to TPT {_points(shifted_ece_rise.estimate)} points "
            f"(95% CI {_points_ci(shifted_ece_rise)}), a rise of at least {_points(rise_bar)} points: "
            f"{_outcome_word(test, 'yes', 'no')} ({paper})")


def c7_tpt_worsens_calibration(
    ece_rise: BootstrapResult,
    accuracy_gain: BootstrapResult,
    overconfidence: BootstrapResult,
    backbone: str,
    shifted_ece_rise: BootstrapResult | None = None,
) -> Verdict:
    """C7: TPT raises accuracy but worsens calibration, leaving the model over-confident.

    Test: the ECE rise is at least ``c7_threshold_ece_rise`` (margin: the same, its distance
    from no change) and mean confidence minus accuracy after TPT is above 0 (margin
    ``c7_margin_overconfidence``), each as far as its 95% interval can tell. The accuracy part
    fails the claim only when the whole interval of the accuracy gain lies below 0 ("TPT
    lowered accuracy here"); an interval that contains 0 is stated ("unchanged within noise")
    but never turns a holding verdict into a failing one.

    Args:
        ece_rise: ECE(TPT) − ECE(zero-shot), clean test set, hard-prompt init, paired bootstrap over images.
        accuracy_gain: accuracy(TPT) − accuracy(zero-shot), same pairing.
        overconfidence: mean confidence minus accuracy after TPT.
        backbone: the run's models in words.
        shifted_ece_rise: the mean ECE rise over shifted sets (the paper's Table 2 analogue);
            reported in ``measured``, never deciding.

    Returns:
        The :class:`~vlmcal.papers.common.verdict.Verdict` of C7.
    """
    rise_bar = threshold("c7_threshold_ece_rise")
    over_margin = threshold("c7_margin_overconfidence")
    accuracy_margin = threshold("c7_margin_accuracy_change")
    rise_test = compare_with_bar(ece_rise, bar=rise_bar, margin=rise_bar, at_most=False)
    over_test = compare_with_bar(overconfidence, bar=0.0, margin=over_margin, at_most=False)
    accuracy_test = compare_with_bar(accuracy_gain, bar=0.0, margin=accuracy_margin, at_most=False)
    accuracy_lowered = accuracy_test.decided_by == "interval" and accuracy_test.holds is False
    accuracy_raised = accuracy_test.decided_by == "interval" and accuracy_test.holds is True

    if accuracy_raised:
        accuracy_words = "TPT raised accuracy"
    elif accuracy_lowered:
        accuracy_words = "TPT lowered accuracy"
    else:
        accuracy_words = "accuracy unchanged within noise"
    measured = join_parts([
        f"ECE after TPT minus zero-shot ECE on the clean test set (hard prompt): {_points(ece_rise.estimate)} points "
        f"(worse: a rise of at least {_points(rise_bar)} points)",
        f"accuracy change {_points(accuracy_gain.estimate)} points ({accuracy_words})",
        f"mean confidence minus accuracy after TPT {_points(overconfidence.estimate)} points "
        f"({_outcome_word(over_test, 'over-confident', 'under-confident')})",
        _c7_shifted_text(shifted_ece_rise, rise_bar) if shifted_ece_rise is not None else "",
    ])
    interval = (f"95% CI of the ECE rise {_points_ci(ece_rise)}; of the accuracy change {_points_ci(accuracy_gain)}; "
                f"of mean confidence minus accuracy {_points_ci(overconfidence)}")

    failures, undecided, notes = [], [], []
    if rise_test.holds is False:
        change = "rose by only" if ece_rise.estimate > 0 else "changed by"
        failures.append(f"TPT's ECE {change} {_points(ece_rise.estimate)} points (95% CI {_points_ci(ece_rise)}), "
                        f"short of a rise of {_points(rise_bar)} points")
    elif rise_test.holds is None:
        undecided.append(_noise_reason("the ECE rise", _points_ci(ece_rise), f"{_points(rise_bar)} points",
                                       f"{100 * rise_test.half_width:.2f} points", f"{100 * rise_bar:.2f} points"))
    if over_test.holds is False:
        failures.append(f"after TPT the model is under-confident: its mean confidence is {100 * -overconfidence.estimate:.2f} "
                        f"points below its accuracy (95% CI of the gap {_points_ci(overconfidence)})")
    elif over_test.holds is None:
        undecided.append(_noise_reason("mean confidence minus accuracy", _points_ci(overconfidence), "0 points",
                                       f"{100 * over_test.half_width:.2f} points", f"{100 * over_margin:.2f} points"))
    if accuracy_lowered:
        failures.append(f"TPT lowered accuracy here: {_points(accuracy_gain.estimate)} points "
                        f"(95% CI {_points_ci(accuracy_gain)}, wholly below 0)")
    elif not accuracy_raised:
        notes.append(f"accuracy unchanged within noise: the change of {_points(accuracy_gain.estimate)} points has a 95% CI "
                     f"{_points_ci(accuracy_gain)} that contains 0, so the 'raises accuracy' part is not confirmed here "
                     "(it does not decide the verdict)")
    holds = combine_tests([rise_test.holds, over_test.holds, False if accuracy_lowered else True])
    return Verdict(claim="C7", statement=statement("C7"), paper_figure=_c7_paper_figure(), measured=measured,
                   interval=interval, holds=holds, backbone=backbone, why=join_parts(failures + undecided + notes))


# ----------------------------------------------------------------------------- C8


def _regime_interval(row) -> BootstrapResult:
    """A regime's correlation as a BootstrapResult; only estimate, lower and upper are compared."""
    return BootstrapResult(float(row["pearson"]), float(row["pearson_lower"]), float(row["pearson_upper"]), 0.95, 0, 0)


def _regime_signs(regimes: pd.DataFrame) -> pd.DataFrame:
    """``regimes`` with a column ``sign``: ``"negative"``, ``"positive"``, ``"undecided"`` or ``"too few prompts"``.

    The sign is decided against 0 as the pooled correlation is (margin ``c8_margin_correlation``).
    """
    _require_columns(regimes, "regimes", _REGIME_COLUMNS)
    margin = threshold("c8_margin_correlation")
    signs = []
    for _, row in regimes.iterrows():
        if pd.isna(row["pearson"]):
            signs.append("too few prompts")
            continue
        test = compare_with_bar(_regime_interval(row), bar=0.0, margin=margin, at_most=True)
        signs.append({True: "negative", False: "positive", None: "undecided"}[test.holds])
    return regimes.assign(sign=signs)


def _group_text(row) -> str:
    where = f"the {row['stage']}, {row['regime']} group (n = {int(row['n'])}"
    if row["sign"] == "too few prompts":
        return where + ")"
    return f"{where}, r = {row['pearson']:+.3f}, 95% CI {_r_ci(row['pearson_lower'], row['pearson_upper'])})"


def regime_sentence(regimes: pd.DataFrame) -> str:
    """In which confidence regime(s) ATFD correlates negatively with ECE, and in which positively, from the numbers.

    A group's sign is decided against 0 as C8's pooled correlation is: by its interval, or by
    its estimate when the interval contains 0 but is narrower than ``c8_margin_correlation``.
    Negative is C-TPT's reading (more dispersion, lower ECE); positive is what DOR's mechanism
    expects for an over-confident model (more dispersion, wider logits, more confidence, higher
    ECE). The sentence ends with how many decided groups have the sign DOR's mechanism expects
    for their regime (negative where under-confident, positive where over-confident).

    Args:
        regimes: one row per (stage, regime) group, columns ``stage`` ("zero-shot", "after
            TPT"), ``regime`` ("over-confident", "under-confident"), ``n`` (prompts),
            ``pearson``, ``pearson_lower``, ``pearson_upper`` (NaN when too few prompts).

    Returns:
        One sentence, its parts separated by "; ".

    Example:
        >>> import pandas as pd
        >>> regimes = pd.DataFrame({"stage": ["after TPT"], "regime": ["over-confident"], "n": [9],
        ...                         "pearson": [0.6], "pearson_lower": [0.2], "pearson_upper": [0.9]})
        >>> regime_sentence(regimes).startswith("By confidence regime, the correlation of ATFD with ECE is positive")
        True
    """
    return "By confidence regime, " + _regime_body(regimes)


def _regime_body(regimes: pd.DataFrame) -> str:
    """:func:`regime_sentence` after its opening words."""
    signed = _regime_signs(regimes)
    if signed.empty:
        return "no group was given"
    phrases = {
        "negative": "negative, C-TPT's reading (more dispersion, lower ECE), in",
        "positive": "positive, DOR's reading for an over-confident model (more dispersion, higher ECE), in",
        "undecided": "undecided (its 95% CI contains 0 and is not narrower than the margin) in",
        "too few prompts": "not computed (too few prompts to correlate) in",
    }
    parts = []
    for sign, phrase in phrases.items():
        rows = signed[signed["sign"] == sign]
        if not rows.empty:
            parts.append(f"{phrase} " + " and ".join(_group_text(row) for _, row in rows.iterrows()))
    decided = signed[signed["sign"].isin(["negative", "positive"]) & signed["regime"].isin(["over-confident", "under-confident"])]
    expected = {"under-confident": "negative", "over-confident": "positive"}
    as_expected = int((decided["sign"] == decided["regime"].map(expected)).sum())
    tally = (f"the sign is the one DOR's mechanism expects for the regime (negative where under-confident, positive where "
             f"over-confident) in {as_expected} of {len(decided)} decided group(s)")
    return "the correlation of ATFD with ECE is " + join_parts(parts + [tally])


def _dor_hint(regimes: pd.DataFrame | None) -> str:
    """Where the correlation is positive, by regime, in words (for ``why``); "" when no group is positive."""
    if regimes is None:
        return ""
    positive = _regime_signs(regimes).query("sign == 'positive'")
    if positive.empty:
        return ""
    over = positive[positive["regime"] == "over-confident"]
    other = positive[positive["regime"] != "over-confident"]
    parts = []
    if not over.empty:
        parts.append("the correlation is positive where the model is over-confident ("
                     + " and ".join(_group_text(row) for _, row in over.iterrows())
                     + "), as DOR's mechanism expects: more dispersion, wider logits, more confidence, higher ECE")
    if not other.empty:
        parts.append("it is positive also where the model is not over-confident ("
                     + " and ".join(_group_text(row) for _, row in other.iterrows())
                     + "), which neither C-TPT's reading nor DOR's mechanism expects")
    return join_parts(parts)


def c8_dispersion_correlates_negatively(
    pearson: BootstrapResult,
    spearman: BootstrapResult,
    n_prompts: int,
    backbone: str,
    regimes: pd.DataFrame | None = None,
    window: float | None = None,
) -> Verdict:
    """C8: among prompts of near-top accuracy, text-feature dispersion (ATFD) correlates negatively with ECE.

    Test: the Pearson correlation of ATFD with ECE over the ``n_prompts`` prompts within
    ``c8_accuracy_window`` points of the best accuracy is below 0 by its 95% interval (bootstrap
    over prompts), or by its estimate when the interval contains 0 but its half-width is below
    ``c8_margin_correlation``. It fails when the correlation is positive the same way (the
    opposite sign), and is not tested with fewer than ``c8_min_prompts`` prompts or when a
    wide interval contains 0. Spearman's rho is reported beside it; the correlation within
    each confidence regime (:func:`regime_sentence`) is a second result: DOR's mechanism
    expects the sign to be negative only where the model is under-confident (see the module's
    docstring).

    Args:
        pearson: Pearson correlation of ATFD with ECE over the prompts in the window.
        spearman: Spearman correlation over the same prompts.
        n_prompts: how many prompts lie in the window.
        backbone: the run's models in words.
        regimes: optional per-regime correlations (see :func:`regime_sentence`).
        window: the accuracy window the page used, as a fraction (0.03); None: the paper's.

    Returns:
        The :class:`~vlmcal.papers.common.verdict.Verdict` of C8.
    """
    min_prompts, margin = threshold("c8_min_prompts"), threshold("c8_margin_correlation")
    window = threshold("c8_accuracy_window") if window is None else 100 * float(window)  # in points
    common = dict(claim="C8", statement=statement("C8"), backbone=backbone, paper_figure=join_parts([
        paper_value("c8_pearson_rn50").describe(), paper_value("c8_pearson_vitb16").describe(),
        paper_value("c8_accuracy_window").describe()]))
    regime_text = f"By confidence regime ({_SECOND_RESULT}), {_regime_body(regimes)}" if regimes is not None else ""
    if n_prompts < min_prompts:
        return Verdict(**common, measured=join_parts([f"{n_prompts} prompt(s) within {window:g} points of the best accuracy", regime_text]),
                       interval="", holds=None,
                       why=(f"only {n_prompts} prompt(s) lie within {window:g} points of the best accuracy; "
                            f"a correlation over prompts needs at least {min_prompts:g}"))
    test = compare_with_bar(pearson, bar=0.0, margin=margin, at_most=True)
    measured = join_parts([
        f"over {n_prompts} prompts within {window:g} points of the best accuracy: Pearson r of ATFD with ECE "
        f"{pearson.estimate:+.3f} ({_outcome_word(test, 'negative', 'positive')}; C-TPT: negative), "
        f"Spearman rho {spearman.estimate:+.3f}",
        regime_text,
    ])
    interval = (f"95% CI over prompts: Pearson {_r_ci(pearson.lower, pearson.upper)}, "
                f"Spearman {_r_ci(spearman.lower, spearman.upper)}")
    if test.holds is None:
        why = join_parts([
            _noise_reason("Pearson r", _r_ci(pearson.lower, pearson.upper), "0", f"{test.half_width:.3f}", f"{margin:.3f}"),
            _dor_hint(regimes),
        ])
    elif not test.holds:
        why = join_parts([
            f"ATFD correlates positively with ECE here: Pearson r {pearson.estimate:+.3f} "
            f"(95% CI {_r_ci(pearson.lower, pearson.upper)}), the opposite sign to the paper's",
            _dor_hint(regimes),
        ])
    else:
        why = _dor_hint(regimes)  # holds overall; a positive regime is where it holds only in part
    return Verdict(**common, measured=measured, interval=interval, holds=test.holds, why=why)


# ----------------------------------------------------------------------------- C9


def _paper_ratios(table: str) -> tuple[list[float], list[float]]:
    """ECE(C-TPT)/ECE(TPT) and accuracy(C-TPT) − accuracy(TPT) (points) of every row pair of a table (``"c9"`` or ``"t2"``)."""
    ratios, changes = [], []
    for model in ("rn50", "vitb16"):
        for init in ("hard", "ens"):
            prefix = f"{table}_{model}_{init}"
            ratios.append(paper_value(f"{prefix}_ctpt_ece").value / paper_value(f"{prefix}_tpt_ece").value)
            changes.append(paper_value(f"{prefix}_ctpt_acc").value - paper_value(f"{prefix}_tpt_acc").value)
    return ratios, changes


def paper_tables() -> pd.DataFrame:
    """C-TPT's Tables 1 and 2 as the paper reports them ("Acc / ECE" in percent), read from the data file."""
    names = {"rn50": "CLIP-RN50", "vitb16": "CLIP-ViT-B/16", "hard": "hard prompt", "ens": "ensemble"}
    methods = {"init": "zero-shot", "tpt": "TPT", "ctpt": "C-TPT"}
    rows = []
    for table, sets in (("c9", "Table 1: 11 fine-grained sets"), ("t2", "Table 2: ImageNet-A/V2/R/Sketch")):
        for model in ("rn50", "vitb16"):
            for init in ("hard", "ens"):
                row = {"paper": sets, "backbone": names[model], "init": names[init]}
                for key, method in methods.items():
                    prefix = f"{table}_{model}_{init}_{key}"
                    row[method] = f"{paper_value(prefix + '_acc').value:.1f} / {paper_value(prefix + '_ece').value:.2f}"
                rows.append(row)
    return pd.DataFrame(rows).set_index(["paper", "backbone", "init"])


def _c9_paper_figure() -> str:
    parts = [paper_value("c9_vitb16_hard_tpt_ece").describe(), paper_value("c9_vitb16_hard_ctpt_ece").describe()]
    for table, name in (("c9", "Table 1"), ("t2", "Table 2")):
        ratios, changes = _paper_ratios(table)
        parts.append(f"{name}, computed from its rows: ECE with C-TPT is {min(ratios):.0%}-{max(ratios):.0%} of ECE with TPT, "
                     f"accuracy changes by {min(changes):+.1f} to {max(changes):+.1f} points")
    return join_parts(parts)


def _c9_others_text(others: pd.DataFrame, ratio_bar: float) -> str:
    _require_columns(others, "others", _OTHERS_COLUMNS)
    cells = []
    for _, row in others.iterrows():
        interval = BootstrapResult(float(row["ratio"]), float(row["lower"]), float(row["upper"]), 0.95, 0, 0)
        test = compare_with_bar(interval, bar=ratio_bar, margin=1.0 - ratio_bar, at_most=True)
        cells.append(f"{row['init']}, {row['side']}: {row['ratio']:.0%} (95% CI {_share_ci(interval)}), "
                     f"at most {ratio_bar:.0%}: {_outcome_word(test, 'yes', 'no')}")
    return f"Other settings ({_SECOND_RESULT}): ECE with C-TPT as a share of ECE with TPT, " + ", ".join(cells)


def c9_ctpt_halves_ece(
    ece_ratio: BootstrapResult,
    accuracy_change: BootstrapResult,
    backbone: str,
    others: pd.DataFrame | None = None,
) -> Verdict:
    """C9: C-TPT cuts TPT's ECE by about half at about the same accuracy.

    Test: ECE(C-TPT) / ECE(TPT) is at most ``c9_threshold_ece_ratio`` (margin: the bar's
    distance from the no-effect ratio 1), and the accuracy change of C-TPT against TPT is at
    least ``-c9_threshold_accuracy_drop`` (margin: the same), each as far as its 95% interval
    can tell. The claim holds when both parts hold, fails when either fails, and is not tested
    when neither fails and at least one is undecided (``why`` says which).

    Args:
        ece_ratio: ECE(C-TPT) / ECE(TPT), hard prompt, clean set, paired bootstrap over images.
        accuracy_change: accuracy(C-TPT) − accuracy(TPT), same pairing.
        backbone: the run's models in words.
        others: optional second results, one row per setting: ``init`` (e.g. "ensemble"),
            ``side`` (e.g. "clean", "shifted"), ``ratio``, ``lower``, ``upper``.

    Returns:
        The :class:`~vlmcal.papers.common.verdict.Verdict` of C9.
    """
    ratio_bar, drop_bar = threshold("c9_threshold_ece_ratio"), threshold("c9_threshold_accuracy_drop")
    common = dict(claim="C9", statement=statement("C9"), paper_figure=_c9_paper_figure(), backbone=backbone)
    others_text = _c9_others_text(others, ratio_bar) if others is not None else ""
    accuracy_test = compare_with_bar(accuracy_change, bar=-drop_bar, margin=drop_bar, at_most=False)
    if math.isnan(ece_ratio.estimate):
        return Verdict(**common, measured=join_parts([f"accuracy change of C-TPT against TPT {_points(accuracy_change.estimate)} points",
                                                 others_text]),
                       interval="", holds=None,
                       why="the ratio of ECE with C-TPT to ECE with TPT is undefined here (ECE with TPT is 0, or no image was evaluated)")
    ratio_test = compare_with_bar(ece_ratio, bar=ratio_bar, margin=1.0 - ratio_bar, at_most=True)
    measured = join_parts([
        f"ECE with C-TPT is {ece_ratio.estimate:.0%} of ECE with TPT on the clean set, hard prompt "
        f"(about half: at most {ratio_bar:.0%})",
        f"accuracy change of C-TPT against TPT {_points(accuracy_change.estimate)} points "
        f"(about the same: a drop of at most {100 * drop_bar:.2f} points)",
        others_text,
    ])
    interval = f"95% CI of the ECE ratio {_share_ci(ece_ratio)}; of the accuracy change {_points_ci(accuracy_change)}"
    failures, undecided = [], []
    if ratio_test.holds is False:
        failures.append(f"ECE with C-TPT is {ece_ratio.estimate:.0%} of ECE with TPT (95% CI {_share_ci(ece_ratio)}), "
                        f"above the bar of {ratio_bar:.0%}")
    elif ratio_test.holds is None:
        undecided.append("the ECE ratio is " + _noise_reason("the ratio", _share_ci(ece_ratio), f"{ratio_bar:.0%}",
                                                             f"{ratio_test.half_width:.0%}", f"{1.0 - ratio_bar:.0%}"))
    if accuracy_test.holds is False:
        failures.append(f"C-TPT lowered accuracy by {100 * -accuracy_change.estimate:.2f} points against TPT "
                        f"(95% CI {_points_ci(accuracy_change)}), more than the {100 * drop_bar:.2f}-point tolerance")
    elif accuracy_test.holds is None:
        undecided.append("the accuracy change is " + _noise_reason(
            "the change", _points_ci(accuracy_change), f"{_points(-drop_bar)} points",
            f"{100 * accuracy_test.half_width:.2f} points", f"{100 * drop_bar:.2f} points"))
    holds = combine_tests([ratio_test.holds, accuracy_test.holds])
    return Verdict(**common, measured=measured, interval=interval, holds=holds, why=join_parts(failures + undecided))


# ----------------------------------------------------------------------------- C10


def _temperature_words(temperature: float) -> str:
    if temperature > 1.0:
        return f"it divides the logits by {temperature:.2f}, softening the probabilities"
    if temperature < 1.0:
        return f"it divides the logits by {temperature:.2f}, sharpening the probabilities"
    return "it leaves the probabilities unchanged"


def c10_ctpt_beats_tpt_ts(ece_difference: BootstrapResult | None, temperature: float | None, fitted_on: str, backbone: str) -> Verdict:
    """C10: C-TPT, without labels, ends with a lower ECE than TPT followed by temperature scaling.

    Test: the mean over sets of ECE(C-TPT) − ECE(TPT + TS) is at most 0 by its 95% interval
    (paired bootstrap), or by its estimate when the interval contains 0 but its half-width is
    below ``c10_margin_ece_difference``. It fails when TPT + TS is lower the same way, and is not
    tested when a wide interval contains 0. The temperature is fixed, fitted on other labelled
    data (``fitted_on``), as the paper fits its temperature on ImageNet
    (``c10_ts_temperature_vit``, ``c10_ts_temperature_rn``).

    Args:
        ece_difference: mean over sets of ECE(C-TPT) − ECE(TPT + TS), paired bootstrap over images
            (None when the run fitted no temperature).
        temperature: the fixed temperature applied after TPT (None: the run had no labelled
            data to fit one on, and the claim is not tested).
        fitted_on: on what labelled data the temperature was fitted, in words.
        backbone: the run's models in words.

    Returns:
        The :class:`~vlmcal.papers.common.verdict.Verdict` of C10.
    """
    paper_vit, paper_rn = paper_value("c10_ts_temperature_vit"), paper_value("c10_ts_temperature_rn")
    paper_figure = join_parts([paper_value("c10_statement").describe(), paper_vit.describe(), paper_rn.describe()])
    if temperature is None or ece_difference is None:
        return Verdict(claim="C10", statement=statement("C10"), paper_figure=paper_figure, measured="no TPT + TS in this run",
                       interval="", holds=None, backbone=backbone,
                       why=f"no temperature was fitted in this run ({fitted_on}), so TPT + TS could not be compared")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"Expected `temperature` to be a positive number, but got {temperature!r}")
    margin = threshold("c10_margin_ece_difference")
    test = compare_with_bar(ece_difference, bar=0.0, margin=margin, at_most=True)
    measured = join_parts([
        f"ECE with C-TPT minus ECE with TPT + TS, mean over sets: {_points(ece_difference.estimate)} points "
        f"({_outcome_word(test, 'C-TPT lower', 'TPT + TS lower')}; C-TPT beats it: at most 0)",
        f"TS temperature {temperature:.2f}, fitted on {fitted_on}",
        f"the paper's fixed temperatures, fitted on ImageNet: {paper_vit.value:.2f} (ViT), {paper_rn.value:.2f} (RN)",
    ])
    interval = f"95% CI of the difference {_points_ci(ece_difference)}"
    if test.holds is None:
        why = _noise_reason("the difference", _points_ci(ece_difference), "0 points",
                            f"{100 * test.half_width:.2f} points", f"{100 * margin:.2f} points")
    elif not test.holds:
        why = (f"TPT followed by TS at temperature {temperature:.2f} (fitted on {fitted_on}) has the lower ECE: C-TPT's is "
               f"{100 * ece_difference.estimate:.2f} points higher (95% CI {_points_ci(ece_difference)}); "
               f"{_temperature_words(temperature)}, against the paper's {paper_vit.value:.2f} for ViT")
    else:
        why = ""
    return Verdict(claim="C10", statement=statement("C10"), paper_figure=paper_figure, measured=measured, interval=interval, holds=test.holds, backbone=backbone, why=why)
