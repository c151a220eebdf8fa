"""Figures every page may draw, and the style helpers the papers' figure modules share. Every function takes the
result and an optional ``ax`` (or ``axes``; None: a new figure), draws on it and returns the axes, never changing
global settings. Seaborn (about a second to import) is imported only where needed."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["despine", "cmap_colors", "seaborn_legend", "grouped_bars", "OVER_CONFIDENT", "UNDER_CONFIDENT",
           "plot_reliability_diagram", "plot_top_predictions", "plot_confusion_matrix", "plot_text_similarity",
           "plot_corpus_samples"]


def despine(ax) -> None:
    """No top and right frame lines."""
    ax.spines[["top", "right"]].set_visible(False)


def cmap_colors(cmap: str, n: int) -> list:
    """n colours from a matplotlib colormap: evenly spaced for a continuous one, in order for a qualitative one."""
    colormap = plt.get_cmap(cmap)
    if hasattr(colormap, "colors") and colormap.N <= 20:  # qualitative (tab10): its own colours, cycled
        return [colormap.colors[i % colormap.N] for i in range(n)]
    return [colormap(x) for x in np.linspace(0.0, 1.0, n + 2)[1:-1]]  # inner points: no near-white end


def seaborn_legend(ax) -> None:
    """Restyle the legend seaborn drew as this module's others (small, no frame, no title), keeping its handles."""
    import seaborn as sns
    sns.move_legend(ax, "best", title=None, fontsize=7, frameon=False)


def grouped_bars(ax, heights, hue_order, colors) -> None:
    """Bars grouped by the rows of ``heights`` (a DataFrame: one row per group, one column per hue)."""
    width = 0.8 / len(hue_order)
    x = np.arange(len(heights))
    for j, (hue, color) in enumerate(zip(hue_order, colors)):
        ax.bar(x - 0.4 + (j + 0.5) * width, heights[hue].to_numpy(), width=width, color=color, label=hue)
    ax.set_xticks(x, heights.index)


OVER_CONFIDENT = "#d62728"  # red: mean confidence above accuracy
UNDER_CONFIDENT = "#1f77b4"  # blue: mean confidence below accuracy


def plot_reliability_diagram(data, ax=None, title: str | None = None):
    """Reliability diagram (accuracy bars, over-/under-confidence gaps red/blue) with the confidence histogram beneath,
    of ``data``, a ``vlmcal.metrics.ReliabilityData`` (from ``reliability_data`` or ``bin_statistics``); ``title``
    defaults to the ECE, MCE and sample count. Returns ``(diagram_axes, histogram_axes)``."""
    from mpl_toolkits.axes_grid1 import make_axes_locatable
    ax = plt.subplots(figsize=(4.2, 4.6))[1] if ax is None else ax
    hist_ax = make_axes_locatable(ax).append_axes("bottom", size="32%", pad=0.08, sharex=ax)
    lower, upper = data.edges[:-1], data.edges[1:]
    if data.n_bins == len(data.edges):  # torchmetrics' extra bin for exactly 1.0: draw it as a sliver at 1
        lower, upper = np.append(lower, 1.0), np.append(upper, 1.01)
    width, centre, full = upper - lower, (lower + upper) / 2, data.count > 0
    acc, conf = data.accuracy, data.mean_confidence
    ax.bar(lower[full], acc[full], width=width[full], align="edge", color="0.82", edgecolor="0.45", lw=0.6, label="accuracy")
    for colour, mask, label in ((OVER_CONFIDENT, full & (conf > acc), "over-confident"),
                                (UNDER_CONFIDENT, full & (conf < acc), "under-confident")):
        ax.bar(lower[mask], (conf - acc)[mask], bottom=acc[mask], width=width[mask], align="edge", color=colour, alpha=0.55, lw=0, label=label)
    ax.plot(centre[full], conf[full], "o", ms=3, color="k", label="mean confidence")
    ax.plot([0, 1], [0, 1], ls="--", color="0.3", lw=0.8)
    ax.set(xlim=(0, 1.01), ylim=(0, 1.01), ylabel="accuracy")
    ax.set_title(title if title is not None else f"ECE {data.ece:.3f}, MCE {data.mce:.3f}, N = {data.n}", fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    ax.tick_params(labelbottom=False)
    hist_ax.bar(lower, data.count, width=width, align="edge", color="0.55", edgecolor="white", lw=0.4)
    hist_ax.set(xlabel="confidence", ylabel="count")
    despine(ax)
    despine(hist_ax)
    return ax, hist_ax


# ----------------------------------------------------------------------------- the empirical study (C1-C6)
def plot_top_predictions(images, probs, labels, class_names, k: int = 3, axes=None):
    """A few images, each above a bar chart of its top-k class probabilities (true class in green). ``images``,
    ``probs``, ``labels``: [M, 1 or 3, H, W] float images in [0, 1], [M, C] probabilities, [M] true labels; ``axes``:
    a [2, M] array."""
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
        despine(axes[1, j])
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
    """A confusion matrix ([C, C] counts) as a heat map (rows: true class, columns: predicted class); ``normalize``
    shows each row as shares of the true class."""
    m = np.asarray(matrix, dtype=float)  # [C, C]
    if normalize:
        m = m / np.clip(m.sum(axis=1, keepdims=True), 1, None)  # rows as shares; an empty row stays 0
    ax = plt.subplots(figsize=(6, 5))[1] if ax is None else ax
    _annotated_heatmap(ax, m, class_names, fmt=".2f" if normalize else ".0f", cmap="Blues", vmin=0)
    ax.set(xlabel="predicted", ylabel="true")
    return ax


def plot_text_similarity(similarity, class_names, ax=None):
    """Cosine similarity between the class text features as an annotated heat map, with a colour bar beside.
    ``similarity``: [C, C], e.g. ``text @ text.T`` of L2-normalised text features (tensor or array)."""
    sim = np.asarray(similarity.detach().cpu() if hasattr(similarity, "detach") else similarity, dtype=float)  # [C, C]
    ax = plt.subplots(figsize=(6, 5))[1] if ax is None else ax
    _annotated_heatmap(ax, sim, class_names, fmt=".2f", cmap="viridis", cbar_label="cosine similarity")
    return ax


def plot_corpus_samples(corpus, n: int = 18, seed: int | None = None, ncols: int = 6, axes=None, wrap: int = 24):
    """A grid of pretraining scenes, each titled with its caption and labelled with its style.
    Args:
        corpus: a ``vlmcal.standins.corpus.Corpus`` (a stand-in's is ``make_corpus(backbone.config.corpus)``).
        seed: None shows the first n scenes (the corpus is in random order); an integer draws n with that seed.
        ncols: scenes per row of a new figure (ignored when ``axes`` is given).
        axes: at least n axes (any shape; those beyond the n-th are hidden).
    Returns:
        The axes as a numpy array (a new figure's: [rows, ncols]); scene ``j`` on ``axes.flat[j]``, its x label the
        style and severity ("sketch, severity 4", or "plain").
    Raises:
        ValueError: ``n`` is not a positive integer at most the corpus size, or fewer than n axes are given.
    """
    import textwrap
    import torch
    size = len(corpus)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= size:
        raise ValueError(f"Expected `n` to be an integer in 1..{size} (the corpus's scenes), but got {n!r}")
    picks = (list(range(n)) if seed is None
             else torch.randperm(size, generator=torch.Generator().manual_seed(int(seed)))[:n].tolist())
    captions = corpus.captions_per_scene()
    titles = {i: textwrap.fill(captions[i], wrap) for i in picks}
    if axes is None:
        nrows = -(-n // ncols)  # ceil
        lines = max(t.count("\n") + 1 for t in titles.values())  # the tallest title sets every row's height
        _, axes = plt.subplots(nrows, ncols, figsize=(1.55 * ncols, (1.75 + 0.13 * lines) * nrows), squeeze=False,
                               layout="constrained")
    axes = np.asarray(axes)
    if axes.size < n:
        raise ValueError(f"Expected at least n = {n} axes to draw on, but got {axes.size}")
    for ax, i in zip(axes.flat, picks):
        ax.imshow(corpus.images[i].detach().cpu().float().numpy()[0], cmap="gray", vmin=0, vmax=1)  # image [1, 28, 28]
        ax.set(xticks=[], yticks=[])
        ax.spines[:].set_visible(False)
        ax.set_title(titles[i], fontsize=6.5)
        style = corpus.styles[i]
        ax.set_xlabel(f"{style}, severity {int(corpus.severities[i])}" if style else "plain", fontsize=6.5, color="0.35" if not style else "#b35806")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return axes
