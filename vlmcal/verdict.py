"""The verdict every notebook ends with: the paper's figure, the figure here, and whether the claim holds.

A verdict is computed, never typed: the notebook passes the measured value, its interval
and the boolean that its own test produced. ``Verdict.record()`` also writes it as JSON to
the directory named by the environment variable ``VLMCAL_VERDICT_DIR`` (``make book`` sets
it), from which the book's summary page collects every verdict into one table.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

__all__ = ["Verdict", "load_verdicts", "VERDICT_DIR_ENV"]

VERDICT_DIR_ENV = "VLMCAL_VERDICT_DIR"


@dataclass(frozen=True)
class Verdict:
    """One claim's outcome on this book's data and models.

    Attributes:
        claim: the claim's id in CLAIMS (``"C11"``).
        statement: the claim in a sentence.
        paper_figure: what the paper reports, as read from ``vlmcal.paper_values``.
        measured: the figure measured here, in words and numbers.
        interval: its confidence interval in words (``"95% CI [0.41, 0.44]"``), or "".
        holds: whether the claim holds here, as computed by the notebook's test; None when
            it could not be tested with the models and data of this run (``why`` says why).
        backbone: which model(s) produced the measurement ("none: simulation" for theory).
        why: when it does not hold (or holds only in part): what differs here.
    """

    claim: str
    statement: str
    paper_figure: str
    measured: str
    interval: str
    holds: bool | None
    backbone: str
    why: str = ""

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
        row = {
            "claim": self.claim,
            "statement": self.statement,
            "paper's figure": self.paper_figure,
            "measured here": self.measured,
            "interval": self.interval,
            "backbone": self.backbone.replace("`", ""),
            "verdict": self.outcome,
            "what differs here": self.why,
        }
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
        """Write the verdict as ``<claim>.json`` (atomically) for the summary page.

        Args:
            directory: where to write; defaults to ``$VLMCAL_VERDICT_DIR``. If neither is
                set nothing is written (a reader re-running one notebook by hand).

        Returns:
            The path written, or None.
        """
        directory = directory or os.environ.get(VERDICT_DIR_ENV)
        if not directory:
            return None
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"{self.claim}.json"
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{self.claim}.", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(self), fh, indent=1)
        os.replace(tmp, target)
        return target


def load_verdicts(directory: str | os.PathLike | None = None) -> pd.DataFrame:
    """Every recorded verdict as a table (one row per claim, sorted by claim number)."""
    directory = Path(directory or os.environ.get(VERDICT_DIR_ENV) or ".")
    rows = [Verdict(**json.loads(p.read_text())) for p in sorted(directory.glob("*.json"))]
    if not rows:
        return pd.DataFrame(columns=["statement", "paper's figure", "measured here", "interval", "backbone", "verdict", "what differs here"])
    frame = pd.concat([v.to_frame() for v in rows])
    order = sorted(frame.index, key=lambda c: (int("".join(ch for ch in c if ch.isdigit()) or 0), c))
    return frame.loc[order]
