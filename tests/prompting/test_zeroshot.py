"""Text features from templates (single and ensemble) and zero-shot logits, against
one-at-a-time references and open_clip's own ``get_logits``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fakes import HashTextBackbone
from vlmcal.backbones.openclip import load_openclip
from vlmcal.prompting.zeroshot import ZeroShotClassifier, class_text_features, zero_shot_logits

CLASSES = ["cat", "dog", "sea lion"]
TEMPLATES = ["a photo of a {}.", "a drawing of a {}.", "itap of the {}."]


def _norm(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def _reference(backbone, classes, templates):
    out = []
    for c in classes:
        per_template = [_norm(backbone.encode_text([t.format(c)])[0].tolist()) for t in templates]
        mean = [sum(col) / len(templates) for col in zip(*per_template)]
        out.append(_norm(mean))
    return torch.tensor(out)


@pytest.mark.parametrize("templates", [TEMPLATES[:1], TEMPLATES[:2], TEMPLATES])
def test_ensemble_matches_reference(templates):
    bb = HashTextBackbone()
    ours = class_text_features(bb, CLASSES, templates)
    torch.testing.assert_close(ours, _reference(bb, CLASSES, templates), atol=1e-6, rtol=0)


def test_single_template_string_and_callable():
    bb = HashTextBackbone()
    single = class_text_features(bb, CLASSES, "a photo of a {}.")
    torch.testing.assert_close(single, _reference(bb, CLASSES, ["a photo of a {}."]), atol=1e-6, rtol=0)
    as_function = class_text_features(bb, CLASSES, [lambda c: f"a photo of a {c}."])
    torch.testing.assert_close(as_function, single)


def test_ensemble_is_not_a_plain_average():
    """Normalising per template first matters when templates give features of different lengths."""
    bb = HashTextBackbone()
    raw = torch.stack([bb.encode_text([t.format(c) for c in CLASSES]) for t in TEMPLATES]).mean(0)
    plain = raw / raw.norm(dim=-1, keepdim=True)
    assert not torch.allclose(class_text_features(bb, CLASSES, TEMPLATES), plain, atol=1e-3)


@pytest.mark.parametrize("bad", [[], ["a photo of a cat."], ["{} and {}"], [3]])
def test_bad_templates(bad):
    with pytest.raises(ValueError, match="template"):
        class_text_features(HashTextBackbone(), CLASSES, bad)


def test_bad_class_names():
    with pytest.raises(ValueError, match="class_names"):
        class_text_features(HashTextBackbone(), "cat", TEMPLATES)


@pytest.mark.parametrize("seed", range(5))
def test_logits_match_loop(seed):
    rng = np.random.default_rng(seed)
    n, c, d = rng.integers(1, 9), rng.integers(2, 7), rng.integers(2, 10)
    img, txt, scale = rng.normal(size=(n, d)), rng.normal(size=(c, d)), float(rng.uniform(1, 100))
    ours = zero_shot_logits(torch.tensor(img), torch.tensor(txt), scale)
    ref = [[scale * sum(img[i, k] * txt[j, k] for k in range(d)) for j in range(c)] for i in range(n)]
    np.testing.assert_allclose(ours.numpy(), np.array(ref), rtol=1e-12)


@pytest.mark.parametrize(
    "img, txt, scale, match",
    [
        (torch.zeros(3, 4), torch.zeros(2, 5), 1.0, r"same D.*\(3, 4\) and \(2, 5\)"),
        (torch.zeros(4), torch.zeros(2, 4), 1.0, "image_features"),
        (torch.zeros(3, 4), torch.zeros(2, 4), 0.0, "logit_scale"),
        (torch.zeros(3, 4), torch.zeros(2, 4), float("nan"), "logit_scale"),
    ],
)
def test_logits_bad_input(img, txt, scale, match):
    with pytest.raises(ValueError, match=match):
        zero_shot_logits(img, txt, scale)


def test_classifier_matches_open_clip_get_logits():
    bb = load_openclip("openclip:vlmcal-tiny:random", device="cpu")
    clf = ZeroShotClassifier(bb, CLASSES, "a photo of a {}.")
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref, _ = bb.model.get_logits(images, bb.tokenizer([f"a photo of a {c}." for c in CLASSES]))
    torch.testing.assert_close(clf.logits(images), ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(clf.logits_from_features(bb.encode_images(images)), clf.logits(images))
    assert clf.class_names == CLASSES and clf.preprocess is bb.preprocess
    ensemble = ZeroShotClassifier(bb, CLASSES, TEMPLATES)
    assert ensemble.cache_identity != clf.cache_identity
