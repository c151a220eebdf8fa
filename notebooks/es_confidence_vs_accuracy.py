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
# 1. Every model's logits on the clean test set and on every shift and severity, each shift
#    labelled *covered* or *held out* by each model's training data.
# 2. One temperature per model, fitted on clean calibration data over all classes.
# 3. Per condition and label set (all, base, new): accuracy and mean confidence, before and after TS.
# 4. R², Spearman's ρ and a scatter against the identity line, covered and held-out shifts apart.
# 5. Verdict for C5.
#
# ## Prerequisites
# [C1–C3](es_ts_across_shifts.ipynb), which computes (and caches) the same logits.

# %% tags=["parameters"]
backbones = ["default", "default-wide", "default-mlp"]  # VLMs, classified zero-shot (three stand-ins: CNN, wide CNN, MLP)
supervised = "supervised"  # the supervised baseline: the stand-in on fashion-mnist, "timm:<model>" on ImageNet ("" for none)
dataset = "fashion-mnist"  # data-set spec: fashion-mnist, imagenet:/root, cifar10:/path, imagefolder:/path
seeds = [0, 1, 2]  # seeds of the calibration/evaluation split
n_bins = 15  # ECE bins, as in ES
device = ""  # "" picks CUDA when present, else CPU
cache_dir = ""  # "" uses $VLMCAL_CACHE_DIR or ~/.cache/vlmcal
shifts = ["all"]  # shift names from vlmcal.data.shifts, ["all"], or data-set specs ("imagenet-sketch:/root", "imagenet-c:/root")
severities = [1, 2, 3, 4, 5]
templates = "ensemble"  # prompts: CLIP's 80 templates ("ensemble"), "hard" or "dataset"
max_samples = 0  # evaluate on at most this many test images (0: all)
n_resamples = 200  # bootstrap resamples behind each verdict's interval

# %% [markdown]
# ## Imports

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown

from vlmcal.papers import es
from vlmcal.calibration import TemperatureScaling
from vlmcal.data.datasets import base_new_split
from vlmcal.papers.es.figures import plot_confidence_vs_accuracy
from vlmcal.papers.es import collect_runs
from vlmcal.papers.common.params import check_injected_parameters

check_injected_parameters(page="es_confidence_vs_accuracy")  # plain papermill only warns about an unknown -p name

settings = es.StudySettings(
    backbones=backbones, supervised=supervised, dataset=dataset, seeds=seeds, n_bins=n_bins, device=device,
    cache_dir=cache_dir, shifts=shifts, severities=severities, templates=templates, max_samples=max_samples,
    n_resamples=n_resamples,
)
es.backbone_note(settings, scope=f"{len(settings.conditions)} conditions")

# %% [markdown]
# ## 1. Logits on every condition

# %%
runs = collect_runs(settings)
labels = runs[0].labels
base, new = base_new_split([str(k) for k in range(runs[0].logits.shape[1])])

# %% [markdown]
# ### Covered and held-out shifts
# Each shifted condition is labelled, per model, **covered** (the model's training data shows
# this shift), **held out** (its training data is known and does not) or **unknown** (what its
# training data shows is not known, as for CLIP's); the note below is computed from
# `vlmcal.standins.corpus` and from each model's own record of what it was trained on. ES's shifts
# (ImageNet's and DomainNet's natural shifts and renditions) are of the kind web-scale
# pretraining data holds, so the paper's setting resembles the **covered** side: C5 is decided
# on the clean and covered points, and the held-out points are reported beside them.

# %%
Markdown(es.coverage_note(runs))

# %% [markdown]
# ## 2–3. Accuracy and mean confidence per condition and label set

# %%
seed0 = settings.seeds[0]
calibration_rows, evaluation_rows = es.split_calibration(labels, seed=seed0)
temperatures = {r.model: TemperatureScaling().fit(*r.subset(calibration_rows)).temperature_ for r in runs if r.shift == "clean"}
points = es.confidence_accuracy_points(runs, temperatures, evaluation_rows, {"all": base + new, "base": base, "new": new})
(points.groupby(["kind", "model", "coverage", "labels"], sort=False)[["accuracy", "confidence_before", "confidence_after"]]
 .mean().unstack("labels").round(3))

# %% [markdown]
# ## 4. Confidence against accuracy
# Each point is one model on one condition and label set. Left: raw confidence; right:
# after TS. On the identity line, confidence equals accuracy. One row of panels per side:
# the clean points with the shifts each model's training data covers (and every shift of a
# model of unknown coverage), then the clean points with the shifts it holds out. The
# supervised baseline saw no shift in training, so its shifted points are all held out.

# %%
panels = es.coverage_panels(points)
fig, axes = plt.subplots(len(panels), 2, figsize=(10, 4.6 * len(panels)), squeeze=False)
for row, panel in zip(axes, panels):
    plot_confidence_vs_accuracy(panel.rows, confidence="confidence_before", ax=row[0])
    plot_confidence_vs_accuracy(panel.rows, confidence="confidence_after", ax=row[1])
    for ax, when in zip(row, ("before TS", "after TS")):
        ax.set_title(f"{panel.title}:\n{when}", fontsize=9)
fig.tight_layout()

# %% [markdown]
# R² and Spearman's ρ per model and side (the clean points with that side's shifted points):

# %%
es.confidence_vs_accuracy_by_side(points).round(3)

# %% [markdown]
# ## 5. Verdict
# The verdict is decided by `vlmcal.papers.es.claims.c5_confidence_tracks_accuracy` from the VLMs'
# clean and covered points after TS, pooled, against the paper's own bars for R² and
# Spearman's ρ (rows of `vlmcal/papers/common/paper_values.csv`); the held-out points, with the clean
# ones, are a second result in its measured figures. The intervals are 95% bootstraps over the points.

# %%
c5 = es.claims.c5_confidence_tracks_accuracy(points, es.bootstrap_confidence_vs_accuracy_by_side(points, settings.n_resamples),
                                             settings.describe_models())
c5.record()
c5

# %% [markdown]
# ## Summary
# If confidence after TS tracks accuracy, the average confidence on an unlabelled data set
# is an estimate of the accuracy there. The scatter shows where it does and does not: the
# points far from the identity line are the conditions where the clean-fitted temperature
# no longer describes the model. The verdict concerns the shifts of the kind the paper
# tested, covered by pretraining; the held-out panel shows how far the estimate carries to
# shifts the models never saw.
#
# ## References
# - W. Tu et al. "An Empirical Study Into What Matters for Calibrating Vision-Language Models." ICML 2024.
