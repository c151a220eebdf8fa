# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Calibration 101
#
# ```{admonition} Backbone
# :class: note
# Sections 1–4 use the seminar's worked example: five images of cats and the confidences
# of two hypothetical models, as listed in the project's claims file; no model made them.
# Section 5 repeats the analysis on real predictions: the zero-shot predictions of vlmcal's
# offline stand-in backbone (named in the parameters; `default` unless changed) on the
# Fashion-MNIST test set. Those are the stand-in's numbers, not CLIP's.
# ```
#
# ## Overview
# Every claim in this book is a statement about calibration error. This page sets out what
# the metrics measure, how the papers' conventions differ, and how temperature scaling
# works, all computed by `vlmcal`.
#
# 1. The seminar's two models: same accuracy, different confidence.
# 2. What each metric measures, and where they disagree.
# 3. Binning conventions of the papers, and their effect.
# 4. Temperature scaling: NLL as a function of T, the diagram before and after.
# 5. The same on real predictions: a stand-in VLM's zero-shot predictions on Fashion-MNIST.
#
# ## Prerequisites
# Softmax and the zero-shot pipeline (the [introduction](../intro.md)). Runs in about
# 30 seconds on 2 CPU cores (most of it the bootstrap).

# %% tags=["parameters"]
n_bins = 15  # ES's choice; C-TPT uses 20 and the DOR code base 10 (Section 3)
n_resamples = 2000  # bootstrap resamples for the intervals in Section 2
seed = 0  # seed of the bootstrap
temperature_grid = [0.25, 8.0, 200]  # smallest T, largest T, number of points for the NLL curve
backbone = "default"  # the model of Section 5 (a backbone name; see the zero-shot chapter)
templates = "ensemble"  # its prompts: CLIP's 80 templates ("ensemble"), "hard" or "dataset"
device = ""  # "" picks CUDA when present, else CPU
cache_dir = ""  # "" uses $VLMCAL_CACHE_DIR or ~/.cache/vlmcal

# %% [markdown]
# ## Imports

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from vlmcal import metrics
from vlmcal.calibration import TemperatureScaling
from vlmcal.papers.common.figures import plot_reliability_diagram
from vlmcal.papers import es
from vlmcal.papers.es import Calibration101Settings
from vlmcal.papers.es import predict
from vlmcal.papers.common.params import check_injected_parameters

check_injected_parameters(page="calibration_101")  # plain papermill only warns about an unknown -p name

settings = Calibration101Settings(
    n_bins=n_bins, n_resamples=n_resamples, seed=seed, temperature_grid=temperature_grid, backbone=backbone,
    templates=templates, device=device, cache_dir=cache_dir,
)
n_bins, n_resamples, seed, temperature_grid = (  # the checked values, lists parsed
    settings.n_bins, settings.n_resamples, settings.seed, settings.temperature_grid)

# %% [markdown]
# ## 1. The seminar's two models
# Five images, all of cats. Both models predict *cat, cat, dog, cat, cat*: four right, one
# wrong, an accuracy of 80%. They differ only in how sure they are. With two classes the
# confidence in the predicted class fixes the whole probability vector, so the five
# predictions of each model are a $5 \times 2$ array of probabilities (columns: cat, dog).

# %%
seminar = {
    "Model 1": [0.75, 0.80, 0.60, 0.80, 0.99],
    "Model 2": [0.98, 0.97, 0.95, 0.95, 0.99],
}
predicted = np.array([0, 0, 1, 0, 0])  # 0 = cat, 1 = dog
labels = np.zeros(5, dtype=np.int64)  # every image is a cat
probs = {}
for name, confidence in seminar.items():
    conf = np.array(confidence)[:, None]  # [5, 1]
    probs[name] = np.where(predicted[:, None] == np.arange(2), conf, 1.0 - conf)  # [5, 2]

summary = pd.DataFrame(
    {
        name: {
            "accuracy": metrics.accuracy(p, labels),
            "mean confidence": metrics.mean_confidence(p, labels),
            "gap (confidence - accuracy)": metrics.confidence_gap(p, labels),
        }
        for name, p in probs.items()
    }
)
summary.round(3)

# %% [markdown]
# Model 1's mean confidence is close to its accuracy; Model 2 claims about 97% and is
# right 80% of the time: over-confident. The signed gap says which way a model errs. The
# reliability diagrams put each prediction in a confidence bin and draw, per bin, the
# accuracy (grey) against the mean confidence (dot); red marks over-confident bins, blue
# under-confident ones, and the histogram beneath counts the predictions per bin.

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 4.6))
for ax, (name, p) in zip(axes, probs.items()):
    data = metrics.reliability_data(p, labels, n_bins=n_bins)
    plot_reliability_diagram(data, ax=ax, title=f"{name}: ECE {data.ece:.3f} ({n_bins} bins)")
fig.tight_layout()

# %% [markdown]
# ## 2. What each metric measures, and where they disagree
# - **ECE** (expected calibration error): sort the predictions into equal-width confidence
#   bins; ECE is the average over bins of |accuracy − mean confidence|, weighted by the
#   share of predictions in the bin.
# - **MCE** (maximum calibration error): the worst bin's gap, however few predictions it holds.
# - **Adaptive ECE**: ECE with equal-mass bins (each holds the same number of predictions),
#   so that no bin is nearly empty where confidences crowd together, as CLIP's do near 1.
# - **Classwise ECE**: the ECE of every class's probability, not only the top one, averaged
#   over classes.
# - **Brier score**: the mean squared distance between the probability vector and the
#   one-hot label. It rewards accuracy and calibration together.
# - **NLL** (negative log-likelihood): the mean of $-\log p_{\text{label}}$; one confident
#   mistake costs a lot. Temperature scaling minimises it.
# - **Smooth ECE** (Błasiok and Nakkiran): ECE with the hard bins replaced by a Gaussian
#   kernel whose width is chosen by the data, so that no bin count has to be chosen.
#
# The table computes each of them for both models, with a 95% percentile bootstrap interval
# for the ECE.

# %%
rows = {}
for name, p in probs.items():
    interval = metrics.bootstrap_ci(metrics.ece, p, labels, n_resamples=n_resamples, seed=seed, n_bins=n_bins)
    rows[name] = {
        f"ECE ({n_bins} bins)": metrics.ece(p, labels, n_bins=n_bins),
        "ECE 95% CI low": interval.lower,
        "ECE 95% CI high": interval.upper,
        "ECE (1 bin)": metrics.ece(p, labels, n_bins=1),
        f"MCE ({n_bins} bins)": metrics.mce(p, labels, n_bins=n_bins),
        "adaptive ECE (5 bins)": metrics.adaptive_ece(p, labels, n_bins=5),
        f"classwise ECE ({n_bins} bins)": metrics.classwise_ece(p, labels, n_bins=n_bins),
        "Brier": metrics.brier_score(p, labels),
        "NLL": metrics.nll(p, labels),
        "smooth ECE": metrics.smooth_ece(p, labels),
    }
table = pd.DataFrame(rows)
table.round(3)

# %%
ece_1, ece_2 = table.loc[f"ECE ({n_bins} bins)"]
gap_1, gap_2 = summary.loc["gap (confidence - accuracy)"]
print(f"Binned ECE ({n_bins} bins): Model 1 {ece_1:.3f}, Model 2 {ece_2:.3f}")
print(f"|confidence - accuracy| over all five: Model 1 {abs(gap_1):.3f}, Model 2 {abs(gap_2):.3f}")
print(f"Binned ECE ranks {'Model 1' if ece_1 > ece_2 else 'Model 2'} as the worse calibrated of the two.")

# %% [markdown]
# The metrics disagree here, and the disagreement is instructive. Over all five images,
# Model 1's confidence is within about one point of its accuracy, yet its binned ECE
# is *larger* than Model 2's. With five predictions, Model 1's one mistake (made with 60%
# confidence) sits alone in its bin, where the accuracy is 0 and the confidence 0.6, while
# its correct predictions sit in bins where the accuracy is 1. Binned ECE measures a gap
# *within each bin*, and a bin of one prediction always has a gap of at least
# $\min(c, 1 - c)$. Model 2's five predictions share one bin, where its gap is the global
# one. The bootstrap intervals, several tenths wide, show how little five predictions
# can say. With one bin, ECE is the global gap, and the seminar's reading
# returns.
#
# The proper scores (Brier, NLL) see both accuracy and confidence. Model 2's mistake is
# made with 95% confidence, which NLL punishes with $-\log 0.05 \approx 3$, so both scores
# prefer Model 1. ECE-type metrics need many predictions per bin before they mean much;
# the pages that follow use thousands.

# %% [markdown]
# ## 3. Binning conventions of the papers
# The papers bin differently, and a confidence that falls exactly on a bin edge belongs to
# different bins under different rules. `vlmcal` takes both choices as arguments:
# `n_bins`, and `convention` with
# `"right"` (bins $(\text{lower}, \text{upper}]$, 0 in the first bin: ES and C-TPT),
# `"left"` ($[\text{lower}, \text{upper})$, 1 in the last bin: numpy and netcal) and
# `"torchmetrics"` ($[\text{lower}, \text{upper})$, with a confidence of exactly 1.0 in an
# extra bin of its own, its issue #3510). The seminar's confidences 0.6 and 0.8 lie on
# edges for 10, 15 and 20 bins.

# %%
conventions = [
    ("ES (Tu et al., 2024)", 15, "right"),
    ("C-TPT (Yoon et al., 2024)", 20, "right"),
    ("C-TPT's 20 bins, [lower, upper)", 20, "left"),
    ("DOR code base (10 bins)", 10, "right"),
    ("netcal default", 10, "left"),
    ("torchmetrics default", 15, "torchmetrics"),
]
effect = pd.DataFrame(
    [
        {
            "setting": label,
            "bins": b,
            "convention": rule,
            **{f"ECE {name}": metrics.ece(p, labels, n_bins=b, convention=rule) for name, p in probs.items()},
            **{f"MCE {name}": metrics.mce(p, labels, n_bins=b, convention=rule) for name, p in probs.items()},
        }
        for label, b, rule in conventions
    ]
).set_index("setting")
effect.round(4)

# %% [markdown]
# Model 1's figures do not move: its edge confidences (0.6 and 0.8) fall between bins
# whose predictions are all wrong or all right, and such bins add up to the same sum
# whichever side an edge prediction joins. Model 2's do move, with the rule as much as with
# the number of bins: with 20 bins, 0.95 is the edge $19/20$. Under C-TPT's
# $(\text{lower}, \text{upper}]$ its two 0.95s, one of them the mistake, form a bin of their
# own, $(0.90, 0.95]$, with a gap of 0.45; under $[\text{lower}, \text{upper})$ they join
# the other three in $[0.95, 1]$ and the ECE is the global gap again. Confidences exactly
# on an edge are rare in float64 but common in float32 for the sharp softmax of CLIP,
# where many top-label confidences round to exactly 1.0, the case where torchmetrics
# differs from the others. Section 5 shows the same table on ten thousand real predictions.

# %% [markdown]
# ## 4. Temperature scaling
# Temperature scaling (Guo et al., 2017) divides every logit by one number $T > 0$ before
# the softmax: $p = \operatorname{softmax}(z / T)$. $T > 1$ flattens the probabilities
# (for an over-confident model), $T < 1$ sharpens them, and the predicted class never
# changes, so accuracy is untouched. $T$ is fitted by minimising the NLL on labelled
# data; `vlmcal.calibration.TemperatureScaling` searches $\log T$ on a bounded interval,
# so $T$ is positive by construction. For CLIP, whose logits are cosine similarities times
# a logit scale of 100, dividing by $T$ replaces that scale by $100 / T$.
#
# With two classes the logits are fixed by the probabilities up to a shift, which the
# softmax ignores: $z = \log p$. The curve below is Model 2's NLL on its five predictions
# as a function of $T$; the fit is made on the same five, so it illustrates the mechanics,
# not a calibration one could trust.

# %%
logits_2 = np.log(probs["Model 2"])  # [5, 2]; softmax(log p) = p
ts = TemperatureScaling().fit(logits_2, labels)
grid = np.geomspace(*temperature_grid)
nll_curve = [metrics.nll(logits_2 / t, labels, inputs="logits") for t in grid]

fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot(grid, nll_curve, color="k")
ax.axvline(1.0, color="0.5", ls=":", lw=1, label="T = 1 (as the model is)")
ax.axvline(ts.temperature_, color="C3", lw=1, label=f"fitted T = {ts.temperature_:.2f}")
ax.set(xscale="log", xlabel="temperature T", ylabel="NLL on the five images", title="Model 2")
ax.legend(fontsize=7, frameon=False)
fig.tight_layout()
print(f"NLL at T = 1: {ts.nll_before_:.3f}; at T = {ts.temperature_:.3f}: {ts.nll_after_:.3f}")

# %%
calibrated = ts.predict_proba(logits_2)  # [5, 2]
fig, axes = plt.subplots(1, 2, figsize=(9, 4.6))
for ax, (title, p) in zip(axes, [("Model 2, before", probs["Model 2"]), (f"after TS (T = {ts.temperature_:.2f})", calibrated)]):
    data = metrics.reliability_data(p, labels, n_bins=n_bins)
    plot_reliability_diagram(data, ax=ax, title=f"{title}: ECE {data.ece:.3f}")
fig.tight_layout()
pd.DataFrame(
    {
        "before": [metrics.accuracy(probs["Model 2"], labels), metrics.mean_confidence(probs["Model 2"], labels), metrics.ece(probs["Model 2"], labels, n_bins=n_bins)],
        "after": [metrics.accuracy(calibrated, labels), metrics.mean_confidence(calibrated, labels), metrics.ece(calibrated, labels, n_bins=n_bins)],
    },
    index=["accuracy", "mean confidence", f"ECE ({n_bins} bins)"],
).round(3)

# %%
before, after = metrics.ece(probs["Model 2"], labels, n_bins=n_bins), metrics.ece(calibrated, labels, n_bins=n_bins)
print(f"NLL {ts.nll_before_:.3f} -> {ts.nll_after_:.3f}; mean confidence - accuracy "
      f"{metrics.confidence_gap(probs['Model 2'], labels):+.3f} -> {metrics.confidence_gap(calibrated, labels):+.3f}; "
      f"binned ECE ({n_bins} bins) {before:.3f} -> {after:.3f} ({'up' if after > before else 'down'})")

# %% [markdown]
# The fitted temperature lowers Model 2's confidences towards its accuracy, and the accuracy
# stays at 80%. What it minimises is NLL, not the binned ECE: on five predictions the
# softened confidences spread over several bins, and Section 2's small-sample effect can
# move the binned ECE either way. With so few predictions the fitted $T$ is itself
# uncertain too; the ES paper's claim
# that a few dozen labelled samples suffice (claim C6) is tested on a model in its own
# chapter.
#
# ## 5. On real predictions
# The same measurements on ten thousand predictions: the zero-shot predictions of the
# backbone named in the parameters on the Fashion-MNIST test set. The test set is split in
# two halves, stratified by class: the temperature is fitted on one and everything is
# measured on the other.

# %%
run = predict(backbone, "fashion-mnist", templates=templates, device=settings.device, cache_dir=settings.cache_dir)
calibration_rows, evaluation_rows = es.split_calibration(run.labels, seed=seed)
cal_logits, cal_labels = run.subset(calibration_rows)
ev_logits, ev_labels = run.subset(evaluation_rows)
print(f"backbone {backbone}: {len(cal_labels)} calibration and {len(ev_labels)} evaluation predictions, "
      f"{ev_logits.shape[1]} classes")

# %% [markdown]
# Every metric of Section 2, with a 95% bootstrap interval:

# %%
real_metrics = {
    "accuracy": metrics.accuracy, "mean confidence": metrics.mean_confidence, "signed gap": metrics.confidence_gap,
    f"ECE ({n_bins} bins)": lambda p, y, **k: metrics.ece(p, y, n_bins=n_bins, **k),
    f"MCE ({n_bins} bins)": lambda p, y, **k: metrics.mce(p, y, n_bins=n_bins, **k),
    "adaptive ECE": lambda p, y, **k: metrics.adaptive_ece(p, y, n_bins=n_bins, **k),
    "classwise ECE": lambda p, y, **k: metrics.classwise_ece(p, y, n_bins=n_bins, **k),
    "smooth ECE": metrics.smooth_ece, "Brier": metrics.brier_score, "NLL": metrics.nll,
}
rows = []
for name, fn in real_metrics.items():
    r = metrics.bootstrap_ci(fn, ev_logits, ev_labels, n_resamples=min(n_resamples, 200), seed=seed, inputs="logits")
    rows.append({"metric": name, "value": r.estimate, "95% CI low": r.lower, "95% CI high": r.upper})
pd.DataFrame(rows).set_index("metric").round(4)

# %% [markdown]
# The papers' binning conventions on these predictions:

# %%
pd.DataFrame(
    [{"setting": label, "bins": b, "convention": rule,
      "ECE": metrics.ece(ev_logits, ev_labels, n_bins=b, convention=rule, inputs="logits"),
      "MCE": metrics.mce(ev_logits, ev_labels, n_bins=b, convention=rule, inputs="logits")}
     for label, b, rule in conventions]
).set_index("setting").round(4)

# %% [markdown]
# Temperature scaling, fitted on the calibration half: the NLL on that half as a function of
# $T$, then the evaluation half's reliability diagram before and after.

# %%
real_ts = TemperatureScaling().fit(cal_logits, cal_labels)
grid = np.geomspace(*temperature_grid)
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot(grid, [metrics.nll(cal_logits / t, cal_labels, inputs="logits") for t in grid], color="k")
ax.axvline(1.0, color="0.5", ls=":", lw=1, label="T = 1 (as the model is)")
ax.axvline(real_ts.temperature_, color="C3", lw=1, label=f"fitted T = {real_ts.temperature_:.2f}")
ax.set(xscale="log", xlabel="temperature T", ylabel="NLL (calibration half)", title=backbone)
ax.legend(fontsize=7, frameon=False)
fig.tight_layout()

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 4.6))
for ax, (title, z) in zip(axes, [("before", ev_logits), (f"after TS (T = {real_ts.temperature_:.2f})", real_ts.transform(ev_logits))]):
    data = metrics.reliability_data(z, ev_labels, n_bins=n_bins, inputs="logits")
    plot_reliability_diagram(data, ax=ax, title=f"{backbone}, {title}: ECE {data.ece:.3f}")
fig.tight_layout()
after_logits = real_ts.transform(ev_logits)
pd.DataFrame(
    {"before": [metrics.accuracy(ev_logits, ev_labels, inputs="logits"), metrics.mean_confidence(ev_logits, ev_labels, inputs="logits"),
                metrics.ece(ev_logits, ev_labels, n_bins=n_bins, inputs="logits"), metrics.nll(ev_logits, ev_labels, inputs="logits")],
     "after": [metrics.accuracy(after_logits, ev_labels, inputs="logits"), metrics.mean_confidence(after_logits, ev_labels, inputs="logits"),
               metrics.ece(after_logits, ev_labels, n_bins=n_bins, inputs="logits"), metrics.nll(after_logits, ev_labels, inputs="logits")]},
    index=["accuracy", "mean confidence", f"ECE ({n_bins} bins)", "NLL"],
).round(4)

# %% [markdown]
# A fitted $T$ below 1 means the model was *under*-confident on clean data and TS sharpens
# its probabilities; above 1, over-confident and TS softens them. Which one the stand-in
# is, and how that compares with CLIP, is the subject of the ES chapters.
#
# ## Summary
# Calibration compares confidence with accuracy. The signed gap says which way a model
# errs; binned ECE averages the gap within confidence bins and needs many predictions per
# bin (on five, it can rank a nearly calibrated model below an over-confident one); MCE
# reports the worst bin; adaptive, classwise and smooth ECE change how bins are made or
# replace them; Brier and NLL score accuracy and confidence together. The papers bin with
# 15, 20 or 10 bins, and differ on which bin a confidence on an edge joins; `vlmcal` makes
# both choices explicit arguments. Temperature scaling fits one number that rescales the
# logits; it can only change confidence, never the prediction.
#
# ## References
# - C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger. "On Calibration of Modern Neural
#   Networks." ICML 2017 (ECE, temperature and vector scaling).
# - W. Tu, W. Deng, D. Campbell, S. Gould, T. Gedeon. "An Empirical Study Into What Matters
#   for Calibrating Vision-Language Models." ICML 2024 (15 bins).
# - H. S. Yoon et al. "C-TPT: Calibrated Test-Time Prompt Tuning for Vision-Language
#   Models via Text Feature Dispersion." ICLR 2024 (20 bins).
# - S. Wang, Y. Li, H. Wei. "Understanding and Mitigating Miscalibration in Prompt Tuning
#   for Vision-Language Models." ICML 2025.
# - J. Błasiok, P. Nakkiran. "Smooth ECE: Principled Reliability Diagrams via Kernel
#   Smoothing." ICLR 2024 (and the `relplot` package).
# - M. Kull et al. "Beyond Temperature Scaling: Obtaining Well-Calibrated Multiclass
#   Probabilities with Dirichlet Calibration." NeurIPS 2019 (classwise ECE).
# - J. Nixon et al. "Measuring Calibration in Deep Learning." CVPR Workshops 2019 (adaptive
#   binning).
# - B. Zadrozny, C. Elkan. "Obtaining Calibrated Probability Estimates from Decision Trees
#   and Naive Bayesian Classifiers." ICML 2001 (histogram binning).
