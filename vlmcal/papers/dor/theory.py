"""Proposition 3.1 of the DOR paper (Wang, Li & Wei, ICML 2025), checked numerically: for K logits i.i.d.
N(mu, sigma^2), m_K(sigma) = E[max_k softmax(z)_k] increases strictly with sigma from 1/K, whatever mu. Estimated by
Monte Carlo (K = 2 also by quadrature), with the mechanism it explains simulated."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from vlmcal.papers.common.settings import PageSettings, spec
from vlmcal.prompting.dispersion import text_feature_dispersion

__all__ = ["MaxSoftmaxEstimate", "expected_max_softmax", "expected_max_softmax_two_classes", "max_softmax_curve",
           "dispersion_mechanism", "PropositionSettings", "monotonicity_tests", "sigma_zero_exact",
           "quadrature_comparison", "all_agree", "mechanism_increasing"]


@dataclass(frozen=True)
class MaxSoftmaxEstimate:
    """A Monte Carlo estimate of E[max softmax] for one (K = ``n_classes``, mu, sigma): ``mean``, with ``stderr`` the
    sample std / sqrt(``n_draws``)."""

    n_classes: int
    mu: float
    sigma: float
    mean: float
    stderr: float
    n_draws: int

    def interval(self, z: float = 1.96) -> tuple[float, float]:
        """Normal-approximation interval ``mean -/+ z * stderr`` (z = 1.96: 95%)."""
        return self.mean - z * self.stderr, self.mean + z * self.stderr


def _check(n_classes: int, sigma: float, n_draws: int) -> None:
    if not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"Expected `n_classes` to be an integer >= 1, but got {n_classes!r}")
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"Expected `sigma` to be a finite number >= 0, but got {sigma!r}")
    if not isinstance(n_draws, (int, np.integer)) or n_draws < 2:
        raise ValueError(f"Expected `n_draws` to be an integer >= 2, but got {n_draws!r}")


def expected_max_softmax(sigma: float, n_classes: int, mu: float = 0.0, n_draws: int = 20_000, seed: int = 0,
                         chunk_elements: int = 4_000_000) -> MaxSoftmaxEstimate:
    """Estimate E[max_k softmax(z)_k] for z_k ~ N(mu, sigma^2) i.i.d., by Monte Carlo (the same draws for every mu).

    ``sigma``, ``mu``: the logits' standard deviation (>= 0) and common mean; ``chunk_elements``: the largest number of
    logits held at once.

    >>> est = expected_max_softmax(0.0, n_classes=10)
    >>> est.mean
    0.1
    """
    _check(n_classes, sigma, n_draws)
    rng = np.random.default_rng(seed)
    rows = max(1, chunk_elements // n_classes)
    # Sum deviations from 1/K: at sigma = 0 the mean is then exactly 1/K (a sum of n copies would not round back).
    baseline = 1.0 / n_classes
    total, total_sq = 0.0, 0.0
    for done in range(0, n_draws, rows):
        n = min(rows, n_draws - done)
        logits = mu + sigma * rng.standard_normal((n, n_classes))  # [n, K]
        shifted = logits - logits.max(axis=1, keepdims=True)  # [n, K], max entry 0
        deviation = 1.0 / np.exp(shifted).sum(axis=1) - baseline  # [n]: exp(0) / sum_k exp(z_k - z_max) - 1/K
        total += deviation.sum()
        total_sq += np.square(deviation).sum()
    mean_dev = total / n_draws
    var = max(total_sq / n_draws - mean_dev**2, 0.0) * n_draws / (n_draws - 1)
    return MaxSoftmaxEstimate(int(n_classes), float(mu), float(sigma), float(baseline + mean_dev),
                              float(np.sqrt(var / n_draws)), int(n_draws))


def expected_max_softmax_two_classes(sigma: float) -> float:
    """E[max softmax] for K = 2 by quadrature: ``2 * integral_0^inf sigmoid(x) phi(x; 0, sqrt(2) sigma) dx``.

    ``sigma`` is each logit's standard deviation (>= 0); the expectation is in [1/2, 1).
    """
    _check(2, sigma, 2)
    if sigma == 0:
        return 0.5
    from scipy import integrate, special  # here, not at the top: every claim page imports this module, few need scipy
    s = np.sqrt(2.0) * sigma
    value, _ = integrate.quad(
        lambda x: 2.0 * special.expit(x) * np.exp(-0.5 * (x / s) ** 2) / (s * np.sqrt(2.0 * np.pi)), 0.0, np.inf,
        epsabs=1e-13, epsrel=1e-12)
    return float(value)


def max_softmax_curve(sigmas: np.ndarray | list[float], n_classes: list[int] | tuple[int, ...],
                      mus: list[float] | tuple[float, ...] = (0.0,), n_draws: int = 20_000, seed: int = 0):
    """E[max softmax] over the grid of (K, mu, sigma), ``n_draws`` draws per point, each its own seed from ``seed``:
    a DataFrame with columns n_classes, mu, sigma, mean, stderr, lower, upper, n_draws."""
    grid = [(int(k), float(m), float(s)) for k in n_classes for m in mus for s in sigmas]
    rows = []
    for (k, m, s), child in zip(grid, np.random.SeedSequence(seed).spawn(len(grid))):
        est = expected_max_softmax(s, k, mu=m, n_draws=n_draws, seed=int(child.generate_state(1)[0]))
        rows.append({**est.__dict__, "lower": est.interval()[0], "upper": est.interval()[1]})
    return pd.DataFrame(rows)


def dispersion_mechanism(spreads: np.ndarray | list[float], n_classes: int = 10, dim: int = 384,
                         logit_scale: float = 100.0, n_images: int = 2_000, seed: int = 0):
    """The paper's mechanism, simulated: more dispersed text features -> wider logits -> higher confidence.

    Synthetic text features ``normalize(shared + spread * noise_c)`` of ``n_classes`` classes in ``dim`` dimensions
    (384: the default backbone's text width), one set per spread in ``spreads`` (class-noise scales, >= 0), against
    ``n_images`` fixed unit image features, cosine similarities times ``logit_scale`` (CLIP: 100); ``seed`` draws the
    shared direction, the noise and the images. One row per spread: spread, atfd (mean distance of the class features
    to their centroid), logit_std (over classes, mean over images) and confidence (mean max softmax).
    """
    gen = torch.Generator().manual_seed(seed)
    shared = torch.nn.functional.normalize(torch.randn(dim, generator=gen), dim=0)  # [D]
    noise = torch.randn(n_classes, dim, generator=gen) / np.sqrt(dim)  # [C, D], rows of norm ~1
    # Image features: the shared direction plus noise, like images that resemble every class a little.
    images = torch.nn.functional.normalize(shared + torch.randn(n_images, dim, generator=gen) / np.sqrt(dim), dim=1)  # [N, D]
    rows = []
    for spread in spreads:
        text = torch.nn.functional.normalize(shared + float(spread) * noise, dim=1)  # [C, D]
        logits = logit_scale * images @ text.T  # [N, D] @ [D, C] -> [N, C]
        rows.append({"spread": float(spread), "atfd": float(text_feature_dispersion(text)),
                     "logit_std": float(logits.std(dim=1).mean()),
                     "confidence": float(logits.softmax(dim=1).max(dim=1).values.mean())})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class PropositionSettings(PageSettings):
    """Settings of the Proposition 3.1 notebook, checked once: the grid of :func:`max_softmax_curve` (sigmas
    increasing, each K >= 2) and the ``spreads`` and ``logit_scale`` of :func:`dispersion_mechanism`."""

    sigmas: tuple[float, ...] = spec(minimum=0)
    n_classes: tuple[int, ...] = spec(nonempty=True, minimum=2)
    mus: tuple[float, ...] = spec(nonempty=True)
    n_draws: int = spec(minimum=100)
    seed: int
    spreads: tuple[float, ...] = spec(nonempty=True, minimum=0)
    logit_scale: float

    def check_rules(self) -> None:
        if len(self.sigmas) < 2 or list(self.sigmas) != sorted(set(self.sigmas)):
            raise ValueError("Expected parameter `sigmas` to be at least two distinct increasing values >= 0, "
                             f"but got {list(self.sigmas)}")
        if self.logit_scale <= 0:
            raise ValueError(f"Expected parameter `logit_scale` to be a positive number, but got {self.logit_scale!r}")


def monotonicity_tests(curve, z: float = 1.96):
    """Test, for every (K, mu) of a :func:`max_softmax_curve`, that each step up the sigma grid raises E[max softmax]:
    ``d - z * se_d > 0``, with ``z`` the normal quantile of the one-sided bound (1.96: 97.5%). One row per step:
    n_classes, mu, sigma_from, sigma_to, increase, stderr, lower_bound, resolved."""
    rows = []
    for (k, mu), group in curve.sort_values("sigma").groupby(["n_classes", "mu"]):
        g = group.reset_index(drop=True)
        for i in range(len(g) - 1):
            d = g.loc[i + 1, "mean"] - g.loc[i, "mean"]
            se = float(np.hypot(g.loc[i + 1, "stderr"], g.loc[i, "stderr"]))
            rows.append({"n_classes": k, "mu": mu, "sigma_from": g.loc[i, "sigma"], "sigma_to": g.loc[i + 1, "sigma"],
                         "increase": d, "stderr": se, "lower_bound": d - z * se, "resolved": bool(d - z * se > 0)})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- checks of the estimator
# Each returns None when the grid holds nothing to check: "no comparison" never reads as agreement.
def sigma_zero_exact(curve) -> bool | None:
    """Whether every estimate at sigma = 0 of a :func:`max_softmax_curve` is 1/K exactly; None without sigma = 0."""
    at_zero = curve[curve["sigma"] == 0.0]
    return None if at_zero.empty else bool(np.all(at_zero["mean"].to_numpy() == 1.0 / at_zero["n_classes"].to_numpy()))


def quadrature_comparison(curve, max_stderrs: float):
    """The K = 2 rows of a :func:`max_softmax_curve` beside their quadrature values, and whether each agrees (is within
    ``max_stderrs`` standard errors): columns quadrature, error_in_stderrs (NaN where the standard error is 0, where
    only equality agrees) and agrees."""
    two = curve[curve["n_classes"] == 2].copy()
    two["quadrature"] = [expected_max_softmax_two_classes(s) for s in two["sigma"]]
    stderr = two["stderr"].where(two["stderr"] > 0)  # NaN where the estimate has no spread
    two["error_in_stderrs"] = (two["mean"] - two["quadrature"]) / stderr
    within = two["error_in_stderrs"].abs() < max_stderrs
    two["agrees"] = within.where(stderr.notna(), two["mean"] == two["quadrature"]).astype(bool)  # else: only if equal
    return two


def all_agree(comparison) -> bool | None:
    """Whether every row of :func:`quadrature_comparison` agrees; None when it has no rows (K = 2 not in the grid)."""
    return None if comparison.empty else bool(comparison["agrees"].all())


def mechanism_increasing(mechanism) -> bool | None:
    """Whether ATFD, logit spread and confidence of a :func:`dispersion_mechanism` all rise with every step of the
    spread; None when fewer than two spreads were simulated."""
    ordered = mechanism.sort_values("spread")
    if len(ordered) < 2:
        return None
    return bool(np.all(np.diff(ordered[["atfd", "logit_std", "confidence"]].to_numpy(), axis=0) > 0))
