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
# *Which models made this page's figures depends on its parameters: the **Backbone** box
# under Imports names them, written from the run's own settings. To run this page with CLIP,
# see the last section of [Re-running a page](../rerun.md).*
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
shifts = ["all"]  # shift names from vlmcal.data.shifts, or ["all"]
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

from vlmcal import claims, study
from vlmcal.calibration import TemperatureScaling
from vlmcal.data.datasets import base_new_split
from vlmcal.plotting import plot_confidence_vs_accuracy
from vlmcal.study import collect_runs

settings = study.StudySettings(
    backbones=backbones, supervised=supervised, dataset=dataset, seeds=seeds, n_bins=n_bins, device=device,
    cache_dir=cache_dir, shifts=shifts, severities=severities, templates=templates, max_samples=max_samples,
    n_resamples=n_resamples,
)
claims.backbone_note(settings, scope=f"{len(settings.conditions)} conditions")

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
calibration_rows, evaluation_rows = study.split_calibration(labels, seed=seed0)
temperatures = {r.model: TemperatureScaling().fit(*r.subset(calibration_rows)).temperature_ for r in runs if r.shift == "clean"}
points = study.confidence_accuracy_points(runs, temperatures, evaluation_rows, {"all": base + new, "base": base, "new": new})
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
        stats_rows.append({"kind": kind, "model": model, "confidence": column, **study.confidence_vs_accuracy(g, confidence=column)})
pd.DataFrame(stats_rows).round(3)

# %% [markdown]
# ## 5. Verdict
# The verdict is decided by `vlmcal.claims.es.c5_confidence_tracks_accuracy` from every VLM's
# points after TS, pooled, against the paper's own bars for R² and Spearman's ρ (rows of
# `vlmcal/data/paper_values.csv`). The intervals are 95% bootstraps over the points.

# %%
c5 = claims.es.c5_confidence_tracks_accuracy(points, study.bootstrap_confidence_vs_accuracy(points, settings.n_resamples),
                                             settings.describe_models())
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
