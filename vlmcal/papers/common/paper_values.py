"""The papers' own figures, looked up by id in one data file (``vlmcal/papers/common/paper_values.csv``), whose
rows have: id, claim, paper, quantity, value (a number, or empty for a statement), unit, source."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd

__all__ = ["paper_values", "paper_value", "PaperValue"]


class PaperValue(dict):
    """One row of the data file; ``.value`` is a float, or None for a statement."""

    @property
    def value(self) -> float | None:
        v = self["value"]
        return None if pd.isna(v) else float(v)

    def describe(self) -> str:
        """The quantity with its value and source, as a verdict cell shows it."""
        shown = self["quantity"] if self.value is None else f"{self['quantity']}: {self.value:g} {self['unit']}"
        return f"{shown} [{self['source']}]"


@lru_cache(maxsize=1)
def _load() -> pd.DataFrame:
    with resources.files("vlmcal.papers.common").joinpath("paper_values.csv").open() as fh:
        frame = pd.read_csv(fh, dtype={"claim": "string"})
    if frame["id"].duplicated().any():
        raise ValueError(f"duplicate ids in paper_values.csv: {sorted(frame['id'][frame['id'].duplicated()])}")
    return frame


def paper_values(claim: str | None = None) -> pd.DataFrame:
    """All paper figures, or those of one claim (``"C7"``), as a DataFrame (a copy)."""
    frame = _load()
    if claim is not None:
        frame = frame[frame["claim"] == claim]
        if frame.empty:
            raise KeyError(f"no paper values recorded for claim {claim!r}; claims: {sorted(_load()['claim'].dropna().unique())}")
    return frame.copy()


def paper_value(value_id: str) -> PaperValue:
    """One paper figure by id, e.g. ``paper_value("c7_ece_tpt").value == 11.6``."""
    frame = _load()
    rows = frame[frame["id"] == value_id]
    if rows.empty:
        raise KeyError(f"no paper value with id {value_id!r}; see vlmcal/papers/common/paper_values.csv for the ids")
    return PaperValue(rows.iloc[0].to_dict())
