"""The base-to-new protocol on a named model (``vlmcal.papers.dor.base_to_new``): the shots and test
features against the backbone's own encoder, the cached runs against a direct training run, and
the tables and contrasts against vlmcal's metrics computed one run at a time."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from vlmcal import metrics
from vlmcal.adaptation.prompt_learning import PromptTuner, method_settings
from vlmcal.data.datasets import load_fashion_mnist
from vlmcal.prompting.zeroshot import ZeroShotClassifier
from vlmcal.papers.dor import base_to_new as b2n
from vlmcal.pipeline.predictions import load_model

pytestmark = pytest.mark.slow  # every test here trains prompts (or reads runs trained in its module)

TINY = "openclip:vlmcal-tiny:random"
OUTLIERS = ["hat", "scarf", "glove", "jacket", "sock", "belt", "vest", "skirt"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def data(cache):
    return {seed: b2n.base_to_new_data(TINY, shots=2, seed=seed, max_test=60, cache_dir=cache, progress=False) for seed in (1, 2)}


@pytest.fixture(scope="module")
def pool(cache):
    net = load_model(TINY, None, str(cache))
    with torch.no_grad():
        feats = F.normalize(net.encode_text([f"a photo of a {w}." for w in OUTLIERS]).float(), dim=-1)
    return SimpleNamespace(names=OUTLIERS, text_features=feats,
                           sample=lambda n, generator: torch.randperm(len(OUTLIERS), generator=generator)[:n])


@pytest.fixture(scope="module")
def runs(data, pool, cache):
    out = []
    for seed, d in data.items():
        out.append(b2n.zero_shot_run(d, cache_dir=cache))
        for method in ("CoOp", "CoOp + DOR", "KgCoOp", "KgCoOp + DOR"):
            out.append(b2n.train_method(d, method, pool=pool, cache_dir=cache, progress=False, epochs=2, batch_size=4))
    return out


def test_few_shot_rows():
    labels = torch.arange(10).repeat(20)  # 20 of each class
    rows = b2n.few_shot_rows(labels, [0, 3, 4], shots=5, seed=1)
    assert rows.tolist() == sorted(rows.tolist()) and len(set(rows.tolist())) == 15
    assert torch.bincount(labels[rows], minlength=10).tolist() == [5, 0, 0, 5, 5, 0, 0, 0, 0, 0]
    assert torch.equal(rows, b2n.few_shot_rows(labels, [0, 3, 4], shots=5, seed=1))
    assert not torch.equal(rows, b2n.few_shot_rows(labels, [0, 3, 4], shots=5, seed=2))
    with pytest.raises(ValueError, match="fewer than `shots`"):
        b2n.few_shot_rows(labels, [0], shots=21, seed=0)
    with pytest.raises(ValueError, match="shots"):
        b2n.few_shot_rows(labels, [0], shots=0, seed=0)


def test_data_follows_the_protocol_and_matches_the_encoder(data, cache):
    d = data[1]
    assert d.base_names == ["t-shirt", "trouser", "pullover", "dress", "coat"]
    assert d.new_names == ["sandal", "shirt", "sneaker", "bag", "ankle boot"]
    assert torch.bincount(d.train_labels).tolist() == [2] * 5
    for split in b2n.SPLITS:
        part = d.splits[split]
        assert part.labels.min() >= 0 and part.labels.max() < 5 and len(part.labels) == 30  # 60 stratified: 6 per class
    # The shots' features are the backbone's own features of the drawn training images, as PIL
    # images through its own preprocessing (the path a reader's CLIP takes).
    net = load_model(TINY, None, str(cache))
    train = load_fashion_mnist("train")
    rows = b2n.few_shot_rows(train.labels, range(5), 2, 1)
    pil = [Image.fromarray((train[int(i)][0][0] * 255).round().to(torch.uint8).numpy(), mode="L") for i in rows]
    with torch.no_grad():
        expected = net.encode_images(torch.stack([net.preprocess(image) for image in pil]))
    torch.testing.assert_close(d.train_features, expected, atol=1e-5, rtol=0)
    assert torch.equal(d.train_labels, train.labels[rows])
    with pytest.raises(ValueError, match="text tower"):
        b2n.base_to_new_data("supervised", shots=2)


def test_zero_shot_run_is_the_zero_shot_classifier(data, cache):
    d = data[1]
    run = b2n.zero_shot_run(d, cache_dir=cache)
    net = load_model(TINY, None, str(cache))
    for split in b2n.SPLITS:
        part = d.splits[split]
        classifier = ZeroShotClassifier(net, part.class_names, "a photo of a {}.")
        torch.testing.assert_close(run.logits[split], classifier.logits_from_features(part.image_features), atol=1e-4, rtol=0)
    assert run.history["new_fd"].iloc[0] > 0


def test_a_cached_run_is_the_direct_run_and_is_read_back(data, pool, cache, monkeypatch):
    d = data[2]
    run = b2n.train_method(d, "KgCoOp + DOR", pool=pool, cache_dir=cache, progress=False, epochs=2, batch_size=4)
    net = load_model(TINY, None, str(cache))
    direct = PromptTuner(net, method_settings("KgCoOp + DOR", epochs=2, batch_size=4, seed=2), pool).fit(
        d.train_features, d.train_labels, d.base_names, progress=False)
    for split in b2n.SPLITS:
        part = d.splits[split]
        torch.testing.assert_close(run.logits[split], direct.logits(part.image_features, part.class_names), atol=1e-5, rtol=0)
    assert run.weight == 2.0 and run.method == "KgCoOp + DOR" and list(run.history["epoch"]) == [0, 1, 2]

    def no_training(*args, **kwargs):
        raise AssertionError("trained again instead of reading the cache")

    monkeypatch.setattr(PromptTuner, "fit", no_training)
    again = b2n.train_method(d, "KgCoOp + DOR", pool=pool, cache_dir=cache, progress=False, epochs=2, batch_size=4)
    assert torch.equal(again.logits["new"], run.logits["new"])
    with pytest.raises(AssertionError, match="trained again"):  # other settings are another entry
        b2n.train_method(d, "KgCoOp + DOR", pool=pool, cache_dir=cache, progress=False, epochs=3, batch_size=4)
    with pytest.raises(ValueError, match="outlier pool"):
        b2n.train_method(d, "CoOp + DOR", cache_dir=cache, progress=False)


def test_run_table_against_the_metrics_one_run_at_a_time(runs):
    table = b2n.run_table(runs, n_bins=10)
    assert len(table) == len(runs)
    for run, row in zip(runs, table.itertuples()):
        for split in b2n.SPLITS:
            logits, labels = run.logits[split], run.labels[split]
            assert getattr(row, f"{split}_accuracy") == pytest.approx(metrics.accuracy(logits, labels, inputs="logits"), abs=1e-9)
            assert getattr(row, f"{split}_ece") == pytest.approx(metrics.ece(logits.double(), labels, n_bins=10, inputs="logits"), abs=1e-9)
            assert getattr(row, f"{split}_gap") == pytest.approx(metrics.confidence_gap(logits.double(), labels, inputs="logits"), abs=1e-9)
        a, b = row.base_accuracy, row.new_accuracy
        assert row.hm == pytest.approx(2 * a * b / (a + b) if a and b else 0.0)
    summary = b2n.method_summary(table)
    assert list(summary.index) == ["zero-shot", "CoOp", "CoOp + DOR", "KgCoOp", "KgCoOp + DOR"]
    coop = table[table["method"] == "CoOp"]
    assert summary.loc["CoOp", "new_ece"] == pytest.approx(coop["new_ece"].mean())
    assert summary.loc["CoOp", "new_ece_sd"] == pytest.approx(coop["new_ece"].std(ddof=1))


def test_contrasts_by_hand(runs):
    contrasts = {"gap": b2n.Contrast("new", "gap", "CoOp"), "ece": b2n.Contrast("base", "ece", "KgCoOp + DOR", "KgCoOp"),
                 "fd": b2n.Contrast("new", "fd", "CoOp", "zero-shot")}
    figures = b2n.contrast_figures(runs, contrasts, n_bins=10, n_resamples=200).set_index("name")
    by = {(r.method, r.seed): r for r in runs}

    def gap(method, seed, split):
        r = by[(method, seed)]
        return metrics.confidence_gap(r.logits[split].double(), r.labels[split], inputs="logits")

    def ece(method, seed, split):
        r = by[(method, seed)]
        return metrics.ece(r.logits[split].double(), r.labels[split], n_bins=10, inputs="logits")

    expected_gap = [gap("CoOp", s, "new") for s in (1, 2)]
    expected_ece = [ece("KgCoOp + DOR", s, "base") - ece("KgCoOp", s, "base") for s in (1, 2)]
    expected_fd = [by[("CoOp", s)].history["new_fd"].iloc[-1] - by[("zero-shot", s)].history["new_fd"].iloc[0] for s in (1, 2)]
    for name, expected in (("gap", expected_gap), ("ece", expected_ece), ("fd", expected_fd)):
        row = figures.loc[name]
        assert row["per_seed"] == pytest.approx(expected, abs=1e-9) and row["seeds"] == 2
        assert row["estimate"] == pytest.approx(sum(expected) / 2, abs=1e-9)
        assert row["lower"] <= row["estimate"] + 1e-12 and row["estimate"] <= row["upper"] + 1e-12
    assert figures.loc["fd", "lower"] == figures.loc["fd", "upper"] == figures.loc["fd", "estimate"]
    assert figures.loc["gap", "upper"] > figures.loc["gap", "lower"]  # image noise is resampled
    with pytest.raises(ValueError, match="twice"):
        b2n.contrast_figures(runs + runs[:1], contrasts)
    with pytest.raises(ValueError, match="no seed"):
        b2n.contrast_figures(runs, {"x": b2n.Contrast("new", "ece", "CoOp", "no such method")})


def test_weight_sweep_varies_the_named_setting(data, pool, cache):
    sweep = b2n.weight_sweep(data[1], [1.0, 4.0], pool=pool, cache_dir=cache, progress=False, epochs=1, batch_size=4)
    assert sweep[["method", "weight"]].values.tolist() == [["KgCoOp", 1.0], ["KgCoOp", 4.0], ["CoOp + DOR", 1.0], ["CoOp + DOR", 4.0]]
    assert not math.isclose(sweep["base_ece"].iloc[2], sweep["base_ece"].iloc[3]) or not math.isclose(
        sweep["new_ece"].iloc[2], sweep["new_ece"].iloc[3])
