"""Claims C1–C6 of the empirical study (Tu et al., ICML 2024, "ES"), each decided from a page's results.

Each function takes the tables and intervals that ``vlmcal.papers.es`` computes for a page and
returns its :class:`vlmcal.papers.common.verdict.Verdict`: whether the claim holds here, the figures behind
the decision, and, when it does not hold or cannot be tested, a reason built from those
figures. Nothing in the reasons depends on which models made the figures: the models are
named only by ``backbone``, the run's own description of them
(:meth:`vlmcal.papers.es.StudySettings.describe_models`).

Thresholds and statements are rows of ``vlmcal/papers/common/paper_values.csv``. Where a threshold is
compared with a noisy estimate, the estimate's 95% interval must allow the decision
(:func:`vlmcal.papers.common.rules.compare_with_bar`); otherwise the verdict is "not tested here"
and says why, with both numbers.

Numbers in the texts: ECE and its differences with 4 decimals, shares as percentages,
temperatures and accuracies with 2 decimals, correlations with 3.

C3 and C5 concern distribution shifts: they decide on the shifts that resemble the paper's
(covered by the models' pretraining data, or of unknown coverage; :mod:`vlmcal.papers.es.coverage`)
and report the shifts held out of it as a second result that never decides.

Length: over 500 lines because it holds the six claims of one paper, one function each
(about 60 lines with their docstrings, more for C3 and C5 with their two sides of the shifts),
as ``claims/dor.py`` holds the DOR paper's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from vlmcal.metrics import BootstrapResult
from vlmcal.papers.common.paper_values import paper_value
from vlmcal.papers.common.rules import BarTest, compare_with_bar, half_width, join_parts, statement, threshold
from vlmcal.papers.common.verdict import Verdict
from vlmcal.papers.es.coverage import COVERED, HELD_OUT, PAPER_LIKE, SIDES, UNKNOWN, shifted_rows, side_rows
from vlmcal.papers.es.set_size import CalibrationSizePlan, gap_to_full_set, smallest_sufficient_n
from vlmcal.papers.es.tables import confidence_vs_accuracy

__all__ = [
    "c1_vlms_not_better_calibrated",
    "c2_ts_improves_markedly",
    "c3_ts_stable_under_shift",
    "c4_ts_transfers_across_labels",
    "c5_confidence_tracks_accuracy",
    "c6_few_samples_suffice",
    "sufficient_sizes",
]


def _vlm_rows(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["kind"] == "VLM"]



def _noise_reason(what: str, interval: BootstrapResult, test: BarTest, bar: str, margin: str) -> str:
    """Why a :class:`BarTest` was left open, with the interval, its half-width and the margin."""
    return (
        f"not testable at this sample size: the 95% CI of {what} [{interval.lower:+.4f}, {interval.upper:+.4f}] "
        f"contains the bar ({bar}) and its half-width {test.half_width:.4f} is not below the margin of {margin}"
    )


def _temperatures_text(vlm: pd.DataFrame) -> str:
    fitted = vlm.groupby("model")["temperature"].mean()
    return "fitted temperatures: " + ", ".join(f"{model} {t:.2f}" for model, t in fitted.items())


# ----------------------------------------------------------------------------- C1


def c1_vlms_not_better_calibrated(table: pd.DataFrame, difference: BootstrapResult | None, backbone: str) -> Verdict:
    """C1: before calibration, the VLMs' ECE is similar to or worse than a supervised model's.

    Test: the VLMs' mean ECE before TS, over every condition, minus the supervised
    baseline's is at least ``-c1_threshold_similar_ece``, as far as the difference's 95%
    interval can tell (:func:`~vlmcal.papers.common.rules.compare_with_bar`).

    Args:
        table: :func:`vlmcal.papers.es.ts_across_shifts` output of one seed (columns kind,
            shift, ece_before), VLM and supervised rows.
        difference: :func:`vlmcal.papers.es.vlm_minus_supervised_ece` of the same seed; None
            when the run has no supervised baseline.
        backbone: the run's models in words.

    Returns:
        The :class:`~vlmcal.papers.common.verdict.Verdict` of C1; not tested when the run has no supervised baseline.
    """
    margin = threshold("c1_threshold_similar_ece")
    common = dict(claim="C1", statement=statement("C1"), paper_figure=paper_value("c1_statement").describe(), backbone=backbone)
    vlm, supervised = _vlm_rows(table), table[table["kind"] == "supervised"]
    if supervised.empty or difference is None:
        return Verdict(
            **common, measured=f"VLMs' mean ECE before TS: {vlm['ece_before'].mean():.4f}", interval="", holds=None,
            why="no supervised baseline was in this run, so the VLMs' ECE had nothing to be compared with",
        )
    test = compare_with_bar(difference, bar=-margin, margin=margin, at_most=False)
    measured = (
        f"mean ECE before TS over {vlm['condition'].nunique()} condition(s): VLMs {vlm['ece_before'].mean():.4f}, "
        f"supervised {supervised['ece_before'].mean():.4f}; difference {difference.estimate:+.4f} "
        f"(similar or worse: at least {-margin:+.4f})"
    )
    if test.holds is None:
        why = _noise_reason("the difference", difference, test, f"{-margin:+.4f}", f"{margin:.4f}")
    elif not test.holds:
        clean = table[table["shift"] == "clean"]
        why = join_parts([
            f"the VLMs' mean ECE before TS lies {-difference.estimate:.4f} below the supervised baseline's, "
            f"beyond the similarity margin of {margin:.4f}",
            f"on clean data alone: VLMs {_vlm_rows(clean)['ece_before'].mean():.4f}, "
            f"supervised {clean.loc[clean['kind'] == 'supervised', 'ece_before'].mean():.4f}" if not clean.empty else "",
        ])
    else:
        why = ""
    return Verdict(
        **common, measured=measured, interval=f"95% CI of the difference [{difference.lower:+.4f}, {difference.upper:+.4f}]",
        holds=test.holds, why=why,
    )


# ----------------------------------------------------------------------------- C2


def _c2_premise(vlm: pd.DataFrame) -> list[str]:
    """Where the ECE before and after TS came from: clean and shifted data, and the temperatures."""
    paper_after = threshold("c2_ece_after_ts")
    clean, shifted = vlm[vlm["shift"] == "clean"], vlm[vlm["shift"] != "clean"]
    parts = []
    if not clean.empty:
        before = clean["ece_before"].mean()
        parts.append(f"on clean data ECE went from {before:.4f} to {clean['ece_after'].mean():.4f}")
        if before <= paper_after:
            parts.append(f"{before:.4f} before TS is already at or below the paper's post-TS level of {paper_after:.2f}, "
                         "so TS had little to fix there")
    if not shifted.empty:
        parts.append(f"on shifted data from {shifted['ece_before'].mean():.4f} to {shifted['ece_after'].mean():.4f}")
    parts.append(_temperatures_text(vlm))
    return parts


def c2_ts_improves_markedly(table: pd.DataFrame, ratio: BootstrapResult, backbone: str) -> Verdict:
    """C2: temperature scaling improves the VLMs' calibration markedly.

    Test: the VLMs' mean ECE after TS over their mean ECE before TS is at most
    ``c2_threshold_ece_ratio``, as far as the ratio's 95% interval can tell (the margin is
    the bar's distance from a ratio of 1, no change).

    Args:
        table: :func:`vlmcal.papers.es.ts_across_shifts` output of one seed (columns kind,
            model, shift, temperature, ece_before, ece_after).
        ratio: :func:`vlmcal.papers.es.ts_ece_ratio` of the same seed.
        backbone: the run's models in words.

    Returns:
        The :class:`~vlmcal.papers.common.verdict.Verdict` of C2; not tested when the VLMs' ECE before TS is 0.
    """
    bar = threshold("c2_threshold_ece_ratio")
    common = dict(claim="C2", statement=statement("C2"), paper_figure=paper_value("c2_ece_after_ts").describe(), backbone=backbone)
    vlm = _vlm_rows(table)
    before, after = vlm["ece_before"].mean(), vlm["ece_after"].mean()
    if not before > 0:
        return Verdict(**common, measured=f"VLMs' mean ECE before TS: {before:.4f}", interval="", holds=None,
                       why=f"the VLMs' mean ECE before TS is {before:.4f}, so there was nothing for TS to improve")
    test = compare_with_bar(ratio, bar=bar, margin=1.0 - bar, at_most=True)
    measured = (
        f"VLMs' mean ECE over {vlm['condition'].nunique()} condition(s): {before:.4f} before TS, {after:.4f} after, "
        f"{ratio.estimate:.0%} of before (marked: at most {bar:.0%})"
    )
    if test.holds is None:
        why = (f"not testable at this sample size: the 95% CI of after/before [{ratio.lower:.0%}, {ratio.upper:.0%}] contains "
               f"the bar ({bar:.0%}) and its half-width {test.half_width:.0%} is not below the margin of {1.0 - bar:.0%}")
    elif not test.holds:
        why = join_parts([f"after TS the VLMs' mean ECE is {ratio.estimate:.0%} of its value before, above the bar of {bar:.0%}"]
                    + _c2_premise(vlm))
    else:
        why = ""
    return Verdict(**common, measured=measured, interval=f"95% CI of after/before [{ratio.lower:.0%}, {ratio.upper:.0%}]",
                   holds=test.holds, why=why)


# ----------------------------------------------------------------------------- the two sides of the shifts (C3, C5)

_SECOND_RESULT = "Held-out shifts (a second result, which does not decide the verdict)"


def _require_coverage(frame: pd.DataFrame, name: str, producer: str) -> None:
    missing = [column for column in ("shift", "coverage") if column not in frame.columns]
    if missing:
        raise ValueError(f"Expected `{name}` to have the columns shift and coverage, as {producer} writes, "
                         f"but it lacks {missing} (columns: {list(frame.columns)})")


def _by_side(intervals, name: str, producer: str) -> dict:
    """``intervals`` as a dict keyed by side (None: no intervals), checked."""
    if intervals is None:
        return {}
    if not isinstance(intervals, Mapping) or not set(intervals) <= set(SIDES):
        raise TypeError(f"Expected `{name}` to be a dict keyed by the sides {list(SIDES)}, as {producer} returns, "
                        f"but got {intervals!r}")
    return dict(intervals)


def _models_text(models) -> str:
    return ", ".join(f"`{model}`" for model in dict.fromkeys(models))


def _side_words(shifted: pd.DataFrame) -> str:
    """The paper-like side's shifted rows in words: which shifts they are, and whose coverage is unknown."""
    n_shifts, labels = shifted["shift"].nunique(), set(shifted["coverage"])
    unknown = _models_text(shifted.loc[shifted["coverage"] == UNKNOWN, "model"])
    if labels == {COVERED}:
        return f"the {n_shifts} shift(s) covered by the VLMs' pretraining data, the side the paper's shifts resemble"
    if labels == {UNKNOWN}:
        return f"all {n_shifts} shift(s), as the pretraining coverage of {unknown} is unknown"
    return (f"the {n_shifts} shift(s) covered by the VLMs' pretraining data or of unknown coverage (that of {unknown}), "
            "held-out shifts set apart")


def _side_label(shifted: pd.DataFrame) -> str:
    """The paper-like side's shifted rows in two or three words, for the interval's label."""
    labels = set(shifted["coverage"])
    if labels == {COVERED}:
        return "covered shifts"
    return "all shifts" if labels == {UNKNOWN} else "covered shifts and shifts of unknown coverage"


def _no_paper_like_reason(held_out: pd.DataFrame, what: str) -> str:
    """Why a claim about the paper's shifts is not tested when every shifted VLM condition is held out."""
    shifts = list(dict.fromkeys(held_out["shift"]))
    return (f"not testable on this run's shifts: none of its {len(shifts)} shift(s) ({', '.join(shifts)}) is covered by the "
            f"pretraining data of {_models_text(held_out['model'])}, all are held out, while the paper's shifts resemble covered "
            f"ones (see the paper figure), so they do not measure {what} in the paper's setting (their figures are under measured)")


# ----------------------------------------------------------------------------- C3


def _worst_shifts(shifted: pd.DataFrame, k: int = 3) -> str:
    by_shift = shifted.groupby("shift")[["ece_after", "accuracy", "confidence_after"]].mean().sort_values("ece_after", ascending=False)
    cells = [f"{shift} {row.ece_after:.4f} (accuracy {row.accuracy:.2f}, mean confidence after TS {row.confidence_after:.2f})"
             for shift, row in by_shift.head(k).iterrows()]
    return "highest ECE after TS: " + ", ".join(cells)


def _c3_figures(shifted: pd.DataFrame, clean: pd.DataFrame, rise: BootstrapResult) -> tuple[float, str]:
    """The share of shifted cells where TS helps, and the side's figures in words."""
    helps = float((shifted["ece_after"] < shifted["ece_before"]).mean())
    text = (f"clean-fitted TS lowers ECE in {helps:.0%} of {len(shifted)} shifted VLM cells; mean ECE after TS "
            f"{shifted['ece_after'].mean():.4f} under shift vs {clean['ece_after'].mean():.4f} clean, a rise of {rise.estimate:+.4f}")
    return helps, text


def _c3_held_out_text(held_out: pd.DataFrame, clean: pd.DataFrame, rise: BootstrapResult | None) -> str:
    """The held-out side's figures, and whether they alone would meet C3's bars (never deciding the verdict)."""
    helps_bar, rise_bar = threshold("c3_threshold_ts_helps_share"), threshold("c3_threshold_stable_rise")
    if rise is None:
        helps = float((held_out["ece_after"] < held_out["ece_before"]).mean())
        return (f"{_SECOND_RESULT}, {held_out['shift'].nunique()} shift(s): clean-fitted TS lowers ECE in {helps:.0%} of "
                f"{len(held_out)} shifted VLM cells; mean ECE after TS {held_out['ece_after'].mean():.4f} (no interval given)")
    helps, figures = _c3_figures(held_out, clean, rise)
    test = compare_with_bar(rise, bar=rise_bar, margin=rise_bar, at_most=True)
    if helps < helps_bar or test.holds is False:
        outcome = "on their own they would not meet the bars"
    elif test.holds is None:
        outcome = "their rise is too noisy to compare with the bar"
    else:
        outcome = "on their own they would meet both bars"
    return (f"{_SECOND_RESULT}, {held_out['shift'].nunique()} shift(s): {figures} "
            f"(95% CI [{rise.lower:+.4f}, {rise.upper:+.4f}]); {outcome}")


def c3_ts_stable_under_shift(
    table: pd.DataFrame, rises: Mapping[str, BootstrapResult | None] | None, backbone: str
) -> Verdict:
    """C3: a temperature fitted on clean data keeps the VLMs calibrated under distribution shift.

    Test, on the shifted VLM cells of the side the paper's shifts resemble
    (``"paper-like"``: shifts the model's pretraining data covers, and every shift of a model
    whose coverage is unknown; see :mod:`vlmcal.papers.es.coverage`): the clean-fitted temperature
    lowers ECE in at least ``c3_threshold_ts_helps_share`` of the cells, and the VLMs' mean ECE
    after TS rises from clean to those shifts by at most ``c3_threshold_stable_rise``, as far
    as the rise's 95% interval can tell. The held-out side's figures are reported in
    ``measured`` as a second result and never decide. A run whose shifted conditions are all
    held out is not tested (the paper's setting is not among them).

    Args:
        table: :func:`vlmcal.papers.es.ts_across_shifts` output of one seed (columns kind, model,
            shift, coverage, accuracy, ece_before, ece_after, confidence_after).
        rises: :func:`vlmcal.papers.es.shift_rise_by_side` of the same seed (None for a side without
            shifted VLM runs; None altogether for a run without shifts).
        backbone: the run's models in words.

    Returns:
        The :class:`~vlmcal.papers.common.verdict.Verdict` of C3; not tested without shifted conditions, or
        when none is on the paper-like side.
    """
    helps_bar, rise_bar = threshold("c3_threshold_ts_helps_share"), threshold("c3_threshold_stable_rise")
    common = dict(claim="C3", statement=statement("C3"),
                  paper_figure=f"{paper_value('c3_statement').describe()}; {paper_value('es_paper_shift_side').describe()}",
                  backbone=backbone)
    _require_coverage(table, "table", "vlmcal.papers.es.ts_across_shifts")
    rises = _by_side(rises, "rises", "vlmcal.papers.es.shift_rise_by_side")
    vlm = _vlm_rows(table)
    shifted, clean = vlm[vlm["shift"] != "clean"], vlm[vlm["shift"] == "clean"]
    if shifted.empty:
        return Verdict(**common, measured=f"VLMs' ECE after TS on clean data: {clean['ece_after'].mean():.4f}", interval="",
                       holds=None, why="no shifted condition was in this run, so stability under shift could not be measured")
    paper_like, held_out = shifted_rows(vlm, PAPER_LIKE), shifted_rows(vlm, HELD_OUT)
    held_out_text = "" if held_out.empty else _c3_held_out_text(held_out, clean, rises.get(HELD_OUT))
    if paper_like.empty:
        return Verdict(**common, measured=held_out_text, interval="", holds=None,
                       why=_no_paper_like_reason(held_out, "stability under shift"))
    rise = rises.get(PAPER_LIKE)
    if rise is None:
        raise ValueError(f"Expected `rises` to hold the rise of the {PAPER_LIKE!r} side, which has {len(paper_like)} shifted "
                         f"VLM cells, but got {rises!r}; compute it with vlmcal.papers.es.shift_rise_by_side")
    helps, figures = _c3_figures(paper_like, clean, rise)
    rise_test = compare_with_bar(rise, bar=rise_bar, margin=rise_bar, at_most=True)
    holds = False if helps < helps_bar else rise_test.holds
    measured = ". ".join(part for part in [
        f"On {_side_words(paper_like)}: {figures} (bars: TS lowers ECE in at least {helps_bar:.0%} of the cells, "
        f"a rise of at most {rise_bar:+.4f})",
        held_out_text,
    ] if part)
    failures = []
    if helps < helps_bar:
        failures.append(f"TS fitted on clean data lowered ECE in {helps:.0%} of the shifted cells, short of {helps_bar:.0%}")
    if rise_test.holds is False:
        failures.append(f"the mean ECE after TS rises by {rise.estimate:.4f} under shift, "
                        f"{rise.estimate - rise_bar:.4f} more than {rise_bar:.4f}")
    if rise_test.holds is None:
        failures.append(_noise_reason("the rise", rise, rise_test, f"{rise_bar:+.4f}", f"{rise_bar:.4f}"))
    if holds is not True:
        failures.append(_worst_shifts(paper_like))
    return Verdict(**common, measured=measured,
                   interval=f"95% CI of the rise on {_side_label(paper_like)} [{rise.lower:+.4f}, {rise.upper:+.4f}]",
                   holds=holds, why=join_parts(failures) if holds is not True else "")


# ----------------------------------------------------------------------------- C4


def c4_ts_transfers_across_labels(table: pd.DataFrame, intervals: dict[str, BootstrapResult], backbone: str) -> Verdict:
    """C4: a temperature fitted on other labels calibrates the test labels.

    Test: over the VLMs' (model, transfer, seed) cells, the temperature fitted on the other
    labels achieves at least ``c4_threshold_recovery_share`` of the ECE reduction of a
    temperature fitted on the target labels: ``mean(before - with other labels' T) /
    mean(before - with target labels' T)``, a ratio of means (a mean of per-cell ratios would
    let a cell with almost nothing to recover dominate). Not testable when the attainable
    reduction is not positive.

    Args:
        table: :func:`vlmcal.papers.es.label_shift` output, any number of seeds and transfers
            (columns kind, ece_before, ece_source_ts, ece_target_ts, recovered, temperature_source,
            and optionally source: the label set the temperature was fitted on).
        intervals: label -> :func:`vlmcal.papers.es.bootstrap_label_shift` interval of the
            recovered share (e.g. ``{"fitted on base": ..., "fitted on new": ...}``).
        backbone: the run's models in words.

    Returns:
        The :class:`~vlmcal.papers.common.verdict.Verdict` of C4; not tested when no cell has a reduction to recover.
    """
    bar = threshold("c4_threshold_recovery_share")
    common = dict(claim="C4", statement=statement("C4"), paper_figure=paper_value("c4_statement").describe(), backbone=backbone)
    vlm = _vlm_rows(table)
    interval = "95% CI of that share: " + ", ".join(f"{name} [{ci.lower:.0%}, {ci.upper:.0%}]" for name, ci in intervals.items())
    before, with_source, with_target = (float(vlm[c].mean()) for c in ("ece_before", "ece_source_ts", "ece_target_ts"))
    gain = before - with_target
    means = (f"mean ECE over {len(vlm)} VLM (model, transfer, seed) cells: {before:.4f} before TS, {with_source:.4f} with "
             f"the other labels' temperature, {with_target:.4f} with the target labels'")
    if not gain > 0:
        return Verdict(
            **common, measured=means, interval="", holds=None,
            why=(f"TS fitted on the target labels did not lower the mean ECE ({before:.4f} before, {with_target:.4f} after), "
                 "so there was no reduction to recover"),
        )
    recovered = (before - with_source) / gain
    holds = recovered >= bar
    measured = (f"TS fitted on other labels achieves {recovered:.0%} of the ECE reduction of TS fitted on the target labels "
                f"(bar: at least {bar:.0%}); {means}")
    why = ""
    if not holds:
        parts = [f"the other labels' temperature lowered the mean ECE by {before - with_source:+.4f}, against "
                 f"{gain:.4f} attainable with the target labels' own temperature: {recovered:.0%}, short of {bar:.0%}"]
        if "source" in vlm:
            fitted = vlm.groupby("source")[["temperature_source", "temperature_target"]].mean()
            parts.append("mean temperature fitted on each label set, and on the labels it was applied to: " + ", ".join(
                f"{s} {r.temperature_source:.2f} (target {r.temperature_target:.2f})" for s, r in fitted.iterrows()))
        why = join_parts(parts)
    return Verdict(**common, measured=measured, interval=interval, holds=holds, why=why)


# ----------------------------------------------------------------------------- C5


def _largest_gaps(vlm: pd.DataFrame, k: int = 3) -> str:
    gap = vlm["confidence_after"] - vlm["accuracy"]
    worst = vlm.loc[gap.abs().sort_values(ascending=False).index[:k]]
    cells = [f"{row.model} on {row.condition} ({row.labels} labels): confidence {row.confidence_after:.2f}, accuracy {row.accuracy:.2f}"
             for row in worst.itertuples()]
    return f"mean confidence after TS minus accuracy is {gap.mean():+.3f} on average; largest gaps: " + ", ".join(cells)


def _c5_flat(points: pd.DataFrame) -> bool:
    return points["accuracy"].nunique() < 2 or points["confidence_after"].nunique() < 2


def _c5_held_out_text(pooled: pd.DataFrame, correlations: dict[str, BootstrapResult] | None) -> str:
    """The held-out side's correlations (its shifted points and the clean ones), and whether they alone would meet C5's bars."""
    r2_bar, rho_bar = threshold("c5_r2"), threshold("c5_spearman")
    head = f"{_SECOND_RESULT}: pooled over {len(pooled)} VLM points (clean and held-out)"
    if len(pooled) < 3 or _c5_flat(pooled):
        return f"{head}: too few or too uniform to correlate"
    stats = confidence_vs_accuracy(pooled)
    interval = "" if correlations is None else (
        f" (95% CI [{correlations['r2'].lower:.3f}, {correlations['r2'].upper:.3f}] and "
        f"[{correlations['spearman'].lower:.3f}, {correlations['spearman'].upper:.3f}])")
    meets = stats["r2"] > r2_bar and stats["spearman"] > rho_bar
    return (f"{head} after TS: R^2 = {stats['r2']:.3f}, Spearman rho = {stats['spearman']:.3f}{interval}; "
            f"on their own they would {'' if meets else 'not '}meet the bars")


def c5_confidence_tracks_accuracy(
    points: pd.DataFrame, correlations: Mapping[str, dict[str, BootstrapResult] | None] | None, backbone: str
) -> Verdict:
    """C5: after TS, mean confidence tracks accuracy across shifts and label sets.

    Test: pooling the VLMs' clean points and their points on the side the paper's shifts
    resemble (``"paper-like"``: shifts the model's pretraining data covers, and every shift of
    a model whose coverage is unknown; see :mod:`vlmcal.papers.es.coverage`), R^2 of accuracy on
    confidence after TS exceeds ``c5_r2`` and Spearman's rho exceeds ``c5_spearman`` (the
    paper's own bars). The held-out side (its points with the clean ones) is reported in
    ``measured`` as a second result and never decides. A run without a shifted condition on
    the paper-like side is not tested.

    Args:
        points: :func:`vlmcal.papers.es.confidence_accuracy_points` output (columns kind, model,
            condition, coverage, labels, accuracy, confidence_after).
        correlations: :func:`vlmcal.papers.es.bootstrap_confidence_vs_accuracy_by_side` of the same
            points, for the intervals (None: no intervals).
        backbone: the run's models in words.

    Returns:
        The :class:`~vlmcal.papers.common.verdict.Verdict` of C5; not tested without a paper-like shifted
        condition, with fewer than 3 points, or when accuracy or confidence does not vary.
    """
    r2_bar, rho_bar = threshold("c5_r2"), threshold("c5_spearman")
    common = dict(claim="C5", statement=statement("C5"),
                  paper_figure=(f"{paper_value('c5_r2').describe()}; {paper_value('c5_spearman').describe()}; "
                                f"{paper_value('es_paper_shift_side').describe()}"),
                  backbone=backbone)
    _require_coverage(points, "points", "vlmcal.papers.es.confidence_accuracy_points")
    correlations = _by_side(correlations, "correlations", "vlmcal.papers.es.bootstrap_confidence_vs_accuracy_by_side")
    vlm = _vlm_rows(points)
    paper_like, held_out = shifted_rows(vlm, PAPER_LIKE), shifted_rows(vlm, HELD_OUT)
    held_out_text = "" if held_out.empty else _c5_held_out_text(side_rows(vlm, HELD_OUT),
                                                                  correlations.get(HELD_OUT))
    if paper_like.empty and held_out.empty:
        return Verdict(**common, measured=f"{len(vlm)} clean VLM point(s)", interval="", holds=None,
                       why="no shifted condition was in this run, so tracking accuracy across shifts could not be measured")
    if paper_like.empty:
        return Verdict(**common, measured=held_out_text, interval="", holds=None,
                       why=_no_paper_like_reason(held_out, "how confidence tracks accuracy"))
    pooled = side_rows(vlm, PAPER_LIKE)
    where = f"clean, and {_side_words(paper_like)}"
    if len(pooled) < 3:
        return Verdict(**common, measured=join_parts([f"{len(pooled)} VLM point(s) ({where})", held_out_text]), interval="", holds=None,
                       why=f"only {len(pooled)} VLM point(s) were measured; a correlation needs at least 3")
    accuracy, confidence = pooled["accuracy"], pooled["confidence_after"]
    if _c5_flat(pooled):
        return Verdict(
            **common, measured=join_parts([f"{len(pooled)} VLM points ({where})", held_out_text]), interval="", holds=None,
            why=(f"accuracy ({accuracy.min():.3f} to {accuracy.max():.3f}) or confidence after TS "
                 f"({confidence.min():.3f} to {confidence.max():.3f}) does not vary across the {len(pooled)} VLM points, "
                 "so there is no trend to track"),
        )
    stats = confidence_vs_accuracy(pooled)
    r2, rho = stats["r2"], stats["spearman"]
    holds = bool(r2 > r2_bar and rho > rho_bar)
    measured = ". ".join(part for part in [
        f"Pooled over {len(pooled)} VLM points after TS ({where}): R^2 = {r2:.3f}, Spearman rho = {rho:.3f} "
        f"(bars: above {r2_bar:.2f} and {rho_bar:.2f})",
        held_out_text,
    ] if part)
    intervals = correlations.get(PAPER_LIKE)
    interval = "" if intervals is None else (
        f"95% CI on clean data and {_side_label(paper_like)}: R^2 [{intervals['r2'].lower:.3f}, {intervals['r2'].upper:.3f}], "
        f"rho [{intervals['spearman'].lower:.3f}, {intervals['spearman'].upper:.3f}]")
    why = ""
    if not holds:
        parts = []
        if not r2 > r2_bar:
            parts.append(f"R^2 is {r2:.3f}, {r2_bar - r2:.3f} below {r2_bar:.2f}")
        if not rho > rho_bar:
            parts.append(f"Spearman rho is {rho:.3f}, {rho_bar - rho:.3f} below {rho_bar:.2f}")
        why = join_parts(parts + [_largest_gaps(pooled)])
    return Verdict(**common, measured=measured, interval=interval, holds=holds, why=why)


# ----------------------------------------------------------------------------- C6


def _c6_notes(plan: CalibrationSizePlan, n_classes: int) -> list[str]:
    """What this run leaves out of C6: sizes the pool could not supply, and the many-class setting."""
    notes = []
    if plan.skipped:
        sizes = ("size " if len(plan.skipped) == 1 else "sizes ") + ", ".join(map(str, plan.skipped))
        notes.append(f"{sizes} {'was' if len(plan.skipped) == 1 else 'were'} not run: larger than the calibration pool of {plan.pool} images")
    many = threshold("c6_many_classes")
    if n_classes < many:
        notes.append(f"this data set has {n_classes} classes, fewer than the {many:g} of the paper's smaller many-class set, "
                     "so the many-class part of the claim is not tested here")
    return notes


def sufficient_sizes(table: pd.DataFrame) -> pd.DataFrame:
    """Per model and seed, the smallest sufficient calibration-set size at C6's tolerance.

    Args:
        table: :func:`vlmcal.papers.es.calibration_set_size` output, one or more seeds (column seed).

    Returns:
        :func:`vlmcal.papers.es.smallest_sufficient_n` of every seed, with a seed column
        (NaN smallest_n: no size below the full set came within ``c6_threshold_plateau_ece``).
    """
    tolerance = threshold("c6_threshold_plateau_ece")
    if "seed" not in table:
        return smallest_sufficient_n(table, tolerance)
    return pd.concat([smallest_sufficient_n(g, tolerance).assign(seed=s) for s, g in table.groupby("seed")],
                     ignore_index=True)


def c6_few_samples_suffice(
    table: pd.DataFrame,
    full_set_ece: dict[str, BootstrapResult],
    plan: CalibrationSizePlan,
    n_classes: int,
    backbone: str,
    n_resamples: int = 200,
) -> Verdict:
    """C6: a few dozen labelled samples suffice to fit the temperature.

    Test: for the median VLM over models and seeds, the smallest n whose mean ECE after TS is
    within ``c6_threshold_plateau_ece`` (absolute) of the full calibration set's is at most
    ``c6_samples_high``. The tolerance must exceed the noise of the full-set ECE it is
    measured against (the median over VLMs of its bootstrap 95% half-width on the evaluation
    half); otherwise the claim is not testable at this sample size.

    Args:
        table: :func:`vlmcal.papers.es.calibration_set_size` output, one or more seeds
            (column seed when several).
        full_set_ece: :func:`vlmcal.papers.es.full_set_ece` of the first seed, one entry per VLM.
        plan: the sizes run and skipped (:func:`vlmcal.papers.es.plan_calibration_sizes`).
        n_classes: the data set's number of classes.
        backbone: the run's models in words.
        n_resamples: bootstrap resamples of the interval at the paper's n (first seed).

    Returns:
        The :class:`~vlmcal.papers.common.verdict.Verdict` of C6.
    """
    tolerance, paper_n = threshold("c6_threshold_plateau_ece"), threshold("c6_samples_high")
    common = dict(claim="C6", statement=statement("C6"),
                  paper_figure=f"{paper_value('c6_samples_low').describe()}; upper end {paper_n:g} samples", backbone=backbone)
    notes = _c6_notes(plan, n_classes)
    vlm = _vlm_rows(table)
    drawn = vlm[vlm["size"] != "all"]
    small = sorted(int(n) for n in drawn["n"].unique() if n <= paper_n)
    full = vlm.loc[vlm["size"] == "all", "ece_after"].mean()
    noise = float(np.median([half_width(ci) for ci in full_set_ece.values()])) if full_set_ece else math.nan

    def untested(measured: str, reason: str) -> Verdict:
        return Verdict(**common, measured=measured, interval="", holds=None, why=join_parts([reason] + notes))

    if math.isnan(full):
        return untested("no full-set fit", "the full calibration set ('all') was not among the sizes, so there is no plateau to compare with")
    if not small:
        return untested(f"full-set ECE after TS {full:.4f}", f"no calibration-set size of at most {paper_n:g} was run")
    if not noise < tolerance:
        return untested(
            f"full-set ECE after TS {full:.4f}, bootstrap 95% half-width {noise:.4f}",
            f"not testable at this sample size: the full-set ECE's bootstrap 95% half-width on the evaluation half is {noise:.4f} "
            f"(median over {len(full_set_ece)} VLM(s)), not below the tolerance of {tolerance:.4f}",
        )
    sufficient = sufficient_sizes(vlm)
    median_n = float(sufficient["smallest_n"].fillna(np.inf).median())
    holds = median_n <= paper_n
    reference_n = small[-1]
    first_seed = vlm[vlm["seed"] == vlm["seed"].iloc[0]] if "seed" in vlm else vlm
    gap = gap_to_full_set(first_seed, reference_n, n_resamples=n_resamples)
    median_text = "none within the tolerance" if math.isinf(median_n) else f"{median_n:g}"
    measured = (
        f"median smallest sufficient n over {vlm['model'].nunique()} VLM(s) and {len(sufficient)} (model, seed) pair(s): "
        f"{median_text} (sufficient: mean ECE after TS within {tolerance:.4f} of the full calibration set's {full:.4f}; "
        f"bar: at most {paper_n:g} samples); at n = {reference_n} the mean ECE after TS is {gap.estimate:+.4f} from the full-set ECE"
    )
    interval = (f"95% CI of that difference [{gap.lower:+.4f}, {gap.upper:+.4f}] (first seed, over draws); "
                f"noise of the full-set ECE: half-width {noise:.4f}")
    reasons = []
    if not holds:
        at_reference = drawn.loc[drawn["n"] == reference_n, "ece_after"].mean()
        reasons.append(f"at n = {reference_n} the mean ECE after TS is {at_reference:.4f}, {at_reference - full:.4f} above "
                       f"the full-set ECE of {full:.4f} (over seeds), beyond the tolerance of {tolerance:.4f}")
        reasons.append("no size below the full set came within it for most VLMs and seeds" if math.isinf(median_n)
                       else f"the median smallest sufficient n is {median_n:g}")
    return Verdict(**common, measured=measured, interval=interval, holds=holds, why=join_parts(reasons + notes))
