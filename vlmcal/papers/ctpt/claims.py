"""Claims C7–C10 of C-TPT (Yoon et al., ICLR 2024), each a Verdict decided from a page's measured intervals.

Bars are rows of ``vlmcal/papers/common/paper_values.csv``, compared by
:func:`~vlmcal.papers.common.rules.compare_with_bar`. C8's regimes: by DOR (Wang, Li & Wei, ICML 2025, Prop. 3.1;
claim C11) more dispersed text features raise confidence, lowering ECE only for an under-confident model.
Inputs are fractions; texts show ECE, accuracy and confidence in percentage points.
"""

from __future__ import annotations

import math

import pandas as pd

from vlmcal.metrics import BootstrapResult
from vlmcal.papers.common.paper_values import paper_value, paper_values
from vlmcal.papers.common.rules import BarTest, combine_tests, compare_with_bar, join_parts, noise_reason, threshold
from vlmcal.papers.common.verdict import Verdict, render

__all__ = ["c7_tpt_worsens_calibration", "c8_dispersion_correlates_negatively", "regime_sentence", "c9_ctpt_halves_ece",
           "c10_ctpt_beats_tpt_ts", "paper_tables", "later_paper_rows"]

_SECOND_RESULT = "a second result, which does not decide the verdict"


def _bounds(name: str, interval: BootstrapResult) -> dict[str, float]:
    """The numbers ``name``, ``name_lower`` and ``name_upper`` of an interval."""
    return {name: interval.estimate, f"{name}_lower": interval.lower, f"{name}_upper": interval.upper}


def _ci(name: str, kind: str = "points") -> str:
    """The template of the bounds of :func:`_bounds`, ``[{name_lower:kind}, {name_upper:kind}]`` (then " points")."""
    return f"[{{{name}_lower:{kind}}}, {{{name}_upper:{kind}}}]" + " points" * (kind == "points")


def _literal(text) -> str:
    """A text that is no number, as a template that renders as itself."""
    return str(text).replace("{", "{{").replace("}", "}}")


def _noise(what: str, interval: BootstrapResult, test: BarTest, bar: float, margin: float, kind: str = "points") -> str:
    """:func:`~vlmcal.papers.common.rules.noise_reason` in this module's units, a bar of 0 written ``0``."""
    width_kind = {"points": "percent", "share": "share", "r_change": "r"}[kind]  # the half-width's and margin's kind
    return noise_reason(what, interval, test, bar, margin, kind, width_kind, unit=" points" * (kind == "points"),
                        bar_kind="g" if bar == 0 else None)


def _why(*parts: tuple[bool | None, str, str]) -> str:
    """From ``(holds, text if False, text if None)`` parts: the texts of the failed parts, then of the undecided."""
    return join_parts([no for holds, no, _ in parts if holds is False]
                      + [none for holds, _, none in parts if holds is None])


def _outcome_word(test: BarTest, yes: str, no: str) -> str:
    return "undecided within noise" if test.holds is None else (yes if test.holds else no)


def _require_columns(frame: pd.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"Expected `{name}` to have the columns {list(columns)}, but it lacks {missing} "
                         f"(columns: {list(frame.columns)})")


def _c7_paper_figure() -> str:
    before, after = paper_value("c9_vitb16_hard_init_acc"), paper_value("c9_vitb16_hard_tpt_acc")
    return join_parts([paper_value("c7_ece_init").describe(), paper_value("c7_ece_tpt").describe(),
                       f"accuracy {before.value:#.3g} -> {after.value:#.3g} percent [{after['source']}]"])


def _c7_shifted(shifted_ece_rise: BootstrapResult, rise_bar: float) -> tuple[str, dict[str, float]]:
    """C7's second result, the mean ECE rise over shifted sets, as a template and its numbers."""
    test = compare_with_bar(shifted_ece_rise, bar=rise_bar, margin=rise_bar, at_most=False)
    numbers = {**_bounds("shifted_ece_rise", shifted_ece_rise),
               **{f"paper_{m}_ece": paper_value(f"t2_vitb16_hard_{m}_ece").value for m in ("init", "tpt")}}
    return (f"Shifted sets ({_SECOND_RESULT}): mean ECE rise from zero-shot to TPT {{shifted_ece_rise:points}} points "
            f"(95% CI {_ci('shifted_ece_rise')}), a rise of at least {{rise_bar:points}} points: "
            f"{_outcome_word(test, 'yes', 'no')} (paper, Table 2, CLIP-ViT-B/16, hard prompt: "
            "ECE {paper_init_ece:#.3g} -> {paper_tpt_ece:#.3g} percent)"), numbers


def c7_tpt_worsens_calibration(
    ece_rise: BootstrapResult, accuracy_gain: BootstrapResult, overconfidence: BootstrapResult, backbone: str,
    shifted_ece_rise: BootstrapResult | None = None,
) -> Verdict:
    """C7: TPT raises accuracy but worsens calibration, leaving the model over-confident.

    Holds when the ECE rise is at least ``c7_threshold_ece_rise`` and confidence exceeds accuracy, unless
    the accuracy gain's whole 95% interval is below 0. ``backbone``: the run's models in words.

    Args:
        ece_rise, accuracy_gain: ECE(TPT) − ECE(zero-shot) and accuracy(TPT) − accuracy(zero-shot), clean test set,
            hard prompt, paired bootstrap over images.
        overconfidence: mean confidence minus accuracy after TPT.
        shifted_ece_rise: the mean ECE rise over shifted sets (Table 2); reported, never deciding.
    """
    rise_bar, over_margin = threshold("c7_threshold_ece_rise"), threshold("c7_margin_overconfidence")
    rise_test = compare_with_bar(ece_rise, bar=rise_bar, margin=rise_bar, at_most=False)
    over_test = compare_with_bar(overconfidence, bar=0.0, margin=over_margin, at_most=False)
    gain_test = compare_with_bar(accuracy_gain, bar=0.0, margin=threshold("c7_margin_accuracy_change"), at_most=False)
    accuracy = gain_test.holds if gain_test.decided_by == "interval" else None  # raised, lowered, or within noise
    shifted, shifted_numbers = ("", {}) if shifted_ece_rise is None else _c7_shifted(shifted_ece_rise, rise_bar)
    numbers = {**_bounds("ece_rise", ece_rise), **_bounds("accuracy_gain", accuracy_gain), "rise_bar": rise_bar,
               **_bounds("overconfidence", overconfidence), "underconfidence": -overconfidence.estimate,
               **shifted_numbers}
    words = {True: "TPT raised accuracy", False: "TPT lowered accuracy", None: "accuracy unchanged within noise"}
    measured = join_parts([
        "ECE after TPT minus zero-shot ECE on the clean test set (hard prompt): {ece_rise:points} points "
        "(worse: a rise of at least {rise_bar:points} points)",
        f"accuracy change {{accuracy_gain:points}} points ({words[accuracy]})",
        "mean confidence minus accuracy after TPT {overconfidence:points} points "
        f"({_outcome_word(over_test, 'over-confident', 'under-confident')})",
        shifted,
    ])
    change = "rose by only" if ece_rise.estimate > 0 else "changed by"
    rise = (rise_test.holds,
            f"TPT's ECE {change} {{ece_rise:points}} points (95% CI {_ci('ece_rise')}), short of a rise of "
            "{rise_bar:points} points",
            _noise("the ECE rise", ece_rise, rise_test, rise_bar, rise_bar))
    over = (over_test.holds,
            "after TPT the model is under-confident: its mean confidence is {underconfidence:percent} points below its "
            f"accuracy (95% CI of the gap {_ci('overconfidence')})",
            _noise("mean confidence minus accuracy", overconfidence, over_test, 0.0, over_margin))
    gain = (accuracy,
            f"TPT lowered accuracy here: {{accuracy_gain:points}} points (95% CI {_ci('accuracy_gain')}, wholly below "
            "0)",
            "accuracy unchanged within noise: the change of {accuracy_gain:points} points has a 95% CI "
            f"{_ci('accuracy_gain')} that contains 0, so the 'raises accuracy' part is not confirmed here (it does not "
            "decide the verdict)")
    return Verdict.of(
        "C7", holds=combine_tests([rise_test.holds, over_test.holds, accuracy is not False]), backbone=backbone,
        numbers=numbers, measured=measured, why=_why(rise, over, gain), paper_figure=_c7_paper_figure(),
        interval=f"95% CI of the ECE rise {_ci('ece_rise')}; of the accuracy change {_ci('accuracy_gain')}; of mean "
                 f"confidence minus accuracy {_ci('overconfidence')}",
    )


def _regime_interval(row) -> BootstrapResult:
    """A regime's correlation as a BootstrapResult; only estimate, lower and upper are compared."""
    return BootstrapResult(float(row["pearson"]), float(row["pearson_lower"]), float(row["pearson_upper"]), 0.95, 0, 0)


def _regime_signs(regimes: pd.DataFrame) -> pd.DataFrame:
    """``regimes`` (index reset) with a ``sign``: negative, positive, undecided or "too few prompts", as C8 decides."""
    _require_columns(regimes, "regimes", ("stage", "regime", "n", "pearson", "pearson_lower", "pearson_upper"))
    margin, words = threshold("c8_margin_correlation"), {True: "negative", False: "positive", None: "undecided"}
    signs = ["too few prompts" if pd.isna(row["pearson"])
             else words[compare_with_bar(_regime_interval(row), bar=0.0, margin=margin, at_most=True).holds]
             for _, row in regimes.iterrows()]
    return regimes.assign(sign=signs).reset_index(drop=True)


def _groups(signed: pd.DataFrame) -> str:
    """Rows of :func:`_regime_signs` in words, joined by "and" (a template over the numbers ``group<i>``)."""
    texts = []
    for i, row in signed.iterrows():
        where = f"the {_literal(row['stage'])}, {_literal(row['regime'])} group (n = {{group{i}_n:count}}"
        r = f", r = {{group{i}:r_change}}, 95% CI {_ci(f'group{i}', 'r_change')}"
        texts.append(where + (r if row["sign"] != "too few prompts" else "") + ")")
    return " and ".join(texts)


def regime_sentence(regimes: pd.DataFrame) -> str:
    """In which confidence regime(s) ATFD correlates negatively with ECE, and in which positively.

    Each group's sign is decided as C8's; the sentence, its parts separated by "; ", ends with how many have the sign
    DOR expects. ``regimes``: per (stage, regime) group, ``stage``, ``regime``, ``n``, ``pearson``, ``pearson_lower``,
    ``pearson_upper`` (NaN when too few prompts).

    Example:
        >>> regimes = pd.DataFrame({"stage": ["after TPT"], "regime": ["over-confident"], "n": [9],
        ...                         "pearson": [0.6], "pearson_lower": [0.2], "pearson_upper": [0.9]})
        >>> regime_sentence(regimes).startswith("By confidence regime, the correlation of ATFD with ECE is positive")
        True
    """
    body, numbers = _regime_body(_regime_signs(regimes))
    return render("By confidence regime, " + body, numbers)


_SIGN_PHRASES = {
    "negative": "negative, C-TPT's reading (more dispersion, lower ECE), in",
    "positive": "positive, DOR's reading for an over-confident model (more dispersion, higher ECE), in",
    "undecided": "undecided (its 95% CI contains 0 and is not narrower than the margin) in",
    "too few prompts": "not computed (too few prompts to correlate) in",
}


def _regime_body(signed: pd.DataFrame) -> tuple[str, dict[str, float]]:
    """:func:`regime_sentence` after its opening words, as a template and its numbers."""
    if signed.empty:
        return "no group was given", {}
    numbers = {f"group{i}_n": row["n"] for i, row in signed.iterrows()}
    for i, row in signed[signed["sign"] != "too few prompts"].iterrows():
        numbers.update(_bounds(f"group{i}", _regime_interval(row)))
    parts = [f"{phrase} {_groups(signed[signed['sign'] == sign])}" for sign, phrase in _SIGN_PHRASES.items()
             if (signed["sign"] == sign).any()]
    expected = signed["regime"].map({"under-confident": "negative", "over-confident": "positive"})
    decided = signed["sign"].isin(["negative", "positive"]) & expected.notna()
    numbers.update(groups_as_expected=int((decided & (signed["sign"] == expected)).sum()),
                   groups_decided=int(decided.sum()))
    tally = ("the sign is the one DOR's mechanism expects for the regime (negative where under-confident, positive "
             "where over-confident) in {groups_as_expected:count} of {groups_decided:count} decided group(s)")
    return "the correlation of ATFD with ECE is " + join_parts(parts + [tally]), numbers


def _dor_hint(signed: pd.DataFrame) -> str:
    """Where the correlation is positive, by regime (a template for ``why``); "" when no group is positive."""
    positive = signed[signed["sign"] == "positive"]
    over, other = positive[positive["regime"] == "over-confident"], positive[positive["regime"] != "over-confident"]
    return join_parts([
        f"the correlation is positive where the model is over-confident ({_groups(over)}), as DOR's mechanism expects: "
        "more dispersion, wider logits, more confidence, higher ECE" if not over.empty else "",
        f"it is positive also where the model is not over-confident ({_groups(other)}), which neither C-TPT's reading "
        "nor DOR's mechanism expects" if not other.empty else "",
    ])


def c8_dispersion_correlates_negatively(
    pearson: BootstrapResult, spearman: BootstrapResult, n_prompts: int, backbone: str,
    regimes: pd.DataFrame | None = None, window: float | None = None,
) -> Verdict:
    """C8: among prompts of near-top accuracy, text-feature dispersion (ATFD) correlates negatively with ECE.

    Holds when Pearson's r is below 0; not tested with fewer than ``c8_min_prompts`` prompts.

    Args:
        pearson, spearman, n_prompts: the correlations of ATFD with ECE over the prompts in the window, and how
            many prompts lie there.
        backbone: the run's models in words.
        regimes: optional per-regime correlations (:func:`regime_sentence`), a second result.
        window: the accuracy window the page used, as a fraction (0.03); None: the paper's.
    """
    min_prompts, margin = threshold("c8_min_prompts"), threshold("c8_margin_correlation")
    numbers = {"n_prompts": n_prompts, "min_prompts": min_prompts,
               "window": threshold("c8_accuracy_window") if window is None else 100 * float(window)}  # in points
    regime_text = hint = ""
    if regimes is not None:
        signed = _regime_signs(regimes)
        body, regime_numbers = _regime_body(signed)
        numbers.update(regime_numbers)
        regime_text, hint = f"By confidence regime ({_SECOND_RESULT}), {body}", _dor_hint(signed)
    within = "within {window:g} points of the best accuracy"
    common = dict(backbone=backbone, paper_figure=join_parts(
        [paper_value(f"c8_{row}").describe() for row in ("pearson_rn50", "pearson_vitb16", "accuracy_window")]))
    if n_prompts < min_prompts:
        return Verdict.of(
            "C8", holds=None, **common, numbers=numbers,
            measured=join_parts([f"{{n_prompts:count}} prompt(s) {within}", regime_text]),
            why=f"only {{n_prompts:count}} prompt(s) lie {within}; a correlation over prompts needs at least "
                "{min_prompts:g}",
        )
    numbers.update(_bounds("pearson", pearson), **_bounds("spearman", spearman))
    test = compare_with_bar(pearson, bar=0.0, margin=margin, at_most=True)
    positive = ("ATFD correlates positively with ECE here: Pearson r {pearson:r_change} (95% CI "
                f"{_ci('pearson', 'r_change')}), the opposite sign to the paper's")
    measured = (f"over {{n_prompts:count}} prompts {within}: Pearson r of ATFD with ECE {{pearson:r_change}} "
                f"({_outcome_word(test, 'negative', 'positive')}; C-TPT: negative), Spearman rho {{spearman:r_change}}")
    return Verdict.of(
        "C8", holds=test.holds, **common, numbers=numbers, measured=join_parts([measured, regime_text]),
        interval=f"95% CI over prompts: Pearson {_ci('pearson', 'r_change')}, Spearman {_ci('spearman', 'r_change')}",
        why=join_parts([_why((test.holds, positive, _noise("Pearson r", pearson, test, 0.0, margin, "r_change"))),
                        hint]),
    )


def _paper_pairs(table: str) -> list[str]:
    """The row prefixes of paper table ``"c9"`` (Table 1) or ``"t2"`` (Table 2), per backbone and init."""
    return [f"{table}_{model}_{init}" for model in ("rn50", "vitb16") for init in ("hard", "ens")]


def paper_tables() -> pd.DataFrame:
    """C-TPT's Tables 1 and 2 as the paper reports them ("Acc / ECE" in percent), read from the data file."""
    names = {"rn50": "CLIP-RN50", "vitb16": "CLIP-ViT-B/16", "hard": "hard prompt", "ens": "ensemble"}
    rows = []
    for table, sets in (("c9", "Table 1: 11 fine-grained sets"), ("t2", "Table 2: ImageNet-A/V2/R/Sketch")):
        for prefix in _paper_pairs(table):
            _, model, init = prefix.split("_")
            row = {"paper": sets, "backbone": names[model], "init": names[init]}
            for key, method in (("init", "zero-shot"), ("tpt", "TPT"), ("ctpt", "C-TPT")):
                acc, ece = paper_value(f"{prefix}_{key}_acc").value, paper_value(f"{prefix}_{key}_ece").value
                row[method] = f"{acc:.1f} / {ece:.2f}"
            rows.append(row)
    return pd.DataFrame(rows).set_index(["paper", "backbone", "init"])


_OTPT, _ZERO = "O-TPT (Sharifdeen et al., CVPR 2025)", "ZERO (Farina et al., NeurIPS 2024)"
_LATER_ROWS = (  # (paper, backbone, sets, method, id prefix): the rows of paper_values.csv behind later_paper_rows
    (_OTPT, "CLIP-ViT-B/16", "ImageNet + 10 fine-grained", "O-TPT", "otpt_t1_vitb16_hard"),
    (_OTPT, "CLIP-RN50", "ImageNet + 10 fine-grained", "O-TPT", "otpt_t1_rn50_hard"),
    *((_ZERO, "CLIP-ViT-B/16", sets, method, f"zero_{key}_vitb16_{code}")
      for key, sets in (("fg", "10 fine-grained"), ("nds", "ImageNet + A/V2/R/Sketch"))
      for method, code in (("zero-shot", "init"), ("TPT", "tpt"), ("ZERO", "zero"))),
)


def later_paper_rows() -> pd.DataFrame:
    """What the O-TPT and ZERO papers report for their own methods (percent, as text), read from the data file.

    O-TPT's rows are the averages of its CLIP-ViT-B/16 and CLIP-RN50 tables (hard prompt); its natural-shift table
    is not in the data file (its paper could not be read here). ZERO's tables report accuracy only: its ECE cells
    say "not reported".
    """
    known, rows = set(paper_values()["id"]), []
    for paper, backbone, sets, method, prefix in _LATER_ROWS:
        acc, ece = (f"{paper_value(f'{prefix}_{k}').value:.2f}" if f"{prefix}_{k}" in known else "not reported"
                    for k in ("acc", "ece"))
        rows.append({"paper": paper, "backbone": backbone, "sets": sets, "method": method,
                     "accuracy (%)": acc, "ECE (%)": ece})
    return pd.DataFrame(rows).set_index(["paper", "backbone", "sets", "method"])


def _c9_paper_figure() -> str:
    parts = [paper_value("c9_vitb16_hard_tpt_ece").describe(), paper_value("c9_vitb16_hard_ctpt_ece").describe()]
    for table, name in (("c9", "Table 1"), ("t2", "Table 2")):
        ratios = [paper_value(f"{p}_ctpt_ece").value / paper_value(f"{p}_tpt_ece").value for p in _paper_pairs(table)]
        changes = [paper_value(f"{p}_ctpt_acc").value - paper_value(f"{p}_tpt_acc").value for p in _paper_pairs(table)]
        parts.append(f"{name}, computed from its rows: ECE with C-TPT is {min(ratios):.0%}-{max(ratios):.0%} of ECE "
                     f"with TPT, accuracy changes by {min(changes):+.1f} to {max(changes):+.1f} points")
    return join_parts(parts)


def _c9_others(others: pd.DataFrame, ratio_bar: float) -> tuple[str, dict[str, float]]:
    """C9's other settings as a template (each row's ratio named ``other<i>``) and its numbers."""
    _require_columns(others, "others", ("init", "side", "ratio", "lower", "upper"))
    cells, numbers = [], {}
    for i, (_, row) in enumerate(others.iterrows()):
        interval = BootstrapResult(float(row["ratio"]), float(row["lower"]), float(row["upper"]), 0.95, 0, 0)
        test = compare_with_bar(interval, bar=ratio_bar, margin=1.0 - ratio_bar, at_most=True)
        numbers.update(_bounds(f"other{i}", interval))
        cells.append(f"{_literal(row['init'])}, {_literal(row['side'])}: {{other{i}:share}} (95% CI "
                     f"{_ci(f'other{i}', 'share')}), at most {{ratio_bar:share}}: {_outcome_word(test, 'yes', 'no')}")
    return f"Other settings ({_SECOND_RESULT}): ECE with C-TPT as a share of ECE with TPT, " + ", ".join(cells), numbers


def c9_ctpt_halves_ece(
    ece_ratio: BootstrapResult, accuracy_change: BootstrapResult, backbone: str, others: pd.DataFrame | None = None
) -> Verdict:
    """C9: C-TPT cuts TPT's ECE by about half at about the same accuracy.

    Holds when ECE(C-TPT) / ECE(TPT) is at most ``c9_threshold_ece_ratio`` and the accuracy drops by
    at most ``c9_threshold_accuracy_drop``.

    Args:
        ece_ratio, accuracy_change: ECE(C-TPT) / ECE(TPT) and accuracy(C-TPT) − accuracy(TPT), hard prompt, clean set,
            paired bootstrap over images.
        backbone: the run's models in words.
        others: optional second results, one row per setting: ``init``, ``side``, ``ratio``, ``lower``, ``upper``.
    """
    ratio_bar, drop_bar = threshold("c9_threshold_ece_ratio"), threshold("c9_threshold_accuracy_drop")
    others_text, numbers = ("", {}) if others is None else _c9_others(others, ratio_bar)
    numbers.update(_bounds("accuracy_change", accuracy_change), accuracy_drop=-accuracy_change.estimate,
                   ratio_bar=ratio_bar, drop_bar=drop_bar)
    common = dict(backbone=backbone, numbers=numbers, paper_figure=_c9_paper_figure())
    accuracy = "accuracy change of C-TPT against TPT {accuracy_change:points} points"
    if math.isnan(ece_ratio.estimate):
        return Verdict.of("C9", holds=None, **common, measured=join_parts([accuracy, others_text]),
                          why="the ratio of ECE with C-TPT to ECE with TPT is undefined here (ECE with TPT is 0, or no "
                              "image was evaluated)")
    numbers.update(_bounds("ece_ratio", ece_ratio))
    ratio_test = compare_with_bar(ece_ratio, bar=ratio_bar, margin=1.0 - ratio_bar, at_most=True)
    accuracy_test = compare_with_bar(accuracy_change, bar=-drop_bar, margin=drop_bar, at_most=False)
    ratio = (ratio_test.holds,
             f"ECE with C-TPT is {{ece_ratio:share}} of ECE with TPT (95% CI {_ci('ece_ratio', 'share')}), above the "
             "bar of {ratio_bar:share}",
             "the ECE ratio is " + _noise("the ratio", ece_ratio, ratio_test, ratio_bar, 1.0 - ratio_bar, "share"))
    drop = (accuracy_test.holds,
            "C-TPT lowered accuracy by {accuracy_drop:percent} points against TPT (95% CI "
            f"{_ci('accuracy_change')}), more than the {{drop_bar:percent}}-point tolerance",
            "the accuracy change is " + _noise("the change", accuracy_change, accuracy_test, -drop_bar, drop_bar))
    measured = join_parts([
        "ECE with C-TPT is {ece_ratio:share} of ECE with TPT on the clean set, hard prompt (about half: at most "
        "{ratio_bar:share})",
        accuracy + " (about the same: a drop of at most {drop_bar:percent} points)",
        others_text,
    ])
    return Verdict.of(
        "C9", holds=combine_tests([ratio_test.holds, accuracy_test.holds]), **common, measured=measured,
        interval=f"95% CI of the ECE ratio {_ci('ece_ratio', 'share')}; of the accuracy change "
                 f"{_ci('accuracy_change')}",
        why=_why(ratio, drop),
    )


def c10_ctpt_beats_tpt_ts(
    ece_difference: BootstrapResult | None, temperature: float | None, fitted_on: str, backbone: str
) -> Verdict:
    """C10: C-TPT, without labels, ends with a lower ECE than TPT followed by temperature scaling.

    Holds when ECE(C-TPT) − ECE(TPT + TS) is at most 0, the temperature fitted on other labelled data.

    Args:
        ece_difference: mean over sets of ECE(C-TPT) − ECE(TPT + TS), paired bootstrap over images (None: no TS).
        temperature: the fixed temperature applied after TPT (None: none fitted; the claim is not tested).
        fitted_on, backbone: on what labelled data the temperature was fitted, and the run's models, in words.
    """
    paper_vit, paper_rn = paper_value("c10_ts_temperature_vit"), paper_value("c10_ts_temperature_rn")
    paper_figure = join_parts([paper_value("c10_statement").describe(), paper_vit.describe(), paper_rn.describe()])
    fitted_on, common = _literal(fitted_on), dict(backbone=backbone, paper_figure=paper_figure)
    if temperature is None or ece_difference is None:
        return Verdict.of("C10", holds=None, **common, numbers={}, measured="no TPT + TS in this run",
                          why=f"no temperature was fitted in this run ({fitted_on}), so TPT + TS could not be compared")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"Expected `temperature` to be a positive number, but got {temperature!r}")
    margin = threshold("c10_margin_ece_difference")
    test = compare_with_bar(ece_difference, bar=0.0, margin=margin, at_most=True)
    numbers = {**_bounds("ece_difference", ece_difference), "temperature": temperature,
               "paper_temperature_vit": paper_vit.value, "paper_temperature_rn": paper_rn.value}
    effect = ("it leaves the probabilities unchanged" if temperature == 1.0 else "it divides the logits by "
              f"{{temperature:temperature}}, {'softening' if temperature > 1.0 else 'sharpening'} the probabilities")
    higher = (f"TPT followed by TS at temperature {{temperature:temperature}} (fitted on {fitted_on}) has the lower "
              f"ECE: C-TPT's is {{ece_difference:percent}} points higher (95% CI {_ci('ece_difference')}); {effect}, "
              "against the paper's {paper_temperature_vit:temperature} for ViT")
    measured = join_parts([
        "ECE with C-TPT minus ECE with TPT + TS, mean over sets: {ece_difference:points} points "
        f"({_outcome_word(test, 'C-TPT lower', 'TPT + TS lower')}; C-TPT beats it: at most 0)",
        f"TS temperature {{temperature:temperature}}, fitted on {fitted_on}",
        "the paper's fixed temperatures, fitted on ImageNet: {paper_temperature_vit:temperature} (ViT), "
        "{paper_temperature_rn:temperature} (RN)",
    ])
    return Verdict.of(
        "C10", holds=test.holds, **common, numbers=numbers, measured=measured,
        interval=f"95% CI of the difference {_ci('ece_difference')}",
        why=_why((test.holds, higher, _noise("the difference", ece_difference, test, 0.0, margin))),
    )
