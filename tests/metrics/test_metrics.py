"""Calibration metrics against torchmetrics, netcal, relplot, direct sums and hand calculations."""

from __future__ import annotations

import math
import warnings
from typing import get_args

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.stats import norm

from vlmcal import metrics as M

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import relplot
    from netcal.metrics import ECE as NetcalECE
    from torchmetrics.functional.classification import multiclass_calibration_error

N_RANDOM_CASES = 500

# The seminar's five cat images: both models predict cat, cat, dog, cat, cat (80% right).
SEMINAR_CONF = {"model 1": [0.75, 0.80, 0.60, 0.80, 0.99], "model 2": [0.98, 0.97, 0.95, 0.95, 0.99]}
SEMINAR_PRED = [0, 0, 1, 0, 0]  # 0 = cat, 1 = dog; every image is a cat


def _seminar(model: str) -> tuple[np.ndarray, np.ndarray]:
    conf = np.array(SEMINAR_CONF[model])
    probs = np.where(np.array(SEMINAR_PRED)[:, None] == np.arange(2), conf[:, None], 1.0 - conf[:, None])  # [5, 2]
    return probs, np.zeros(5, dtype=np.int64)


def _random_case(rng, dtype=torch.float32, min_n=1):
    n = int(rng.integers(min_n, 400))
    c = int(rng.integers(3, 12))
    logits = rng.normal(size=(n, c)) * rng.uniform(0.1, 6.0)  # from near-uniform to sharp
    probs = torch.softmax(torch.tensor(logits, dtype=dtype), dim=1)
    labels = rng.integers(0, c, n)
    labels[: min(n, 3)] = np.arange(3)[: min(n, 3)]  # at least three classes present (netcal needs them)
    return probs, labels, c, int(rng.integers(1, 31))


def _on_an_edge(conf: torch.Tensor, n_bins: int) -> bool:
    inner = torch.cat([torch.linspace(0, 1, n_bins + 1, dtype=conf.dtype), M.binning._equal_width_edges(n_bins, conf.dtype, "cpu")])
    return bool(torch.isin(conf, inner).any())


# ----------------------------------------------------------------------------- references


def test_agrees_with_torchmetrics_on_random_cases():
    rng = np.random.default_rng(0)
    compared_right = 0
    for _ in range(N_RANDOM_CASES):
        probs, labels, c, n_bins = _random_case(rng)
        y = torch.tensor(labels)
        for norm_, ours in (("l1", M.ece), ("max", M.mce)):
            theirs = float(multiclass_calibration_error(probs, y, num_classes=c, n_bins=n_bins, norm=norm_))
            assert ours(probs, labels, n_bins=n_bins, convention="torchmetrics") == pytest.approx(theirs, abs=1e-6)
            conf = probs.max(dim=1).values
            if not _on_an_edge(conf, n_bins):  # conventions agree: the papers' (lower, upper] too
                assert ours(probs, labels, n_bins=n_bins) == pytest.approx(theirs, abs=1e-6)
                compared_right += 1
    assert compared_right > N_RANDOM_CASES  # almost no random confidence lies on an edge


def test_agrees_with_netcal_on_random_cases():
    """netcal bins [lower, upper) with the last bin closed (it clips confidences to [eps, 1 - eps])."""
    rng = np.random.default_rng(1)
    for _ in range(N_RANDOM_CASES):
        probs, labels, _, n_bins = _random_case(rng, dtype=torch.float64, min_n=3)  # netcal: >= 3 classes present
        p = probs.numpy()
        theirs = NetcalECE(bins=n_bins).measure(p, labels)
        assert M.ece(p, labels, n_bins=n_bins, convention="left") == pytest.approx(theirs, abs=1e-6)
        if not _on_an_edge(probs.max(dim=1).values, n_bins):
            assert M.ece(p, labels, n_bins=n_bins) == pytest.approx(theirs, abs=1e-6)


def test_adaptive_ece_agrees_with_netcal_equal_mass_bins():
    rng = np.random.default_rng(2)
    for _ in range(100):
        probs, labels, _, n_bins = _random_case(rng, dtype=torch.float64, min_n=3)
        p = probs.numpy()
        theirs = NetcalECE(bins=n_bins, equal_intervals=False).measure(p, labels)
        assert M.adaptive_ece(p, labels, n_bins=n_bins, convention="left") == pytest.approx(theirs, abs=1e-6)


# ----------------------------------------------------------------------------- where conventions differ


def test_confidence_on_an_edge_changes_bins_and_ece():
    """n_bins = 4, confidences 0.4 (wrong) and 0.5 (right): 0.5 is the edge between bins 1 and 2."""
    probs = torch.tensor([[0.4, 0.35, 0.25], [0.5, 0.3, 0.2]])
    labels = np.array([1, 0])
    # (lower, upper]: both in (0.25, 0.5]: mean confidence 0.45, accuracy 0.5.
    assert M.ece(probs, labels, n_bins=4) == pytest.approx(0.05)
    assert M.reliability_data(probs, labels, n_bins=4).count.tolist() == [0, 2, 0, 0]
    # [lower, upper) (numpy, netcal, torchmetrics): 0.4 alone in [0.25, 0.5), 0.5 alone in [0.5, 0.75).
    expected = 0.5 * 0.4 + 0.5 * 0.5
    assert M.ece(probs, labels, n_bins=4, convention="left") == pytest.approx(expected)
    theirs = float(multiclass_calibration_error(probs, torch.tensor(labels), num_classes=3, n_bins=4))
    assert theirs == pytest.approx(expected)


def test_confidence_of_one_gets_an_extra_bin_in_torchmetrics():
    """Confidence 1.0 (wrong) and 0.9 (right), 10 bins: torchmetrics puts 1.0 in an 11th bin."""
    probs = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.05, 0.05]])
    labels = np.array([1, 0])
    # Papers' convention, 10 bins: 0.9 is an edge, so 0.9 is in (0.8, 0.9] and 1.0 alone in (0.9, 1].
    assert M.ece(probs, labels, n_bins=10) == pytest.approx(0.5 * 1.0 + 0.5 * 0.1)
    # With 4 bins both lie in (0.75, 1]: mean confidence 0.95, accuracy 0.5.
    assert M.ece(probs, labels, n_bins=4) == pytest.approx(0.45)
    assert M.ece(probs, labels, n_bins=4, convention="left") == pytest.approx(0.45)
    # torchmetrics: [0.75, 1.0) holds 0.9 (right), the extra bin holds 1.0 (wrong).
    theirs = float(multiclass_calibration_error(probs, torch.tensor(labels), num_classes=3, n_bins=4))
    assert theirs == pytest.approx(0.5 * 0.1 + 0.5 * 1.0)
    assert M.ece(probs, labels, n_bins=4, convention="torchmetrics") == pytest.approx(theirs)
    data = M.reliability_data(probs, labels, n_bins=4, convention="torchmetrics")
    assert data.count.tolist() == [0, 0, 0, 1, 1]  # five bins for four edges' worth of width
    theirs_max = float(multiclass_calibration_error(probs, torch.tensor(labels), num_classes=3, n_bins=4, norm="max"))
    assert M.mce(probs, labels, n_bins=4) == pytest.approx(0.45)
    assert M.mce(probs, labels, n_bins=4, convention="torchmetrics") == pytest.approx(theirs_max) == pytest.approx(1.0)


def test_torchmetrics_edges_are_off_by_one_ulp_for_15_bins():
    ours = M.binning._equal_width_edges(15, torch.float32, "cpu")  # correctly rounded k / 15
    theirs = torch.linspace(0, 1, 16, dtype=torch.float32)
    differ = torch.nonzero(ours != theirs).flatten().tolist()
    assert differ  # e.g. k = 3: float32(0.2) is not torch.linspace's 4th point
    assert torch.equal(ours.double(), torch.tensor([np.float32(k / 15) for k in range(16)], dtype=torch.float64))
    # A float32 confidence of exactly float32(0.2) sits on vlmcal's edge 3/15: bin 2 under (lower, upper].
    data = M.bin_statistics(torch.tensor([0.2], dtype=torch.float32), torch.tensor([True]), n_bins=15)
    assert data.count.tolist()[2] == 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("convention", get_args(M.Convention))
def test_bin_index_matches_numpy_digitize_on_beside_and_between_edges(convention, dtype):
    """The binning core against numpy.digitize: every edge k / B, its neighbours one ulp away, random values."""
    gen = torch.Generator().manual_seed(11)
    part, right = {"right": (slice(1, -1), True), "left": (slice(1, -1), False), "torchmetrics": (slice(1, None), False)}[convention]
    for n_bins in (1, 4, 10, 15, 20):
        edges = M.binning._equal_width_edges(n_bins, dtype, "cpu")  # [B+1]
        beside = torch.cat([torch.nextafter(edges, torch.zeros_like(edges)), torch.nextafter(edges, torch.ones_like(edges))])
        values = torch.cat([edges, beside.clamp(0.0, 1.0), torch.rand(300, generator=gen, dtype=dtype)])  # [M]
        idx, n_cols = M.bin_index(values, edges, convention)
        assert n_cols == n_bins + (convention == "torchmetrics")
        assert idx.tolist() == np.digitize(values.numpy(), edges.numpy()[part], right=right).tolist()
        assert M.bin_statistics(values, values > 0.5, n_bins=n_bins, convention=convention).count.tolist() == np.bincount(idx, minlength=n_cols).tolist()


def test_bin_index_by_hand():
    edges = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    on_edges = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    assert M.bin_index(on_edges, edges, "right")[0].tolist() == [0, 0, 1, 2, 3]  # (lower, upper], 0 in the first bin
    assert M.bin_index(on_edges, edges, "left")[0].tolist() == [0, 1, 2, 3, 3]  # [lower, upper), 1 in the last bin
    idx, n_cols = M.bin_index(on_edges, edges, "torchmetrics")
    assert idx.tolist() == [0, 1, 2, 3, 4] and n_cols == 5  # [lower, upper), 1.0 in a fifth bin
    with pytest.raises(ValueError, match="argument `convention`"):
        M.bin_index(on_edges, edges, "middle")


# ----------------------------------------------------------------------------- hand-computed


def test_seminar_example_by_hand():
    p1, y = _seminar("model 1")
    p2, _ = _seminar("model 2")
    assert M.accuracy(p1, y) == pytest.approx(0.8) == M.accuracy(p2, y)
    assert M.mean_confidence(p1, y) == pytest.approx(0.788)
    assert M.mean_confidence(p2, y) == pytest.approx(0.968)
    assert M.confidence_gap(p1, y) == pytest.approx(-0.012)
    assert M.confidence_gap(p2, y) == pytest.approx(0.168)
    # One bin: ECE is |mean confidence - accuracy|.
    assert M.ece(p1, y, n_bins=1) == pytest.approx(0.012)
    assert M.ece(p2, y, n_bins=1) == pytest.approx(0.168)
    # 15 bins: model 1's wrong 0.6 sits alone in (8/15, 9/15]; 0.75, 0.8, 0.8 share (11/15, 12/15] (all right);
    # 0.99 alone in (14/15, 1]: (|2.35 - 3| + |0.6 - 0| + |0.99 - 1|) / 5.
    assert M.ece(p1, y) == pytest.approx((0.65 + 0.6 + 0.01) / 5)
    assert M.mce(p1, y) == pytest.approx(0.6)
    data = M.reliability_data(p1, y)
    assert data.count[[8, 11, 14]].tolist() == [1, 3, 1] and data.n == 5
    # Model 2: all five in (14/15, 1].
    assert M.ece(p2, y) == pytest.approx(0.168)
    assert M.mce(p2, y) == pytest.approx(0.168)
    # Brier: sum over two classes of (p - onehot)^2 = 2 (1 - p_cat)^2.
    p_cat = p1[:, 0]
    assert M.brier_score(p1, y) == pytest.approx(np.mean(2 * (1 - p_cat) ** 2))
    assert M.nll(p1, y) == pytest.approx(-np.mean(np.log(p_cat)))


def test_classwise_ece_by_hand():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]])
    labels = np.array([0, 2])
    # 10 bins. Class 0: 0.7 (label) and 0.1 (not) in different bins: |0.7 - 1| + |0.1 - 0| = 0.4.
    # Class 1: 0.2 and 0.6, neither the label: 0.8.  Class 2: 0.1 (not) and 0.3 (label): 0.1 + 0.7 = 0.8.
    expected = (0.4 + 0.8 + 0.8) / (2 * 3)
    assert M.classwise_ece(probs, labels, n_bins=10) == pytest.approx(expected)


def test_classwise_ece_matches_a_one_sample_at_a_time_loop(monkeypatch):
    rng = np.random.default_rng(3)
    monkeypatch.setattr(M.toplabel, "CHUNK_ELEMENTS", 64)  # force many blocks
    for _ in range(20):
        probs, labels, c, n_bins = _random_case(rng, dtype=torch.float64)
        p = probs.numpy()
        total = 0.0
        for k in range(c):
            sums = {}
            for i in range(len(labels)):
                b = max(0, int(np.ceil(p[i, k] * n_bins)) - 1)  # (lower, upper], 0 in bin 0
                gap, cnt = sums.get(b, (0.0, 0))
                sums[b] = (gap + p[i, k] - (labels[i] == k), cnt + 1)
            total += sum(abs(g) for g, _ in sums.values()) / len(labels)
        assert M.classwise_ece(p, labels, n_bins=n_bins) == pytest.approx(total / c, abs=1e-10)
        assert M.classwise_ece(torch.log(probs), labels, n_bins=n_bins, inputs="logits") == pytest.approx(total / c, abs=1e-10)


def test_brier_and_nll_against_direct_formulas(monkeypatch):
    rng = np.random.default_rng(4)
    monkeypatch.setattr(M.toplabel, "CHUNK_ELEMENTS", 100)
    z = rng.normal(size=(300, 7)) * 3
    y = rng.integers(0, 7, 300)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    onehot = np.eye(7)[y]
    assert M.brier_score(p, y) == pytest.approx(np.mean(np.sum((p - onehot) ** 2, axis=1)), abs=1e-12)
    assert M.brier_score(z, y, inputs="logits") == pytest.approx(np.mean(np.sum((p - onehot) ** 2, axis=1)), abs=1e-12)
    ce = float(torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(y)))
    assert M.nll(z, y, inputs="logits") == pytest.approx(ce, abs=1e-12)
    assert M.nll(p, y) == pytest.approx(ce, abs=1e-12)


def test_logits_path_matches_probabilities_and_keeps_clip_scale_confidences_below_one():
    rng = np.random.default_rng(5)
    cos = rng.uniform(0.15, 0.35, size=(400, 10))
    logits = torch.tensor(100.0 * cos, dtype=torch.float32)  # CLIP: logit scale 100
    labels = rng.integers(0, 10, 400)
    p64 = torch.softmax(logits.double(), dim=1)
    for fn in (M.ece, M.mce, M.adaptive_ece, M.classwise_ece):
        assert fn(logits, labels, inputs="logits") == pytest.approx(fn(p64, labels), abs=1e-6)  # float32 blocks
    sharp = torch.tensor([[20.0, 0.0, 0.0]])
    assert float(torch.softmax(sharp, 1).max()) == 1.0  # float32 rounds the softmax to 1
    conf, _ = M.top_label(sharp, [0], inputs="logits")
    assert float(conf[0]) < 1.0


def test_numpy_and_torch_inputs_agree():
    probs, labels, _, n_bins = _random_case(np.random.default_rng(6))
    for fn in (M.ece, M.mce, M.adaptive_ece, M.classwise_ece, M.brier_score, M.nll, M.smooth_ece):
        assert fn(probs.numpy(), labels) == pytest.approx(fn(probs, torch.tensor(labels)), abs=1e-12)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine")
def test_gpu_matches_cpu():
    probs, labels, _, n_bins = _random_case(np.random.default_rng(7))
    for fn in (M.ece, M.mce, M.classwise_ece, M.brier_score, M.nll):
        assert fn(probs.cuda(), torch.tensor(labels).cuda()) == pytest.approx(fn(probs, labels), abs=1e-6)


# ----------------------------------------------------------------------------- smooth ECE


def _smooth_ece_direct(f, y, sigma, m=100_001):
    """The definition, summed directly: the reflected Gaussian kernel on a fine grid of t."""
    t = np.linspace(0.0, 1.0, m)
    h = np.zeros(m)
    for fi, ri in zip(f, f - y):
        h += ri * sum(norm.pdf(t - fi - 2 * j, scale=sigma) + norm.pdf(t + fi - 2 * j, scale=sigma) for j in (-1, 0, 1))
    return np.trapezoid(np.abs(h / len(f)), t)


@pytest.mark.parametrize("sigma", [0.02, 0.05, 0.1, 0.3])
def test_smooth_ece_at_fixed_bandwidth_matches_the_definition_and_relplot(sigma):
    rng = np.random.default_rng(8)
    f = rng.uniform(0, 1, 40)
    y = (rng.uniform(size=40) < f**2).astype(float)
    ours, _ = M.smooth_ece_from_confidences(f, y, sigma=sigma)
    assert ours == pytest.approx(_smooth_ece_direct(f, y, sigma), abs=2e-5)
    # relplot cuts its kernel at |t - s| = 0.5 and reflects once: close for the small bandwidths
    # that the self-consistent choice gives, not at sigma = 0.3 (1.7 sigma cut off).
    if sigma <= 0.1:
        assert ours == pytest.approx(relplot.smECE_sigma(f, y, sigma), abs=1e-3)
    else:
        assert abs(ours - relplot.smECE_sigma(f, y, sigma)) > 1e-3


@pytest.mark.parametrize("n", [50, 500, 5000])
def test_smooth_ece_matches_relplot(n):
    """relplot bisects the bandwidth to 2^-10 and evaluates on 200 points; we solve to 1e-7."""
    rng = np.random.default_rng(n)
    f = rng.uniform(0.3, 1.0, n)
    y = (rng.uniform(size=n) < f**1.5).astype(float)
    ours, sigma = M.smooth_ece_from_confidences(f, y)
    theirs, width = relplot.smECE(f, y, return_width=True)
    assert ours == pytest.approx(theirs, abs=1e-3)
    assert sigma == pytest.approx(width, abs=2e-3)
    assert ours == pytest.approx(sigma, abs=1e-6)  # the fixed point smECE_sigma = sigma


# ----------------------------------------------------------------------------- properties


@st.composite
def _cases(draw):
    n = draw(st.integers(1, 60))
    c = draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    probs = torch.softmax(torch.tensor(rng.normal(size=(n, c)) * draw(st.floats(0.0, 8.0))), dim=1).numpy()
    return probs, rng.integers(0, c, n), draw(st.integers(1, 25)), draw(st.sampled_from(get_args(M.Convention)))


@settings(max_examples=60, deadline=None)
@given(_cases(), st.randoms(use_true_random=False))
def test_ece_in_unit_interval_and_invariant_to_permutation(case, random):
    probs, labels, n_bins, convention = case
    value = M.ece(probs, labels, n_bins=n_bins, convention=convention)
    assert 0.0 <= value <= 1.0
    order = np.array(random.sample(range(len(labels)), len(labels)))
    assert M.ece(probs[order], labels[order], n_bins=n_bins, convention=convention) == pytest.approx(value, abs=1e-12)
    assert 0.0 <= M.mce(probs, labels, n_bins=n_bins, convention=convention) <= 1.0
    assert 0.0 <= M.adaptive_ece(probs, labels, n_bins=n_bins) <= 1.0
    assert 0.0 <= M.classwise_ece(probs, labels, n_bins=n_bins) <= 1.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 12), st.integers(0, 12)), min_size=1, max_size=8),
    st.integers(1, 25),
    st.sampled_from(get_args(M.Convention)),
)
def test_ece_is_zero_when_each_bin_accuracy_equals_its_confidence(groups, n_bins, convention):
    """Groups of n samples, k of them right, all with confidence k / n: every bin's mean equals its accuracy."""
    conf, hits = [], []
    for n, k in groups:
        k = min(k, n)
        conf += [k / n] * n
        hits += [True] * k + [False] * (n - k)
    data = M.bin_statistics(np.array(conf), np.array(hits), n_bins=n_bins, convention=convention)
    assert data.ece == pytest.approx(0.0, abs=1e-12)
    assert data.mce == pytest.approx(0.0, abs=1e-12)


# ----------------------------------------------------------------------------- bootstrap


def test_bootstrap_is_seeded_and_matches_scipy_percentile_interval():
    rng = np.random.default_rng(9)
    probs, labels, _, _ = _random_case(rng)
    a = M.bootstrap_ci(M.accuracy, probs, labels, n_resamples=2000, seed=3)
    b = M.bootstrap_ci(M.accuracy, probs, labels, n_resamples=2000, seed=3)
    c = M.bootstrap_ci(M.accuracy, probs, labels, n_resamples=2000, seed=4)
    assert a == b and (a.lower, a.upper) != (c.lower, c.upper)
    assert a.lower <= a.estimate <= a.upper and a.estimate == M.accuracy(probs, labels)
    correct = (probs.argmax(1).numpy() == labels).astype(float)
    ref = stats.bootstrap((correct,), np.mean, n_resamples=20000, method="percentile", random_state=0).confidence_interval
    assert a.lower == pytest.approx(ref.low, abs=0.02) and a.upper == pytest.approx(ref.high, abs=0.02)
    narrow = M.bootstrap_ci(M.accuracy, probs, labels, n_resamples=2000, level=0.5, seed=3)
    assert a.lower <= narrow.lower <= narrow.upper <= a.upper


def test_bootstrap_passes_metric_arguments():
    p1, y = _seminar("model 1")
    r = M.bootstrap_ci(M.ece, p1, y, n_resamples=50, seed=0, n_bins=1)
    assert r.estimate == pytest.approx(0.012) and r.n_resamples == 50 and 0.0 <= r.lower <= r.upper <= 1.0


def test_draws_are_one_resample_after_another_whatever_the_block(monkeypatch):
    """The draws: resample s is the s-th ``randint(N, (N,))`` of one generator seeded with the seed,
    whether drawn in blocks of resamples (CHUNK_ELEMENTS) or not, and a single stratum changes nothing."""
    n, n_resamples, seed = 37, 25, 5
    gen = torch.Generator().manual_seed(seed)
    expected = torch.stack([M.multiplicities(torch.randint(n, (n,), generator=gen)[None])[0] for _ in range(n_resamples)])
    seen = {}

    def keep(name):
        return lambda w: seen.setdefault(name, w).sum(dim=1)

    M.bootstrap_weights(keep("one block"), n, n_resamples, seed=seed)
    M.bootstrap_weights(keep("one stratum"), n, n_resamples, seed=seed, strata=np.full(n, 7))
    monkeypatch.setattr(M.toplabel, "CHUNK_ELEMENTS", 2 * n)  # two resamples a block
    M.bootstrap_weights(keep("small blocks"), n, n_resamples, seed=seed)
    for name, weights in seen.items():
        assert torch.equal(weights, expected), name
    x = torch.rand(n, generator=gen, dtype=torch.float64)
    rows = M.bootstrap_rows(lambda r: float(x[r].mean()), n, n_resamples, seed=seed)
    monkeypatch.undo()
    assert rows == M.bootstrap_rows(lambda r: float(x[r].mean()), n, n_resamples, seed=seed, strata=torch.zeros(n, dtype=torch.long))


def test_stratified_bootstrap_draws_each_stratum_on_its_own():
    """Strata: every resample draws each stratum's n_g rows from that stratum. The reference is the
    cell-by-cell loop of the label-shift bootstrap: strata in increasing label order, all resamples of
    a stratum as one ``randint(n_g, (S, n_g))`` from one generator."""
    strata = torch.tensor([2, 0, 0, 2, 1, 0, 2, 2, 0])  # [N], labels in no order
    n, n_resamples, seed = len(strata), 400, 3
    gen = torch.Generator().manual_seed(seed)
    expected = torch.zeros(n_resamples, n, dtype=torch.float64)
    for label in (0, 1, 2):
        rows = torch.nonzero(strata == label).flatten()
        expected[:, rows] = M.multiplicities(torch.randint(len(rows), (n_resamples, len(rows)), generator=gen))
    seen = []
    M.bootstrap_weights(lambda w: seen.append(w) or w.sum(dim=1), n, n_resamples, seed=seed, strata=strata.numpy())
    assert torch.equal(seen[0], expected)
    # the stratified bootstrap of a mean over rows, as indices and as weights: the same resamples
    x = torch.tensor([0.0, 1.0, 0.5, 0.2, 3.0, 0.1, 0.9, 0.4, 0.7], dtype=torch.float64)
    by_rows = M.bootstrap_rows(lambda r: float(x[r].mean()), n, n_resamples, seed=seed, strata=strata)
    by_weights = M.bootstrap_weights(lambda w: w @ x / n, n, n_resamples, seed=seed, strata=strata)
    for field in ("estimate", "lower", "upper"):
        assert getattr(by_rows, field) == pytest.approx(getattr(by_weights, field), abs=1e-12)
    # the one row of stratum 1 is in every resample exactly once: x[4] = 3.0 is never dropped
    assert by_rows.lower > 3.0 / n
    with pytest.raises(ValueError, match=r"`strata` to be an integer array of shape \[9\] .* got torch.float64 of shape \(9,\)"):
        M.bootstrap_rows(lambda r: 0.0, n, strata=x)
    with pytest.raises(ValueError, match=r"`strata` to be an integer array of shape \[9\]"):
        M.bootstrap_weights(lambda w: w.sum(dim=1), n, strata=strata[:5])


def test_nan_policy_omits_or_propagates_nan_resamples():
    """The share of row 1 among the drawn rows, NaN when row 0 is not drawn (a quarter of the resamples)."""
    def share(w):  # [S, 2] -> [S]
        return torch.where(w[:, 0] > 0, w[:, 1] / w.sum(dim=1), torch.nan)

    propagated = M.bootstrap_weights(share, 2, 400, seed=0)
    assert propagated.estimate == 0.5 and math.isnan(propagated.lower) and math.isnan(propagated.upper)
    omitted = M.bootstrap_weights(share, 2, 400, seed=0, nan_policy="omit")
    gen = torch.Generator().manual_seed(0)
    values = share(M.multiplicities(torch.randint(2, (400, 2), generator=gen))).numpy()  # the same draws
    assert np.isnan(values).any()
    assert (omitted.lower, omitted.upper) == tuple(np.nanquantile(values, [0.025, 0.975]))
    assert M.bootstrap_rows(lambda r: float(share(M.multiplicities(r[None]))[0]), 2, 400, seed=0, nan_policy="omit") == omitted
    with pytest.raises(ValueError, match=r"argument `nan_policy` to be one of \('propagate', 'omit'\), but got 'raise'"):
        M.bootstrap_weights(share, 2, nan_policy="raise")


# ----------------------------------------------------------------------------- memory


def test_no_second_samples_by_classes_array(monkeypatch):
    """No single allocation reaches the size of the [N, C] input (a softmax of it would)."""
    from torch.profiler import ProfilerActivity, profile

    monkeypatch.setattr(M.toplabel, "CHUNK_ELEMENTS", 1 << 16)
    n, c = 4000, 500
    logits = torch.randn(n, c)
    labels = torch.randint(0, c, (n,))
    full = n * c * 4

    def largest_allocation(fn):
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
        return max(e.cpu_memory_usage for e in prof.events())

    assert largest_allocation(lambda: M.probs_from_logits(logits)) >= full  # the probe sees a full copy
    for fn in (M.ece, M.mce, M.adaptive_ece, M.classwise_ece, M.brier_score, M.nll, M.accuracy, M.smooth_ece):
        assert largest_allocation(lambda: fn(logits, labels, inputs="logits")) < full / 4, fn.__name__
    probs = M.probs_from_logits(logits)
    for fn in (M.ece, M.classwise_ece, M.brier_score, M.nll):
        assert largest_allocation(lambda: fn(probs, labels)) < full / 4, fn.__name__


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_bins=0), "Expected argument `n_bins` to be an integer larger than 0, but got 0"),
        (dict(n_bins=2.5), "n_bins"),
        (dict(convention="middle"), "convention"),
        (dict(inputs="scores"), "inputs"),
    ],
)
def test_bad_arguments_say_what_they_got(kwargs, message):
    p, y = _seminar("model 1")
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        M.ece(p, y, **kwargs)


@pytest.mark.parametrize(
    "probs, labels, message",
    [
        (np.array([[0.5, 0.5], [0.2, 0.8]]), np.array([0]), "one entry per sample"),
        (np.array([[0.5, 0.5]]), np.array([2]), r"labels` in \[0, 1\], but got values in \[2, 2\]"),
        (np.array([[0.5, 0.5]]), np.array([-1]), "labels` in"),
        (np.array([[0.5, 0.5]]), np.array([0.0]), "integer `labels`"),
        (np.array([[np.nan, 0.5]]), np.array([0]), "finite `probs`"),
        (np.array([[np.inf, 0.5]]), np.array([0]), "finite `probs`"),
        (np.array([[1.5, -0.5]]), np.array([0]), r"in \[0, 1\]"),
        (np.array([[0.5, 0.6]]), np.array([0]), "sum to 1"),
        (np.array([0.5, 0.5]), np.array([0]), r"shape \[N, C\]"),
        (np.zeros((0, 3)), np.zeros(0, dtype=int), r"N >= 1"),
        (np.array([[1, 0]]), np.array([0]), "floating-point"),
    ],
)
def test_bad_inputs_raise_clearly(probs, labels, message):
    with pytest.raises(ValueError, match=message):
        M.ece(probs, labels)


def test_nan_logits_raise():
    with pytest.raises(ValueError, match="finite `logits`"):
        M.nll(np.array([[np.nan, 1.0]]), np.array([0]), inputs="logits")


def test_bootstrap_arguments_are_checked():
    p, y = _seminar("model 1")
    with pytest.raises(ValueError, match="`n_resamples` to be an integer larger than 0, but got 0"):
        M.bootstrap_ci(M.ece, p, y, n_resamples=0)
    with pytest.raises(ValueError, match="`level`"):
        M.bootstrap_ci(M.ece, p, y, level=95)


# ----------------------------------------------------------------------------- the diagram


def test_reliability_diagram_colours_over_and_under_confident_bins():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.colors import to_hex

    from vlmcal.papers.common.figures import OVER_CONFIDENT, UNDER_CONFIDENT, plot_reliability_diagram

    p1, y = _seminar("model 1")
    data = M.reliability_data(p1, y, n_bins=10)  # bins 5 (0.6, wrong): over; 7 (0.78, all right) and 9: under
    before = dict(matplotlib.rcParams)
    ax, hist_ax = plot_reliability_diagram(data)
    assert dict(matplotlib.rcParams) == before
    colours = [to_hex(p.get_facecolor(), keep_alpha=False) for p in ax.patches if p.get_height() != 0]
    assert colours.count(OVER_CONFIDENT) == int(np.sum(data.gap > 0)) == 1
    assert colours.count(UNDER_CONFIDENT) == int(np.sum(data.gap < 0)) == 2
    assert [p.get_height() for p in hist_ax.patches] == data.count.tolist()


def test_confusion_matrix_and_per_class_table_against_loops():
    rng = np.random.default_rng(10)
    probs, labels, c, n_bins = _random_case(rng, dtype=torch.float64, min_n=50)
    p = probs.numpy()
    pred = p.argmax(axis=1)
    cm = M.confusion_matrix(p, labels)
    expected = np.zeros((c, c), dtype=np.int64)
    for t, q in zip(labels, pred):
        expected[t, q] += 1
    assert np.array_equal(cm, expected)
    assert np.array_equal(M.confusion_matrix(np.log(p), labels, inputs="logits"), expected)
    table = M.per_class_table(p, labels, [f"class {k}" for k in range(c)], n_bins=n_bins)
    for k in np.unique(labels):
        mine = labels == k
        row = table.loc[f"class {k}"]
        assert row["n"] == mine.sum()
        assert row["accuracy"] == pytest.approx(np.mean(pred[mine] == k))
        assert row["ECE"] == pytest.approx(M.ece(p[mine], labels[mine], n_bins=n_bins))


def test_ece_weighted_matches_binning_the_repeated_rows():
    """Weighted ECE against the reference: bin_statistics on the rows repeated by their weights."""
    gen = torch.Generator().manual_seed(0)
    conf = torch.rand(7, 300, generator=gen, dtype=torch.float64)
    conf[0, :5] = torch.tensor([0.0, 1.0, 1 / 15, 2 / 15, 0.5], dtype=torch.float64)  # edges and ends
    hit = torch.rand(7, 300, generator=gen) < conf
    weights = torch.randint(0, 4, (12, 300), generator=gen).to(torch.float64)  # bootstrap-like multiplicities
    weights[0] = 1.0  # the plain ECE
    for convention in ("right", "left", "torchmetrics"):
        batched = M.ece_weighted(conf, hit, weights, n_bins=15, convention=convention)  # [12, 7], by matmul
        assert batched.shape == (12, 7)
        assert torch.allclose(M.ece_weighted(conf, hit, weights[:5], n_bins=15, convention=convention), batched[:5], atol=1e-12)  # by bincount
        for s in range(5):
            rep = weights[s].long()
            single = [
                M.bin_statistics(conf[r].repeat_interleave(rep), hit[r].repeat_interleave(rep), n_bins=15, convention=convention).ece
                for r in range(7)
            ]
            assert torch.allclose(batched[s], torch.tensor(single, dtype=torch.float64), atol=1e-12)
    # many runs: the blocks over runs (CHUNK_ELEMENTS) give the same as one run at a time
    many = torch.rand(400, 2000, generator=gen, dtype=torch.float64)
    many_hit = torch.rand(400, 2000, generator=gen) < many
    w = torch.ones(9, 2000, dtype=torch.float64)  # more weightings than the bincount path takes: the matmul, in blocks
    blocked = M.ece_weighted(many, many_hit, w)[0]
    assert torch.allclose(blocked[[0, 199, 399]], torch.cat([M.ece_weighted(many[[r]], many_hit[[r]], w[:1])[0] for r in (0, 199, 399)]))
    with pytest.raises(ValueError, match="shape"):
        M.ece_weighted(conf, hit[:, :10], weights)
    with pytest.raises(ValueError, match=r"`weights` of shape \[S, 300\]"):
        M.ece_weighted(conf, hit, weights[:, :10])
    with pytest.raises(ValueError, match="non-negative"):
        M.ece_weighted(conf, hit, -weights)
    with pytest.raises(ValueError, match="finite"):
        M.ece_weighted(conf, hit, torch.full((1, 300), math.inf))
    with pytest.raises(ValueError, match="booleans or 0/1"):
        M.ece_weighted(conf, 2.0 * hit, weights)


def test_bootstrap_weights_draws_the_same_resamples_as_bootstrap_rows():
    """The vectorised bootstrap against the one-resample-at-a-time loop, on the same seed."""
    gen = torch.Generator().manual_seed(1)
    conf = torch.rand(3, 500, generator=gen, dtype=torch.float64)
    hit = torch.rand(3, 500, generator=gen) < conf**2  # over-confident
    one_at_a_time = M.bootstrap_rows(
        lambda rows: float(np.mean([M.bin_statistics(conf[r, rows], hit[r, rows]).ece for r in range(3)])), 500, n_resamples=300, seed=7
    )
    at_once = M.bootstrap_weights(lambda w: M.ece_weighted(conf, hit, w).mean(dim=1), 500, n_resamples=300, seed=7)
    for field in ("estimate", "lower", "upper"):
        assert getattr(at_once, field) == pytest.approx(getattr(one_at_a_time, field), abs=1e-12)
    assert at_once.lower < at_once.estimate < at_once.upper
    with pytest.raises(ValueError, match="one value per resample"):
        M.bootstrap_weights(lambda w: w.sum(), 500, n_resamples=10)
    with pytest.raises(ValueError, match="`n_resamples` to be an integer larger than 0"):
        M.bootstrap_weights(lambda w: w.sum(dim=1), 500, n_resamples=0)

def test_paired_bootstrap_resamples_each_image_set_apart_as_a_reference_loop():
    """Runs on two image sets of different sizes: the interval equals a one-resample-at-a-time loop over the same
    stratified draws (``bootstrap_rows``), each figure computed by ``outcome_figures`` on the drawn rows."""
    from vlmcal.metrics.paired import outcome_figures, paired_bootstrap

    gen = torch.Generator().manual_seed(4)
    sizes = {"a": 30, "b": 17}
    outcomes = {(s, m): (torch.rand(n, generator=gen), torch.rand(n, generator=gen) < 0.6) for s, n in sizes.items() for m in ("x", "y")}
    groups = {key: key[0] for key in outcomes}

    def figure(per_key):  # the mean over sets of x's ECE minus y's
        return sum(per_key[(s, "x")]["ece"] - per_key[(s, "y")]["ece"] for s in sizes) / 2

    got = paired_bootstrap(outcomes, figure, n_bins=5, n_resamples=40, seed=2, groups=groups)
    strata = torch.repeat_interleave(torch.arange(2), torch.tensor(list(sizes.values())))

    def by_loop(rows):
        rows = torch.as_tensor(rows)
        total = 0.0
        for k, s in enumerate(sizes):
            own = rows[strata[rows] == k] - (0 if k == 0 else sizes["a"])  # the drawn rows of this set
            total += (outcome_figures(*(t[own] for t in outcomes[(s, "x")]), 5)["ece"]
                      - outcome_figures(*(t[own] for t in outcomes[(s, "y")]), 5)["ece"])
        return total / 2

    from vlmcal.metrics import bootstrap_rows

    reference = bootstrap_rows(by_loop, len(strata), 40, seed=2, strata=strata)
    assert (got.estimate, got.lower, got.upper) == pytest.approx((reference.estimate, reference.lower, reference.upper), abs=1e-9)
    with pytest.raises(ValueError, match=r"every run of set 'a' to hold the same images, but got runs of \[29, 30\]"):
        paired_bootstrap({**outcomes, ("a", "x"): (torch.rand(29), torch.rand(29) < 0.5)}, figure, groups=groups)
