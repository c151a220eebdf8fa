"""The DOR pages' figures: Proposition 3.1's curves and mechanism (C11), prompt learning's curves and sweep (C12);
each draws on the ``ax`` (or ``axes``) given, or on a new figure if None, and returns them."""

from __future__ import annotations

import matplotlib.pyplot as plt

from vlmcal.papers.common.figures import cmap_colors, despine

__all__ = ["plot_max_softmax_curves", "plot_dispersion_mechanism", "plot_training_curves", "plot_weight_sweep"]


def plot_max_softmax_curves(curve, n_classes: int | None = None, ax=None, reference=None):
    """E[max softmax] against sigma with 95% bands, one line per mu (or per K).

    ``curve``: a ``vlmcal.papers.dor.theory.max_softmax_curve``; ``n_classes``: draw one K (lines per mu), None every K
    at its first mu; ``reference``: optional DataFrame (columns sigma, mean), drawn dashed: the K = 2 quadrature."""
    ax = plt.subplots(figsize=(5, 3.5))[1] if ax is None else ax
    if n_classes is None:
        data = curve[curve["mu"] == curve["mu"].min()]
        hue, title = "n_classes", "one line per K (mu = %g)" % curve["mu"].min()
    else:
        data = curve[curve["n_classes"] == n_classes]
        hue, title = "mu", f"K = {n_classes}, one line per mu"
    for color, (value, group) in zip(cmap_colors("viridis", data[hue].nunique()), data.groupby(hue)):
        g = group.sort_values("sigma")
        ax.plot(g["sigma"], g["mean"], marker="o", ms=3, color=color, label=f"{hue} = {value:g}")
        ax.fill_between(g["sigma"], g["lower"], g["upper"], color=color, alpha=0.25, lw=0)
        if n_classes is None:
            ax.axhline(1.0 / value, color=color, ls=":", lw=0.8)
    if reference is not None:
        ax.plot(reference["sigma"], reference["mean"], "k--", lw=1, label="K = 2, quadrature")
    ax.set(xlabel=r"logit standard deviation $\sigma$", ylabel="E[max softmax]", title=title, ylim=(0, 1.02))
    ax.legend(fontsize=7, frameon=False)
    despine(ax)
    return ax


def plot_dispersion_mechanism(frame, axes=None):
    """Three panels: ATFD, logit spread and confidence (``frame``, a ``vlmcal.papers.dor.theory.dispersion_mechanism``)
    against the text-feature noise scale."""
    axes = plt.subplots(1, 3, figsize=(11, 3.2))[1] if axes is None else axes
    panels = [("atfd", "text-feature dispersion (ATFD)"), ("logit_std", "logit spread (std over classes)"),
              ("confidence", "mean max-softmax confidence")]
    for ax, (column, label) in zip(axes, panels):
        ax.plot(frame["spread"], frame[column], marker="o", color="C0")
        ax.set(xlabel="class text-feature noise scale", ylabel=label)
        despine(ax)
    return axes


def plot_training_curves(histories, zero_shot, axes=None):
    """CoOp against CoOp + DOR on the new classes over training: feature divergence, confidence, gap; zero-shot dotted.

    ``histories``: method -> its runs' ``PromptLearningRun.history`` (epoch, new_fd, new_confidence, new_accuracy);
    ``zero_shot``: the zero-shot row of ``base_to_new.method_summary`` (new_fd, new_accuracy, new_gap)."""
    axes = plt.subplots(1, 3, figsize=(14, 3.4))[1] if axes is None else axes
    for (method, runs), style, color in zip(histories.items(), ("-", "--", ":"), ("C0", "C3", "C2")):
        for i, history in enumerate(runs):
            gap = history["new_confidence"] - history["new_accuracy"]
            for ax, y in zip(axes, (history["new_fd"], 100 * history["new_confidence"], 100 * gap)):
                ax.plot(history["epoch"], y, style, color=color, label=method if i == 0 else None, alpha=0.8)
    zero_shot_levels = {"feature divergence (new classes)": zero_shot["new_fd"],
                        "mean confidence, new classes (%)": 100 * (zero_shot["new_accuracy"] + zero_shot["new_gap"]),
                        "confidence − accuracy, new (points)": 100 * zero_shot["new_gap"]}
    for ax, (ylabel, level) in zip(axes, zero_shot_levels.items()):
        ax.axhline(level, ls=":", color="0.4", label="zero-shot")
        ax.set(xlabel="epoch", ylabel=ylabel)
        ax.legend(fontsize=8, frameon=False)
    axes[2].axhline(0, color="0.3", lw=0.8)
    axes[0].figure.tight_layout()
    return axes


def plot_weight_sweep(sweep, zero_shot, axes=None):
    """HM accuracy, base ECE and new ECE against the regulariser's weight (KgCoOp's w, DOR's λ), zero-shot dotted.

    ``sweep``: ``base_to_new.weight_sweep`` output (columns method, weight, hm, base_ece, new_ece); ``zero_shot``: the
    zero-shot row of ``base_to_new.method_summary``."""
    axes = plt.subplots(1, 3, figsize=(14, 3.3))[1] if axes is None else axes
    columns = {"hm": "HM accuracy (%)", "base_ece": "base ECE (%)", "new_ece": "new ECE (%)"}
    for method, group in sweep.groupby("method", sort=False):
        group = group.sort_values("weight")
        for ax, column in zip(axes, columns):
            ax.plot(group["weight"], 100 * group[column], "o-", label=f"{method} ({'w' if method == 'KgCoOp' else 'λ'})")
    for ax, (column, ylabel) in zip(axes, columns.items()):
        ax.axhline(100 * zero_shot[column], ls=":", color="0.4", label="zero-shot")
        ax.set(xscale="log", xlabel="weight", ylabel=ylabel)
        ax.legend(fontsize=8, frameon=False)
    axes[0].figure.tight_layout()
    return axes
