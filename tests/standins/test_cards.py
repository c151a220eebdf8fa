"""The measured half of a stand-in's model card (``vlmcal.standins.cards``): tiny models trained in
seconds, measured on a few hundred test images, checked against independent recomputations."""

from __future__ import annotations

import math
import shutil
import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar

from vlmcal.standins import cards
from vlmcal.standins import StandInConfig, load_default
from vlmcal.standins.supervised import SupervisedConfig, load_supervised
from vlmcal.backbones.base import Backbone
from vlmcal.standins import corpus
from vlmcal.standins.corpus import CorpusConfig
from vlmcal.data.datasets import load_fashion_mnist
from vlmcal.data.shifts import SHIFT_FAMILIES, shift_family
from vlmcal.data.templates import CLIP_TEMPLATES

N = 300  # test images per card here (the book's cards use all 10,000)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("vlmcal-cache")


@pytest.fixture(scope="module")
def vlm(cache):
    config = StandInConfig(widths=(8, 16, 16), epochs=1, batch_size=64, warmup_steps=5, corpus=CorpusConfig(n_scenes=1024))
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


@pytest.fixture(scope="module")
def clf_results(clf, cache):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return cards.measure_card(clf, n=N, cache_dir=cache)


def test_the_card_shifts_span_every_family_and_both_sides_of_the_corpus():
    assert {shift_family(s) for s, _ in cards.CARD_SHIFTS} == set(SHIFT_FAMILIES)
    names = [s for s, _ in cards.CARD_SHIFTS]
    assert len(names) == len(set(names)) <= 10  # small: each shift is a pass over the test images
    assert any(s in corpus.covered_shifts() for s in names) and any(s in corpus.held_out_shifts() for s in names)


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


def test_vlm_rows_say_whether_its_corpus_covered_each_shift(vlm, vlm_results):
    """The labels follow the default corpus's families (the tiny VLM's corpus keeps them), checked by name."""
    covered = set(corpus.covered_shifts())  # noise, blur, weather, rendition
    assert {"gaussian_noise", "gaussian_blur", "brightness", "invert", "sketch"} <= covered
    assert not covered & {"contrast", "pixelate", "jpeg_compression", "elastic_transform"}
    assert set(vlm.covered_shifts) == covered
    for r in vlm_results.rows:
        expected = "clean" if r["shift"] == "clean" else "covered" if r["shift"] in covered else "held out"
        assert r["coverage"] == expected, r
    assert {r["coverage"] for r in vlm_results.rows} == {"clean", "covered", "held out"}


def test_coverage_of_other_models():
    class NoCorpus(Backbone):  # a backbone vlmcal did not pretrain: covered_shifts stays None
        name, logit_scale = "x", 1.0
        encode_images = encode_text = embed_phrase = encode_text_with_context = lambda *a: None

    class Plain(NoCorpus):
        covered_shifts = ()

    assert cards.coverage(NoCorpus(), "contrast") == "unknown" and cards.coverage(NoCorpus(), "clean") == "clean"
    assert cards.coverage(Plain(), "gaussian_noise") == "held out"


def test_a_classifier_card_has_one_row_per_data_set(clf, clf_results, test_split):
    x, y, _ = test_split
    results = clf_results
    assert {r["coverage"] for r in results.rows[1:]} == {"not in training"} and results.rows[0]["coverage"] == "clean"
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
    assert "| test data | coverage | prompt |" in md and "| gaussian_noise (severity 3) | covered | hard prompt |" in md


def _recomputed_means(rows, prompt, label):
    picked = [r for r in rows if r["prompt"] == prompt and r["coverage"] == label]
    return len(picked), float(np.mean([r["accuracy"] for r in picked])), float(np.mean([r["ece"] for r in picked]))


@pytest.mark.parametrize("which", ["vlm", "clf"])
def test_summary_lines_are_the_means_of_the_rows(which, request):
    results = request.getfixturevalue(f"{which}_results")
    lines = results.to_markdown().split("Means by coverage (unweighted over shifts):\n\n")[1].splitlines()
    prompts = list(cards.CARD_PROMPTS) if which == "vlm" else ["-"]
    assert len(lines) == len(prompts)
    for line, prompt in zip(lines, prompts):
        assert line.startswith("- " if prompt == "-" else f"- {prompt}: ")
        labels = ["clean", "covered", "held out"] if which == "vlm" else ["clean", "not in training"]
        for label in labels:
            k, acc, ece = _recomputed_means(results.rows, prompt, label)
            if label == "clean":
                assert f"clean accuracy {acc:.3f}, ECE {ece:.3f}" in line
            else:
                what = {"covered": f"{k} covered shifts", "held out": f"{k} held-out shifts", "not in training": f"{k} shifts not in training"}[label]
                assert f"{what}: mean accuracy {acc:.3f}, mean ECE {ece:.3f}" in line
        for m in (m for m in results.coverage_means() if m["prompt"] == prompt):
            k, acc, ece = _recomputed_means(results.rows, prompt, m["coverage"])
            assert (m["n_shifts"], m["accuracy"], m["ece"]) == (k, pytest.approx(acc, abs=1e-12), pytest.approx(ece, abs=1e-12))
    if which == "vlm":  # 5 covered and 4 held-out shifts in the card, per the corpus's own split
        assert _recomputed_means(results.rows, "hard prompt", "covered")[0] == len([s for s, _ in cards.CARD_SHIFTS if s in corpus.covered_shifts()]) == 5
        assert _recomputed_means(results.rows, "hard prompt", "held out")[0] == len([s for s, _ in cards.CARD_SHIFTS if s in corpus.held_out_shifts()]) == 4


def test_coverage_is_part_of_the_cache_identity(vlm, vlm_results, cache, tmp_path, monkeypatch):
    """The same model under another coverage is another table, not the cached one with stale labels."""
    shutil.copytree(cache / "cards", tmp_path / "cards")  # the cached tables, in a cache this test may add to
    measured = []
    monkeypatch.setattr(cards, "_measure", lambda *a: measured.append(a[-1]) or {"rows": [], "best_temperature": 1.0})
    assert cards.measure_card(vlm, n=N, cache_dir=tmp_path) == vlm_results and not measured  # read from the cache
    monkeypatch.setattr(vlm, "covered_shifts", ())
    cards.measure_card(vlm, n=N, cache_dir=tmp_path)
    assert len(measured) == 1 and {label for shift, label in measured[0].items() if shift != "clean"} == {"held out"}


# ----------------------------------------------------------------------------- the family table


def test_family_table_has_one_row_per_model_from_its_card(vlm, clf, vlm_results, clf_results, cache):
    table = cards.family_table([vlm, clf], n=N, cache_dir=cache)
    assert list(table.index) == ["tiny-vlm", "tiny-supervised"]
    assert table.loc["tiny-vlm", ("pretraining", "learned logit scale")] == pytest.approx(vlm.logit_scale)
    assert math.isnan(table.loc["tiny-supervised", ("pretraining", "learned logit scale")])
    styled, digital = ", ".join(corpus.COVERED_FAMILIES), ", ".join(corpus.HELD_OUT_FAMILIES)
    assert list(table.columns.get_level_values(0).unique()) == ["pretraining", "clean", styled, digital]
    for name, results, prompt in (("tiny-vlm", vlm_results, "hard prompt"), ("tiny-supervised", clf_results, "-")):
        rows = [r for r in results.rows if r["prompt"] == prompt]
        clean = rows[0]
        assert (table.loc[name, ("clean", "accuracy")], table.loc[name, ("clean", "ECE")]) == (clean["accuracy"], clean["ece"])
        for group, members in ((styled, corpus.covered_shifts()), (digital, corpus.held_out_shifts())):
            picked = [r for r in rows if r["shift"] in members]
            assert len(picked) == (5 if group == styled else 4)
            assert table.loc[name, (group, "accuracy")] == pytest.approx(np.mean([r["accuracy"] for r in picked]), abs=1e-12)
            assert table.loc[name, (group, "ECE")] == pytest.approx(np.mean([r["ece"] for r in picked]), abs=1e-12)
    assert table.loc["tiny-vlm", (styled, "coverage")] == "covered" and table.loc["tiny-vlm", (digital, "coverage")] == "held out"
    assert table.loc["tiny-supervised", (styled, "coverage")] == table.loc["tiny-supervised", (digital, "coverage")] == "not in training"


def test_family_table_labels_an_unstyled_corpus_held_out_and_a_partial_one_mixed(vlm_results, monkeypatch):
    class Stub(Backbone):
        logit_scale = 20.0
        encode_images = encode_text = embed_phrase = encode_text_with_context = lambda *a: None

        def __init__(self, name, covered):
            self.name, self.covered_shifts = name, covered

    def fake_measure(model, n=None, cache_dir=None):  # the tiny VLM's figures, relabelled for the stub's coverage
        rows = tuple(dict(r, coverage=cards.coverage(model, r["shift"])) for r in vlm_results.rows)
        return cards.CardResults(model.name, N, rows, 1.0)

    monkeypatch.setattr(cards, "measure_card", fake_measure)
    table = cards.family_table([Stub("plain", ()), Stub("noise-only", corpus.covered_shifts(("noise",)))])
    styled, digital = ", ".join(corpus.COVERED_FAMILIES), ", ".join(corpus.HELD_OUT_FAMILIES)
    assert table.loc["plain", (styled, "coverage")] == table.loc["plain", (digital, "coverage")] == "held out"
    assert table.loc["noise-only", (styled, "coverage")] == "mixed: 1 covered, 4 held out"
    with pytest.raises(ValueError, match=r"Expected each model once .* but got \['plain'\]"):
        cards.family_table([Stub("plain", ()), Stub("plain", ())])


def test_load_family_checks_every_name_before_loading(monkeypatch):
    with pytest.raises(ValueError, match=r"Unknown models \['openclip:ViT-B-32:openai', 'nope'\] for the family table"):
        cards.load_family(["default", "openclip:ViT-B-32:openai", "nope"])
    with pytest.raises(ValueError, match="one string 'default'"):
        cards.load_family("default")
    assert cards.load_family([]) == []


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
    row = {"shift": "invert", "severity": 5, "coverage": "covered", "prompt": "-", "accuracy": 0.5, "ece": np.float64(0.1234)}
    lines = cards.CardResults("m", 10, (row,), 1.5).to_markdown().splitlines()
    assert lines[4] == "| invert (severity 5) | covered | - | 0.500 | 0.123 |"
    assert lines[-1] == "- 1 covered shift: mean accuracy 0.500, mean ECE 0.123"


def _family_frame(rows: dict[str, tuple[float, float, float, float, float, float]]):
    """A table shaped as family_table's: per model (clean acc, clean ECE, group 1 acc, ECE, group 2 acc, ECE)."""
    import pandas as pd

    groups = list(cards.FAMILY_GROUPS)
    columns = pd.MultiIndex.from_tuples([("pretraining", "learned logit scale"), ("clean", "accuracy"), ("clean", "ECE")]
                                        + [(g, w) for g in groups for w in ("coverage", "accuracy", "ECE")])
    records = []
    for name, (ca, ce, a1, e1, a2, e2) in rows.items():
        label = "held out" if name != "default" else "covered"
        records.append([20.0, ca, ce, label, a1, e1, "held out", a2, e2])
    return pd.DataFrame(records, index=pd.Index(list(rows), name="model"), columns=columns)


def test_family_comparison_reads_the_table_it_is_given():
    first, second = list(cards.FAMILY_GROUPS)
    table = _family_frame({"default": (0.70, 0.04, 0.60, 0.10, 0.65, 0.07), "default-plain": (0.72, 0.04, 0.30, 0.40, 0.50, 0.17)})
    text = cards.family_comparison(table)
    assert f"From clean to the shifts of {first} (means over {len(cards.FAMILY_GROUPS[first])} shifts): " in text
    assert "`default` (covered) loses 0.100 accuracy and its ECE grows by 0.060" in text
    assert "`default-plain` (held out) loses 0.420 accuracy and its ECE grows by 0.360" in text
    assert f"On the shifts of {first}, `default` (covered) loses less accuracy than `default-plain` (held out): 0.100 against 0.420" in text
    assert f"On the shifts of {second}, `default` (held out) loses less accuracy" in text
    # The other way round, the words follow the numbers.
    swapped = _family_frame({"default": (0.70, 0.04, 0.20, 0.50, 0.65, 0.07), "default-plain": (0.72, 0.04, 0.60, 0.10, 0.50, 0.17)})
    assert f"On the shifts of {first}, `default` (covered) loses no less accuracy than `default-plain`" in cards.family_comparison(swapped)
    assert "gains 0.050 accuracy" in cards.family_comparison(_family_frame({"default": (0.70, 0.04, 0.75, 0.03, 0.6, 0.1), "supervised": (0.8, 0.03, 0.3, 0.4, 0.5, 0.2)}))
    assert "no comparison to state" in cards.family_comparison(_family_frame({"default-wide": (0.7, 0.04, 0.6, 0.1, 0.6, 0.1)}))
