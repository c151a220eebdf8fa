"""Calibrators: temperature recovery, guarantees, degenerate inputs, the few-sample sampler."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vlmcal import metrics
from vlmcal.calibration import (
    HistogramBinning,
    TemperatureScaling,
    fit_temperatures,
    TemperatureSearch,
    VectorScaling,
    fit_on_n_samples,
    stratified_sample,
)


def _calibrated_model(n: int, n_classes: int, seed: int, spread: float = 2.5):
    """Logits of a model that is calibrated by construction: each label is drawn from softmax(logits)."""
    g = torch.Generator().manual_seed(seed)
    z = spread * torch.randn(n, n_classes, generator=g, dtype=torch.float64)  # [N, C]
    y = torch.multinomial(torch.softmax(z, dim=1), 1, generator=g)[:, 0]  # [N]
    return z, y


def _nll(z, y, t):
    return float(torch.nn.functional.cross_entropy(torch.as_tensor(z, dtype=torch.float64) / t, torch.as_tensor(y)))


# ----------------------------------------------------------------------------- temperature scaling


@pytest.mark.slow  # 12 fits on 20,000 samples each: seconds
@settings(max_examples=6, deadline=None)
@given(st.floats(0.3, 5.0), st.integers(0, 1000))
def test_recovers_the_temperature(t_star, seed):
    """A calibrated model's logits divided by T*: the fitted T undoes it, T * T* = 1 within 4%.

    Equivalently, logits multiplied by T* give back T* itself. The fitted T is an estimate
    from 20,000 samples: over 300 seeds its relative standard deviation was 0.7% (largest
    error 2.4%), so 4% is more than five standard deviations.
    """
    z, y = _calibrated_model(20_000, 10, seed)
    divided = TemperatureScaling().fit(z / t_star, y).temperature_
    assert divided * t_star == pytest.approx(1.0, rel=0.04)
    multiplied = TemperatureScaling().fit(z * t_star, y).temperature_
    assert multiplied == pytest.approx(t_star, rel=0.04)


def test_matches_a_grid_search_on_clip_scale_logits():
    """CLIP-style logits: 100 x cosine similarity; an over-confident model (its logits 1.6x too wide)."""
    z, y = _calibrated_model(3000, 20, seed=1)  # calibrated logits
    cos = 0.25 + z / 100.0  # cosines around 0.25: 100 * cos = 25 + z is calibrated too (softmax ignores shifts)
    logits = (100.0 * 1.6 * cos).to(torch.float32)  # [N, C], logit spread 1.6x too wide
    ts = TemperatureScaling().fit(logits, y)
    grid = np.exp(np.linspace(np.log(1.0), np.log(3.0), 801))  # steps of 0.14% in T
    best = grid[np.argmin([_nll(logits, y, t) for t in grid])]
    assert ts.temperature_ == pytest.approx(best, rel=2e-3)
    assert ts.temperature_ == pytest.approx(1.6, rel=0.05)
    assert ts.nll_after_ == pytest.approx(_nll(logits, y, ts.temperature_), abs=1e-9)
    assert ts.nll_after_ < ts.nll_before_
    assert torch.allclose(ts.transform(logits), logits / ts.temperature_)
    probs = ts.predict_proba(logits)
    assert torch.allclose(probs.sum(dim=1), torch.ones(len(y)), atol=1e-5)
    assert torch.equal(probs.argmax(dim=1), logits.argmax(dim=1))  # TS never changes the prediction
    assert metrics.ece(probs.double(), y) < metrics.ece(logits, y, inputs="logits")


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 80), st.integers(2, 8), st.floats(0.0, 30.0), st.integers(0, 2**31 - 1))
def test_fitting_never_raises_nll_above_temperature_one(n, c, scale, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, c)) * scale
    y = rng.integers(0, c, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # optimum on a bound is allowed here
        ts = TemperatureScaling().fit(z, y)
    assert ts.temperature_ > 0
    assert _nll(z, y, ts.temperature_) <= _nll(z, y, 1.0) + 1e-12
    assert ts.nll_before_ == pytest.approx(_nll(z, y, 1.0), abs=1e-12)


def test_numpy_in_numpy_out():
    z, y = _calibrated_model(200, 5, seed=2)
    ts = TemperatureScaling().fit(z.numpy(), y.numpy())
    assert isinstance(ts.transform(z.numpy()), np.ndarray)
    assert isinstance(ts.predict_proba(z.numpy()), np.ndarray)
    assert ts.temperature_ == TemperatureScaling().fit(z, y).temperature_


def test_fit_temperatures_matches_one_at_a_time_and_a_scipy_search():
    """The batched search against the estimator (the same search, G = 1) and against scipy's bounded Brent."""
    from scipy import optimize

    sets = [_calibrated_model(300, 6, seed=s) for s in range(5)]
    z = torch.stack([zs * t for (zs, _), t in zip(sets, (0.4, 1.0, 1.7, 3.0, 8.0))])  # [5, 300, 6]
    y = torch.stack([ys for _, ys in sets])  # [5, 300]
    batched = fit_temperatures(z, y)
    for g in range(5):
        single = TemperatureScaling().fit(z[g], y[g]).temperature_
        assert float(batched[g]) == pytest.approx(single, rel=1e-9)
        brent = optimize.minimize_scalar(
            lambda log_t: _nll(z[g], y[g], math.exp(log_t)), bounds=(math.log(1e-3), math.log(1e3)), method="bounded", options={"xatol": 1e-9}
        )
        assert float(batched[g]) == pytest.approx(math.exp(brent.x), rel=1e-5)
    everything_right = torch.tensor([[[3.0, 0.0], [0.0, 2.0]], [[3.0, 0.0], [0.0, 2.0]]])  # [2, 2, 2]
    with pytest.warns(RuntimeWarning, match="2 of 2 fitted temperatures lie on the search bound"):
        assert torch.allclose(fit_temperatures(everything_right, torch.tensor([[0, 1], [0, 1]])), torch.full((2,), 1e-3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\[G, N, C\]"):
        fit_temperatures(z[0], y[0])


# ----------------------------------------------------------------------------- degenerate inputs


def test_every_prediction_right_gives_the_lower_bound_with_a_warning():
    z = torch.tensor([[3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
    y = torch.tensor([0, 1, 2])
    with pytest.warns(RuntimeWarning, match="search bound"):
        ts = TemperatureScaling().fit(z, y)
    assert ts.temperature_ == pytest.approx(TemperatureSearch().lower, rel=1e-3)
    assert ts.nll_after_ < ts.nll_before_


def test_one_sample():
    with pytest.warns(RuntimeWarning, match="search bound"):
        wrong = TemperatureScaling().fit(torch.tensor([[2.0, 0.0]]), torch.tensor([1]))
    assert wrong.temperature_ == pytest.approx(TemperatureSearch().upper, rel=1e-3)  # flatten towards uniform
    assert wrong.nll_after_ == pytest.approx(math.log(2), abs=1e-2)


def test_nll_that_does_not_depend_on_t_keeps_t_one_without_a_warning():
    """Rows of equal logits: every T gives the same NLL (up to rounding), so T stays 1."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for value, c in ((0.1, 3), (0.37, 7), (123.4, 10)):
            ts = TemperatureScaling().fit(torch.full((5, c), value), torch.tensor([0, 1, 2, 0, 1]))
            assert ts.temperature_ == 1.0 and ts.nll_after_ == ts.nll_before_


def test_running_out_of_steps_warns():
    z, y = _calibrated_model(300, 5, seed=6)
    with pytest.warns(RuntimeWarning, match="stopped after max_iter=1"):
        ts = TemperatureScaling(TemperatureSearch(max_iter=1)).fit(3.0 * z, y)
    assert ts.nll_after_ <= ts.nll_before_  # still never worse than T = 1


def test_one_class_present():
    z, _ = _calibrated_model(500, 4, seed=3)
    z[:, 0] += 3.0  # a model that mostly predicts class 0, and is sometimes wrong about it
    y = torch.zeros(500, dtype=torch.long)  # only class 0 in the calibration set
    ts = TemperatureScaling().fit(z, y)
    assert 0 < ts.temperature_ and ts.nll_after_ <= ts.nll_before_
    grid = np.exp(np.linspace(np.log(1e-3), np.log(1e3), 20001))
    assert _nll(z, y, ts.temperature_) <= min(_nll(z, y, t) for t in grid[::50]) + 1e-9


@pytest.mark.parametrize(
    "logits, labels, message",
    [
        (np.array([[np.nan, 1.0]]), np.array([0]), "finite `logits`"),
        (np.array([[np.inf, 1.0]]), np.array([0]), "finite `logits`"),
        (np.array([[1.0, 0.0]]), np.array([2]), r"labels` in \[0, 1\]"),
        (np.array([[1.0, 0.0]]), np.array([-1]), "labels` in"),
        (np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0]), "one entry per sample"),
        (np.zeros((0, 2)), np.zeros(0, dtype=int), "N >= 1"),
        (np.array([[1.0, 0.0]]), np.array([0.5]), "integer `labels`"),
    ],
)
@pytest.mark.parametrize("calibrator", [TemperatureScaling, VectorScaling])
def test_bad_inputs_raise_clearly(calibrator, logits, labels, message):
    with pytest.raises(ValueError, match=message):
        calibrator().fit(logits, labels)


def test_not_fitted_and_wrong_number_of_classes():
    with pytest.raises(RuntimeError, match="not fitted"):
        TemperatureScaling().transform(np.zeros((1, 2)))
    ts = TemperatureScaling().fit(*_calibrated_model(100, 3, seed=4))
    with pytest.raises(ValueError, match="Expected 3 classes as at fit time, but got 4"):
        ts.transform(torch.zeros(2, 4))


def test_search_settings_are_checked():
    with pytest.raises(ValueError, match="lower=2"):
        TemperatureSearch(lower=2.0)


# ----------------------------------------------------------------------------- vector scaling, binning


def test_vector_scaling_fixes_class_biases_and_beats_temperature_scaling():
    z, y = _calibrated_model(4000, 5, seed=5)
    bias = torch.tensor([2.0, -1.0, 0.0, 0.5, -2.0], dtype=torch.float64)
    shifted = 1.5 * z + bias  # miscalibrated by a scale and per-class offsets
    vs = VectorScaling().fit(shifted, y)
    ts = TemperatureScaling().fit(shifted, y)
    assert vs.nll_after_ <= ts.nll_after_ + 1e-6  # vector scaling contains temperature scaling
    assert vs.nll_after_ == pytest.approx(_nll(vs.transform(shifted), y, 1.0), abs=1e-9)
    recovered = vs.weight_ * 1.5  # should be ~1 (undoing the scale)
    assert torch.allclose(recovered, torch.ones(5, dtype=torch.float64), atol=0.1)
    centred = vs.bias_ + vs.weight_ * bias  # the offsets are undone up to a common constant
    assert float(centred.std()) < 0.15


def test_vector_scaling_never_worse_than_identity():
    rng = np.random.default_rng(6)
    for _ in range(5):
        z, y = rng.normal(size=(30, 4)) * 5, rng.integers(0, 4, 30)
        vs = VectorScaling().fit(z, y)
        assert vs.nll_after_ <= _nll(z, y, 1.0) + 1e-12


def test_histogram_binning_is_calibrated_on_its_fit_set():
    """Each bin's confidences become the bin's accuracy, so the same bins give ECE = 0 on the fit set."""
    z, y = _calibrated_model(2000, 10, seed=7)
    logits = 2.0 * z  # over-confident
    hb = HistogramBinning(n_bins=10, inputs="logits").fit(logits, y)
    conf = hb.transform(logits)
    _, correct = metrics.top_label(logits, y, inputs="logits")
    raw = metrics.reliability_data(logits, y, n_bins=10, inputs="logits")
    # Calibrated values are the bin accuracies themselves; scoring with the same bins gives 0.
    expected = raw.accuracy[np.searchsorted(raw.edges[1:-1], metrics.top_label(logits, y, inputs="logits")[0].numpy())]
    assert np.allclose(conf, expected)
    assert raw.ece > 0.05
    # Group by the original bin, compare mean calibrated confidence with accuracy: equal.
    idx = np.searchsorted(raw.edges[1:-1], metrics.top_label(logits, y, inputs="logits")[0].numpy())
    for b in np.unique(idx):
        assert conf[idx == b].mean() == pytest.approx(correct.numpy()[idx == b].mean(), abs=1e-12)


def test_histogram_binning_by_hand_and_empty_bins_unchanged():
    probs = np.array([[0.9, 0.1], [0.95, 0.05], [0.2, 0.8], [0.6, 0.4]])
    labels = np.array([0, 1, 1, 1])  # 0.9 right (bin (0.8, 0.9]), 0.95 wrong, 0.8 right (bin (0.7, 0.8]), 0.6 wrong
    hb = HistogramBinning(n_bins=10).fit(probs, labels)
    out = hb.transform(np.array([[0.97, 0.03], [0.85, 0.15], [0.55, 0.45], [0.72, 0.28], [0.65, 0.35]]))
    assert out.tolist() == [0.0, 1.0, 0.0, 1.0, 0.65]  # (0.6, 0.7] was empty: 0.65 unchanged
    assert hb.bin_count_.tolist() == [0, 0, 0, 0, 0, 1, 0, 1, 1, 1]


def _top_confidences(conf) -> np.ndarray:
    """[M, 4] probabilities whose top-label confidence is exactly ``conf`` (each >= 0.25), class 0 on top."""
    conf = np.asarray(conf, dtype=np.float64)
    rest = (1.0 - conf) / 3.0  # <= conf, so class 0 is the argmax (the first of equals)
    return np.column_stack([conf, rest, rest, rest])


# Where each convention puts a value, independently of vlmcal: numpy.digitize on the inner edges
# (or, for torchmetrics, on every edge after the first), counting edges below (right=True) or at
# and below (right=False) the value.
_DIGITIZE = {"right": (slice(1, -1), True), "left": (slice(1, -1), False), "torchmetrics": (slice(1, None), False)}


def test_histogram_binning_bins_confidences_on_edges_as_numpy_digitize_under_each_convention():
    """Four bins with edges 0, 0.25, 0.5, 0.75, 1 (exact in binary) and confidences on them, where the
    conventions differ: fit and transform against a one-sample-at-a-time reference."""
    fit_conf = np.array([0.25, 0.5, 0.5, 0.6, 0.75, 0.75, 0.8, 1.0, 1.0, 0.3, 0.25])
    fit_ok = np.array([1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 0])
    new_conf = np.array([0.25, 0.5, 0.75, 1.0, 0.3, 0.55, 0.9, 0.26, 0.7])
    edges = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    outputs = {}
    for convention, (part, right) in _DIGITIZE.items():
        def bin_of(c, part=part, right=right):
            return int(np.digitize(c, edges[part], right=right))

        n_cols = 4 + (convention == "torchmetrics")
        members = [[] for _ in range(n_cols)]  # the outcomes in each bin, one sample at a time
        for c, ok in zip(fit_conf, fit_ok):
            members[bin_of(c)].append(ok)
        accuracy = np.array([np.mean(m) if m else np.nan for m in members])
        hb = HistogramBinning(n_bins=4, convention=convention).fit(_top_confidences(fit_conf), 1 - fit_ok)  # label 0 = right
        assert hb.bin_count_.tolist() == [len(m) for m in members], convention
        np.testing.assert_array_equal(hb.bin_accuracy_, accuracy)
        expected = [c if np.isnan(accuracy[bin_of(c)]) else accuracy[bin_of(c)] for c in new_conf]
        outputs[convention] = hb.transform(_top_confidences(new_conf))
        assert outputs[convention].tolist() == expected, convention
        # fit and transform bin alike: on its fit set every confidence becomes its own bin's accuracy
        assert hb.transform(_top_confidences(fit_conf)).tolist() == [accuracy[bin_of(c)] for c in fit_conf], convention
        assert np.array_equal(hb.edges_, metrics.bin_statistics(fit_conf, fit_ok, n_bins=4, convention=convention).edges)
    # the edges matter here: each convention maps some confidence differently from the others
    assert outputs["right"].tolist() != outputs["left"].tolist() != outputs["torchmetrics"].tolist() != outputs["right"].tolist()


def test_histogram_binning_convention_is_checked():
    with pytest.raises(ValueError, match=r"argument `convention` to be one of \('right', 'left', 'torchmetrics'\), but got 'middle'"):
        HistogramBinning(convention="middle")


# ----------------------------------------------------------------------------- few samples


def test_stratified_sample_proportions_seed_and_no_duplicates():
    labels = np.repeat(np.arange(4), [50, 30, 15, 5])  # N = 100
    idx = stratified_sample(labels, 20, seed=0)
    assert len(idx) == 20 and len(np.unique(idx)) == 20
    assert np.bincount(labels[idx], minlength=4).tolist() == [10, 6, 3, 1]
    assert np.array_equal(idx, stratified_sample(labels, 20, seed=0))
    assert not np.array_equal(idx, stratified_sample(labels, 20, seed=1))


def test_stratified_sample_fewer_samples_than_classes():
    labels = np.repeat(np.arange(1000), 5)  # ImageNet-like: 1000 balanced classes
    idx = stratified_sample(labels, 40, seed=3)
    assert len(idx) == 40 and len(np.unique(labels[idx])) == 40  # 40 different classes, one each
    other = stratified_sample(labels, 40, seed=4)
    assert set(labels[idx]) != set(labels[other])  # which classes is random


@pytest.mark.parametrize("n", [0, 101, 2.5])
def test_stratified_sample_rejects_bad_n(n):
    with pytest.raises(ValueError, match=f"in \\[1, 100\\], but got {n}"):
        stratified_sample(np.zeros(100, dtype=int), n)


def test_fit_on_n_samples_is_one_call():
    z, y = _calibrated_model(5000, 10, seed=8)
    ts = fit_on_n_samples(TemperatureScaling(), 1.5 * z, y, n=40, seed=0)
    idx = stratified_sample(y, 40, seed=0)
    assert np.array_equal(ts.sample_indices_, idx)
    assert ts.temperature_ == TemperatureScaling().fit(1.5 * z[idx], y[idx]).temperature_
    assert ts.n_samples_ == 40
