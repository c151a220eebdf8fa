"""What the claim modules share: statements and thresholds read from the data file, and the noise rule.

Every threshold a verdict compares with is a row of ``vlmcal/papers/common/paper_values.csv`` (its
``source`` says whether the figure is the paper's or vlmcal's reading of the paper), so a
claim's test is stated once and a page never retypes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vlmcal.metrics import BootstrapResult
from vlmcal.papers.common.paper_values import paper_value
from vlmcal.papers.common.verdict import render

__all__ = ["threshold", "statement", "half_width", "BarTest", "compare_with_bar", "join_parts", "combine_tests", "noise_reason"]


def threshold(value_id: str) -> float:
    """The number of row ``value_id`` of the data file (a threshold or a paper figure)."""
    value = paper_value(value_id).value
    if value is None:
        raise ValueError(f"Expected paper value {value_id!r} to hold a number, but it is a statement")
    return value


def statement(claim: str) -> str:
    """The claim in a sentence: the ``quantity`` of row ``<claim>_statement`` (``"C1"`` -> ``c1_statement``)."""
    return paper_value(f"{claim.lower()}_statement")["quantity"]


def half_width(interval: BootstrapResult) -> float:
    """Half the width of a confidence interval: the noise of its estimate, in its units."""
    return (interval.upper - interval.lower) / 2.0


@dataclass(frozen=True)
class BarTest:
    """The outcome of comparing a noisy estimate with a bar.

    Attributes:
        holds: whether the estimate is on the claim's side of the bar; None when the noise
            does not allow a decision.
        decided_by: ``"interval"`` (the whole interval is on one side), ``"estimate"`` (the
            interval straddles the bar but is narrower than the margin) or ``"noise"``
            (undecided: the interval straddles the bar and is at least as wide as the margin).
        half_width: the interval's half-width.
    """

    holds: bool | None
    decided_by: str
    half_width: float


def compare_with_bar(interval: BootstrapResult, bar: float, margin: float, at_most: bool) -> BarTest:
    """Compare an estimate with a bar, deciding only what its noise allows.

    The bar sits ``margin`` away from the value that would mean "no effect" (a similarity
    margin of 0.01 around a difference of 0, a halving of ECE against a ratio of 1). When the
    whole 95% interval lies on one side of the bar, the interval decides. When it straddles
    the bar, the estimate decides only if the interval's half-width is below the margin: a
    wider interval cannot tell the bar from the no-effect value, and the test is left open.

    Args:
        interval: the estimate and its interval.
        bar: the threshold.
        margin: the bar's distance from the no-effect value (> 0).
        at_most: True when the claim holds for values at most ``bar``, False for at least ``bar``.
    Returns:
        A :class:`BarTest`.
    Example:
        >>> compare_with_bar(BootstrapResult(0.02, -0.03, 0.07, 0.95, 200, 0), bar=0.05, margin=0.05, at_most=True).holds is None
        True
    """
    if not margin > 0:
        raise ValueError(f"Expected `margin` to be larger than 0, but got {margin!r}")
    width = half_width(interval)
    if any(math.isnan(x) for x in (interval.estimate, interval.lower, interval.upper)):
        return BarTest(None, "noise", width)

    def passes(value: float) -> bool:
        return value <= bar if at_most else value >= bar

    if passes(interval.lower) == passes(interval.upper):
        return BarTest(passes(interval.lower), "interval", width)
    if width < margin:
        return BarTest(passes(interval.estimate), "estimate", width)
    return BarTest(None, "noise", width)


def join_parts(parts: list[str]) -> str:
    """The non-empty parts of a verdict's text, joined by semicolons."""
    return "; ".join(part for part in parts if part)


def combine_tests(tests: list[bool | None]) -> bool | None:
    """A claim of several parts: False if any part fails, else None if any part is undecided, else True."""
    if any(t is False for t in tests):
        return False
    return None if any(t is None for t in tests) else True


def noise_reason(what: str, interval: BootstrapResult, test: BarTest, bar: float, margin: float,
                 kind: str = "ece_change", width_kind: str = "ece", unit: str = "", bar_kind: str | None = None) -> str:
    """Why a :class:`BarTest` was left open, in words; ``kind`` formats the interval and the bar (unless ``bar_kind``:
    ``"g"`` shows 0 as ``0``), ``width_kind`` the half-width and margin (:func:`~vlmcal.papers.common.verdict.render`'s
    kinds), and ``unit`` follows each (``" points"``)."""
    numbers = dict(lower=interval.lower, upper=interval.upper, bar=bar, half=test.half_width, margin=margin)
    return render(
        f"not testable at this sample size: the 95% CI of {what} [{{lower:{kind}}}, {{upper:{kind}}}]{unit} contains "
        f"the bar ({{bar:{bar_kind or kind}}}{unit}) and its half-width {{half:{width_kind}}}{unit} is not below the "
        f"margin of {{margin:{width_kind}}}{unit}", numbers)
