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
# # C6 — How many samples does temperature scaling need?
#
# *Which models made this page's figures depends on its parameters: the **Backbone** box
# under Imports names them, written from the run's own settings. To run this page with CLIP,
# see the last section of [Re-running a page](../rerun.md).*
#
# ## Overview
# ES (Tu et al., ICML 2024) report that about 40–50 labelled samples suffice to fit the
# temperature, even for data sets with many classes (DomainNet's 345, ImageNet's 1000).
#
# 1. Zero-shot logits of every model on the clean test set.
# 2. Fit TS on n stratified calibration samples, for n from 5 to the whole calibration half,
#    with 20 random draws per n; measure ECE on the evaluation half.
# 3. The smallest n whose mean ECE lies on the curve's plateau: close to the full-set ECE.
# 4. Verdict for C6.
#
# ## Prerequisites
# [C1–C3](es_ts_across_shifts.ipynb) for the protocol. Runs in well under a minute with warm caches.

# %% tags=["parameters"]
backbones = ["default", "default-wide", "default-mlp"]  # VLMs, classified zero-shot (three stand-ins: CNN, wide CNN, MLP)
supervised = "supervised"  # the supervised baseline: the stand-in on fashion-mnist, "timm:<model>" on ImageNet ("" for none)
dataset = "fashion-mnist"  # data-set spec: fashion-mnist, cifar10:/path, imagefolder:/path
seeds = [0, 1, 2]  # seeds of the calibration/evaluation split
n_bins = 15  # ECE bins, as in ES
device = ""  # "" picks CUDA when present, else CPU
cache_dir = ""  # "" uses $VLMCAL_CACHE_DIR or ~/.cache/vlmcal
sizes = [5, 10, 20, 40, 50, 100, 200, "all"]  # calibration-set sizes n
n_draws = 20  # stratified draws per size
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

from vlmcal.papers import es
from vlmcal.papers.es import SetSizeSettings
from vlmcal.papers.es.figures import plot_calibration_set_size
from vlmcal.papers.es import collect_runs
from vlmcal.papers.common.params import check_injected_parameters

check_injected_parameters(page="es_calibration_set_size")  # plain papermill only warns about an unknown -p name

settings = es.StudySettings(
    backbones=backbones, supervised=supervised, dataset=dataset, seeds=seeds, n_bins=n_bins, device=device,
    cache_dir=cache_dir, templates=templates, max_samples=max_samples, n_resamples=n_resamples,
)
size_settings = SetSizeSettings(sizes=sizes, n_draws=n_draws)
sizes, n_draws = size_settings.sizes, size_settings.n_draws  # the checked values, lists parsed
es.backbone_note(settings, scope="clean test set")

# %% [markdown]
# ## 1. Zero-shot logits on the clean test set

# %%
runs = collect_runs(settings, conditions=[("clean", 0)])
labels = runs[0].labels
print(f"{len(labels)} test images, {runs[0].logits.shape[1]} classes")

# %% [markdown]
# ## 2. ECE after TS against the calibration-set size
# Draws are stratified: with n below the number of classes, n distinct classes get one
# sample each. The band spans the 10th to 90th percentile of the draws. A size larger than
# the calibration pool cannot be drawn; such sizes are listed here and in the verdict.

# %%
plan = es.plan_calibration_sizes(sizes, pool=len(es.split_calibration(labels, seed=settings.seeds[0])[0]))
display(Markdown(plan.describe()))
tables = []
for seed in settings.seeds:
    calibration_rows, evaluation_rows = es.split_calibration(labels, seed=seed)
    tables.append(es.calibration_set_size(runs, plan.kept, calibration_rows, evaluation_rows,
                                                 n_draws=n_draws, seed=seed, n_bins=settings.n_bins).assign(seed=seed))
table = pd.concat(tables, ignore_index=True)
fig, ax = plt.subplots(figsize=(7, 4))
plot_calibration_set_size(table, ax=ax)
fig.tight_layout()

# %%
table.pivot_table(index="n", columns="model", values="ece_after", aggfunc="mean", sort=False).round(4)

# %% [markdown]
# ## 3. The smallest sufficient calibration set
# Per model and seed, the smallest n whose mean ECE after TS is within C6's tolerance of the
# full calibration set's: an absolute ECE difference, read from the plateau of the curve as
# ES do (row `c6_threshold_plateau_ece` of `vlmcal/papers/common/paper_values.csv`). An empty cell
# (NaN) means that no smaller size came that close.

# %%
sufficient = es.claims.sufficient_sizes(table)
sufficient.pivot(index="model", columns="seed", values="smallest_n")

# %% [markdown]
# ## 4. Verdict
# The verdict is decided by `vlmcal.papers.es.claims.c6_few_samples_suffice` from the draws above,
# over VLMs and seeds. The tolerance is only testable when it exceeds the noise of the
# full-set ECE it is measured against: the 95% bootstrap half-width of that ECE on the
# evaluation half (first seed), computed here per VLM.

# %%
seed0 = settings.seeds[0]
calibration_rows, evaluation_rows = es.split_calibration(labels, seed=seed0)
full_set = es.full_set_ece(runs, table[table["seed"] == seed0], evaluation_rows, settings.n_bins, settings.n_resamples)
c6 = es.claims.c6_few_samples_suffice(table, full_set, plan, runs[0].logits.shape[1], settings.describe_models(),
                                      n_resamples=settings.n_resamples)
c6.record()
c6

# %% [markdown]
# ## Summary
# Temperature scaling has a single parameter, so it needs far fewer labelled samples than a
# classifier does: the curves show how fast the post-TS ECE settles as n grows, and how
# widely it scatters between draws at small n.
#
# ## References
# - W. Tu et al. "An Empirical Study Into What Matters for Calibrating Vision-Language Models." ICML 2024.
# - C. Guo et al. "On Calibration of Modern Neural Networks." ICML 2017.
