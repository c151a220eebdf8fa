"""Claims C1–C6 of the empirical study (Tu et al., ICML 2024, "ES"), each decided from a page's results.

Thresholds and statements are rows of ``vlmcal/papers/common/paper_values.csv``; a noisy estimate is compared with a
threshold only as far as its 95% interval allows (:func:`vlmcal.papers.common.rules.compare_with_bar`). C3 and C5 decide
on the paper-like side of the shifts (:mod:`vlmcal.papers.es.coverage`). Each claim function's ``backbone`` is the run's
models in words (``StudySettings.describe_models``)."""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from functools import partial

import numpy as np
import pandas as pd

from vlmcal.metrics import BootstrapResult
from vlmcal.papers.common.paper_values import paper_value
from vlmcal.papers.common.rules import compare_with_bar, half_width, join_parts, noise_reason, threshold
from vlmcal.papers.common.verdict import Verdict
from vlmcal.papers.es.coverage import COVERED, HELD_OUT, PAPER_LIKE, SIDES, UNKNOWN, shifted_rows, side_rows
from vlmcal.papers.es.set_size import CalibrationSizePlan, gap_to_full_set, smallest_sufficient_n
from vlmcal.papers.es.tables import confidence_vs_accuracy

__all__ = ["c1_vlms_not_better_calibrated", "c2_ts_improves_markedly", "c3_ts_stable_under_shift",
           "c4_ts_transfers_across_labels", "c5_confidence_tracks_accuracy", "c6_few_samples_suffice",
           "sufficient_sizes"]


# A verdict's texts are templates that Verdict.of renders: a number is a placeholder with its kind
# (``{ece_vlm:ece}``) and its value is in ``numbers``; any other text is filled in beforehand.
def _vlm_rows(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["kind"] == "VLM"]


def _literal(text: str) -> str:
    """``text`` as a template that renders to itself."""
    return text.replace("{", "{{").replace("}", "}}")


def _fill(numbers: dict, prefix: str, template: str, **values) -> str:
    """``template`` with its text values filled in and its numbers moved to ``numbers`` as ``<prefix>_<name>``."""
    parts = []
    for literal, name, spec, _ in string.Formatter().parse(template):
        parts.append(_literal(literal))
        if name is not None and isinstance(values[name], str):
            parts.append(_literal(values[name]))
        elif name is not None:
            numbers[f"{prefix}_{name}"] = values[name]
            parts.append(f"{{{prefix}_{name}:{spec}}}")
    return "".join(parts)


def _ci(numbers: dict, name: str, interval: BootstrapResult, kind: str) -> str:
    """The template ``[lower, upper]`` of ``interval``, its bounds put in ``numbers`` (``<name>_lower``, ...)."""
    numbers.update({f"{name}_lower": interval.lower, f"{name}_upper": interval.upper})
    return f"[{{{name}_lower:{kind}}}, {{{name}_upper:{kind}}}]"


def c1_vlms_not_better_calibrated(table: pd.DataFrame, difference: BootstrapResult | None, backbone: str) -> Verdict:
    """C1: before calibration, the VLMs' ECE is similar to or worse than a supervised model's.

    Test: the VLMs' mean ECE before TS minus the supervised baseline's is at least ``-c1_threshold_similar_ece``;
    not tested without a supervised baseline.
    Args:
        table: :func:`vlmcal.papers.es.ts_across_shifts` output of one seed (VLM and supervised rows).
        difference: :func:`vlmcal.papers.es.vlm_minus_supervised_ece` of the same seed; None without a baseline.
    """
    margin = threshold("c1_threshold_similar_ece")
    vlm, supervised = _vlm_rows(table), table[table["kind"] == "supervised"]
    numbers = dict(ece_vlm=vlm["ece_before"].mean())
    verdict = partial(Verdict.of, "C1", backbone=backbone, numbers=numbers)
    if supervised.empty or difference is None:
        return verdict(holds=None, measured="VLMs' mean ECE before TS: {ece_vlm:ece}",
                       why="no supervised baseline was in this run, so the VLMs' ECE had nothing to be compared with")
    numbers.update(conditions=vlm["condition"].nunique(), ece_supervised=supervised["ece_before"].mean(),
                   difference=difference.estimate, bar=-margin, margin=margin)
    test = compare_with_bar(difference, bar=-margin, margin=margin, at_most=False)
    why = ""
    if test.holds is None:
        why = _literal(noise_reason("the difference", difference, test, bar=-margin, margin=margin))
    elif not test.holds:
        clean = table[table["shift"] == "clean"]
        numbers.update(shortfall=-difference.estimate, clean_vlm=_vlm_rows(clean)["ece_before"].mean(),
                       clean_supervised=clean.loc[clean["kind"] == "supervised", "ece_before"].mean())
        why = join_parts([
            "the VLMs' mean ECE before TS lies {shortfall:ece} below the supervised baseline's, "
            "beyond the similarity margin of {margin:ece}",
            "" if clean.empty else "on clean data alone: VLMs {clean_vlm:ece}, supervised {clean_supervised:ece}",
        ])
    return verdict(holds=test.holds, why=why,
                   measured="mean ECE before TS over {conditions:count} condition(s): VLMs {ece_vlm:ece}, supervised "
                            "{ece_supervised:ece}; difference {difference:ece_change} "
                            "(similar or worse: at least {bar:ece_change})",
                   interval="95% CI of the difference " + _ci(numbers, "difference", difference, "ece_change"))


def _c2_premise(numbers: dict, vlm: pd.DataFrame) -> list[str]:
    """Where the ECE before and after TS came from: clean and shifted data, and the temperatures."""
    clean, shifted = vlm[vlm["shift"] == "clean"], vlm[vlm["shift"] != "clean"]
    parts = []
    if not clean.empty:
        numbers.update(clean_before=clean["ece_before"].mean(), clean_after=clean["ece_after"].mean(),
                       paper_after=threshold("c2_ece_after_ts"))
        parts.append("on clean data ECE went from {clean_before:ece} to {clean_after:ece}")
        if numbers["clean_before"] <= numbers["paper_after"]:
            parts.append("{clean_before:ece} before TS is already at or below the paper's post-TS level of "
                         "{paper_after:.2f}, so TS had little to fix there")
    if not shifted.empty:
        numbers.update(shifted_before=shifted["ece_before"].mean(), shifted_after=shifted["ece_after"].mean())
        parts.append("on shifted data from {shifted_before:ece} to {shifted_after:ece}")
    return parts + ["fitted temperatures: " + ", ".join(
        _fill(numbers, f"model_{i}", "{model} {temperature:temperature}", model=model, temperature=t)
        for i, (model, t) in enumerate(vlm.groupby("model")["temperature"].mean().items()))]


def c2_ts_improves_markedly(table: pd.DataFrame, ratio: BootstrapResult, backbone: str) -> Verdict:
    """C2: temperature scaling improves the VLMs' calibration markedly.

    Test: the VLMs' mean ECE after TS over their mean ECE before TS is at most ``c2_threshold_ece_ratio``;
    not tested when the VLMs' ECE before TS is 0.
    Args:
        table: :func:`vlmcal.papers.es.ts_across_shifts` output of one seed.
        ratio: :func:`vlmcal.papers.es.ts_ece_ratio` of the same seed.
    """
    bar = threshold("c2_threshold_ece_ratio")
    vlm = _vlm_rows(table)
    numbers = dict(before=vlm["ece_before"].mean(), after=vlm["ece_after"].mean())
    verdict = partial(Verdict.of, "C2", backbone=backbone, numbers=numbers,
                      paper_figure=paper_value("c2_ece_after_ts").describe())
    if not numbers["before"] > 0:
        return verdict(holds=None, measured="VLMs' mean ECE before TS: {before:ece}",
                       why="the VLMs' mean ECE before TS is {before:ece}, so there was nothing for TS to improve")
    numbers.update(conditions=vlm["condition"].nunique(), ratio=ratio.estimate, bar=bar)
    test = compare_with_bar(ratio, bar=bar, margin=1.0 - bar, at_most=True)
    why = ""
    if test.holds is None:
        why = _literal(noise_reason("after/before", ratio, test, bar, 1.0 - bar, kind="share", width_kind="share"))
    elif not test.holds:
        why = join_parts(["after TS the VLMs' mean ECE is {ratio:share} of its value before, above the bar of "
                          "{bar:share}", *_c2_premise(numbers, vlm)])
    return verdict(holds=test.holds, interval="95% CI of after/before " + _ci(numbers, "ratio", ratio, "share"),
                   measured="VLMs' mean ECE over {conditions:count} condition(s): {before:ece} before TS, {after:ece} "
                            "after, {ratio:share} of before (marked: at most {bar:share})", why=why)


_SECOND_RESULT = "Held-out shifts (a second result, which does not decide the verdict)"


def _sides(frame: pd.DataFrame, intervals, names: tuple[str, str], producers: tuple[str, str]) -> tuple:
    """C3's or C5's inputs, checked: the VLM rows, their paper-like and held-out shifted rows, the intervals by side."""
    missing = [column for column in ("shift", "coverage") if column not in frame.columns]
    if missing:
        raise ValueError(f"Expected `{names[0]}` to have the columns shift and coverage, as {producers[0]} writes, "
                         f"but it lacks {missing} (columns: {list(frame.columns)})")
    if intervals is not None and (not isinstance(intervals, Mapping) or not set(intervals) <= set(SIDES)):
        raise TypeError(f"Expected `{names[1]}` to be a dict keyed by the sides {list(SIDES)}, as {producers[1]} "
                        f"returns, but got {intervals!r}")
    vlm = _vlm_rows(frame)
    return vlm, shifted_rows(vlm, PAPER_LIKE), shifted_rows(vlm, HELD_OUT), dict(intervals or {})


def _models_text(models) -> str:
    return _literal(", ".join(f"`{model}`" for model in dict.fromkeys(models)))


def _side_words(numbers: dict, shifted: pd.DataFrame) -> tuple[str, str]:
    """The paper-like side's shifted rows in words (which shifts, whose coverage is unknown), and in a few words."""
    numbers["paper_like_shifts"] = shifted["shift"].nunique()
    labels, unknown = set(shifted["coverage"]), _models_text(shifted.loc[shifted["coverage"] == UNKNOWN, "model"])
    if labels == {COVERED}:
        return ("the {paper_like_shifts:count} shift(s) covered by the VLMs' pretraining data, the side the paper's "
                "shifts resemble", "covered shifts")
    if labels == {UNKNOWN}:
        return (f"all {{paper_like_shifts:count}} shift(s), as the pretraining coverage of {unknown} is unknown",
                "all shifts")
    return (f"the {{paper_like_shifts:count}} shift(s) covered by the VLMs' pretraining data or of unknown coverage "
            f"(that of {unknown}), held-out shifts set apart", "covered shifts and shifts of unknown coverage")


def _no_paper_like_reason(numbers: dict, held_out: pd.DataFrame, what: str) -> str:
    """Why a claim about the paper's shifts is not tested when every shifted VLM condition is held out."""
    shifts = list(dict.fromkeys(held_out["shift"]))
    numbers["held_out_shifts"] = len(shifts)
    return (f"not testable on this run's shifts: none of its {{held_out_shifts:count}} shift(s) "
            f"({_literal(', '.join(shifts))}) is covered by the pretraining data of {_models_text(held_out['model'])}, "
            "all are held out, while the paper's shifts resemble covered ones (see the paper figure), so they do not "
            f"measure {what} in the paper's setting (their figures are under measured)")


def _c3_figures(numbers: dict, side: str, shifted: pd.DataFrame, clean: pd.DataFrame,
                rise: BootstrapResult | None) -> str:
    """One side's figures; its share of shifted cells where TS helps goes to ``numbers[side + "_helps"]``."""
    template = "clean-fitted TS lowers ECE in {helps:share} of {cells:count} shifted VLM cells; mean ECE after TS " + (
        "{ece_shifted:ece} (no interval given)" if rise is None
        else "{ece_shifted:ece} under shift vs {ece_clean:ece} clean, a rise of {rise:ece_change}")
    return _fill(numbers, side, template, helps=float((shifted["ece_after"] < shifted["ece_before"]).mean()),
                 cells=len(shifted), ece_shifted=shifted["ece_after"].mean(), ece_clean=clean["ece_after"].mean(),
                 rise=getattr(rise, "estimate", None))


def _c3_held_out(numbers: dict, held_out: pd.DataFrame, clean: pd.DataFrame, rise: BootstrapResult | None) -> str:
    """The held-out side's figures, and whether they alone would meet C3's bars (never deciding the verdict)."""
    numbers["held_out_shifts"] = held_out["shift"].nunique()
    figures = _c3_figures(numbers, "held_out", held_out, clean, rise)
    text = f"{_SECOND_RESULT}, {{held_out_shifts:count}} shift(s): {figures}"
    if rise is None:
        return text
    rise_bar = threshold("c3_threshold_stable_rise")
    test = compare_with_bar(rise, bar=rise_bar, margin=rise_bar, at_most=True)
    if numbers["held_out_helps"] < threshold("c3_threshold_ts_helps_share") or test.holds is False:
        outcome = "on their own they would not meet the bars"
    elif test.holds is None:
        outcome = "their rise is too noisy to compare with the bar"
    else:
        outcome = "on their own they would meet both bars"
    return f"{text} (95% CI {_ci(numbers, 'held_out_rise', rise, 'ece_change')}); {outcome}"


def _worst_shifts(numbers: dict, shifted: pd.DataFrame, k: int = 3) -> str:
    columns = ["ece_after", "accuracy", "confidence_after"]
    by_shift = shifted.groupby("shift")[columns].mean().sort_values("ece_after", ascending=False).head(k)
    template = "{shift} {ece:ece} (accuracy {accuracy:accuracy}, mean confidence after TS {confidence:accuracy})"
    return "highest ECE after TS: " + ", ".join(
        _fill(numbers, f"worst_{i}", template, shift=shift, ece=row.ece_after, accuracy=row.accuracy,
              confidence=row.confidence_after) for i, (shift, row) in enumerate(by_shift.iterrows()))


def c3_ts_stable_under_shift(table: pd.DataFrame, rises: Mapping[str, BootstrapResult | None] | None,
                             backbone: str) -> Verdict:
    """C3: a temperature fitted on clean data keeps the VLMs calibrated under distribution shift.

    Test, on the paper-like side's shifted VLM cells: the clean-fitted temperature lowers ECE in at least
    ``c3_threshold_ts_helps_share`` of them, and the mean ECE after TS rises from clean by at most
    ``c3_threshold_stable_rise``; not tested without a paper-like shifted condition (held-out side: ``measured`` only).
    Args:
        table: :func:`vlmcal.papers.es.ts_across_shifts` output of one seed (with a coverage column).
        rises: :func:`vlmcal.papers.es.shift_rise_by_side` of the same seed (None: a run without shifts).
    """
    helps_bar, rise_bar = threshold("c3_threshold_ts_helps_share"), threshold("c3_threshold_stable_rise")
    vlm, paper_like, held_out, rises = _sides(table, rises, ("table", "rises"), (
        "vlmcal.papers.es.ts_across_shifts", "vlmcal.papers.es.shift_rise_by_side"))
    clean = vlm[vlm["shift"] == "clean"]
    numbers = dict(ece_clean=clean["ece_after"].mean())
    verdict = partial(Verdict.of, "C3", backbone=backbone, numbers=numbers, paper_figure=(
        f"{paper_value('c3_statement').describe()}; {paper_value('es_paper_shift_side').describe()}"))
    if (vlm["shift"] == "clean").all():
        return verdict(holds=None, measured="VLMs' ECE after TS on clean data: {ece_clean:ece}",
                       why="no shifted condition was in this run, so stability under shift could not be measured")
    held_out_text = "" if held_out.empty else _c3_held_out(numbers, held_out, clean, rises.get(HELD_OUT))
    if paper_like.empty:
        return verdict(holds=None, measured=held_out_text,
                       why=_no_paper_like_reason(numbers, held_out, "stability under shift"))
    rise = rises.get(PAPER_LIKE)
    if rise is None:
        raise ValueError(f"Expected `rises` to hold the rise of the {PAPER_LIKE!r} side, which has {len(paper_like)} "
                         f"shifted VLM cells, but got {rises!r}; compute it with vlmcal.papers.es.shift_rise_by_side")
    words, label = _side_words(numbers, paper_like)
    measured = (f"On {words}: {_c3_figures(numbers, 'paper_like', paper_like, clean, rise)} "
                "(bars: TS lowers ECE in at least {helps_bar:share} of the cells, a rise of at most "
                "{rise_bar:ece_change})")
    numbers.update(helps_bar=helps_bar, rise_bar=rise_bar, rise_excess=rise.estimate - rise_bar)
    rise_test = compare_with_bar(rise, bar=rise_bar, margin=rise_bar, at_most=True)
    helps = numbers["paper_like_helps"] >= helps_bar
    holds = rise_test.holds if helps else False
    why = join_parts([
        "" if helps else "TS fitted on clean data lowered ECE in {paper_like_helps:share} of the shifted cells, "
                         "short of {helps_bar:share}",
        "" if rise_test.holds is not False else "the mean ECE after TS rises by {paper_like_rise:ece} under shift, "
                                                "{rise_excess:ece} more than {rise_bar:ece}",
        "" if rise_test.holds is not None else _literal(noise_reason("the rise", rise, rise_test, rise_bar, rise_bar)),
        "" if holds else _worst_shifts(numbers, paper_like),
    ])
    return verdict(holds=holds, measured=". ".join(part for part in [measured, held_out_text] if part), why=why,
                   interval=f"95% CI of the rise on {label} " + _ci(numbers, "rise", rise, "ece_change"))


def c4_ts_transfers_across_labels(table: pd.DataFrame, intervals: dict[str, BootstrapResult], backbone: str) -> Verdict:
    """C4: a temperature fitted on other labels calibrates the test labels.

    Test: over the VLMs' cells, ``mean(before - with other labels' T) / mean(before - with target labels' T)``
    is at least ``c4_threshold_recovery_share`` (a ratio of means: no cell with little to recover dominates);
    not tested when no cell has a reduction to recover.
    Args:
        table: :func:`vlmcal.papers.es.label_shift` output, any seeds and transfers (optionally a source column).
        intervals: label -> :func:`vlmcal.papers.es.bootstrap_label_shift` interval of the recovered share.
    """
    bar = threshold("c4_threshold_recovery_share")
    vlm = _vlm_rows(table)
    before, with_source, with_target = (float(vlm[c].mean()) for c in ("ece_before", "ece_source_ts", "ece_target_ts"))
    numbers = dict(cells=len(vlm), before=before, with_source=with_source, with_target=with_target,
                   gain=before - with_target)
    verdict = partial(Verdict.of, "C4", backbone=backbone, numbers=numbers)
    interval = "95% CI of that share: " + ", ".join(
        f"{_literal(name)} {_ci(numbers, f'share_{i}', ci, 'share')}" for i, (name, ci) in enumerate(intervals.items()))
    means = ("mean ECE over {cells:count} VLM (model, transfer, seed) cells: {before:ece} before TS, {with_source:ece} "
             "with the other labels' temperature, {with_target:ece} with the target labels'")
    if not before - with_target > 0:
        return verdict(holds=None, measured=means, why="TS fitted on the target labels did not lower the mean ECE "
                       "({before:ece} before, {with_target:ece} after), so there was no reduction to recover")
    recovered = (before - with_source) / (before - with_target)
    numbers.update(recovered=recovered, bar=bar, source_gain=before - with_source)
    holds, why = recovered >= bar, ""
    if not holds:
        fitted = vlm.groupby("source")[["temperature_source", "temperature_target"]].mean() if "source" in vlm else None
        template = "{source} {fitted:temperature} (target {target:temperature})"
        why = join_parts([
            "the other labels' temperature lowered the mean ECE by {source_gain:ece_change}, against {gain:ece} "
            "attainable with the target labels' own temperature: {recovered:share}, short of {bar:share}",
            "" if fitted is None else "mean temperature fitted on each label set, and on the labels it was applied to: "
            + ", ".join(_fill(numbers, f"source_{i}", template, source=source, fitted=row.temperature_source,
                              target=row.temperature_target) for i, (source, row) in enumerate(fitted.iterrows())),
        ])
    return verdict(holds=holds, why=why, interval=interval,
                   measured="TS fitted on other labels achieves {recovered:share} of the ECE reduction of TS fitted on "
                            "the target labels (bar: at least {bar:share}); " + means)


def _largest_gaps(numbers: dict, vlm: pd.DataFrame, k: int = 3) -> str:
    gap = vlm["confidence_after"] - vlm["accuracy"]
    numbers["mean_gap"] = gap.mean()
    worst = vlm.loc[gap.abs().sort_values(ascending=False).index[:k]]
    template = ("{model} on {condition} ({labels} labels): confidence {confidence:accuracy}, "
                "accuracy {accuracy:accuracy}")
    return "mean confidence after TS minus accuracy is {mean_gap:+.3f} on average; largest gaps: " + ", ".join(
        _fill(numbers, f"gap_{i}", template, model=row.model, condition=row.condition, labels=row.labels,
              confidence=row.confidence_after, accuracy=row.accuracy) for i, row in enumerate(worst.itertuples()))


def _c5_flat(points: pd.DataFrame) -> bool:
    return points["accuracy"].nunique() < 2 or points["confidence_after"].nunique() < 2


def _c5_held_out(numbers: dict, pooled: pd.DataFrame, correlations: dict[str, BootstrapResult] | None) -> str:
    """The held-out side's correlations (with the clean points), and whether they alone would meet C5's bars."""
    numbers["held_out_points"] = len(pooled)
    head = _SECOND_RESULT + ": pooled over {held_out_points:count} VLM points (clean and held-out)"
    if len(pooled) < 3 or _c5_flat(pooled):
        return head + ": too few or too uniform to correlate"
    stats = confidence_vs_accuracy(pooled)
    numbers.update(held_out_r2=stats["r2"], held_out_rho=stats["spearman"])
    interval = "" if correlations is None else (f" (95% CI {_ci(numbers, 'held_out_r2', correlations['r2'], 'r')} and "
                                                f"{_ci(numbers, 'held_out_rho', correlations['spearman'], 'r')})")
    meets = stats["r2"] > threshold("c5_r2") and stats["spearman"] > threshold("c5_spearman")
    return (head + " after TS: R^2 = {held_out_r2:r}, Spearman rho = {held_out_rho:r}" + interval
            + f"; on their own they would {'' if meets else 'not '}meet the bars")


def c5_confidence_tracks_accuracy(
    points: pd.DataFrame, correlations: Mapping[str, dict[str, BootstrapResult] | None] | None, backbone: str
) -> Verdict:
    """C5: after TS, mean confidence tracks accuracy across shifts and label sets.

    Test: over the VLMs' clean and paper-like points, R^2 of accuracy on confidence after TS exceeds ``c5_r2`` and
    Spearman's rho exceeds ``c5_spearman`` (the paper's bars); not tested without a paper-like shifted condition, with
    fewer than 3 points, or when accuracy or confidence does not vary. The held-out side is in ``measured`` only.
    Args:
        points: :func:`vlmcal.papers.es.confidence_accuracy_points` output (with a coverage column).
        correlations: :func:`vlmcal.papers.es.bootstrap_confidence_vs_accuracy_by_side` of the points (None: none).
    """
    r2_bar, rho_bar = threshold("c5_r2"), threshold("c5_spearman")
    vlm, paper_like, held_out, correlations = _sides(points, correlations, ("points", "correlations"), (
        "vlmcal.papers.es.confidence_accuracy_points", "vlmcal.papers.es.bootstrap_confidence_vs_accuracy_by_side"))
    pooled, held_out_pooled = side_rows(vlm, PAPER_LIKE), side_rows(vlm, HELD_OUT)
    numbers = dict(vlm_points=len(vlm), points=len(pooled), r2_bar=r2_bar, rho_bar=rho_bar)
    verdict = partial(Verdict.of, "C5", backbone=backbone, numbers=numbers, paper_figure="; ".join(
        paper_value(value_id).describe() for value_id in ("c5_r2", "c5_spearman", "es_paper_shift_side")))
    held_out_text = "" if held_out.empty else _c5_held_out(numbers, held_out_pooled, correlations.get(HELD_OUT))
    if paper_like.empty and held_out.empty:
        return verdict(holds=None, measured="{vlm_points:count} clean VLM point(s)",
                       why="no shifted condition was in this run, so tracking accuracy across shifts could not be "
                           "measured")
    if paper_like.empty:
        return verdict(holds=None, measured=held_out_text,
                       why=_no_paper_like_reason(numbers, held_out, "how confidence tracks accuracy"))
    words, label = _side_words(numbers, paper_like)
    where = "clean, and " + words
    if len(pooled) < 3:
        return verdict(holds=None, measured=join_parts([f"{{points:count}} VLM point(s) ({where})", held_out_text]),
                       why="only {points:count} VLM point(s) were measured; a correlation needs at least 3")
    if _c5_flat(pooled):
        numbers.update(accuracy_min=pooled["accuracy"].min(), accuracy_max=pooled["accuracy"].max(),
                       confidence_min=pooled["confidence_after"].min(), confidence_max=pooled["confidence_after"].max())
        return verdict(holds=None, measured=join_parts([f"{{points:count}} VLM points ({where})", held_out_text]),
                       why="accuracy ({accuracy_min:.3f} to {accuracy_max:.3f}) or confidence after TS "
                           "({confidence_min:.3f} to {confidence_max:.3f}) does not vary across the {points:count} "
                           "VLM points, so there is no trend to track")
    stats = confidence_vs_accuracy(pooled)
    r2, rho = stats["r2"], stats["spearman"]
    numbers.update(r2=r2, rho=rho, r2_shortfall=r2_bar - r2, rho_shortfall=rho_bar - rho)
    holds = bool(r2 > r2_bar and rho > rho_bar)
    measured = (f"Pooled over {{points:count}} VLM points after TS ({where}): R^2 = {{r2:r}}, Spearman rho = {{rho:r}} "
                "(bars: above {r2_bar:.2f} and {rho_bar:.2f})")
    intervals = correlations.get(PAPER_LIKE)
    interval = "" if intervals is None else (
        f"95% CI on clean data and {label}: R^2 {_ci(numbers, 'r2', intervals['r2'], 'r')}, "
        f"rho {_ci(numbers, 'rho', intervals['spearman'], 'r')}")
    why = "" if holds else join_parts([
        "" if r2 > r2_bar else "R^2 is {r2:r}, {r2_shortfall:r} below {r2_bar:.2f}",
        "" if rho > rho_bar else "Spearman rho is {rho:r}, {rho_shortfall:r} below {rho_bar:.2f}",
        _largest_gaps(numbers, pooled),
    ])
    return verdict(holds=holds, measured=". ".join(part for part in [measured, held_out_text] if part),
                   interval=interval, why=why)


def _c6_notes(numbers: dict, plan: CalibrationSizePlan, n_classes: int) -> list[str]:
    """What this run leaves out of C6: sizes the pool could not supply, and the many-class setting."""
    numbers.update(pool=plan.pool, classes=n_classes, many_classes=threshold("c6_many_classes"))
    numbers.update({f"skipped_{i}": size for i, size in enumerate(plan.skipped)})
    one = len(plan.skipped) == 1
    sizes = ", ".join(f"{{skipped_{i}:count}}" for i in range(len(plan.skipped)))
    skipped = (f"{'size' if one else 'sizes'} {sizes} {'was' if one else 'were'} not run: larger than the calibration "
               "pool of {pool:count} images")
    few_classes = ("this data set has {classes:count} classes, fewer than the {many_classes:count} of the paper's "
                   "smaller many-class set, so the many-class part of the claim is not tested here")
    return [skipped if plan.skipped else "", few_classes if n_classes < numbers["many_classes"] else ""]


def sufficient_sizes(table: pd.DataFrame) -> pd.DataFrame:
    """Per model and seed, the smallest sufficient calibration-set size at C6's tolerance: the
    :func:`vlmcal.papers.es.smallest_sufficient_n` of every seed of ``table``
    (:func:`vlmcal.papers.es.calibration_set_size` output, column seed), with a seed column (NaN smallest_n: no size
    below the full set came within ``c6_threshold_plateau_ece``)."""
    tolerance = threshold("c6_threshold_plateau_ece")
    if "seed" not in table:
        return smallest_sufficient_n(table, tolerance)
    return pd.concat([smallest_sufficient_n(g, tolerance).assign(seed=s) for s, g in table.groupby("seed")],
                     ignore_index=True)


def c6_few_samples_suffice(table: pd.DataFrame, full_set_ece: dict[str, BootstrapResult], plan: CalibrationSizePlan,
                           n_classes: int, backbone: str, n_resamples: int = 200) -> Verdict:
    """C6: a few dozen labelled samples suffice to fit the temperature.

    Test: the median over VLMs and seeds of the smallest n whose mean ECE after TS is within
    ``c6_threshold_plateau_ece`` of the full set's is at most ``c6_samples_high``; not testable when that
    tolerance is not above the full-set ECE's noise (median bootstrap 95% half-width).
    Args:
        table: :func:`vlmcal.papers.es.calibration_set_size` output, one or more seeds (column seed when several).
        full_set_ece: :func:`vlmcal.papers.es.full_set_ece` of the first seed, one entry per VLM.
        n_resamples: bootstrap resamples of the interval at the paper's n (first seed).
    """
    tolerance, paper_n = threshold("c6_threshold_plateau_ece"), threshold("c6_samples_high")
    vlm = _vlm_rows(table)
    drawn = vlm[vlm["size"] != "all"]
    small = sorted(int(n) for n in drawn["n"].unique() if n <= paper_n)
    noise = float(np.median([half_width(ci) for ci in full_set_ece.values()])) if full_set_ece else math.nan
    numbers = dict(full=vlm.loc[vlm["size"] == "all", "ece_after"].mean(), noise=noise, vlms=len(full_set_ece),
                   tolerance=tolerance, paper_n=paper_n)
    notes = _c6_notes(numbers, plan, n_classes)
    verdict = partial(Verdict.of, "C6", backbone=backbone, numbers=numbers,
                      paper_figure=f"{paper_value('c6_samples_low').describe()}; upper end {paper_n:g} samples")

    def untested(measured: str, reason: str) -> Verdict:
        return verdict(holds=None, measured=measured, why=join_parts([reason, *notes]))
    if math.isnan(numbers["full"]):
        return untested("no full-set fit", "the full calibration set ('all') was not among the sizes, so there is no "
                        "plateau to compare with")
    if not small:
        return untested("full-set ECE after TS {full:ece}",
                        "no calibration-set size of at most {paper_n:count} was run")
    if not noise < tolerance:
        return untested("full-set ECE after TS {full:ece}, bootstrap 95% half-width {noise:ece}",
                        "not testable at this sample size: the full-set ECE's bootstrap 95% half-width on the "
                        "evaluation half is {noise:ece} (median over {vlms:count} VLM(s)), not below the tolerance "
                        "of {tolerance:ece}")
    sufficient = sufficient_sizes(vlm)
    median_n = float(sufficient["smallest_n"].fillna(np.inf).median())
    reference_n = small[-1]
    first_seed = vlm[vlm["seed"] == vlm["seed"].iloc[0]] if "seed" in vlm else vlm
    gap = gap_to_full_set(first_seed, reference_n, n_resamples=n_resamples)
    at_reference = drawn.loc[drawn["n"] == reference_n, "ece_after"].mean()
    numbers.update(models=vlm["model"].nunique(), pairs=len(sufficient), median_n=median_n, reference_n=reference_n,
                   gap=gap.estimate, at_reference=at_reference, excess=at_reference - numbers["full"])
    holds = median_n <= paper_n
    median = "none within the tolerance" if math.isinf(median_n) else "{median_n:g}"
    why = "" if holds else join_parts([
        "at n = {reference_n:count} the mean ECE after TS is {at_reference:ece}, {excess:ece} above the full-set ECE "
        "of {full:ece} (over seeds), beyond the tolerance of {tolerance:ece}",
        "no size below the full set came within it for most VLMs and seeds" if math.isinf(median_n)
        else "the median smallest sufficient n is {median_n:g}",
    ])
    return verdict(
        holds=holds, why=join_parts([why, *notes]),
        measured="median smallest sufficient n over {models:count} VLM(s) and {pairs:count} (model, seed) pair(s): "
                 + median + " (sufficient: mean ECE after TS within {tolerance:ece} of the full calibration set's "
                 "{full:ece}; bar: at most {paper_n:count} samples); at n = {reference_n:count} the mean ECE after TS "
                 "is {gap:ece_change} from the full-set ECE",
        interval="95% CI of that difference " + _ci(numbers, "gap", gap, "ece_change")
                 + " (first seed, over draws); noise of the full-set ECE: half-width {noise:ece}")
