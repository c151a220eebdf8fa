"""The supervised (cross-entropy) baseline (``vlmcal.standins.supervised``), on a tiny
config trained in seconds. Its measured figures: ``tests/standins/test_cards.py``."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from vlmcal.backbones.base import Classifier
from vlmcal.standins import supervised
from vlmcal.data.datasets import load_fashion_mnist

TINY = supervised.SupervisedConfig(widths=(8, 16, 16), epochs=2, batch_size=64, warmup_steps=5, n_train=1536)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("vlmcal-cache")


@pytest.fixture(scope="module")
def clf(cache):
    return supervised.load_supervised("tiny-supervised", device="cpu", cache_dir=cache, progress=False, config=TINY)


def test_logits_shape_and_interface(clf):
    assert isinstance(clf, Classifier) and len(clf.class_names) == 10
    logits = clf.logits(torch.rand(7, 1, 28, 28))
    assert logits.shape == (7, 10) and torch.isfinite(logits).all()
    with pytest.raises(ValueError, match=r"\[B, 1, 28, 28\]"):
        clf.logits(torch.rand(7, 28, 28))


def test_learns_something(clf):
    """Even 1,536 images and 2 epochs beat chance clearly: on 1,000 test images a guesser scores 10% +/- 1%."""
    test = load_fashion_mnist("test")
    x, y = test.images_float()[:1000], test.labels[:1000]
    acc = float((clf.logits(x).argmax(1) == y).float().mean())
    assert acc > 0.25


def test_card_holds_the_training_facts(clf):
    card = clf.card
    assert card.kind == "supervised" and "cross-entropy" in card.logit_scale and card.epochs == 2
    assert card.n_params == sum(p.numel() for p in clf.tower.parameters())
    assert "1,536 images" in card.data and card.to_markdown().startswith("### Model card: `tiny-supervised` (supervised)")


def test_cached_and_deterministic(clf, cache, monkeypatch):
    tower, card = supervised.train_supervised("tiny-supervised", TINY, progress=False)
    for a, b in zip(clf.tower.state_dict().values(), tower.state_dict().values()):
        assert torch.equal(a, b)

    def no_training(*args, **kwargs):
        raise AssertionError("trained again although a cached copy exists")

    monkeypatch.setattr(supervised, "train_supervised", no_training)
    again = supervised.load_supervised("tiny-supervised", device="cpu", cache_dir=cache, progress=False, config=TINY)
    assert again.card == clf.card
    assert replace(card, train_seconds=0.0) == replace(clf.card, train_seconds=0.0)  # (train_seconds differs between runs)


def test_unknown_name():
    with pytest.raises(ValueError, match="Unknown supervised model 'resnet'"):
        supervised.load_supervised("resnet")
