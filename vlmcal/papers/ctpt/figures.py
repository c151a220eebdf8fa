"""The C-TPT pages' figures: one point per prompt template (ATFD against ECE, C8) and the λ sweep of C-TPT."""

from __future__ import annotations

import matplotlib.pyplot as plt

__all__ = ["plot_prompt_points", "plot_lambda_sweep"]


def plot_prompt_points(points, near, window: float, n_bins: int, ax=None):
    """Each prompt's ATFD against its ECE, coloured by accuracy, the prompts near the top accuracy ringed; the axes.

    ``points``: ``prompt_sweep.sweep_condition`` output (columns atfd, ece, accuracy), one row per prompt; ``near``:
    its rows within ``window`` (a fraction) of the best accuracy (``near_top``); ``n_bins``: for the axis label;
    ``ax``: None for a new figure.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.2))
    dots = ax.scatter(points["atfd"], points["ece"], c=points["accuracy"], cmap="viridis", s=22)
    ax.scatter(near["atfd"], near["ece"], facecolors="none", edgecolors="crimson", s=70, lw=1.1,
               label=f"within {100 * window:g} points of the best accuracy ({len(near)})")
    ax.figure.colorbar(dots, ax=ax, label="accuracy")
    ax.set(xlabel="ATFD of the prompt's class text features", ylabel=f"ECE ({n_bins} bins)",
           title=f"{len(points)} prompts, clean test set")
    ax.legend(fontsize=8, frameon=False)
    return ax


def plot_lambda_sweep(sweep, zero_shot, axes=None):
    """ECE, accuracy and ATFD against C-TPT's λ (0: TPT), with zero-shot's ECE and accuracy dotted; the three axes.

    ``sweep``: ``tpt_runs.lambda_sweep`` output (columns lambda, ece, accuracy, atfd); ``zero_shot``: the zero-shot
    row of the methods' table (ece, accuracy); ``axes``: three axes, or None for a new figure.
    """
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(13, 3.3))
    for ax, column in zip(axes, ("ece", "accuracy", "atfd")):
        ax.plot(sweep["lambda"], sweep[column], "o-")
        if column != "atfd":
            ax.axhline(zero_shot[column], ls=":", color="0.4", label="zero-shot")
            ax.legend(fontsize=7, frameon=False)
        ax.set(xlabel="λ", ylabel=column.upper() if column != "accuracy" else column)
    axes[0].figure.tight_layout()
    return axes
