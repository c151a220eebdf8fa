"""Figures. Compute first (a plain result or DataFrame), draw second.

Every function takes the result and an optional ``ax`` (or ``axes``), draws on it, and
returns the axes; none changes global matplotlib settings (styles are passed to each call,
never set with ``sns.set_theme``).

Every notebook imports this module, so it stays light: seaborn (and the scipy it brings,
about a second) is imported inside the functions that draw a statistical plot with it:
annotated heat maps (:func:`plot_confusion_matrix`, :func:`plot_text_similarity`), a
least-squares line with its bootstrap band (:func:`plot_confidence_vs_accuracy`) and curves
with bands over draws or seeds (:func:`plot_calibration_set_size`, :func:`plot_ece_by_severity`).
The rest is plain matplotlib.

Length: a little under 500 lines: one function per figure of the book, each short; they share
the colour and style helpers at the top.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = [
    "plot_max_softmax_curves",
    "plot_dispersion_mechanism",
    "plot_reliability_diagram",
    "plot_ece_before_after",
    "plot_ece_by_severity",
    "plot_label_shift",
    "plot_calibration_set_size",
    "plot_confidence_vs_accuracy",
    "plot_top_predictions",
    "plot_confusion_matrix",
    "plot_text_similarity",
    "plot_corpus_samples",
]


def _despine(ax) -> None:
    """No top and right frame lines."""
    ax.spines[["top", "right"]].set_visible(False)


def _colors(cmap: str, n: int) -> list:
    """n colours from a matplotlib colormap: evenly spaced for a continuous one, in order for a qualitative one."""
    colormap = plt.get_cmap(cmap)
    if hasattr(colormap, "colors") and colormap.N <= 20:  # qualitative (tab10): its own colours, cycled
        return [colormap.colors[i % colormap.N] for i in range(n)]
    return [colormap(x) for x in np.linspace(0.0, 1.0, n + 2)[1:-1]]  # inner points: no near-white end


def _legend(ax) -> None:
    """Restyle the legend seaborn drew as this module's others (small, no frame, no title), keeping its handles."""
    import seaborn as sns

    sns.move_legend(ax, "best", title=None, fontsize=7, frameon=False)


def _grouped_bars(ax, heights, hue_order, colors) -> None:
    """Bars grouped by the rows of ``heights`` (a DataFrame: one row per group, one column per hue)."""
    width = 0.8 / len(hue_order)
    x = np.arange(len(heights))
    for j, (hue, color) in enumerate(zip(hue_order, colors)):
        ax.bar(x - 0.4 + (j + 0.5) * width, heights[hue].to_numpy(), width=width, color=color, label=hue)
    ax.set_xticks(x, heights.index)


def plot_max_softmax_curves(curve, n_classes: int | None = None, ax=None, reference=None):
    """E[max softmax] against sigma with 95% bands, one line per mu (or per K).

    Args:
        curve: the output of ``vlmcal.papers.dor.theory.max_softmax_curve``.
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
    palette = _colors("viridis", data[hue].nunique())
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
    _despine(ax)
    return ax


def plot_dispersion_mechanism(frame, axes=None):
    """Three panels: ATFD, logit spread and confidence against the text-feature noise scale.

    Args:
        frame: the output of ``vlmcal.papers.dor.theory.dispersion_mechanism``.
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
        ax.plot(frame["spread"], frame[column], marker="o", color="C0")
        ax.set(xlabel="class text-feature noise scale", ylabel=label)
        _despine(ax)
    return axes


OVER_CONFIDENT = "#d62728"  # red: mean confidence above accuracy
UNDER_CONFIDENT = "#1f77b4"  # blue: mean confidence below accuracy


def plot_reliability_diagram(data, ax=None, title: str | None = None):
    """Reliability diagram with the confidence histogram beneath it.

    Each non-empty bin is a grey bar up to its accuracy; the gap between accuracy and mean
    confidence (the bin's dot) is shaded red where the bin is over-confident (confidence
    above accuracy) and blue where it is under-confident. The diagonal is perfect
    calibration. Beneath, the number of samples per bin.

    Args:
        data: a ``vlmcal.metrics.ReliabilityData`` (from ``reliability_data`` or ``bin_statistics``).
        ax: matplotlib axes for the diagram; the histogram is attached beneath it. A new
            figure if None.
        title: axes title; by default the ECE, MCE and sample count.

    Returns:
        ``(diagram_axes, histogram_axes)``.
    """
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 4.6))
    hist_ax = make_axes_locatable(ax).append_axes("bottom", size="32%", pad=0.08, sharex=ax)
    lower, upper = data.edges[:-1], data.edges[1:]
    if data.n_bins == len(data.edges):  # torchmetrics' extra bin for exactly 1.0: draw it as a sliver at 1
        lower, upper = np.append(lower, 1.0), np.append(upper, 1.01)
    width, centre = upper - lower, (lower + upper) / 2
    full = data.count > 0
    acc, conf = data.accuracy, data.mean_confidence
    ax.bar(lower[full], acc[full], width=width[full], align="edge", color="0.82", edgecolor="0.45", lw=0.6, label="accuracy")
    for colour, mask, label in (
        (OVER_CONFIDENT, full & (conf > acc), "over-confident"),
        (UNDER_CONFIDENT, full & (conf < acc), "under-confident"),
    ):
        ax.bar(lower[mask], (conf - acc)[mask], bottom=acc[mask], width=width[mask], align="edge", color=colour, alpha=0.55, lw=0, label=label)
    ax.plot(centre[full], conf[full], "o", ms=3, color="k", label="mean confidence")
    ax.plot([0, 1], [0, 1], ls="--", color="0.3", lw=0.8)
    ax.set(xlim=(0, 1.01), ylim=(0, 1.01), ylabel="accuracy")
    ax.set_title(title if title is not None else f"ECE {data.ece:.3f}, MCE {data.mce:.3f}, N = {data.n}", fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    ax.tick_params(labelbottom=False)
    hist_ax.bar(lower, data.count, width=width, align="edge", color="0.55", edgecolor="white", lw=0.4)
    hist_ax.set(xlabel="confidence", ylabel="count")
    _despine(ax)
    _despine(hist_ax)
    return ax, hist_ax


# ----------------------------------------------------------------------------- the empirical study (C1-C6)


def _model_palette(models):
    """One colour per model; the supervised baseline in black."""
    colors = _colors("tab10", len(models))
    return {m: ("black" if m.startswith("supervised") else c) for m, c in zip(models, colors)}


def plot_ece_before_after(table, ax=None):
    """Grouped bars in the manner of ES Fig. 1: each model's ECE before and after TS, clean and under shift.

    Args:
        table: ``vlmcal.papers.es.ts_across_shifts`` output (several seeds allowed: bars show means).
        ax: matplotlib axes; a new figure if None.

    Returns:
        The axes.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.6))
    where = np.where(table["shift"] == "clean", "clean", "shifted (mean)")
    means = table.assign(where=where).groupby(["model", "where"], sort=False)[["ece_before", "ece_after"]].mean()
    heights = means.unstack("where")  # one row per model; columns (before/after, clean/shifted)
    heights.columns = [f"{'before' if ts == 'ece_before' else 'after'} TS, {w}" for ts, w in heights.columns]
    order = [c for c in ["before TS, clean", "after TS, clean", "before TS, shifted (mean)", "after TS, shifted (mean)"] if c in heights]
    colors = dict(zip(["before TS, clean", "after TS, clean", "before TS, shifted (mean)", "after TS, shifted (mean)"],
                      ["#f4a582", "#92c5de", "#ca0020", "#0571b0"]))
    _grouped_bars(ax, heights, order, [colors[c] for c in order])
    ax.set(xlabel="", ylabel="ECE")
    ax.legend(fontsize=7, frameon=False, ncols=2)
    ax.tick_params(axis="x", labelrotation=20)
    _despine(ax)
    return ax


def plot_label_shift(table, axes=None):
    """ECE with no TS, TS from other labels and TS from the target labels: one panel per transfer.

    Args:
        table: ``vlmcal.papers.es.label_shift`` output with a ``source`` column (several
            seeds allowed: bars show means).
        axes: one matplotlib axes per (source, target) pair; a new figure if None.

    Returns:
        The axes.
    """
    bars = {"ece_before": "none", "ece_source_ts": "T from other labels", "ece_target_ts": "T from target labels"}
    panels = list(dict.fromkeys(zip(table["source"], table["target"])))
    if axes is None:
        _, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 3.4), sharey=True, squeeze=False)
    axes = np.asarray(axes).reshape(-1)
    for ax, (source, target) in zip(axes, panels):
        cell = table[(table["source"] == source) & (table["target"] == target)]
        heights = cell.groupby("model", sort=False)[list(bars)].mean().rename(columns=bars)
        _grouped_bars(ax, heights, list(bars.values()), ["#ca0020", "#0571b0", "#92c5de"])
        ax.set(title=f"evaluated on: {source} -> {target}", xlabel="")
        ax.tick_params(axis="x", labelrotation=30)
        _despine(ax)
    axes[0].set(ylabel="ECE")
    axes[-1].legend(fontsize=7, frameon=False, title="calibration", title_fontsize=7)
    return axes


def plot_ece_by_severity(table, axes=None):
    """ECE against shift severity (0 = clean), averaged over shifts: before TS and after TS.

    Each line is a model's mean over seeds of its mean ECE over shifts; the band spans the
    seeds (their minimum to maximum; none with one seed). The supervised baseline is dashed.

    Args:
        table: ``vlmcal.papers.es.ts_across_shifts`` output, with a ``seed`` column when it
            holds several seeds.
        axes: two matplotlib axes; a new figure if None.

    Returns:
        The axes.
    """
    import seaborn as sns

    models = list(dict.fromkeys(table["model"]))
    seeds = ["seed"] if "seed" in table.columns else []
    curves = table.groupby(["model", "severity", *seeds], sort=False)[["ece_before", "ece_after"]].mean().reset_index()
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    dashes = {m: (4, 2) if m.startswith("supervised") else "" for m in models}
    for i, (ax, column, title) in enumerate(zip(axes, ["ece_before", "ece_after"], ["before TS", "after TS (T fitted on clean data)"])):
        sns.lineplot(data=curves, x="severity", y=column, hue="model", hue_order=models, palette=_model_palette(models),
                     style="model", style_order=models, dashes=dashes, estimator="mean", errorbar=("pi", 100),
                     marker="o", markersize=4, err_kws={"alpha": 0.15, "linewidth": 0}, legend=i == 0, ax=ax)
        ax.set(xlabel="severity (0 = clean)", ylabel="mean ECE over shifts", title=title)
        ax.set_xticks(sorted(curves["severity"].unique()))
        _despine(ax)
    _legend(axes[0])
    return axes


def plot_calibration_set_size(table, ax=None):
    """Post-TS ECE against calibration-set size: the mean over draws and a 10-90% band, per model.

    Args:
        table: ``vlmcal.papers.es.calibration_set_size`` output (one or more models; the draws
            of several seeds are pooled).
        ax: matplotlib axes; a new figure if None.

    Returns:
        The axes.
    """
    import seaborn as sns

    models = list(dict.fromkeys(table["model"]))
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    sns.lineplot(data=table, x="n", y="ece_after", hue="model", hue_order=models, palette=_model_palette(models),
                 estimator="mean", errorbar=("pi", 80), marker="o", markersize=4,
                 err_kws={"alpha": 0.15, "linewidth": 0}, ax=ax)
    ax.set(xscale="log", xlabel="calibration samples n", ylabel="ECE after TS", title="mean over draws, 10-90% band")
    _legend(ax)
    _despine(ax)
    return ax


def plot_confidence_vs_accuracy(points, confidence="confidence_after", ax=None):
    """Mean confidence against accuracy, one point per condition, with the identity line.

    Over the VLM points (rows of ``kind`` "VLM"; every row if there is no ``kind`` column),
    the least-squares line of accuracy on confidence, with a 95% bootstrap band (seaborn's
    ``regplot``, seeded): the line whose R^2 C5 tests (``vlmcal.papers.es.confidence_vs_accuracy``).

    Args:
        points: rows with columns ``model``, ``accuracy`` and ``confidence`` (and ``kind``).
        confidence: the confidence column to plot.
        ax: matplotlib axes; a new figure if None.

    Returns:
        The axes.
    """
    import seaborn as sns

    fitted = points[points["kind"] == "VLM"] if "kind" in points.columns else points
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 4.4))
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
    _despine(ax)
    return ax


def plot_top_predictions(images, probs, labels, class_names, k: int = 3, axes=None):
    """A few images, each above a bar chart of its top-k class probabilities (true class in green).

    Args:
        images: [M, 1 or 3, H, W] float images in [0, 1].
        probs: [M, C] probabilities.
        labels: [M] true labels.
        class_names: the C names.
        k: how many classes to show per image.
        axes: a [2, M] array of axes; a new figure if None.

    Returns:
        The axes.
    """
    import numpy as np

    m = len(images)
    if axes is None:
        _, axes = plt.subplots(2, m, figsize=(2.1 * m, 4.0), gridspec_kw={"height_ratios": [1.1, 1]})
    axes = np.asarray(axes).reshape(2, m)
    for j in range(m):
        img = images[j].detach().cpu().float()
        axes[0, j].imshow(img[0] if img.shape[0] == 1 else img.permute(1, 2, 0), cmap="gray", vmin=0, vmax=1)
        axes[0, j].set_axis_off()
        axes[0, j].set_title(f"true: {class_names[int(labels[j])]}", fontsize=8)
        top_p, top_c = probs[j].detach().cpu().float().topk(k)
        colors = ["#1a9641" if int(c) == int(labels[j]) else "#d7191c" if i == 0 else "#bababa" for i, c in enumerate(top_c)]
        axes[1, j].barh(range(k)[::-1], top_p.numpy(), color=colors)
        axes[1, j].set_yticks(range(k)[::-1], [class_names[int(c)] for c in top_c], fontsize=7)
        axes[1, j].set_xlim(0, 1)
        axes[1, j].tick_params(axis="x", labelsize=7)
        _despine(axes[1, j])
    return axes


def _annotated_heatmap(ax, values, class_names, fmt: str, cmap: str, cbar_label: str | None = None, **limits) -> None:
    """A [C, C] heat map with each cell's value written in it (dark cells in white) and a class name per row and column."""
    import seaborn as sns

    sns.heatmap(values, ax=ax, annot=True, fmt=fmt, annot_kws={"fontsize": 7}, cmap=cmap, square=False,
                xticklabels=list(class_names), yticklabels=list(class_names), linewidths=0.5, linecolor="white",
                cbar=cbar_label is not None, cbar_kws={"label": cbar_label} if cbar_label is not None else None, **limits)
    ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    ax.tick_params(axis="y", labelrotation=0, labelsize=7)


def plot_confusion_matrix(matrix, class_names, ax=None, normalize: bool = True):
    """A confusion matrix as a heat map (rows: true class, columns: predicted class).

    Args:
        matrix: [C, C] counts.
        class_names: the C names.
        ax: matplotlib axes; a new figure if None.
        normalize: show each row as shares of the true class.

    Returns:
        The axes.
    """
    m = np.asarray(matrix, dtype=float)  # [C, C]
    if normalize:
        m = m / np.clip(m.sum(axis=1, keepdims=True), 1, None)  # rows as shares; an empty row stays 0
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    _annotated_heatmap(ax, m, class_names, fmt=".2f" if normalize else ".0f", cmap="Blues", vmin=0)
    ax.set(xlabel="predicted", ylabel="true")
    return ax


def plot_text_similarity(similarity, class_names, ax=None):
    """Cosine similarity between the class text features as an annotated heat map.

    Args:
        similarity: [C, C] cosine similarities, e.g. ``text @ text.T`` of L2-normalised
            text features [C, D] (a tensor or an array).
        class_names: the C names.
        ax: matplotlib axes; a colour bar is attached beside it. A new figure if None.

    Returns:
        The axes.
    """
    sim = np.asarray(similarity.detach().cpu() if hasattr(similarity, "detach") else similarity, dtype=float)  # [C, C]
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    _annotated_heatmap(ax, sim, class_names, fmt=".2f", cmap="viridis", cbar_label="cosine similarity")
    return ax


def plot_corpus_samples(corpus, n: int = 18, seed: int | None = None, ncols: int = 6, axes=None, wrap: int = 24):
    """A grid of pretraining scenes, each titled with its caption and labelled with its style.

    Args:
        corpus: a ``vlmcal.standins.corpus.Corpus`` (``make_corpus``; a stand-in's is
            ``make_corpus(backbone.config.corpus)``).
        n: how many scenes to show.
        seed: None shows the first n scenes (the corpus is already in random order); an integer
            draws n distinct scenes with that seed.
        ncols: scenes per row of a new figure (ignored when ``axes`` is given).
        axes: at least n matplotlib axes (any shape); a new figure if None (with constrained
            layout, so that multi-line captions clear the row above). Axes beyond the n-th are hidden.
        wrap: wrap captions at this many characters per line.

    Returns:
        The axes, as a numpy array of the shape given (a new figure's: [rows, ncols]). Scene
        ``j`` is drawn on ``axes.flat[j]``: its title is the caption (wrapped), its x label the
        style and severity ("sketch, severity 4") ("plain" for an unstyled scene).

    Raises:
        ValueError: ``n`` is not a positive integer at most the corpus size, or fewer than n axes are given.
    """
    import textwrap

    import torch

    size = len(corpus)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= size:
        raise ValueError(f"Expected `n` to be an integer in 1..{size} (the corpus's scenes), but got {n!r}")
    if seed is None:
        picks = list(range(n))
    else:
        picks = torch.randperm(size, generator=torch.Generator().manual_seed(int(seed)))[:n].tolist()
    captions = corpus.captions_per_scene()
    titles = {i: textwrap.fill(captions[i], wrap) for i in picks}
    if axes is None:
        nrows = -(-n // ncols)  # ceil
        lines = max(t.count("\n") + 1 for t in titles.values())  # the tallest title sets every row's height
        _, axes = plt.subplots(nrows, ncols, figsize=(1.55 * ncols, (1.75 + 0.13 * lines) * nrows), squeeze=False, layout="constrained")
    axes = np.asarray(axes)
    if axes.size < n:
        raise ValueError(f"Expected at least n = {n} axes to draw on, but got {axes.size}")
    for ax, i in zip(axes.flat, picks):
        img = corpus.images[i].detach().cpu().float().numpy()  # [1, 28, 28]
        ax.imshow(img[0], cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.spines[:].set_visible(False)
        ax.set_title(titles[i], fontsize=6.5)
        style = corpus.styles[i]
        ax.set_xlabel(f"{style}, severity {int(corpus.severities[i])}" if style else "plain", fontsize=6.5, color="0.35" if not style else "#b35806")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return axes
