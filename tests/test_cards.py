"""The measured half of a stand-in's model card (``vlmcal.cards``): tiny models trained in
seconds, measured on a few hundred test images, checked against independent recomputations."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar

from vlmcal import cards
from vlmcal.backbones.standins import StandInConfig, load_default
from vlmcal.backbones.standins.supervised import SupervisedConfig, load_supervised
from vlmcal.data.datasets import load_fashion_mnist
from vlmcal.data.templates import CLIP_TEMPLATES

N = 300  # test images per card here (the book's cards use all 10,000)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("vlmcal-cache")


@pytest.fixture(scope="module")
def vlm(cache):
    config = StandInConfig(widths=(8, 16, 16), epochs=1, batch_size=64, warmup_steps=5, n_train=1024)
    return load_default("tiny-vlm", device="cpu", cache_dir=cache, progress=False, config=config)


@pytest.fixture(scope="module")
def clf(cache):
    config = SupervisedConfig(widths=(4, 8, 8), epochs=1, batch_size=64, warmup_steps=2, n_train=512)
    return load_supervised("tiny-supervised", device="cpu", cache_dir=cache, progress=False, config=config)


@pytest.fixture(scope="module")
def vlm_results(vlm, cache):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a barely trained model's temperature may sit on the search bound
        return cards.measure_card(vlm, n=N, cache_dir=cache)


@pytest.fixture(scope="module")
def test_split():
    test = load_fashion_mnist("test")
    return test.images_float()[:N], test.labels[:N], test.class_names


def _reference_ece(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """A plain loop over bins (lower, upper], as the ES paper defines them."""
    conf, pred = probs.max(dim=1)
    total = 0.0
    for k in range(n_bins):
        lo, hi = k / n_bins, (k + 1) / n_bins
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            total += float(inside.float().mean()) * abs(float(conf[inside].mean()) - float((pred[inside] == labels[inside]).float().mean()))
    return total


def test_a_vlm_card_has_every_shift_and_prompt(vlm_results):
    seen = [(r["shift"], r["severity"], r["prompt"]) for r in vlm_results.rows]
    conditions = [("clean", 0), *cards.CARD_SHIFTS]
    assert seen == [(s, v, p) for s, v in conditions for p in cards.CARD_PROMPTS]
    assert vlm_results.n_test == N and vlm_results.model == "tiny-vlm"
    for r in vlm_results.rows:
        assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["ece"] <= 1.0
    assert math.isfinite(vlm_results.best_temperature) and vlm_results.best_temperature > 0


def test_vlm_figures_are_recomputable(vlm, vlm_results, test_split):
    """The clean rows equal a fresh zero-shot evaluation, written out by hand."""
    x, y, names = test_split
    img = vlm.encode_images(x)  # [N, D]
    hard = vlm.encode_text([f"a photo of a {c}." for c in names])  # [C, D]
    every = vlm.encode_text([t.format(c) for t in CLIP_TEMPLATES for c in names])  # [80 * C, D], one batched call
    mean = every.view(len(CLIP_TEMPLATES), len(names), -1).mean(dim=0)  # [80, C, D] -> [C, D]
    ensemble = mean / mean.norm(dim=-1, keepdim=True)
    for prompt, txt in (("hard prompt", hard), ("80-template ensemble", ensemble)):
        logits = vlm.logit_scale * img @ txt.T  # [N,D] @ [D,C] -> [N,C]
        probs = logits.softmax(dim=-1)
        row = next(r for r in vlm_results.rows if r["shift"] == "clean" and r["prompt"] == prompt)
        assert row["accuracy"] == pytest.approx(float((probs.argmax(1) == y).float().mean()), abs=1e-6)
        assert row["ece"] == pytest.approx(_reference_ece(probs, y), abs=1e-5)
    # The best temperature minimises the clean hard-prompt NLL (scipy's bounded search in log T).
    logits = (vlm.logit_scale * img @ hard.T).double()
    nll = lambda log_t: float(torch.nn.functional.cross_entropy(logits / math.exp(log_t), y))
    ref = math.exp(minimize_scalar(nll, bounds=(math.log(1e-3), math.log(1e3)), method="bounded", options={"xatol": 1e-8}).x)
    assert vlm_results.best_temperature == pytest.approx(ref, rel=1e-3)


def test_a_classifier_card_has_one_row_per_data_set(clf, cache, test_split):
    x, y, _ = test_split
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        results = cards.measure_card(clf, n=N, cache_dir=cache)
    assert [(r["shift"], r["prompt"]) for r in results.rows] == [("clean", "-")] + [(s, "-") for s, _ in cards.CARD_SHIFTS]
    clean = results.rows[0]
    probs = clf.logits(x).softmax(dim=-1)
    assert clean["accuracy"] == pytest.approx(float((probs.argmax(1) == y).float().mean()), abs=1e-6)
    assert clean["ece"] == pytest.approx(_reference_ece(probs, y), abs=1e-5)


def test_results_are_cached_per_model_and_sample(vlm, vlm_results, cache, monkeypatch):
    files = sorted((cache / "cards").glob("tiny-vlm-*.pt"))
    assert len(files) == 1

    def no_measuring(*args, **kwargs):
        raise AssertionError("measured again although a cached table exists")

    monkeypatch.setattr(cards, "_measure", no_measuring)
    assert cards.measure_card(vlm, n=N, cache_dir=cache) == vlm_results
    with pytest.raises(AssertionError, match="measured again"):
        cards.measure_card(vlm, n=N - 1, cache_dir=cache)  # another sample is another table


def test_card_markdown_shows_the_card_then_the_table(vlm, vlm_results, cache):
    md = cards.card_markdown(vlm, n=N, cache_dir=cache)
    assert md.startswith(vlm.card.to_markdown() + "\n\n")
    assert md.count("\n| ") == len(vlm_results.rows) + 2 and f"first {N} Fashion-MNIST test images" in md
    assert vlm_results.to_markdown() in md


def test_a_model_without_a_card_gets_a_pointer():
    class OpenClipLike:
        name = "openclip:ViT-B-16:openai"

    assert cards.card_markdown(OpenClipLike()) == "`openclip:ViT-B-16:openai` is an open_clip model: see its own model card."


def test_bad_input_is_explained(vlm):
    with pytest.raises(ValueError, match=r"Expected one of vlmcal's stand-ins .* but got"):
        cards.measure_card(object())
    for n in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match=r"Expected `n` to be a positive integer .* but got"):
            cards.measure_card(vlm, n=n)


def test_markdown_rounds_like_the_book():
    results = cards.CardResults("m", 10, ({"shift": "invert", "severity": 5, "prompt": "-", "accuracy": 0.5, "ece": np.float64(0.1234)},), 1.5)
    assert results.to_markdown().splitlines()[-1] == "| invert (severity 5) | - | 0.500 | 0.123 |"
