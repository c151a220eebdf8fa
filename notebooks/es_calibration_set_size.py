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
# ES (Tu et al., ICML 2024) report that about 40–50 labelled samples suffice to fit the
# temperature, even for data sets with many classes (DomainNet's 345, ImageNet's 1000).
#
# 1. Zero-shot logits of every model on the clean test set.
# 2. Fit TS on n stratified calibration samples, for n from 5 to the whole calibration half,
#    with 20 random draws per n; measure ECE on the evaluation half.
# 3. The smallest n whose mean ECE is within 10% of the full-set ECE.
# 4. Verdict for C6.
#
# ## Prerequisites
# [C1–C3](es_ts_across_shifts.ipynb) for the protocol. Runs in well under a minute with warm caches.

# %% tags=["parameters"]
backbones = ["default", "default-aug", "default-mlp"]  # VLMs, classified zero-shot (three stand-ins: CNN, augmented CNN, MLP)
supervised = "supervised"  # the supervised baseline ("" for none; used on fashion-mnist only)
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

from vlmcal import empirical
from vlmcal.paper_values import paper_value
from vlmcal.plotting import plot_calibration_set_size
from vlmcal.predictions import collect_runs
from vlmcal.verdict import Verdict

settings = empirical.StudySettings(
    backbones=backbones, supervised=supervised, dataset=dataset, seeds=seeds, n_bins=n_bins, device=device,
    cache_dir=cache_dir, templates=templates, max_samples=max_samples, n_resamples=n_resamples,
)
if not isinstance(n_draws, int) or n_draws < 2:
    raise ValueError(f"Expected parameter `n_draws` to be an integer >= 2, but got {n_draws!r}")
display(Markdown(f"**Models on this page:** {settings.describe_models()} on `{settings.dataset}` (clean test set)."))

# %% [markdown]
# ## 1. Zero-shot logits on the clean test set

# %%
runs = collect_runs(settings, conditions=[("clean", 0)])
labels = runs[0].labels
print(f"{len(labels)} test images, {runs[0].logits.shape[1]} classes")

# %% [markdown]
# ## 2. ECE after TS against the calibration-set size
# Draws are stratified: with n below the number of classes, n distinct classes get one
# sample each. The band spans the 10th to 90th percentile of the draws.

# %%
tables = []
for seed in settings.seeds:
    calibration_rows, evaluation_rows = empirical.split_calibration(labels, seed=seed)
    n_pool = len(calibration_rows)
    valid_sizes = [s for s in sizes if s == "all" or int(s) <= n_pool]
    tables.append(empirical.calibration_set_size(runs, valid_sizes, calibration_rows, evaluation_rows,
                                                 n_draws=n_draws, seed=seed, n_bins=settings.n_bins).assign(seed=seed))
table = pd.concat(tables, ignore_index=True)
fig, ax = plt.subplots(figsize=(7, 4))
plot_calibration_set_size(table, ax=ax)
fig.tight_layout()

# %%
table.pivot_table(index="n", columns="model", values="ece_after", aggfunc="mean", sort=False).round(4)

# %% [markdown]
# ## 3. The smallest sufficient calibration set
# Per model and seed, the smallest n whose mean ECE after TS is within 10% of the full
# calibration set's; an empty cell (NaN) means that no smaller size came that close.

# %%
sufficient = pd.concat([empirical.smallest_sufficient_n(g).assign(seed=s) for s, g in table.groupby("seed")])
sufficient.pivot(index="model", columns="seed", values="smallest_n")  # NaN: no size below the full set came within 10%

# %% [markdown]
# ## 4. Verdict
# **C6** holds if, for the median VLM (over models and seeds), the smallest n whose mean ECE
# after TS is within 10% of the full calibration set's (`SUFFICIENT_TOLERANCE`) is at most
# 50 samples (`PAPER_SAMPLES`, the upper end of the paper's 40–50). The interval is a 95%
# bootstrap, over draws, of the ratio of mean ECE at n = 50 to the full-set ECE (first seed, VLMs).

# %%
vlm_names = [r.model for r in runs if r.kind == "VLM"]
vlm_sufficient = sufficient[sufficient["model"].isin(vlm_names)]
median_n = float(vlm_sufficient["smallest_n"].fillna(np.inf).median())
holds = bool(median_n <= empirical.PAPER_SAMPLES)
t0 = table[(table["seed"] == settings.seeds[0]) & table["model"].isin(vlm_names)]
full = t0[t0["size"] == "all"].set_index("model")["ece_after"]
ratio = empirical.ratio_to_full_set(t0, empirical.PAPER_SAMPLES, n_resamples=settings.n_resamples)
point_ratio, lo, hi = ratio.estimate, ratio.lower, ratio.upper
c6 = Verdict(
    claim="C6",
    statement="Very few samples suffice for temperature scaling",
    paper_figure=f"{paper_value('c6_samples_low').describe()}; upper end {paper_value('c6_samples_high').value:g} samples",
    measured=(f"median smallest sufficient n over VLMs and seeds: {median_n:g} "
              f"(within {empirical.SUFFICIENT_TOLERANCE:.0%} of the full-set ECE, {len(vlm_names)} VLMs); "
              f"ECE at n = {empirical.PAPER_SAMPLES} is {point_ratio:.2f}x the full-set ECE"),
    interval=f"95% CI of that ratio [{lo:.2f}, {hi:.2f}]",
    holds=holds,
    backbone=settings.describe_models(),
    why=("" if holds else (
        f"the full-set post-TS ECE is only {full.mean():.4f} here, so 'within 10%' means within {0.1 * full.mean():.4f}; "
        f"with {empirical.PAPER_SAMPLES} samples the ECE is {t0.loc[t0['n'] == empirical.PAPER_SAMPLES, 'ece_after'].mean():.4f}. "))
    + f"This data set has {runs[0].logits.shape[1]} classes, so the paper's many-class setting is not tested here",
)
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
