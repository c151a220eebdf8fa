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
# # C4 — Temperature scaling across label sets
#
# *Which models made this page's figures depends on its parameters: the **Backbone** box
# under Imports names them, written from the run's own settings. To run this page with CLIP,
# see the last section of [Re-running a page](../rerun.md).*
#
# ## Overview
# ES (Tu et al., ICML 2024, Fig. 2) find that a temperature fitted on one set of classes
# calibrates a VLM on *other* classes too: the calibration set need not share the test
# set's labels. This is what makes TS practical for zero-shot models, whose test classes are
# often unknown when they are calibrated.
#
# 1. Zero-shot logits of every model on the clean test set.
# 2. Split the classes into base and new halves (sorted labels; base = first half).
# 3. Fit T on the base classes' calibration images; evaluate on new classes and on all classes,
#    against T fitted on those target classes themselves (the best TS can do); and the reverse.
# 4. Verdict for C4.
#
# ## Prerequisites
# [C1–C3](es_ts_across_shifts.ipynb) for the protocol. Runs in seconds with warm caches.

# %% tags=["parameters"]
backbones = ["default", "default-wide", "default-mlp"]  # VLMs, classified zero-shot (three stand-ins: CNN, wide CNN, MLP)
supervised = "supervised"  # the supervised baseline: the stand-in on fashion-mnist, "timm:<model>" on ImageNet ("" for none)
dataset = "fashion-mnist"  # data-set spec: fashion-mnist, cifar10:/path, imagefolder:/path
seeds = [0, 1, 2]  # seeds of the calibration/evaluation split
n_bins = 15  # ECE bins, as in ES
device = ""  # "" picks CUDA when present, else CPU
cache_dir = ""  # "" uses $VLMCAL_CACHE_DIR or ~/.cache/vlmcal
templates = "ensemble"  # prompts: CLIP's 80 templates ("ensemble"), "hard" or "dataset"
max_samples = 0  # evaluate on at most this many test images (0: all)
n_resamples = 200  # bootstrap resamples behind each verdict's interval

# %% [markdown]
# ## Imports

# %%
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt

from vlmcal.papers import es
from vlmcal.data.datasets import base_new_split
from vlmcal.papers.es.figures import plot_label_shift
from vlmcal.papers.es import collect_runs
from vlmcal.papers.common.params import check_injected_parameters

check_injected_parameters(page="es_label_shift")  # plain papermill only warns about an unknown -p name

settings = es.StudySettings(
    backbones=backbones, supervised=supervised, dataset=dataset, seeds=seeds, n_bins=n_bins, device=device,
    cache_dir=cache_dir, templates=templates, max_samples=max_samples, n_resamples=n_resamples,
)
es.backbone_note(settings, scope="clean test set")

# %% [markdown]
# ## 1. Zero-shot logits on the clean test set

# %%
runs = collect_runs(settings, conditions=[("clean", 0)])
labels = runs[0].labels
n_classes = runs[0].logits.shape[1]
base, new = base_new_split([str(k) for k in range(n_classes)])
print(f"base classes {base}, new classes {new}; {len(labels)} test images")

# %% [markdown]
# ## 2. Fit on one label set, evaluate on another
# Restricting a zero-shot model's logits to a subset of classes is exactly the zero-shot
# classifier over that subset, since each class's logit depends on its own prompt only.
# `recovered` is the share of the best possible ECE reduction (TS fitted on the target labels)
# that the temperature from the other labels achieves, per row. The verdict pools the rows as a
# ratio of means (mean reduction achieved over mean reduction attainable), so that a row with
# almost nothing to recover cannot swamp the others.

# %%
tables = []
for seed in settings.seeds:
    calibration_rows, evaluation_rows = es.split_calibration(labels, seed=seed)
    forward = es.label_shift(runs, base, {"new": new, "all": base + new}, calibration_rows, evaluation_rows, settings.n_bins)
    reverse = es.label_shift(runs, new, {"base": base}, calibration_rows, evaluation_rows, settings.n_bins)
    tables.append(pd.concat([forward.assign(source="base"), reverse.assign(source="new")]).assign(seed=seed))
table = pd.concat(tables, ignore_index=True)
shown = table.groupby(["kind", "model", "source", "target"], sort=False)[
    ["temperature_source", "temperature_target", "ece_before", "ece_source_ts", "ece_target_ts", "recovered"]
].mean()
shown.round(3)

# %%
plot_label_shift(table)
plt.tight_layout()

# %% [markdown]
# ## 3. Verdict
# The verdict is decided by `vlmcal.papers.es.claims.c4_ts_transfers_across_labels` from the table
# above (every VLM, transfer and seed); its threshold, and how it reads the paper, is a row of
# `vlmcal/papers/common/paper_values.csv`. The intervals are 95% bootstraps over the evaluation images
# of the first seed, one per label set the temperature was fitted on.

# %%
seed0 = settings.seeds[0]
calibration_rows, evaluation_rows = es.split_calibration(labels, seed=seed0)
vlm_runs = [r for r in runs if r.kind == "VLM"]
t0 = table[(table["seed"] == seed0) & (table["kind"] == "VLM")]
recovered_intervals = {
    "fitted on base": es.bootstrap_label_shift(vlm_runs, t0[t0["source"] == "base"], {"new": new, "all": base + new},
                                                      evaluation_rows, settings.n_bins, settings.n_resamples),
    "fitted on new": es.bootstrap_label_shift(vlm_runs, t0[t0["source"] == "new"], {"base": base},
                                                     evaluation_rows, settings.n_bins, settings.n_resamples),
}
c4 = es.claims.c4_ts_transfers_across_labels(table, recovered_intervals, settings.describe_models())
c4.record()
c4

# %% [markdown]
# ## Summary
# A temperature is one number, fitted to how over- or under-confident a model is overall;
# the question here is whether that tendency is a property of the model or of the classes
# it was fitted on. The table shows both temperatures side by side for each transfer, and the
# verdict measures how much of the attainable improvement transfers.
#
# ## References
# - W. Tu et al. "An Empirical Study Into What Matters for Calibrating Vision-Language Models."
#   ICML 2024 (Fig. 2).
# - K. Zhou et al. "Learning to Prompt for Vision-Language Models." IJCV 2022 (the base/new split).
