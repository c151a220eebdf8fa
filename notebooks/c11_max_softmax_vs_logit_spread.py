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
# # C11 — Wider logits, higher confidence (DOR, Proposition 3.1)
#
# ```{admonition} Backbone
# :class: note
# No model made the figures on this page: Sections 1–3 are a Monte Carlo simulation of
# Gaussian logits, and Section 4 uses synthetic unit-norm features that isolate the geometry.
# Nothing here is a CLIP measurement.
# ```
#
# ## Overview
# The DOR paper (Wang, Li & Wei, ICML 2025) explains why prompt tuning makes CLIP
# over-confident on new classes: tuning spreads the class text features apart, wider text
# features give wider logits, and wider logits give higher confidence *whatever the accuracy*.
# The last step is its Proposition 3.1:
#
# > If the $K$ logits $z_1, \dots, z_K$ are i.i.d. $\mathcal N(\mu, \sigma^2)$, then
# > $m_K(\sigma) = \mathbb E\left[\max_k \operatorname{softmax}(z)_k\right]$ increases strictly with $\sigma$, for every $\mu$.
#
# 1. Estimate $m_K(\sigma)$ by Monte Carlo for several $K$ and $\mu$, with confidence bands.
# 2. Check the estimator against an exact value ($\sigma = 0$) and a quadrature ($K = 2$).
# 3. Test monotonicity step by step on the grid.
# 4. Show the paper's mechanism: text-feature dispersion → logit spread → confidence.
# 5. Verdict.
#
# ## Prerequisites
# Softmax and the zero-shot pipeline (the [introduction](../intro.md)). Runs in about
# 10 seconds on 2 CPU cores at the default parameters.

# %% tags=["parameters"]
sigmas = [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0]  # logit standard deviations
n_classes = [2, 10, 100, 1000]  # K
mus = [0.0, 5.0, -30.0]  # common means: the result must not depend on them
n_draws = 20000  # Monte Carlo draws per grid point
seed = 0
spreads = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]  # text-feature noise scales (Section 4)
logit_scale = 100.0  # CLIP's logit scale

# %% [markdown]
# ## Imports

# %%
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt

from vlmcal.papers import dor
from vlmcal.papers.dor.figures import plot_dispersion_mechanism, plot_max_softmax_curves
from vlmcal.papers.common.params import check_injected_parameters

check_injected_parameters(page="c11_max_softmax_vs_logit_spread")  # plain papermill only warns about an unknown -p name

settings = dor.theory.PropositionSettings(
    sigmas=sigmas, n_classes=n_classes, mus=mus, n_draws=n_draws, seed=seed, spreads=spreads, logit_scale=logit_scale
)

# %% [markdown]
# ## 1. Monte Carlo estimate of $m_K(\sigma)$
# Every grid point $(K, \mu, \sigma)$ gets its own independent random stream, so that
# neighbouring points share no noise and Section 3's test could fail. The bands are 95%
# normal intervals (mean ± 1.96 standard errors); at this many draws they are thinner
# than the lines. The dotted lines mark $1/K$, the value at $\sigma = 0$.

# %%
curve = dor.theory.max_softmax_curve(settings.sigmas, settings.n_classes, settings.mus, settings.n_draws, settings.seed)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
plot_max_softmax_curves(curve, ax=axes[0])
axes[0].set_xscale("symlog", linthresh=0.25)
axes[0].set_xlim(left=0)
plot_max_softmax_curves(curve, n_classes=max(settings.n_classes), ax=axes[1])
axes[1].set_xscale("symlog", linthresh=0.25)
axes[1].set(xlim=(0, None), ylim=(0, None))
fig.tight_layout()

# %% [markdown]
# The right panel overlays every $\mu$ for the largest $K$: the curves coincide, as they
# must, since adding $\mu$ to every logit leaves the softmax unchanged. The table shows the
# spread across $\mu$ at each $(K, \sigma)$ in units of the standard error.

# %%
by_mu = curve.groupby(["n_classes", "sigma"]).agg(
    mean=("mean", "mean"), spread_across_mu=("mean", lambda m: m.max() - m.min()), stderr=("stderr", "max")
)
by_mu["spread_in_stderrs"] = by_mu["spread_across_mu"] / by_mu["stderr"].where(by_mu["stderr"] > 0)
by_mu.unstack("n_classes")["mean"].round(4)

# %% [markdown]
# ## 2. Checking the estimator
# At $\sigma = 0$ all logits are equal and $m_K = 1/K$ exactly. For $K = 2$ the
# expectation reduces to a one-dimensional integral,
# $m_2(\sigma) = 2\int_0^\infty \operatorname{sigmoid}(x)\, \varphi(x; 0, \sqrt2\sigma)\,dx$,
# which quadrature computes to 12 digits; the Monte Carlo estimates should sit within a few
# standard errors of it (the tolerance is a row of `vlmcal/papers/common/paper_values.csv`). A check
# whose case is not in the grid ($\sigma = 0$ or $K = 2$) is reported as not checked.

# %%
checks = dor.claims.estimator_checks(curve)
print(checks.describe())
checks.quadrature[["mu", "sigma", "mean", "stderr", "quadrature", "error_in_stderrs", "agrees"]].round(5)

# %% [markdown]
# ## 3. Is the increase strict on the grid?
# For each $(K, \mu)$ and each step $\sigma_i \to \sigma_{i+1}$ we compute the increase and
# its standard error, and call the step *resolved* when the increase minus z standard errors
# is still above zero (z is the row `c11_threshold_step_z` of `vlmcal/papers/common/paper_values.csv`).

# %%
steps = dor.claims.step_tests(curve)
summary = steps.groupby("n_classes").agg(
    steps=("resolved", "size"), resolved=("resolved", "sum"), smallest_increase=("increase", "min")
)
summary

# %%
fig, ax = plt.subplots(figsize=(6, 3.4))
for k, group in steps[steps["mu"] == steps["mu"].min()].groupby("n_classes"):
    ax.errorbar(group["sigma_to"], group["increase"], yerr=1.96 * group["stderr"], marker="o", ms=3, capsize=2, label=f"K = {k}")
ax.axhline(0, color="k", lw=0.8)
ax.set(xscale="symlog", xlabel=r"step ends at $\sigma$", ylabel="increase of E[max softmax]", title="each step up the grid, with 95% bars")
ax.set_xlim(left=0)
ax.legend(fontsize=7, frameon=False)
fig.tight_layout()

# %% [markdown]
# ## 4. The mechanism: dispersed text features make confident predictions
# A zero-shot VLM's logits are $s\,\langle x, t_c\rangle$: the logit scale times the cosine
# between the image feature $x$ and each class text feature $t_c$. Here the image features
# are held fixed and the class text features are moved apart on the unit sphere
# ($t_c = \mathrm{normalize}(u + \text{spread}\cdot \epsilon_c)$ around a shared direction $u$).
# Text-feature dispersion (ATFD, the mean distance of the $t_c$ to their centroid) grows,
# the logits of each image spread out, and the mean confidence rises, with nothing about
# the images having changed.

# %%
mechanism = dor.theory.dispersion_mechanism(settings.spreads, logit_scale=settings.logit_scale, seed=settings.seed)
plot_dispersion_mechanism(mechanism)
plt.tight_layout()
mechanism.round(4)

# %% [markdown]
# ## 5. Verdict
# The verdict is decided by `vlmcal.papers.dor.claims.c11_max_softmax_increases` from the steps of
# Section 3, the checks of Section 2 and the mechanism of Section 4: every step must be
# resolved as an increase, and no check that could be made may fail.

# %%
verdict = dor.claims.c11_max_softmax_increases(steps, checks, mechanism)
verdict.record()
verdict

# %% [markdown]
# ## Summary
# By the proposition, the expected top softmax probability of i.i.d. Gaussian logits starts
# at $1/K$ and rises with the logit spread, identically for every mean; the simulation above
# tests this on the grid it was given, and the verdict says what the grid resolved and which
# checks it could make. The reason is visible draw by draw: $\max_k \operatorname{softmax}(\sigma\epsilon)_k =
# 1 / \sum_k e^{\sigma(\epsilon_k - \epsilon_{\max})}$ and every exponent is $\le 0$, so each
# term shrinks as $\sigma$ grows. When prompt tuning pushes the class text features apart,
# the logits widen and confidence rises even where accuracy does not: the DOR paper's
# account of over-confidence on new classes (claim C12, which the paper tests with CoOp on
# CLIP).
#
# ## References
# - S. Wang, Y. Li, H. Wei. "Understanding and Mitigating Miscalibration in Prompt Tuning for
#   Vision-Language Models." ICML 2025 (Proposition 3.1).
# - H. S. Yoon et al. "C-TPT: Calibrated Test-Time Prompt Tuning for Vision-Language Models via
#   Text Feature Dispersion." ICLR 2024 (ATFD).
