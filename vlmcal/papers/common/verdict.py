"""The verdict every page ends with: the paper's figure, the figure here, and whether the claim holds.

A verdict is computed, never typed: a claim function keeps its numbers and states them through
:func:`render`. ``Verdict.record()`` writes it as JSON to ``$VLMCAL_VERDICT_DIR`` (``make book`` sets it),
where the summary page collects them (:func:`summary_table`, :func:`verdict_details`, :func:`compare_verdicts`).
"""

from __future__ import annotations

import json
import os
import re
import string
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from vlmcal.papers.common.paper_values import paper_value, paper_values
from vlmcal.pipeline.atomic import atomic_write

__all__ = ["Verdict", "render", "NUMBER_KINDS", "compare_verdicts", "read_verdicts", "load_verdicts", "verdict_tally",
           "summary_table", "verdict_details", "claim_anchor", "VERDICT_DIR_ENV"]

VERDICT_DIR_ENV = "VLMCAL_VERDICT_DIR"


@dataclass(frozen=True)
class Verdict:
    """One claim's outcome on this book's data and models.

    Attributes:
        claim: the claim's id in CLAIMS (``"C11"``).
        statement: the claim in a sentence.
        paper_figure: what the paper reports, as read from ``vlmcal.papers.common.paper_values``.
        measured: the figure measured here, in words and numbers.
        interval: its confidence interval in words (``"95% CI [0.41, 0.44]"``), or "".
        holds: whether the claim holds here, as its test computed; None when it could not be tested (``why`` says why).
        backbone: which model(s) produced the measurement ("none: simulation" for theory).
        why: when it does not hold (or holds only in part): what differs here.
        numbers: the measured figures behind the texts, by name, as numbers (see :func:`render`).
    """

    claim: str
    statement: str
    paper_figure: str
    measured: str
    interval: str
    holds: bool | None
    backbone: str
    why: str = ""
    numbers: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, claim: str, *, holds: bool | None, backbone: str, numbers: Mapping[str, float], measured: str,
           interval: str = "", why: str = "", paper_figure: str | None = None) -> "Verdict":
        """A claim's verdict from its numbers and the templates that state them (:func:`render`); the statement and
        (unless given) the paper's figure come from ``paper_values.csv``, row ``<claim>_statement``."""
        numbers = {name: _plain(value) for name, value in numbers.items()}
        return cls(
            claim=claim, statement=paper_value(f"{claim.lower()}_statement")["quantity"],
            paper_figure=paper_value(f"{claim.lower()}_statement").describe() if paper_figure is None else paper_figure,
            measured=render(measured, numbers), interval=render(interval, numbers), holds=holds, backbone=backbone,
            why=render(why, numbers), numbers=numbers,
        )

    def __post_init__(self) -> None:
        if not (self.holds is None or isinstance(self.holds, bool)):
            raise TypeError(f"Expected `holds` to be a bool computed by a test (or None), but got {type(self.holds).__name__}")
        if self.holds is None and not self.why:
            raise ValueError("A verdict that was not tested (holds=None) must say why in `why`")

    @property
    def outcome(self) -> str:
        if self.holds is None:
            return "not tested here"
        return "holds here" if self.holds else "does not hold here"

    def to_frame(self) -> pd.DataFrame:
        """A one-row table for display."""
        row = {"claim": self.claim, "statement": self.statement, "paper's figure": self.paper_figure,
               "measured here": self.measured, "interval": self.interval, "backbone": self.backbone.replace("`", ""),
               "verdict": self.outcome, "what differs here": self.why}
        return pd.DataFrame([row]).set_index("claim")

    def _repr_markdown_(self) -> str:
        lines = [
            f"**Verdict for {self.claim}: the claim {'could not be tested here' if self.holds is None else self.outcome}.**",
            "",
            f"- Claim: {self.statement}",
            f"- Paper: {self.paper_figure}",
            f"- Here: {self.measured}" + (f" ({self.interval})" if self.interval else ""),
            f"- Backbone: {self.backbone}",
        ]
        if self.why:
            lines.append(f"- Note: {self.why}")
        return "\n".join(lines)

    def record(self, directory: str | os.PathLike | None = None) -> Path | None:
        """Write the verdict as ``<claim>.json`` atomically into ``directory`` (default ``$VLMCAL_VERDICT_DIR``);
        with neither, nothing is written (a reader re-running one page by hand). Returns the path, or None."""
        directory = directory or os.environ.get(VERDICT_DIR_ENV)
        if not directory:
            return None
        target = Path(directory) / f"{self.claim}.json"
        with atomic_write(target) as fh:  # a failed dump leaves the previous record, and no temporary file
            json.dump(asdict(self), fh, indent=1)
        return target


# ----------------------------------------------------------------------------- numbers in words
# Every number in a verdict's text is formatted here, by its kind: a template names a number and
# its kind, ``"ECE {ece_vlm:ece}, {share_below:share} of the bins"``; any other format spec
# (``{x:.2e}``) is Python's own.

NUMBER_KINDS: dict[str, Callable[[float], str]] = {
    "ece": lambda x: f"{x:.4f}",  # ECE and its like, as fractions
    "ece_change": lambda x: f"{x:+.4f}",  # a difference of ECEs
    "share": lambda x: f"{x:.0%}",  # a share of cases, as a percentage
    "points": lambda x: f"{100.0 * x:+.2f}",  # a change of a fraction, in signed percentage points
    "percent": lambda x: f"{100.0 * x:.2f}",  # a fraction in percent (no sign)
    "temperature": lambda x: f"{x:.2f}",
    "accuracy": lambda x: f"{x:.2f}",
    "r": lambda x: f"{x:.3f}",  # a correlation
    "r_change": lambda x: f"{x:+.3f}",
    "count": lambda x: f"{int(x):d}",
}


class _NumberFormatter(string.Formatter):
    def format_field(self, value, format_spec):  # noqa: D102 - string.Formatter's hook
        kind = NUMBER_KINDS.get(format_spec)
        return kind(value) if kind is not None else super().format_field(value, format_spec)


def render(template: str, numbers: Mapping[str, float]) -> str:
    """A verdict text with its numbers filled in, each formatted by its kind (:data:`NUMBER_KINDS`).

    Example:
        >>> render("ECE {before:ece} -> {after:ece} ({change:points} points)", {"before": 0.1, "after": 0.05, "change": -0.05})
        'ECE 0.1000 -> 0.0500 (-5.00 points)'
    """
    return _NumberFormatter().vformat(template, (), numbers) if template else template


def _plain(value: float | None) -> float | int | None:
    """A number as JSON keeps it: a Python int or float (numpy scalars converted); None stays None."""
    if value is None or isinstance(value, int):
        return value
    return int(value) if isinstance(value, np.integer) else float(value)


def read_verdicts(directory: str | os.PathLike | None = None) -> list[Verdict]:
    """Every verdict recorded in ``directory`` (default ``$VLMCAL_VERDICT_DIR``, else the current
    folder), sorted by claim number (C2 before C10)."""
    directory = Path(directory or os.environ.get(VERDICT_DIR_ENV) or ".")
    verdicts = [Verdict(**json.loads(p.read_text())) for p in directory.glob("*.json")]
    return sorted(verdicts, key=lambda v: _claim_order(v.claim))


def load_verdicts(directory: str | os.PathLike | None = None) -> pd.DataFrame:
    """Every recorded verdict as a table (one row per claim, sorted by claim number)."""
    rows = read_verdicts(directory)
    if not rows:
        return pd.DataFrame(columns=["statement", "paper's figure", "measured here", "interval", "backbone", "verdict", "what differs here"])
    return pd.concat([v.to_frame() for v in rows])


def _claim_order(claim: str) -> tuple[int, str]:
    return int("".join(ch for ch in claim if ch.isdigit()) or 0), claim


# ----------------------------------------------------------------------------- the summary page
# Markdown for MyST-NB's GFM renderer (``nb_render_markdown_format: gfm``). In a cell's output a
# Markdown heading becomes a rubric whose id docutils derives from its text, so each claim's
# section carries an explicit HTML anchor (``<a id="claim-c11">``) that the table links to.

SHORT_CHARS = 80  # longest text in a table cell: at most three lines in the book's column, so a row stays short
_OUTCOME_CELL = {True: "✓ holds", False: "✗ does not hold", None: "– not tested"}  # the column says "here"
TABLE_ANCHOR = "claims-table"  # the table's own anchor, for the "back to the table" links


def claim_anchor(claim: str) -> str:
    """The HTML id of a claim's section in :func:`verdict_details` (``"C11"`` -> ``"claim-c11"``)."""
    return "claim-" + re.sub(r"[^a-z0-9]+", "-", claim.lower()).strip("-")


def _papers(claim: str) -> str:
    """The paper(s) a claim comes from (``ES``, ``CTPT``, ``DOR``): the ``paper`` column of its rows in
    ``vlmcal.papers.common.paper_values`` (a KeyError names the known claims when it has none)."""
    return ", ".join(dict.fromkeys(paper_values(claim)["paper"].dropna()))


def _md(text: str, in_table: bool = False) -> str:
    """``text`` as one line of Markdown that shows as written: outside its code spans a ``<``
    cannot open raw HTML, and in a table cell a ``|`` cannot end the cell (GFM wants it
    escaped even inside code spans)."""
    parts = re.split(r"(`[^`]*`)", " ".join(text.split()))  # odd indices: the code spans
    text = "".join(part if i % 2 else part.replace("<", "&lt;") for i, part in enumerate(parts))
    return text.replace("|", "\\|") if in_table else text


def _clauses(text: str) -> list[str]:
    """``text`` split at its ``"; "`` separators, but not inside parentheses or brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch in "([") - (ch in ")]")
        if depth == 0 and text.startswith("; ", i):
            parts.append(text[start:i])
            start = i + 2
    return [part for part in parts + [text[start:]] if part.strip()]


def _short(text: str, limit: int = SHORT_CHARS) -> str:
    """The head of ``text`` for a table cell, at most ``limit`` characters.

    The head is the first ``"; "``-separated clause without its ``[source]`` (as
    :meth:`vlmcal.papers.common.paper_values.PaperValue.describe` appends it). A longer head loses its
    parenthetical remarks (`` (bar: at least 80%)``, but not the ``(s)`` of ``condition(s)``
    or the ``(mu, sigma^2)`` of ``N(mu, sigma^2)``), then is cut after a comma (or else a
    word) and marked with an ellipsis.
    """
    clauses = _clauses(" ".join(text.split())) or [""]
    head = re.sub(r"\s*\[[^\[\]]*\]$", "", clauses[0]).replace("`", "")
    if len(head) > limit:
        head = re.sub(r"\s+\([^()]*\)", "", head)  # a remark is set off by a space; N(mu, sigma^2) is not
    if len(head) > limit:
        cut = head[: limit - 1]
        at_comma = cut.rfind(", ")
        cut = cut[:at_comma] if at_comma >= limit // 2 else cut.rsplit(" ", 1)[0]  # whole items of a list if it can
        head = cut.rstrip(",;:( ") + "…"
    return head


def verdict_tally(verdicts: Sequence[Verdict]) -> str:
    """One Markdown line counting the outcomes: ``**2** holds here, **1** not tested here (3 claims ...)``."""
    counts = Counter(v.outcome for v in verdicts)
    order = ("holds here", "does not hold here", "not tested here")
    parts = [f"**{counts[outcome]}** {outcome}" for outcome in order if counts[outcome]]
    return ", ".join(parts) + f" ({len(verdicts)} claim{'s' * (len(verdicts) != 1)} reproduced so far)."


def summary_table(verdicts: Sequence[Verdict]) -> str:
    """The verdicts as a compact Markdown table, one row per claim, each claim linked to its reasons.

    Columns: claim (a link to its section in :func:`verdict_details`), paper, verdict, the
    paper's figure and the figure here, both shortened to their head (:data:`SHORT_CHARS`).
    The interval, backbone and reasons are left to the details.

    Args:
        verdicts: as :func:`read_verdicts` returns them.
    Returns:
        GitHub-flavoured Markdown; a sentence when there is no verdict.
    Example:
        >>> v = Verdict("C11", "s", "max softmax rises [DOR, Thm. 1]", "12 of 12 steps rise; K = 2 checked", "", True, "none")
        >>> summary_table([v]).splitlines()[2]
        '| [C11](#claim-c11) | DOR | ✓&nbsp;holds | max softmax rises | 12 of 12 steps rise |'
    """
    if not verdicts:
        return "*No verdict has been recorded yet.*"
    lines = [
        f"| <a id='{TABLE_ANCHOR}'></a>claim | paper | verdict here | paper's figure | figure here |",
        "| :-- | :-- | :-- | :-- | :-- |",
    ]
    for v in verdicts:
        cells = [
            f"[{_md(v.claim, True)}](#{claim_anchor(v.claim)})",
            _md(_papers(v.claim), True),
            _OUTCOME_CELL[v.holds].replace(" ", "&nbsp;"),  # on one line
            _md(_short(v.paper_figure), True),
            _md(_short(v.measured), True),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _item(label: str, text: str) -> list[str]:
    """A list item; a text of several ``"; "``-separated parts becomes a nested list."""
    parts = _clauses(text)
    if len(parts) <= 1:
        return [f"- **{label}:** {_md(text)}"]
    return [f"- **{label}:**"] + [f"  - {_md(part)}" for part in parts]


def _unless_the_statement(paper_figure: str, statement: str) -> str:
    """A qualitative claim's paper figure is its statement with a source: shown once, above it."""
    if statement and paper_figure.startswith(statement):
        return "as stated above" + paper_figure[len(statement):]
    return paper_figure


def verdict_details(verdicts: Sequence[Verdict]) -> str:
    """Each claim's full record, one section per claim with the anchor its table row links to.

    A section gives the claim, the paper's figure, what was measured here, its interval, the
    models behind it and what differs here, each in full.

    Args:
        verdicts: as :func:`read_verdicts` returns them.
    Returns:
        GitHub-flavoured Markdown ("" when there is no verdict).
    """
    sections = []
    for v in verdicts:
        lines = [
            f'### <a id="{claim_anchor(v.claim)}"></a>{_md(v.claim)} ({_md(_papers(v.claim))}): {_md(v.outcome)}',
            "",
            f"*{_md(v.statement)}*",
            "",
            *_item("Paper", _unless_the_statement(v.paper_figure, v.statement)),
            *_item("Measured here", v.measured),
        ]
        if v.interval:
            lines += _item("Interval", v.interval)
        lines += _item("Backbone", v.backbone)
        if v.why:
            lines += _item("Why not tested" if v.holds is None else "What differs here", v.why)
        lines += ["", f"[↑ back to the table](#{TABLE_ANCHOR})"]
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


def compare_verdicts(verdicts: Sequence[Verdict], baseline: Sequence[Verdict], baseline_name: str = "default book") -> str:
    """Each claim's outcome here beside its outcome in ``baseline`` (another build's verdicts), as Markdown: how many
    agree, then one row per claim of either build ("–" where a build lacks it)."""
    here, there = {v.claim: v for v in verdicts}, {v.claim: v for v in baseline}
    claims = sorted(set(here) | set(there), key=_claim_order)
    both = [c for c in claims if c in here and c in there]
    same = sum(here[c].holds == there[c].holds for c in both)
    lines = [f"**{same}** of the {len(both)} claims in both builds have the same outcome here as in the {baseline_name}.", "",
             f"| claim | here | {baseline_name} | same | figure here | figure in the {baseline_name} |",
             "| :-- | :-- | :-- | :-- | :-- | :-- |"]
    for c in claims:
        a, b = here.get(c), there.get(c)
        cells = [_md(c, True), _OUTCOME_CELL[a.holds] if a else "–", _OUTCOME_CELL[b.holds] if b else "–",
                 ("yes" if a.holds == b.holds else "**no**") if a and b else "–",
                 _md(_short(a.measured), True) if a else "–", _md(_short(b.measured), True) if b else "–"]
        lines.append("| " + " | ".join(cell.replace(" ", "&nbsp;") if i in (1, 2) else cell for i, cell in enumerate(cells)) + " |")
    return "\n".join(lines)
