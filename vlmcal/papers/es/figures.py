"""The ES pages' figures: ECE before and after TS (by shift, severity, label shift, calibration-set size),
and confidence against accuracy. Each draws on the matplotlib axes ``ax`` (or ``axes``) it is given, a new figure if
None, and returns them. Seaborn (and its scipy) is imported only by the functions that draw bands."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from vlmcal.papers.common.figures import cmap_colors, despine, grouped_bars, seaborn_legend

__all__ = ["plot_ece_before_after", "plot_label_shift", "plot_ece_by_severity", "plot_calibration_set_size", "plot_confidence_vs_accuracy"]


def _model_palette(models):
    """One colour per model; the supervised baseline in black."""
    return {m: "black" if m.startswith("supervised") else c for m, c in zip(models, cmap_colors("tab10", len(models)))}


def plot_ece_before_after(table, ax=None):
    """Grouped bars in the manner of ES Fig. 1: each model's ECE before and after TS, clean and under shift, from
    ``table`` (``vlmcal.papers.es.ts_across_shifts`` output; several seeds allowed: bars show means)."""
    ax = plt.subplots(figsize=(8, 3.6))[1] if ax is None else ax
    where = np.where(table["shift"] == "clean", "clean", "shifted (mean)")
    means = table.assign(where=where).groupby(["model", "where"], sort=False)[["ece_before", "ece_after"]].mean()
    heights = means.unstack("where")  # one row per model; columns (before/after, clean/shifted)
    heights.columns = [f"{'before' if ts == 'ece_before' else 'after'} TS, {w}" for ts, w in heights.columns]
    colors = {"before TS, clean": "#f4a582", "after TS, clean": "#92c5de", "before TS, shifted (mean)": "#ca0020",
              "after TS, shifted (mean)": "#0571b0"}
    order = [c for c in colors if c in heights]
    grouped_bars(ax, heights, order, [colors[c] for c in order])
    ax.set(xlabel="", ylabel="ECE")
    ax.legend(fontsize=7, frameon=False, ncols=2)
    ax.tick_params(axis="x", labelrotation=20)
    despine(ax)
    return ax


def plot_label_shift(table, axes=None):
    """ECE with no TS, TS from other labels and TS from the target labels: one panel (of ``axes``) per (source,
    target) pair of ``table`` (``vlmcal.papers.es.label_shift`` output with a ``source`` column; bars show means over
    seeds)."""
    bars = {"ece_before": "none", "ece_source_ts": "T from other labels", "ece_target_ts": "T from target labels"}
    panels = list(dict.fromkeys(zip(table["source"], table["target"])))
    if axes is None:
        _, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 3.4), sharey=True, squeeze=False)
    axes = np.asarray(axes).reshape(-1)
    for ax, (source, target) in zip(axes, panels):
        cell = table[(table["source"] == source) & (table["target"] == target)]
        heights = cell.groupby("model", sort=False)[list(bars)].mean().rename(columns=bars)
        grouped_bars(ax, heights, list(bars.values()), ["#ca0020", "#0571b0", "#92c5de"])
        ax.set(title=f"evaluated on: {source} -> {target}", xlabel="")
        ax.tick_params(axis="x", labelrotation=30)
        despine(ax)
    axes[0].set(ylabel="ECE")
    axes[-1].legend(fontsize=7, frameon=False, title="calibration", title_fontsize=7)
    return axes


def plot_ece_by_severity(table, axes=None):
    """ECE against shift severity (0 = clean), averaged over shifts, on two axes: before TS and after TS.

    Each line is a model's mean over seeds of ``table`` (``vlmcal.papers.es.ts_across_shifts`` output, with a ``seed``
    column when it holds several); the band spans the seeds (min to max). The supervised baseline is dashed.
    """
    import seaborn as sns
    models = list(dict.fromkeys(table["model"]))
    seeds = ["seed"] if "seed" in table.columns else []
    curves = table.groupby(["model", "severity", *seeds], sort=False)[["ece_before", "ece_after"]].mean().reset_index()
    axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)[1] if axes is None else axes
    dashes = {m: (4, 2) if m.startswith("supervised") else "" for m in models}
    titles = {"ece_before": "before TS", "ece_after": "after TS (T fitted on clean data)"}
    for i, (ax, (column, title)) in enumerate(zip(axes, titles.items())):
        sns.lineplot(data=curves, x="severity", y=column, hue="model", hue_order=models, palette=_model_palette(models),
                     style="model", style_order=models, dashes=dashes, estimator="mean", errorbar=("pi", 100),
                     marker="o", markersize=4, err_kws={"alpha": 0.15, "linewidth": 0}, legend=i == 0, ax=ax)
        ax.set(xlabel="severity (0 = clean)", ylabel="mean ECE over shifts", title=title)
        ax.set_xticks(sorted(curves["severity"].unique()))
        despine(ax)
    seaborn_legend(axes[0])
    return axes


def plot_calibration_set_size(table, ax=None):
    """Post-TS ECE against calibration-set size: the mean over draws and a 10-90% band, per model, from ``table``
    (``vlmcal.papers.es.calibration_set_size`` output; the draws of several seeds are pooled)."""
    import seaborn as sns
    models = list(dict.fromkeys(table["model"]))
    ax = plt.subplots(figsize=(6, 3.6))[1] if ax is None else ax
    sns.lineplot(data=table, x="n", y="ece_after", hue="model", hue_order=models, palette=_model_palette(models),
                 estimator="mean", errorbar=("pi", 80), marker="o", markersize=4,
                 err_kws={"alpha": 0.15, "linewidth": 0}, ax=ax)
    ax.set(xscale="log", xlabel="calibration samples n", ylabel="ECE after TS", title="mean over draws, 10-90% band")
    seaborn_legend(ax)
    despine(ax)
    return ax


def plot_confidence_vs_accuracy(points, confidence="confidence_after", ax=None):
    """Mean confidence against accuracy, one point per condition (a row of ``points``, with columns ``model``,
    ``accuracy`` and ``confidence``, and maybe ``kind``), with the identity line.

    Over the VLM points (every row without a ``kind`` column), the least-squares line whose R^2 C5 tests,
    with a seeded 95% bootstrap band (seaborn's ``regplot``).
    """
    import seaborn as sns
    fitted = points[points["kind"] == "VLM"] if "kind" in points.columns else points
    ax = plt.subplots(figsize=(4.6, 4.4))[1] if ax is None else ax
    palette = _model_palette(list(dict.fromkeys(points["model"])))
    for model, group in points.groupby("model", sort=False):
        ax.scatter(group[confidence], group["accuracy"], s=14, alpha=0.7, color=palette[model], edgecolors="none", label=model)
    lo = float(min(points[confidence].min(), points["accuracy"].min()))
    ax.plot([lo, 1], [lo, 1], color="grey", lw=1, ls=":", label="identity")
    if len(fitted) >= 3:  # as confidence_vs_accuracy: no line through fewer than 3 conditions
        sns.regplot(data=fitted, x=confidence, y="accuracy", scatter=False, ci=95, n_boot=1000, seed=0, truncate=True,
                    color="0.25", line_kws={"lw": 1.2}, label="least squares (VLMs), 95% band", ax=ax)
    ax.set(xlabel="mean confidence" + (" after TS" if confidence.endswith("after") else ""), ylabel="accuracy", aspect="equal")
    ax.legend(fontsize=7, frameon=False)
    despine(ax)
    return ax
