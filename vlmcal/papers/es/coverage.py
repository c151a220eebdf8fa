"""Which shifted conditions a model's training data showed: the labels that split C3 and C5 in two.

A model's *coverage* is the shifts its training data is known to show (``Backbone.covered_shifts``, from
``vlmcal.standins.corpus`` for vlmcal's own VLMs; ``()`` for the supervised baseline), or None when unknown (CLIP
through open_clip); :func:`coverage_label` labels each run's condition clean, covered, held out or unknown. ES's
shifts (row ``es_paper_shift_side`` of ``vlmcal/papers/common/paper_values.csv``) resemble the covered side, so C3
and C5 decide on the ``"paper-like"`` side (``SIDES``: covered or unknown) and report the held-out side apart.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import pandas as pd

from vlmcal.data.shifts import SHIFT_FAMILIES
from vlmcal.papers.common.paper_values import paper_value
from vlmcal.pipeline.runs import CLEAN, COVERAGE_LABELS, COVERED, HELD_OUT, UNKNOWN, coverage_label
from vlmcal.standins.corpus import COVERED_FAMILIES, HELD_OUT_FAMILIES, covered_shifts, held_out_shifts

__all__ = ["CLEAN", "COVERED", "HELD_OUT", "UNKNOWN", "COVERAGE_LABELS", "PAPER_LIKE", "SIDES", "coverage_label",
           "model_coverage", "side_rows", "shifted_rows", "CoveragePanel", "coverage_panels", "coverage_note"]

PAPER_LIKE = "paper-like"
# Each side: the coverage labels of the shifted conditions on it.
SIDES: dict[str, tuple[str, ...]] = {PAPER_LIKE: (COVERED, UNKNOWN), HELD_OUT: (HELD_OUT,)}


def model_coverage(runs: Sequence) -> dict[str, tuple[str, ...] | None]:
    """Each model's coverage, read from its runs (no model is loaded): model -> ``covered_shifts`` (None: unknown),
    in the order the models first appear."""
    coverage: dict[str, tuple[str, ...] | None] = {}
    for run in runs:
        if run.model in coverage and coverage[run.model] != run.covered_shifts:
            raise ValueError(f"Expected every run of model {run.model!r} to carry the same covered shifts, but got "
                             f"{coverage[run.model]!r} and {run.covered_shifts!r}; build the runs with "
                             "vlmcal.pipeline.predictions.predict")
        coverage[run.model] = run.covered_shifts
    return coverage


def _check_frame(frame: pd.DataFrame, side: str) -> None:
    if "coverage" not in frame.columns:
        raise ValueError("Expected a `coverage` column (as vlmcal.papers.es.ts_across_shifts and "
                         f"confidence_accuracy_points write), but the table has only {list(frame.columns)}")
    if side not in SIDES:
        raise ValueError(f"Expected `side` to be one of {list(SIDES)}, but got {side!r}")


def shifted_rows(frame: pd.DataFrame, side: str) -> pd.DataFrame:
    """The shifted rows of one side (``"paper-like"`` or ``"held out"``), from a table with a coverage column."""
    _check_frame(frame, side)
    return frame[frame["coverage"].isin(SIDES[side])]


def side_rows(frame: pd.DataFrame, side: str) -> pd.DataFrame:
    """The clean rows and the shifted rows of one side: what a figure or a correlation of that side uses."""
    _check_frame(frame, side)
    return frame[frame["coverage"].isin((CLEAN,) + SIDES[side])]


@dataclass(frozen=True)
class CoveragePanel:
    """One side (``"paper-like"`` or ``"held out"``) of a table, ready to plot in its own panel: a title in words
    computed from its rows, and its clean and shifted rows."""

    side: str
    title: str
    rows: pd.DataFrame


def coverage_panels(frame: pd.DataFrame) -> list[CoveragePanel]:
    """One panel per side of ``frame`` that has shifted rows (the paper-like side first); one panel of its clean rows
    if it has none. ``frame``: :func:`vlmcal.papers.es.ts_across_shifts` or
    :func:`vlmcal.papers.es.confidence_accuracy_points` output (a ``coverage`` column)."""
    panels = []
    for side in SIDES:
        shifted = shifted_rows(frame, side)
        if shifted.empty:
            continue
        labels = set(shifted["coverage"])
        if side == HELD_OUT:
            title = "shifts held out of each model's training data"
        elif labels == {COVERED}:
            title = "shifts covered by each model's pretraining data (like the paper's)"
        elif labels == {UNKNOWN}:
            title = "every shift (pretraining coverage unknown)"
        else:
            unknown = dict.fromkeys(shifted.loc[shifted["coverage"] == UNKNOWN, "model"])
            title = "covered shifts, and every shift of " + ", ".join(unknown) + " (coverage unknown)"
        panels.append(CoveragePanel(side, title, side_rows(frame, side)))
    return panels or [CoveragePanel(PAPER_LIKE, "clean data only (no shifted condition in this run)",
                                     frame[frame["coverage"] == CLEAN])]


def _families_text(shifts: Collection[str]) -> str:
    """The shift families that ``shifts`` hold, each with its shifts: ``noise (gaussian_noise, ...)``."""
    kept = {family: [name for name in names if name in shifts] for family, names in SHIFT_FAMILIES.items()}
    return "; ".join(f"{family} ({', '.join(names)})" for family, names in kept.items() if names) or "none"


def coverage_note(runs: Sequence) -> str:
    """A Markdown paragraph (for ``IPython.display.Markdown``): what covered and held out mean, and each model's
    coverage in ``runs``. The families come from ``vlmcal.standins.corpus``, the paper's side from row
    ``es_paper_shift_side``."""
    run_shifts = list(dict.fromkeys(run.shift for run in runs if run.shift != CLEAN))
    lines = [
        "**Covered and held-out shifts.** vlmcal pretrains its own VLMs on a corpus of captioned scenes "
        f"(`vlmcal.standins.corpus`); half of the scenes are rendered in a style from the shift families "
        f"{', '.join(COVERED_FAMILIES)}: {_families_text(covered_shifts())}. It never shows the families "
        f"{', '.join(HELD_OUT_FAMILIES)}: {_families_text(held_out_shifts())}. A shifted condition is **covered** for a "
        "model whose training data shows that shift, **held out** for a model whose training data is known and does "
        "not show it, and **unknown** for a model whose training data vlmcal does not know. "
        f"{paper_value('es_paper_shift_side')['quantity']}. The verdicts below are therefore decided on the covered side "
        "(with every shift of a model of unknown coverage), and report the held-out side as a second result that does not decide.",
        "", "This run's models, on its shifts:", "",
    ]
    groups: dict[tuple[str, ...] | None, list[str]] = {}
    for model, covered in model_coverage(runs).items():
        groups.setdefault(covered, []).append(f"`{model}`")
    for covered, models in groups.items():
        if covered is None:
            lines.append(f"- {', '.join(models)}: coverage **unknown** (all {len(run_shifts)} shift(s) on the paper-like side)")
            continue
        on, off = [s for s in run_shifts if s in covered], [s for s in run_shifts if s not in covered]
        lines.append(f"- {', '.join(models)}: **covered** {len(on)} shift(s): {_families_text(on)}; "
                     f"**held out** {len(off)}: {_families_text(off)}")
    return "\n".join(lines)
