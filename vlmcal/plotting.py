"""Figures. Compute first (a plain result or DataFrame), draw second.

Every function takes the result and an optional ``ax`` (or ``axes``), draws on it, and
returns the axes; none changes global matplotlib settings.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import seaborn as sns

__all__ = ["plot_max_softmax_curves", "plot_dispersion_mechanism"]


def plot_max_softmax_curves(curve, n_classes: int | None = None, ax=None, reference=None):
    """E[max softmax] against sigma with 95% bands, one line per mu (or per K).

    Args:
        curve: the output of ``vlmcal.theory.max_softmax_curve``.
        n_classes: draw one K (lines per mu); None draws every K at its first mu.
        ax: matplotlib axes; a new figure if None.
        reference: optional DataFrame with columns sigma, mean drawn as a dashed black line
            (the K = 2 quadrature).

    Returns:
        The axes.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    if n_classes is None:
        data = curve[curve["mu"] == curve["mu"].min()]
        hue, title = "n_classes", "one line per K (mu = %g)" % curve["mu"].min()
    else:
        data = curve[curve["n_classes"] == n_classes]
        hue, title = "mu", f"K = {n_classes}, one line per mu"
    palette = sns.color_palette("viridis", data[hue].nunique())
    for color, (value, group) in zip(palette, data.groupby(hue)):
        g = group.sort_values("sigma")
        ax.plot(g["sigma"], g["mean"], marker="o", ms=3, color=color, label=f"{hue} = {value:g}")
        ax.fill_between(g["sigma"], g["lower"], g["upper"], color=color, alpha=0.25, lw=0)
        if n_classes is None:
            ax.axhline(1.0 / value, color=color, ls=":", lw=0.8)
    if reference is not None:
        ax.plot(reference["sigma"], reference["mean"], "k--", lw=1, label="K = 2, quadrature")
    ax.set(xlabel=r"logit standard deviation $\sigma$", ylabel="E[max softmax]", title=title, ylim=(0, 1.02))
    ax.legend(fontsize=7, frameon=False)
    sns.despine(ax=ax)
    return ax


def plot_dispersion_mechanism(frame, axes=None):
    """Three panels: ATFD, logit spread and confidence against the text-feature noise scale.

    Args:
        frame: the output of ``vlmcal.theory.dispersion_mechanism``.
        axes: three matplotlib axes; a new figure if None.

    Returns:
        The axes.
    """
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    panels = [
        ("atfd", "text-feature dispersion (ATFD)"),
        ("logit_std", "logit spread (std over classes)"),
        ("confidence", "mean max-softmax confidence"),
    ]
    for ax, (column, label) in zip(axes, panels):
        sns.lineplot(data=frame, x="spread", y=column, marker="o", ax=ax, color="C0")
        ax.set(xlabel="class text-feature noise scale", ylabel=label)
        sns.despine(ax=ax)
    return axes
