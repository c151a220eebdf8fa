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
# # C8 — Prompt choice, text-feature dispersion and calibration (C-TPT)
#
# *Which model made this page's figures depends on its parameters: the **Backbone** box under
# Imports names it, written from the run's own settings. To run this page with CLIP, see
# [Re-running a page](../rerun.md).*
#
# ## Overview
# C-TPT (Yoon et al., ICLR 2024) starts from an observation about hard prompts: among prompts
# that classify about equally well, those whose class text features lie further apart are
# better calibrated. It measures the spread by the **average text feature dispersion**
#
# $$\mathrm{ATFD} = \frac1C \sum_{c} \lVert t_c - \bar t \rVert_2, \qquad \bar t = \frac1C \sum_c t_c,$$
#
# over the L2-normalised class text features $t_c$ of a prompt, and reports (claim **C8**) a
# Pearson correlation of −0.70 (CLIP-RN50) and −0.76 (CLIP-ViT-B/16) between ATFD and ECE over
# the prompts within 3% of the best accuracy. C-TPT's loss rewards dispersion for that reason.
#
# DOR (Wang, Li & Wei, ICML 2025) explains the same quantity differently: more divergent text
# features spread the logits wider, and wider logits raise confidence whatever the accuracy
# (Proposition 3.1, the [C11 page](c11_max_softmax_vs_logit_spread.ipynb)). Raising confidence
# lowers ECE only for an *under-confident* model; for an *over-confident* one it raises ECE. So
# the two readings predict opposite signs once the model is over-confident, and this page
# computes the correlation separately in each regime.
#
# 1. Accuracy, ECE and ATFD of each of CLIP's 80 templates used alone, on the clean test set.
# 2. The correlation over the prompts near the best accuracy, and over all prompts.
# 3. The sign by confidence regime: zero-shot on the clean and shifted sets, and after TPT.
# 4. Verdict for C8.
#
# ## Prerequisites
# [Zero-shot classification](zero_shot.ipynb) (prompts, templates, the logit scale). Section 3
# runs TPT from several prompts (see [the C-TPT tables](ctpt_tables.ipynb)); at the defaults
# the page takes about a minute on 2 CPU cores on a cold cache. More images per TPT run:
# `-p n_images 0` (all test images not held for calibration).

# %% tags=["parameters"]
backbone = "default"  # the VLM (a stand-in, or openclip:<arch>:<pretrained>)
dataset = "fashion-mnist"  # data-set spec: fashion-mnist, cifar10:/path, imagefolder:/path
shifts = ["gaussian_noise", "contrast", "sketch"]  # shifted sets for the zero-shot regimes
severity = 3  # severity of every shift (1..5)
window = 0.03  # accuracy window below the best prompt (the paper: 3 points)
n_prompts = 6  # TPT starts from this many prompts of the window (Section 3)
n_images = 96  # images per TPT run, a stratified subset of the clean test set (0: all not held for calibration)
n_calibration = 96  # images held out of those subsets, as on the C-TPT tables page (same images)
n_bins = 20  # ECE bins, as in C-TPT
n_resamples = 1000  # bootstrap resamples (over prompts) behind the correlations
batch_size = 16  # images tuned at once (results do not depend on it)
device = ""  # "" picks CUDA when present, else CPU
cache_dir = ""  # "" uses $VLMCAL_CACHE_DIR or ~/.cache/vlmcal

# %% [markdown]
# ## Imports

# %%
import pandas as pd
import matplotlib.pyplot as plt
from IPython.display import Markdown

from vlmcal.papers import ctpt
from vlmcal.data.templates import CLIP_TEMPLATES
from vlmcal.pipeline.predictions import load_test_data
from vlmcal.papers.common.params import check_injected_parameters

check_injected_parameters(page="ctpt_prompt_dispersion")  # plain papermill only warns about an unknown -p name

settings = ctpt.TPTPageSettings(
    backbone=backbone, dataset=dataset, shifts=shifts, severity=severity, n_images=n_images, n_calibration=n_calibration,
    window=window, n_prompts=n_prompts, n_bins=n_bins, n_resamples=n_resamples, batch_size=batch_size, device=device,
    cache_dir=cache_dir,
)
ctpt.backbone_note(settings, scope=f"the full clean test set and {len(settings.shifts)} shifts at severity {severity} "
                                     f"(zero-shot); {n_images or 'all'} clean images per TPT run")

# %% [markdown]
# ## 1. Every template as a hard prompt
# Each of the 80 templates classifies the whole clean test set on its own. Each point is one
# prompt: its ATFD against its ECE (20 bins, as in C-TPT), coloured by its accuracy.

# %%
run_args = dict(dataset=settings.dataset, n_bins=settings.n_bins, device=settings.device, cache_dir=settings.cache_dir)
clean = ctpt.sweep_condition(settings.backbone, **run_args)
near = ctpt.near_top(clean, settings.window)
ctpt.figures.plot_prompt_points(clean, near, settings.window, settings.n_bins)
clean.sort_values("accuracy", ascending=False).head(10).round(4)

# %% [markdown]
# ## 2. The correlation, as the paper computes it
# Pearson's and Spearman's correlations of ATFD with ECE over the prompts within the window,
# and over all prompts; the intervals resample prompts (95% percentile bootstrap).

# %%
correlations = {"within the window": ctpt.dispersion_correlation(near, n_resamples=settings.n_resamples, seed=settings.seed),
                "all prompts": ctpt.dispersion_correlation(clean, n_resamples=settings.n_resamples, seed=settings.seed)}
pd.DataFrame([{"prompts": name, "n": c.n, "Pearson": str(c.pearson), "Spearman": str(c.spearman)} for name, c in correlations.items()])

# %% [markdown]
# ## 3. The sign, by confidence regime
# Each prompt is *over-confident* where its mean confidence exceeds its accuracy and
# *under-confident* otherwise. Zero-shot points come from every prompt on the clean and the
# shifted sets (each set's own near-top prompts); the TPT points start TPT from each of the
# first `n_prompts` prompts of the window whose class name comes last (their words before the
# class name become the context), on the same clean images as the C-TPT tables page.

# %%
shifted = [ctpt.sweep_condition(settings.backbone, shift=s, severity=v, **run_args) for s, v in settings.conditions[1:]]
zero_shot = pd.concat([ctpt.near_top(p, settings.window) for p in [clean, *shifted]]).assign(stage="zero-shot")
rows, _ = ctpt.split_rows(load_test_data(settings.dataset).labels, settings.n_images, settings.n_calibration, settings.seed)
candidates = [t for t in near.sort_values("accuracy", ascending=False)["template"] if ctpt.template_prefix(t)][: settings.n_prompts]
after_tpt = ctpt.tpt_template_points(settings, candidates, rows).assign(stage="after TPT", condition="clean")
regime_points = pd.concat([zero_shot, after_tpt], ignore_index=True)
regimes = ctpt.correlation_by_regime(regime_points, n_resamples=settings.n_resamples, seed=settings.seed)
regimes.round(3)

# %% [markdown]
# The zero-shot points set by set (each set's own near-top prompts):

# %%
ctpt.correlation_by_regime(zero_shot, by=("condition", "regime"), n_resamples=settings.n_resamples, seed=settings.seed).round(3)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.9), sharey=True)
for ax, regime in zip(axes, ctpt.REGIMES):
    for stage, marker in (("zero-shot", "o"), ("after TPT", "^")):
        chosen = regime_points[(regime_points["regime"] == regime) & (regime_points["stage"] == stage)]
        ax.scatter(chosen["atfd"], chosen["ece"], marker=marker, s=28, alpha=0.8, label=f"{stage} ({len(chosen)})")
    ax.set(title=regime, xlabel="ATFD")
    ax.legend(fontsize=8, frameon=False)
axes[0].set_ylabel(f"ECE ({settings.n_bins} bins)")
fig.tight_layout()
Markdown(ctpt.claims.regime_sentence(regimes))

# %% [markdown]
# ## 4. Verdict
# Decided by `vlmcal.papers.ctpt.claims` from the correlation over the prompts within the window on
# the clean test set; the regimes are a second result.

# %%
c8 = ctpt.claims.c8_dispersion_correlates_negatively(
    pearson=correlations["within the window"].pearson, spearman=correlations["within the window"].spearman,
    n_prompts=correlations["within the window"].n, backbone=f"`{settings.backbone}`", regimes=regimes, window=settings.window,
)
c8.record()
c8

# %% [markdown]
# ## Summary
# The page measures, for each of CLIP's templates used alone, how far apart its class text
# features lie (ATFD) and how well calibrated its predictions are (ECE), and correlates the two
# over the prompts of near-top accuracy, as C-TPT does; the verdict above is computed from that
# correlation. The correlation is computed over prompts, so its interval reflects how many
# prompts fall in the window as much as how strongly ATFD and ECE are linked; a handful of
# prompts can leave the claim untested. Where the model is over-confident, DOR's mechanism
# (more dispersion, wider logits, more confidence) predicts the opposite sign to C-TPT's
# reading; the regime table in Section 3 says which sign each regime shows here.
#
# ## References
# - H. S. Yoon et al. "C-TPT: Calibrated Test-Time Prompt Tuning for Vision-Language Models via
#   Text Feature Dispersion." ICLR 2024 (Tables 1 and 2, Fig. 4, ATFD).
# - M. Shu et al. "Test-Time Prompt Tuning for Zero-Shot Generalization in Vision-Language
#   Models." NeurIPS 2022 (TPT).
# - S. Wang, Y. Li, H. Wei. "Understanding and Mitigating Miscalibration in Prompt Tuning for
#   Vision-Language Models." ICML 2025 (Proposition 3.1).
# - C. Guo et al. "On Calibration of Modern Neural Networks." ICML 2017 (ECE, temperature scaling).
