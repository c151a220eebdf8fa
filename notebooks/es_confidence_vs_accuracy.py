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
# # C5 — Does calibrated confidence track accuracy?
#
# ```{admonition} Backbone
# :class: important
# The figures on this page come from vlmcal's **offline stand-in VLMs** (a frozen
# all-MiniLM-L6-v2 text tower with small image towers trained on Fashion-MNIST, with CLIP's
# logit scale of 100) and a **supervised CNN baseline**, on Fashion-MNIST and its corrupted
# copies. They are not CLIP's numbers. The list of models is printed below; to run this page
# with CLIP, see the last section of [Re-running a page](../rerun.md).
# ```
#
# ## Overview
# ES (Tu et al., ICML 2024) find that, after TS, a VLM's mean confidence predicts its
# accuracy across distribution shifts and label changes (R² and Spearman's ρ above 0.90):
# confidence can then serve to estimate accuracy on unlabelled data.
#
# 1. Every model's logits on the clean test set and on every shift and severity.
# 2. One temperature per model, fitted on clean calibration data over all classes.
# 3. Per condition and label set (all, base, new): accuracy and mean confidence, before and after TS.
# 4. R², Spearman's ρ and a scatter against the identity line.
# 5. Verdict for C5.
#
# ## Prerequisites
# [C1–C3](es_ts_across_shifts.ipynb), which computes (and caches) the same logits.

# %% tags=["parameters"]
backbones = ["default", "default-aug", "default-mlp"]  # VLMs, classified zero-shot (three stand-ins: CNN, augmented CNN, MLP)
supervised = "supervised"  # the supervised baseline ("" for none; used on fashion-mnist only)
dataset = "fashion-mnist"  # data-set spec: fashion-mnist, cifar10:/path, imagefolder:/path
seeds = [0, 1, 2]  # seeds of the calibration/evaluation split
n_bins = 15  # ECE bins, as in ES
device = ""  # "" picks CUDA when present, else CPU
cache_dir = ""  # "" uses $VLMCAL_CACHE_DIR or ~/.cache/vlmcal
shifts = ["all"]  # shift names from vlmcal.shifts, or ["all"]
severities = [1, 2, 3, 4, 5]
templates = "ensemble"  # prompts: CLIP's 80 templates ("ensemble"), "hard" or "dataset"
max_samples = 0  # evaluate on at most this many test images (0: all)
n_resamples = 200  # bootstrap resamples behind each verdict's interval

# %% [markdown]
# ## Imports

# %%
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from vlmcal import empirical, metrics
from vlmcal.calibration import TemperatureScaling
from vlmcal.datasets import base_new_split
from vlmcal.paper_values import paper_value
from vlmcal.plotting import plot_confidence_vs_accuracy
from vlmcal.predictions import collect_runs
from vlmcal.verdict import Verdict

settings = empirical.StudySettings(
    backbones=backbones, supervised=supervised, dataset=dataset, seeds=seeds, n_bins=n_bins, device=device,
    cache_dir=cache_dir, shifts=shifts, severities=severities, templates=templates, max_samples=max_samples,
    n_resamples=n_resamples,
)
display(Markdown(f"**Models on this page:** {settings.describe_models()} on `{settings.dataset}`, {len(settings.conditions)} conditions."))

# %% [markdown]
# ## 1. Logits on every condition

# %%
runs = collect_runs(settings)
labels = runs[0].labels
base, new = base_new_split([str(k) for k in range(runs[0].logits.shape[1])])

# %% [markdown]
# ## 2–3. Accuracy and mean confidence per condition and label set

# %%
seed0 = settings.seeds[0]
calibration_rows, evaluation_rows = empirical.split_calibration(labels, seed=seed0)
temperatures = {r.model: TemperatureScaling().fit(*r.subset(calibration_rows)).temperature_ for r in runs if r.shift == "clean"}
points = empirical.confidence_accuracy_points(runs, temperatures, evaluation_rows, {"all": base + new, "base": base, "new": new})
points.groupby(["kind", "model", "labels"], sort=False)[["accuracy", "confidence_before", "confidence_after"]].mean().round(3)

# %% [markdown]
# ## 4. Confidence against accuracy
# Each point is one model on one condition and label set. Left: raw confidence; right:
# after TS. On the identity line, confidence equals accuracy.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
plot_confidence_vs_accuracy(points, confidence="confidence_before", ax=axes[0])
plot_confidence_vs_accuracy(points, confidence="confidence_after", ax=axes[1])
fig.tight_layout()

# %%
stats_rows = []
for (kind, model), g in points.groupby(["kind", "model"], sort=False):
    for column in ("confidence_before", "confidence_after"):
        stats_rows.append({"kind": kind, "model": model, "confidence": column, **empirical.confidence_vs_accuracy(g, confidence=column)})
pd.DataFrame(stats_rows).round(3)

# %% [markdown]
# ## 5. Verdict
# **C5** holds if, pooling every VLM's points after TS, both R² (of the least-squares line)
# and Spearman's ρ exceed 0.90 (`CORRELATION_BAR`). The intervals are 95% bootstraps over
# the points.

# %%
vlm_points = points[points["kind"] == "VLM"].reset_index(drop=True)
pooled = empirical.confidence_vs_accuracy(vlm_points)
r2_ci = metrics.bootstrap_rows(
    lambda pick: empirical.confidence_vs_accuracy(vlm_points.iloc[pick.numpy()])["r2"], len(vlm_points), settings.n_resamples)
rho_ci = metrics.bootstrap_rows(
    lambda pick: empirical.confidence_vs_accuracy(vlm_points.iloc[pick.numpy()])["spearman"], len(vlm_points), settings.n_resamples)
holds = bool(pooled["r2"] > empirical.CORRELATION_BAR and pooled["spearman"] > empirical.CORRELATION_BAR)
c5 = Verdict(
    claim="C5",
    statement="Calibrated confidence tracks accuracy across shifts and label sets",
    paper_figure=f"{paper_value('c5_r2').describe()}; {paper_value('c5_spearman').describe()}",
    measured=f"pooled over {len(vlm_points)} VLM points after TS: R^2 = {pooled['r2']:.3f}, Spearman rho = {pooled['spearman']:.3f}",
    interval=f"95% CI: R^2 [{r2_ci.lower:.3f}, {r2_ci.upper:.3f}], rho [{rho_ci.lower:.3f}, {rho_ci.upper:.3f}]",
    holds=holds,
    backbone=settings.describe_models(),
    why="" if holds else (
        f"mean confidence after TS overstates accuracy by {float((vlm_points['confidence_after'] - vlm_points['accuracy']).mean()):+.3f} on average, "
        f"most where accuracy collapses (the points with accuracy below 0.3 are over-confident by "
        f"{float((vlm_points.loc[vlm_points['accuracy'] < 0.3, 'confidence_after'] - vlm_points.loc[vlm_points['accuracy'] < 0.3, 'accuracy']).mean()):+.3f})"),
)
c5.record()
c5

# %% [markdown]
# ## Summary
# If confidence after TS tracks accuracy, the average confidence on an unlabelled data set
# is an estimate of the accuracy there. The scatter shows where it does and does not: the
# points far from the identity line are the conditions where the clean-fitted temperature
# no longer describes the model.
#
# ## References
# - W. Tu et al. "An Empirical Study Into What Matters for Calibrating Vision-Language Models." ICML 2024.
