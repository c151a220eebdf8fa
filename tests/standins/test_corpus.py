"""The stand-ins' pretraining corpus (``vlmcal.standins.corpus``): deterministic, built from the train
split only, never showing a held-out shift family, and captioned in forms no evaluation prompt shares."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
import torch

from vlmcal.standins import corpus as corpus_module
from vlmcal.standins.corpus import (
    COVERED_FAMILIES,
    HELD_OUT_FAMILIES,
    SCENE_CAPTION_FORMS,
    STYLE_WORDS,
    CorpusConfig,
    covered_shifts,
    held_out_shifts,
    make_corpus,
)
from vlmcal.data.shifts import SHIFT_FAMILIES, list_shifts
from vlmcal.data.templates import CAPTION_POOL, EVALUATION_TEMPLATES, FASHION_MNIST_CLASSNAMES

SMALL = CorpusConfig(n_scenes=3000)


def _norm(text: str) -> str:
    """Lower case, no punctuation, single spaces: two texts equal up to case and punctuation compare equal."""
    return " ".join(re.sub(r"[^a-z0-9{} ]+", " ", text.lower()).split())


@pytest.fixture(scope="module")
def small():
    return make_corpus(SMALL)


def test_the_families_partition_the_suite_and_the_split_is_named():
    named = [s for names in SHIFT_FAMILIES.values() for s in names]
    assert sorted(named) == sorted(list_shifts()) and len(named) == len(set(named))
    assert set(COVERED_FAMILIES) | set(HELD_OUT_FAMILIES) == set(SHIFT_FAMILIES) and not set(COVERED_FAMILIES) & set(HELD_OUT_FAMILIES)
    assert set(covered_shifts()) | set(held_out_shifts()) == set(list_shifts()) and not set(covered_shifts()) & set(held_out_shifts())
    assert set(held_out_shifts()) == {"contrast", "elastic_transform", "pixelate", "jpeg_compression"}


def test_same_seed_same_corpus_other_seed_another(small):
    again = make_corpus(SMALL)
    assert torch.equal(small.images, again.images) and small.captions == again.captions
    assert torch.equal(small.caption_ids, again.caption_ids) and torch.equal(small.items, again.items)
    assert small.styles == again.styles and torch.equal(small.severities, again.severities)
    other = make_corpus(replace(SMALL, seed=1))
    assert not torch.equal(small.images, other.images) and small.captions_per_scene() != other.captions_per_scene()


def test_held_out_families_never_appear(small):
    styles = set(small.styles) - {""}
    assert styles and styles <= set(covered_shifts()) and not styles & set(held_out_shifts())
    # With every scene styled, every covered family shows up, and still no held-out one.
    all_styled = make_corpus(replace(SMALL, p_styled=1.0))
    seen = set(all_styled.styles)
    assert "" not in seen and seen <= set(covered_shifts())
    assert {f for f, names in SHIFT_FAMILIES.items() if seen & set(names)} == set(COVERED_FAMILIES)
    # The plain variant's scenes are never styled, and a style word never reaches a caption.
    plain = make_corpus(replace(SMALL, families=()))
    assert set(plain.styles) == {""} and plain.config.covered_shifts == () and set(plain.config.held_out_shifts) == set(list_shifts())
    assert not any(caption.endswith(f", {word}") for caption in plain.captions for word in STYLE_WORDS.values())


def test_styled_scenes_are_what_apply_shift_makes_of_the_plain_scene(small):
    """The style is the evaluation suite's own shift, drawn at the scene's severity with the scene's index."""
    from vlmcal.data.shifts import apply_shift

    plain = make_corpus(replace(SMALL, families=()))  # the same draws, so the same scenes before styling
    i = next(i for i, s in enumerate(small.styles) if s)
    expected = apply_shift(plain.images[i : i + 1], small.styles[i], int(small.severities[i]), seed=SMALL.seed, indices=torch.tensor([i]))
    torch.testing.assert_close(small.images[i : i + 1], expected)
    unstyled = [i for i, s in enumerate(small.styles) if not s]
    assert torch.equal(small.images[unstyled], plain.images[unstyled])


def test_caption_forms_share_no_template_with_any_evaluation_prompt():
    evaluation = {_norm(t) for t in EVALUATION_TEMPLATES}
    forms = [*SCENE_CAPTION_FORMS, *(f"{f}, {w}" for f in SCENE_CAPTION_FORMS for w in STYLE_WORDS.values())]
    for form in forms:
        assert _norm(form) not in evaluation, form
        # Nor with the items phrase's leading article folded into the form ("a {}" would be "{}" with "a coat").
        assert _norm(form.replace("{}", "a {}")) not in evaluation and _norm(form.replace("{}", "an {}")) not in evaluation, form
    assert not {_norm(t) for t in CAPTION_POOL} & evaluation


def test_no_caption_is_an_evaluation_prompt_filled_in(small):
    filled = {_norm(t.format(name)) for t in EVALUATION_TEMPLATES for name in FASHION_MNIST_CLASSNAMES}
    task = make_corpus(CorpusConfig(kind="task", families=(), n_scenes=3000))
    for c in (small, task):
        assert not {_norm(caption) for caption in c.captions} & filled


def test_captions_name_every_item_and_only_those(small):
    plurals = {"dress": "dresses"}
    for i, caption in enumerate(small.captions_per_scene()):
        labels = [y for y in small.items[i].tolist() if y >= 0]
        assert 1 <= len(labels) <= 4
        named = set()
        for k, name in enumerate(FASHION_MNIST_CLASSNAMES):
            # "shirt" is inside "t-shirt": match whole words only.
            if re.search(rf"(?<![\w-]){re.escape(name)}(s|es)?\b", caption) or plurals.get(name, "#") in caption:
                named.add(k)
        assert named == set(labels), (caption, labels)


def test_scenes_hold_one_to_four_items_on_the_canvas(small):
    assert small.images.shape == (3000, 1, 28, 28) and small.images.dtype == torch.float32
    assert float(small.images.min()) >= 0.0 and float(small.images.max()) <= 1.0
    counts = (small.items >= 0).sum(dim=1)
    assert set(counts.tolist()) == {1, 2, 3, 4}
    assert 0.33 < float((counts == 1).float().mean()) < 0.47  # ITEM_COUNT_PROBS[0] = 0.4
    assert 0.45 < small.summary()["styled_fraction"] < 0.55
    # A plain scene is never blank.
    plain = [i for i, s in enumerate(small.styles) if not s]
    assert bool((small.images[plain].amax(dim=(1, 2, 3)) > 0.2).all())


def test_the_task_corpus_is_the_test_task_itself():
    task = make_corpus(CorpusConfig(kind="task", families=(), n_scenes=500))
    assert len(task) == 500 and set(task.styles) == {""} and bool((task.items[:, 1:] == -1).all())
    pool = {t.format(name) for t in CAPTION_POOL for name in FASHION_MNIST_CLASSNAMES}
    for caption, y in zip(task.captions_per_scene(), task.items[:, 0].tolist()):
        assert caption in pool and FASHION_MNIST_CLASSNAMES[y] in caption
    assert task.summary()["covered_families"] == [] and task.summary()["held_out_families"] == list(SHIFT_FAMILIES)


def test_only_the_train_split_is_read(monkeypatch):
    import vlmcal.data.datasets

    splits = []
    real = vlmcal.data.datasets.load_fashion_mnist
    monkeypatch.setattr(vlmcal.data.datasets, "load_fashion_mnist", lambda split="test", **kw: splits.append(split) or real(split, **kw))
    make_corpus(CorpusConfig(n_scenes=50))
    make_corpus(CorpusConfig(kind="task", families=(), n_scenes=50))
    assert splits == ["train", "train"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "web"}, "Expected `kind` to be 'scenes' or 'task', but got 'web'"),
        ({"n_scenes": 0}, "Expected `n_scenes` to be a positive integer or None, but got 0"),
        ({"n_scenes": 2.5}, "positive integer or None, but got 2.5"),
        ({"families": ("noise", "fog")}, r"Unknown shift families \['fog'\] in `families`; known: noise, blur"),
        ({"kind": "task"}, r"A task-matched corpus holds clean items only: expected `families=\(\)`"),
        ({"p_styled": 1.5}, r"Expected `p_styled` to be a probability in \[0, 1\], but got 1.5"),
    ],
)
def test_bad_configs_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CorpusConfig(**kwargs)


def test_summary_counts_what_the_corpus_holds(small):
    s = small.summary()
    assert s["scenes"] == 3000 and s["distinct_captions"] == len(set(small.captions_per_scene()))
    assert sum(s["items_per_scene"].values()) == 3000
    assert sum(s["style_mix"].values()) == pytest.approx(s["styled_fraction"], abs=1e-3)
    assert s["covered_families"] == list(COVERED_FAMILIES) and s["held_out_families"] == list(HELD_OUT_FAMILIES)
    assert corpus_module.CANVAS == 28
