"""Test-time prompt tuning (``vlmcal.adaptation.tpt``): the batched engine against the
one-image-at-a-time reference on both backbone kinds, the loss pieces by hand, and the
gradient reaching only the context."""

from __future__ import annotations

import math

import pytest
import torch

from vlmcal.adaptation import TPTSettings, augmented_views, confident_views, marginal_entropy, tpt_batched, tpt_reference
from vlmcal.data.templates import FASHION_MNIST_CLASSNAMES

FEW_VIEWS = TPTSettings(n_views=16, selection=0.25)  # 4 of 16 views kept: the paper's rule at a test's size
ENSEMBLE = ("a photo of a", "a picture of a")  # 4 tokens each in both tokenizers


def _images(backbone, n: int) -> torch.Tensor:
    torch.manual_seed(1)
    if backbone.name.startswith("openclip:"):
        height, width = backbone.image_size
        return torch.randn(n, 3, height, width)
    from vlmcal.data.datasets import load_fashion_mnist

    return load_fashion_mnist("test").images_float()[:n]


def _class_names(backbone) -> list[str]:
    return FASHION_MNIST_CLASSNAMES[:5] if backbone.name.startswith("openclip:") else FASHION_MNIST_CLASSNAMES


@pytest.mark.parametrize("which", ["standin", "openclip_tiny"])
@pytest.mark.parametrize(
    "settings",
    [
        FEW_VIEWS,
        TPTSettings(n_views=16, selection=0.25, steps=2, ctpt_lambda=20.0, lr=5e-2),
        TPTSettings(n_views=16, selection=0.25, init_phrase=ENSEMBLE, augmix=True, ctpt_lambda=20.0, lr=5e-2),
        TPTSettings(n_views=16, selection=0.25, init_phrase=ENSEMBLE, otpt_lambda=18.0, lr=5e-2, text_chunk=7),
    ],
    ids=["tpt-1-step", "ctpt-2-steps", "ensemble-augmix-ctpt", "ensemble-otpt-chunked"],
)
def test_batched_gives_the_reference_predictions_and_confidences(which, settings, request):
    backbone = request.getfixturevalue(which)
    images, names = _images(backbone, 5), _class_names(backbone)
    batched = tpt_batched(backbone, images, names, settings)
    reference = tpt_reference(backbone, images, names, settings)
    torch.testing.assert_close(batched.logits, reference.logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(batched.initial_logits, reference.initial_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(batched.dispersion, reference.dispersion, atol=1e-5, rtol=1e-5)
    assert torch.equal(batched.logits.argmax(1), reference.logits.argmax(1))
    torch.testing.assert_close(batched.logits.softmax(1).amax(1), reference.logits.softmax(1).amax(1), atol=1e-5, rtol=0)
    # Tuning moved the prompt: the logits are not the initial prompt's.
    assert (batched.logits - batched.initial_logits).abs().max() > 1e-4


def test_an_image_gets_the_same_result_in_any_batch(standin):
    images, names = _images(standin, 6), FASHION_MNIST_CLASSNAMES
    full = tpt_batched(standin, images, names, FEW_VIEWS)
    part = tpt_batched(standin, images[3:5], names, FEW_VIEWS, indices=[3, 4])
    torch.testing.assert_close(part.logits, full.logits[3:5], atol=1e-4, rtol=1e-4)


def test_the_initial_logits_are_zero_shot_with_the_hard_prompt(standin):
    from vlmcal.prompting.zeroshot import zero_shot_logits

    images, names = _images(standin, 4), FASHION_MNIST_CLASSNAMES
    result = tpt_batched(standin, images, names, FEW_VIEWS)
    text = standin.encode_text([f"a photo of a {n}." for n in names])  # [C, D]
    expected = zero_shot_logits(standin.encode_images(images), text, standin.logit_scale)
    torch.testing.assert_close(result.initial_logits, expected, atol=1e-4, rtol=1e-4)


def test_the_initial_logits_of_an_ensemble_are_zero_shot_with_its_prompts(standin):
    from vlmcal.prompting.zeroshot import zero_shot_logits

    images, names = _images(standin, 4), FASHION_MNIST_CLASSNAMES
    result = tpt_batched(standin, images, names, TPTSettings(n_views=16, selection=0.25, init_phrase=list(ENSEMBLE)))
    per_prompt = torch.stack([standin.encode_text([f"{phrase} {n}." for n in names]) for phrase in ENSEMBLE])  # [E, C, D]
    text = torch.nn.functional.normalize(per_prompt.mean(0), dim=-1)  # the ensemble rule, by hand
    expected = zero_shot_logits(standin.encode_images(images), text, standin.logit_scale)
    torch.testing.assert_close(result.initial_logits, expected, atol=1e-4, rtol=1e-4)
    # An ensemble starts elsewhere than either of its prompts alone.
    alone = tpt_batched(standin, images, names, FEW_VIEWS).initial_logits
    assert (result.initial_logits - alone).abs().max() > 1e-3


def test_augmix_views_are_seeded_mixed_and_keep_the_original(openclip_tiny):
    from vlmcal.adaptation import input_normalization

    images = _images(openclip_tiny, 2)
    norm = input_normalization(openclip_tiny)
    assert norm is not None and len(norm[0]) == 3  # open_clip normalises; AugMix must undo it
    assert input_normalization(object()) is None
    plain = augmented_views(images, 6, seed=0)
    mixed = augmented_views(images, 6, seed=0, augmix=True, normalization=norm)
    assert torch.equal(mixed, augmented_views(images, 6, seed=0, augmix=True, normalization=norm))
    assert torch.equal(mixed[:, 0], images)  # the original view is never augmented
    assert not torch.allclose(mixed[:, 1:], plain[:, 1:])  # AugMix changed the crops
    mean, std = (t.view(1, 1, 3, 1, 1) for t in norm)
    raw = mixed[:, 1:] * std + mean
    assert raw.min() >= -1e-5 and raw.max() <= 1 + 1e-5  # mixed in [0, 1], then normalised again


def test_only_the_context_is_tuned(standin):
    before_image = {k: v.clone() for k, v in standin.image_tower.state_dict().items()}
    before_text = {k: v.clone() for k, v in standin.text_tower.bert.state_dict().items()}
    tpt_batched(standin, _images(standin, 3), FASHION_MNIST_CLASSNAMES, TPTSettings(n_views=8, selection=0.25, lr=0.5, steps=2))
    for k, v in standin.image_tower.state_dict().items():
        assert torch.equal(v, before_image[k]), k
    for k, v in standin.text_tower.bert.state_dict().items():
        assert torch.equal(v, before_text[k]), k
    params = list(standin.image_tower.parameters()) + list(standin.text_tower.bert.parameters())
    assert all(p.grad is None for p in params)


def test_marginal_entropy_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # [V=2, C=3]
    p = logits.softmax(dim=1).mean(dim=0)  # the mean probability
    expected = -sum(float(q) * math.log(float(q)) for q in p)
    assert float(marginal_entropy(logits)) == pytest.approx(expected, rel=1e-6)
    batch = torch.stack([logits, logits.flip(1)])  # [B=2, V, C]
    torch.testing.assert_close(marginal_entropy(batch), torch.tensor([expected, expected]))


def test_confident_views_are_the_lowest_entropy_ones():
    logits = torch.tensor([[0.0, 0.0], [5.0, 0.0], [1.0, 0.0], [0.0, 9.0]])  # entropies: high, low, mid, lowest
    assert sorted(confident_views(logits, 2).tolist()) == [1, 3]
    assert confident_views(logits, 1).tolist() == [3]


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 40, 30), (3, 30, 50)])
def test_crops_made_at_once_are_torchvisions_resized_crops(shape):
    """Every crop of :func:`resized_crops` against torchvision's ``resized_crop`` of it, one at a time (then flipped)."""
    from torchvision.transforms.v2.functional import resized_crop

    from vlmcal.adaptation.tpt import crop_boxes, resized_crops

    c, h, w = shape
    image = torch.rand(shape, generator=torch.Generator().manual_seed(3))
    boxes = crop_boxes(torch.Generator().manual_seed(4), 300, h, w)
    top, left, height, width, flipped = boxes
    assert ((top >= 0) & (left >= 0) & (top + height <= h) & (left + width <= w) & (height > 0) & (width > 0)).all()
    area, ratio = (height * width).double() / (h * w), width.double() / height
    assert area.min() >= 0.04 and area.max() <= 1 and ratio.min() > 0.5 and ratio.max() < 2  # 0.08-1, 3/4-4/3, rounded
    assert 0.35 < flipped.double().mean() < 0.65
    top, left, height, width, _ = crop_boxes(torch.Generator().manual_seed(4), 20, 1, 40)  # no try fits a 1 x 40 image:
    assert (height == 1).all() and (width == 1).all() and (left == 19).all() and (top == 0).all()  # the central 4:3 crop
    one_at_a_time = torch.stack([(lambda view: view.flip(-1) if f else view)(
        resized_crop(image, int(t), int(l), int(hh), int(ww), [h, w], antialias=True)) for t, l, hh, ww, f in zip(*boxes)])
    torch.testing.assert_close(resized_crops(image, *boxes), one_at_a_time, atol=1e-5, rtol=0)


def test_views_start_with_the_image_and_are_fixed_by_seed_and_index():
    images = torch.rand(3, 1, 28, 28)
    views = augmented_views(images, 8, seed=0)
    assert views.shape == (3, 8, 1, 28, 28) and torch.equal(views[:, 0], images)
    assert torch.equal(views, augmented_views(images, 8, seed=0))
    assert not torch.equal(views, augmented_views(images, 8, seed=1))
    torch.testing.assert_close(augmented_views(images[2:], 8, seed=0, indices=[2]), views[2:])
    assert not torch.equal(views[:, 1], views[:, 2])  # the crops differ
    state = torch.get_rng_state()
    augmented_views(images, 4, seed=5)
    assert torch.equal(state, torch.get_rng_state())  # the global generator is left as it was


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_views": 0}, "Expected `n_views` to be an integer >= 1, but got 0"),
        ({"steps": 1.5}, "Expected `steps` to be an integer >= 1, but got 1.5"),
        ({"n_views": 8, "selection": 0.1}, r"keeping at least one of the 8 views, but got 0.1"),
        ({"lr": 0.0}, "Expected `lr` > 0, but got 0.0"),
        ({"ctpt_lambda": -1.0}, r"Expected `ctpt_lambda` >= 0 \(0: TPT\), but got -1.0"),
        ({"init_phrase": []}, r"a phrase or a non-empty list of phrases, but got \[\]"),
        ({"augmix": "yes"}, r"Expected `augmix` to be True or False, but got 'yes'"),
    ],
)
def test_bad_settings_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TPTSettings(**kwargs)


def test_bad_input_is_explained(standin):
    with pytest.raises(ValueError, match=r"non-empty \[B, C, H, W\] tensor of backbone inputs, but got \(1, 28, 28\)"):
        tpt_batched(standin, torch.rand(1, 28, 28), FASHION_MNIST_CLASSNAMES)
    with pytest.raises(ValueError, match="finite `images`"):
        tpt_batched(standin, torch.full((1, 1, 28, 28), float("nan")), FASHION_MNIST_CLASSNAMES)
    with pytest.raises(ValueError, match="at least two class names"):
        tpt_batched(standin, torch.rand(1, 1, 28, 28), ["coat"])
    with pytest.raises(ValueError, match="has 4 tokens but `n_ctx` is 3"):
        tpt_batched(standin, torch.rand(1, 1, 28, 28), FASHION_MNIST_CLASSNAMES, TPTSettings(n_views=8, selection=0.25, n_ctx=3))
