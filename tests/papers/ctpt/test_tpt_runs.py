"""TPT on a named model and condition (``vlmcal.papers.ctpt.tpt_runs``): the rows, the cache, the
methods' table and the paired bootstrap, checked against direct computations."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from vlmcal import metrics
from vlmcal.papers import ctpt
from vlmcal.adaptation import TPTSettings, tpt_batched
from vlmcal.data.templates import FASHION_MNIST_CLASSNAMES

TINY = "openclip:vlmcal-tiny:random"
FEW = TPTSettings(n_views=8, selection=0.25)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VLMCAL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_split_rows_are_disjoint_stratified_and_seeded():
    labels = torch.arange(10).repeat(30)  # 300 images, 30 per class
    evaluation, calibration = ctpt.split_rows(labels, 50, 40, seed=0)
    assert len(evaluation) == 50 and len(calibration) == 40
    assert not torch.isin(evaluation, calibration).any()
    assert torch.bincount(labels[evaluation], minlength=10).tolist() == [5] * 10  # stratified
    assert torch.bincount(labels[calibration], minlength=10).tolist() == [4] * 10
    again = ctpt.split_rows(labels, 50, 40, seed=0)
    assert torch.equal(again[0], evaluation) and torch.equal(again[1], calibration)
    everything, none = ctpt.split_rows(labels, 0, 0)
    assert len(everything) == 300 and len(none) == 0
    rest, held = ctpt.split_rows(labels, 0, 40)
    assert len(rest) == 260 and not torch.isin(rest, held).any()
    with pytest.raises(ValueError, match="Asked for 200 evaluation and 200 calibration images, but the split holds 300"):
        ctpt.split_rows(labels, 200, 200)
    with pytest.raises(ValueError, match="Expected `n_images` to be an integer >= 0, but got -1"):
        ctpt.split_rows(labels, -1)


@pytest.mark.parametrize(
    "template, phrase",
    [("a photo of a {}.", "a photo of a"), ("itap of a {}.", "itap of a"), ("a {} in a video game.", None), ("{}.", None), ("a {} and a {}.", None)],
)
def test_template_prefix_is_the_context_before_a_final_class_name(template, phrase):
    assert ctpt.template_prefix(template) == phrase


def test_predict_tpt_is_the_engine_on_those_rows_and_is_cached(cache, monkeypatch):
    from vlmcal.pipeline.predictions import load_model, load_test_data

    rows = torch.tensor([3, 17, 40])
    run = ctpt.predict_tpt(TINY, rows=rows, settings=FEW, batch_size=2, progress=False)
    assert run.logits.shape == (3, 10) and run.condition == "clean"
    data = load_test_data("fashion-mnist")
    assert torch.equal(run.labels, data.labels[rows])
    # The same as the engine on the model's own preprocessing of those images, each seeded by its index.
    net = load_model(TINY, None, None)
    from vlmcal.pipeline.predictions import _AsPIL

    images = torch.stack([net.preprocess(_AsPIL(data)[int(i)][0]) for i in rows])
    direct = tpt_batched(net, images, FASHION_MNIST_CLASSNAMES, FEW, indices=rows.tolist())
    torch.testing.assert_close(run.logits, direct.logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(run.initial_logits, direct.initial_logits, atol=1e-4, rtol=1e-4)
    assert len(list((cache / "tpt").glob("*.pt"))) == 1

    def no_compute(*args, **kwargs):
        raise AssertionError("a cached run was recomputed")

    monkeypatch.setattr("vlmcal.papers.ctpt.tpt_runs.tpt_batched", no_compute)
    again = ctpt.predict_tpt(TINY, rows=rows, settings=FEW, batch_size=3, progress=False)
    assert torch.equal(again.logits, run.logits)
    with pytest.raises(AssertionError, match="recomputed"):  # other settings are another entry
        ctpt.predict_tpt(TINY, rows=rows, settings=TPTSettings(n_views=8, selection=0.25, ctpt_lambda=5.0), progress=False)


def test_predict_tpt_explains_bad_input(cache):
    with pytest.raises(ValueError, match="needs a vision-language backbone; 'supervised' has no text tower"):
        ctpt.predict_tpt("supervised", rows=[0])
    with pytest.raises(ValueError, match=r"non-empty indices in \[0, 10000\), but got 1 rows"):
        ctpt.predict_tpt(TINY, rows=[10000], settings=FEW)
    with pytest.raises(ValueError, match="Expected `batch_size` to be an integer >= 1, but got 0"):
        ctpt.predict_tpt(TINY, rows=[0], settings=FEW, batch_size=0)
    with pytest.raises(ValueError, match="Expected `settings` to be a vlmcal.adaptation.TPTSettings"):
        ctpt.predict_tpt(TINY, rows=[0], settings={"n_views": 8})


def _run(logits, initial, labels, rows=None):
    n = len(labels)
    rows = torch.arange(n) if rows is None else rows
    return ctpt.TPTRun("m", "clean", 0, TPTSettings(), rows, labels, logits, initial, torch.zeros(n))


def test_outcomes_table_and_paired_bootstrap_by_hand():
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (60,), generator=gen)
    tpt, zero, ctpt_logits = (torch.randn(60, 4, generator=gen) * s for s in (3.0, 1.0, 1.5))
    runs = {("clean", "hard"): {"TPT": _run(tpt, zero, labels), "C-TPT": _run(ctpt_logits, zero, labels)}}
    outcomes = ctpt.tpt_outcomes(runs, {"hard": 2.0})
    assert set(outcomes) == {("clean", "hard", m) for m in ctpt.METHODS}
    table = ctpt.method_table(outcomes, n_bins=20).set_index("method")
    for method, logits in (("zero-shot", zero), ("TPT", tpt), ("C-TPT", ctpt_logits), ("TPT + TS", tpt / 2.0)):
        probs = logits.softmax(1)
        assert table.loc[method, "ece"] == pytest.approx(metrics.ece(probs, labels, n_bins=20), abs=1e-9)
        assert table.loc[method, "accuracy"] == pytest.approx(metrics.accuracy(probs, labels))
        assert table.loc[method, "gap"] == pytest.approx(metrics.mean_confidence(probs, labels) - metrics.accuracy(probs, labels), abs=1e-6)
    rise = ctpt.tpt_bootstrap(outcomes, lambda m: m[("clean", "hard", "TPT")]["ece"] - m[("clean", "hard", "zero-shot")]["ece"],
                               n_resamples=200)
    assert rise.estimate == pytest.approx(table.loc["TPT", "ece"] - table.loc["zero-shot", "ece"], abs=1e-9)
    assert rise.lower <= rise.estimate <= rise.upper
    contrast = ctpt.tpt_bootstrap(outcomes, ctpt.method_contrast("ece", "TPT", "zero-shot"), n_resamples=200)
    assert (contrast.estimate, contrast.lower, contrast.upper) == (rise.estimate, rise.lower, rise.upper)
    share = ctpt.tpt_bootstrap(outcomes, ctpt.method_contrast("ece", "C-TPT", "TPT", ratio=True), n_resamples=20)
    assert share.estimate == pytest.approx(table.loc["C-TPT", "ece"] / table.loc["TPT", "ece"], rel=1e-9)
    same = ctpt.tpt_bootstrap(outcomes, lambda m: m[("clean", "hard", "TPT")]["accuracy"] - m[("clean", "hard", "TPT + TS")]["accuracy"],
                               n_resamples=50)
    assert (same.estimate, same.lower, same.upper) == (0.0, 0.0, 0.0)  # TS never changes a prediction
    layout = ctpt.paper_layout(ctpt.method_table(outcomes), {"clean": ["clean"]})
    row = table.loc["TPT"]
    assert layout.loc[("clean", "hard"), "TPT"] == f"{100 * row['accuracy']:.1f} / {100 * row['ece']:.2f}"


def test_outcomes_refuse_runs_on_different_images():
    labels = torch.zeros(4, dtype=torch.long)
    z = torch.zeros(4, 3)
    runs = {("clean", "hard"): {"TPT": _run(z, z, labels), "C-TPT": _run(z, z, labels, rows=torch.tensor([0, 1, 2, 5]))}}
    with pytest.raises(ValueError, match="on the same image rows"):
        ctpt.tpt_outcomes(runs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"backbone": "supervised"}, "to name a vision-language backbone"),
        ({"shifts": ["fog"]}, r"Unknown shifts \['fog'\]"),
        ({"severity": 7}, "`severity` to be an integer in 1..5, but got 7"),
        ({"n_images": -3}, "`n_images` to be an integer >= 0, but got -3"),
        ({"lambdas": "[5, -1]"}, "`lambdas` to be a number >= 0"),
        ({"window": 3}, r"`window` to be a fraction of accuracy in \[0, 1\]"),
        ({"augmix": "maybe"}, "augmix"),
    ],
)
def test_page_settings_explain_bad_parameters(kwargs, message):
    base = dict(backbone="default", dataset="fashion-mnist", shifts=["gaussian_noise"], severity=3, n_images=8)
    with pytest.raises(ValueError, match=message):
        ctpt.TPTPageSettings(**{**base, **kwargs})


def test_page_settings_read_papermill_text():
    s = ctpt.TPTPageSettings(backbone="default", dataset="fashion-mnist", shifts="['sketch']", severity="2", n_images="16",
                              ensemble="['a photo of a', 'a photo of the']", lambdas="[0, 20]", augmix="true")
    assert (s.shifts, s.severity, s.n_images, s.ensemble, s.lambdas, s.augmix) == (
        ("sketch",), 2, 16, ("a photo of a", "a photo of the"), (0.0, 20.0), True)
    assert s.conditions == [("clean", 0), ("sketch", 2)] and s.backbones == ("default",)


def test_claim_intervals_are_the_bootstraps_written_out():
    """The C-TPT tables page's verdict intervals equal the same bootstraps written out by hand."""
    from types import SimpleNamespace

    gen = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 4, (40,), generator=gen)
    logits = {k: torch.randn(40, 4, generator=gen) * s for k, s in (("zero", 1.0), ("tpt", 3.0), ("ctpt", 1.5), ("tpt2", 2.0), ("ctpt2", 1.2))}
    runs = {("clean", "hard"): {"TPT": _run(logits["tpt"], logits["zero"], labels), "C-TPT": _run(logits["ctpt"], logits["zero"], labels)},
            ("gaussian_noise-3", "hard"): {"TPT": _run(logits["tpt2"], logits["zero"], labels), "C-TPT": _run(logits["ctpt2"], logits["zero"], labels)}}
    grid = ctpt.TPTGrid(runs, {"hard": 1.7}, {"hard": ("a photo of a",)}, {}, torch.arange(40), torch.arange(40, 60))
    outcomes = grid.outcomes()
    settings = SimpleNamespace(n_bins=10, n_resamples=50, seed=3)
    got = ctpt.claim_intervals(grid, outcomes, settings)

    def boot(figure):
        return ctpt.tpt_bootstrap(outcomes, figure, n_bins=10, n_resamples=50, seed=3)

    def same(a, b):
        assert (a.estimate, a.lower, a.upper) == pytest.approx((b.estimate, b.lower, b.upper), abs=1e-12)

    same(got["C7"]["ece_rise"], boot(ctpt.method_contrast("ece", "TPT", "zero-shot")))
    same(got["C7"]["shifted_ece_rise"], boot(ctpt.method_contrast("ece", "TPT", "zero-shot", ["gaussian_noise-3"])))
    tpt_clean = outcomes[("clean", "hard", "TPT")]
    over = float(tpt_clean[0].double().mean() - tpt_clean[1].double().mean())
    assert got["C7"]["overconfidence"].estimate == pytest.approx(over, abs=1e-9)  # mean confidence minus accuracy
    same(got["C9"]["ece_ratio"], boot(ctpt.method_contrast("ece", "C-TPT", "TPT", ratio=True)))
    others = got["C9"]["others"]
    assert others[["init", "side"]].values.tolist() == [["hard", "shifted"]]
    same(SimpleNamespace(estimate=others["ratio"][0], lower=others["lower"][0], upper=others["upper"][0]),
         boot(ctpt.method_contrast("ece", "C-TPT", "TPT", ["gaussian_noise-3"], ratio=True)))
    same(got["C10"]["ece_difference"], boot(ctpt.method_contrast("ece", "C-TPT", "TPT + TS", ["clean", "gaussian_noise-3"])))
    assert got["C10"]["temperature"] == 1.7 and "20 other labelled clean test images" in got["C10"]["fitted_on"]
    no_ts = ctpt.TPTGrid(runs, {}, {"hard": ("a photo of a",)}, {}, torch.arange(40), torch.arange(0))
    assert ctpt.claim_intervals(no_ts, no_ts.outcomes(), settings)["C10"]["ece_difference"] is None


def test_zero_run_holds_the_log_vote_shares(cache):
    from vlmcal.adaptation import zero_batched
    from vlmcal.backbones import load_backbone
    from vlmcal.data.datasets import load_fashion_mnist

    settings = TPTSettings(n_views=8, selection=0.5)
    run = ctpt.predict_tpt(TINY, rows=[0, 3, 5], settings=settings, zero=True, progress=False)
    net = load_backbone(TINY, device="cpu")
    data = load_fashion_mnist("test", transform=net.preprocess)
    images = torch.stack([data[i][0] for i in (0, 3, 5)])
    direct = zero_batched(net, images, FASHION_MNIST_CLASSNAMES, settings, indices=[0, 3, 5])
    torch.testing.assert_close(run.logits.softmax(1), direct.probs)
    assert torch.isnan(run.dispersion).all()
    tuned = ctpt.predict_tpt(TINY, rows=[0, 3, 5], settings=settings, progress=False)  # TPT: its own cache entry
    assert not torch.allclose(tuned.logits.softmax(1), run.logits.softmax(1))


def test_best_calibrated_ranks_methods_by_mean_ece_with_paired_intervals():
    gen = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 4, (200,), generator=gen)
    onehot = torch.nn.functional.one_hot(labels, 4).float()
    logits = {name: torch.randn(200, 4, generator=gen) * scale + 2.0 * onehot
              for name, scale in (("zero", 1.0), ("TPT", 6.0), ("C-TPT", 2.0), ("O-TPT", 1.5), ("ZERO", 8.0))}
    pair = {m: _run(logits[m], logits["zero"], labels) for m in ("TPT", "C-TPT", "O-TPT", "ZERO")}
    grid = ctpt.TPTGrid({("clean", "hard"): pair}, {}, {"hard": ("a photo of a",)}, {"clean": 50.0},
                        torch.arange(200), torch.arange(0))
    outcomes = grid.outcomes()

    class Settings:
        n_bins, n_resamples, seed = 20, 200, 0

    frame = ctpt.best_calibrated(grid, outcomes, Settings, "clean")
    table = ctpt.method_table(outcomes, n_bins=20).set_index("method")
    assert list(frame.index) == list(table["ece"].sort_values().index)
    for method in frame.index:
        assert frame.loc[method, "ece"] == pytest.approx(table.loc[method, "ece"], abs=1e-9)
        assert frame.loc[method, "minus lowest"] == pytest.approx(table.loc[method, "ece"] - table["ece"].min(), abs=1e-9)
    text = ctpt.ranking_text(frame, "clean")
    assert text.startswith(f"On the clean sets the lowest mean ECE is {frame.index[0]}'s: {frame['ece'].iloc[0]:.4f}")
    assert all(m in text.split("(95% CI")[1] for m in frame.index[1:])  # every other method is named after it
    apart = [m for m in frame.index[1:] if frame.loc[m, "its lower"] > 0]
    assert apart and text.endswith(f"{', '.join(apart)}: higher, each difference's interval above 0.")


def test_ranking_text_explains_an_ece_below_its_own_interval_only_where_there_is_one():
    frame = pd.DataFrame({"ece": [0.10, 0.12], "lower": [0.11, 0.10], "upper": [0.17, 0.16], "minus lowest": [0.0, 0.02],
                          "its lower": [0.0, -0.01], "its upper": [0.0, 0.05]}, index=pd.Index(["C-TPT", "TPT"], name="method"))
    text = ctpt.ranking_text(frame, "shifted")
    assert "For 1 of the 2 methods (C-TPT) the ECE lies below its own interval" in text
    frame.loc["C-TPT", "lower"] = 0.09
    assert "below its own interval" not in ctpt.ranking_text(frame, "shifted")
