"""Proposition 3.1 (DOR): the estimator and its checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlmcal.papers.dor import theory


@pytest.mark.parametrize("k", [2, 3, 10, 100, 1000])
def test_sigma_zero_gives_exactly_one_over_k(k):
    est = theory.expected_max_softmax(0.0, k, n_draws=500)
    assert est.mean == 1.0 / k
    assert est.stderr == 0.0


@pytest.mark.parametrize("k", [2, 10, 1000])
def test_tiny_sigma_approaches_one_over_k(k):
    est = theory.expected_max_softmax(1e-6, k, n_draws=500)
    assert abs(est.mean - 1.0 / k) < 1e-5


@pytest.mark.parametrize("k", [2, 10, 100])
def test_strictly_increasing_on_a_grid(k):
    grid = [0.0, 0.1, 0.3, 0.6, 1.0, 2.0, 4.0]
    curve = theory.max_softmax_curve(grid, [k], n_draws=20_000, seed=1)
    steps = theory.monotonicity_tests(curve)
    assert len(steps) == len(grid) - 1
    assert steps["resolved"].all(), steps


def test_same_seed_draws_are_pathwise_increasing():
    """With shared draws, max softmax of sigma * eps is non-decreasing draw by draw (the proof's core)."""
    means = [theory.expected_max_softmax(s, 10, n_draws=2000, seed=3).mean for s in np.linspace(0, 5, 21)]
    assert np.all(np.diff(means) > 0)


@pytest.mark.parametrize("mu", [-50.0, -1.0, 3.0, 200.0])
def test_invariant_to_mu(mu):
    """Softmax is shift-invariant: same draws, different mu, same estimate up to rounding."""
    for k in (2, 10, 1000):
        base = theory.expected_max_softmax(1.5, k, mu=0.0, n_draws=3000, seed=7)
        shifted = theory.expected_max_softmax(1.5, k, mu=mu, n_draws=3000, seed=7)
        assert shifted.mean == pytest.approx(base.mean, abs=1e-12)


def test_two_classes_matches_quadrature():
    for sigma in (0.1, 0.5, 1.0, 3.0, 10.0):
        exact = theory.expected_max_softmax_two_classes(sigma)
        est = theory.expected_max_softmax(sigma, 2, n_draws=200_000, seed=11)
        assert abs(est.mean - exact) < 4 * est.stderr, (sigma, est, exact)


def test_quadrature_against_independent_formula():
    """m_2 = E[sigmoid(|d|)], d ~ N(0, 2 sigma^2): a fine trapezoid rule as an independent reference."""
    for sigma in (0.2, 1.0, 2.5):
        s = np.sqrt(2.0) * sigma
        x = np.linspace(-12 * s, 12 * s, 400_001)
        density = np.exp(-0.5 * (x / s) ** 2) / (s * np.sqrt(2 * np.pi))
        reference = float(np.trapezoid(density / (1 + np.exp(-np.abs(x))), x))
        assert theory.expected_max_softmax_two_classes(sigma) == pytest.approx(reference, abs=1e-8)
    assert theory.expected_max_softmax_two_classes(0.0) == 0.5


def test_large_k_is_chunked_and_matches_unchunked():
    a = theory.expected_max_softmax(1.0, 1000, n_draws=1000, seed=5, chunk_elements=10_000)
    b = theory.expected_max_softmax(1.0, 1000, n_draws=1000, seed=5, chunk_elements=10**7)
    assert a.mean == pytest.approx(b.mean, rel=1e-12)


def test_stderr_matches_spread_of_repeated_estimates():
    means = [theory.expected_max_softmax(1.0, 10, n_draws=2000, seed=s).mean for s in range(40)]
    stderr = theory.expected_max_softmax(1.0, 10, n_draws=2000, seed=0).stderr
    assert np.std(means, ddof=1) == pytest.approx(stderr, rel=0.35)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sigma=-1.0, n_classes=10), "sigma"),
        (dict(sigma=float("nan"), n_classes=10), "sigma"),
        (dict(sigma=1.0, n_classes=0), "n_classes"),
        (dict(sigma=1.0, n_classes=10, n_draws=1), "n_draws"),
    ],
)
def test_bad_arguments_raise_with_what_was_received(kwargs, match):
    with pytest.raises(ValueError, match=match):
        theory.expected_max_softmax(**kwargs)


def test_monotonicity_test_detects_a_decrease():
    curve = theory.max_softmax_curve([0.0, 1.0, 2.0], [10], n_draws=5000)
    curve.loc[curve["sigma"] == 2.0, "mean"] = curve.loc[curve["sigma"] == 1.0, "mean"].to_numpy() - 0.01
    steps = theory.monotonicity_tests(curve)
    assert steps["resolved"].tolist() == [True, False]


def test_dispersion_mechanism_increases_spread_and_confidence():
    frame = theory.dispersion_mechanism([0.0, 0.5, 1.0, 2.0], n_classes=10, dim=64, n_images=500)
    assert frame["atfd"].iloc[0] < 1e-6
    assert frame["confidence"].iloc[0] == pytest.approx(0.1, abs=1e-4)  # identical text features: uniform
    for column in ("atfd", "logit_std", "confidence"):
        assert np.all(np.diff(frame[column]) > 0), column


def test_settings_reject_bad_parameters_with_names():
    good = dict(sigmas=[0, 1], n_classes=[2], mus=[0], n_draws=1000, seed=0, spreads=[0, 1], logit_scale=100.0)
    theory.PropositionSettings(**good)
    for change, name in [
        (dict(sigmas=[1, 0]), "sigmas"),
        (dict(sigmas="abc"), "sigmas"),
        (dict(n_classes=[1]), "n_classes"),
        (dict(n_draws=10), "n_draws"),
        (dict(logit_scale=-1.0), "logit_scale"),
    ]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            theory.PropositionSettings(**{**good, **change})
