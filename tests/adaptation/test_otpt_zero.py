"""O-TPT and ZERO beside TPT: the orthogonality penalty and one O-TPT step by hand, ZERO's vote by hand, and both
engines' batched paths against their one-image-at-a-time references."""

from __future__ import annotations

import pytest
import torch

from vlmcal.adaptation import TPTSettings, confident_views, marginal_entropy, tpt_batched, zero_batched, zero_reference
from vlmcal.adaptation.tpt import _zero_vote, augmented_views, initial_contexts, input_normalization
from vlmcal.data.templates import FASHION_MNIST_CLASSNAMES
from vlmcal.prompting.dispersion import orthogonality_penalty

NAMES = FASHION_MNIST_CLASSNAMES[:5]


def _images(backbone, n: int) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(n, 3, *backbone.image_size)


def test_orthogonality_penalty_is_the_mean_row_norm_of_the_gram_matrix_minus_one():
    torch.manual_seed(0)
    feats = torch.nn.functional.normalize(torch.randn(3, 6, 16), dim=-1)  # [B, K, D] unit features
    gram = feats @ feats.transpose(1, 2)  # [B, K, K]
    # The Householder reflection of each row onto its axis keeps the row's length: ||H_i g_i - e_i|| = ||g_i|| - 1.
    torch.testing.assert_close(orthogonality_penalty(feats), (gram.norm(dim=-1) - 1).mean(-1))
    equal = torch.ones(4, 8) / 8 ** 0.5  # four equal unit features: every row of G is (1, 1, 1, 1), norm 2
    assert float(orthogonality_penalty(equal)) == pytest.approx(1.0)


def test_one_otpt_step_by_hand(openclip_tiny):
    """TPT's entropy on the kept views plus lambda times the penalty, one AdamW step on the context, then the
    original view classified: computed here with plain autograd on one image, against the batched engine."""
    backbone, lam, lr = openclip_tiny, 18.0, 5e-2
    settings = TPTSettings(n_views=16, selection=0.25, otpt_lambda=lam, lr=lr)
    image = _images(backbone, 1)
    views = augmented_views(image, 16, 0, [0], normalization=input_normalization(backbone))[0]  # [V, C, H, W]
    with torch.no_grad():
        feats = backbone.encode_images(views).float()  # [V, D]
    ctx = initial_contexts(backbone, settings)[0].clone().requires_grad_()  # [M, W]

    def class_features(context):
        return backbone.encode_text_with_context(context.expand(len(NAMES), -1, -1), NAMES).float()  # [K, D]

    logits = backbone.logit_scale * feats @ class_features(ctx).T  # [V, D] @ [D, K] -> [V, K]
    kept = confident_views(logits.detach(), 4)
    loss = marginal_entropy(logits[kept]) + lam * orthogonality_penalty(class_features(ctx))
    (grad,) = torch.autograd.grad(loss, ctx)
    # AdamW's first step: decay by lr * 0.01, then move by lr * g / (|g| + eps) (bias corrections cancel).
    tuned = ctx.detach() * (1 - lr * 0.01) - lr * grad / (grad.abs() + 1e-8)
    with torch.no_grad():
        expected = backbone.logit_scale * feats[0] @ class_features(tuned).T  # [K]
    result = tpt_batched(backbone, image, NAMES, settings)
    torch.testing.assert_close(result.logits[0], expected, atol=1e-4, rtol=1e-4)
    plain = tpt_batched(backbone, image, NAMES, TPTSettings(n_views=16, selection=0.25, lr=lr))
    assert (plain.logits - result.logits).abs().max() > 1e-4  # the penalty changed the step


def test_zero_votes_by_hand(openclip_tiny):
    backbone, settings = openclip_tiny, TPTSettings(n_views=16, selection=0.3)
    images = _images(backbone, 3)
    result = zero_batched(backbone, images, NAMES, settings)
    views = augmented_views(images, 16, 0, normalization=input_normalization(backbone))  # [B, V, C, H, W]
    with torch.no_grad():
        text = backbone.encode_text([f"a photo of a {n}." for n in NAMES])  # [K, D]
        for b in range(3):
            logits = backbone.logit_scale * backbone.encode_images(views[b]) @ text.T  # [V, K]
            probs = logits.softmax(-1)
            entropy = -(probs * probs.log()).sum(-1)
            kept = entropy.argsort()[: int(16 * 0.3)]  # ZERO keeps int(V * gamma) = 4 views
            votes = torch.zeros(len(NAMES))
            for top in logits[kept].argmax(-1):
                votes[top] += 1
            if (votes == votes.max()).sum() == 1:  # no tie: the votes are the result
                torch.testing.assert_close(result.votes[b], votes)
            assert result.votes[b].argmax() in (votes == votes.max()).nonzero()
            torch.testing.assert_close(result.initial_logits[b], logits[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(result.probs.sum(-1), torch.ones(3))
    assert torch.all(result.probs.amax(-1) == result.votes.amax(-1) / result.votes.sum(-1))


def test_zero_breaks_a_tie_with_the_next_most_confident_view():
    logits = torch.tensor([[9.0, 0, 0], [0, 9.0, 0], [0, 0, 1.0], [0, 3.0, 0], [4.0, 0, 0]])  # [V, K]
    # views 0 and 1 are the two confident ones and tie (classes 0 and 1); of the rest, by increasing entropy,
    # view 4 (class 0) comes before view 3 (class 1) and view 2 (class 2, not tied)
    assert _zero_vote(logits, 2).tolist() == [2.0, 1.0, 0.0]


@pytest.mark.parametrize("which", ["standin", "openclip_tiny"])
def test_zero_batched_is_the_reference(which, request):
    backbone = request.getfixturevalue(which)
    names = NAMES if which == "openclip_tiny" else FASHION_MNIST_CLASSNAMES
    if which == "openclip_tiny":
        images = _images(backbone, 4)
    else:
        from vlmcal.data.datasets import load_fashion_mnist

        images = load_fashion_mnist("test").images_float()[:4]
    settings = TPTSettings(n_views=16, selection=0.3, init_phrase=("a photo of a", "a picture of a"))
    batched, reference = zero_batched(backbone, images, names, settings), zero_reference(backbone, images, names, settings)
    assert torch.equal(batched.votes, reference.votes)
    torch.testing.assert_close(batched.initial_logits, reference.initial_logits, atol=1e-4, rtol=1e-4)


def test_bad_otpt_settings_are_explained():
    with pytest.raises(ValueError, match="Expected `otpt_lambda` >= 0"):
        TPTSettings(otpt_lambda=-1.0)
    with pytest.raises(ValueError, match="Expected `text_chunk` to be an integer >= 0"):
        TPTSettings(text_chunk=-5)


def test_text_chunk_caps_the_prompts_per_pass_without_changing_the_result(openclip_tiny, monkeypatch):
    images = _images(openclip_tiny, 3)
    whole = tpt_batched(openclip_tiny, images, NAMES, TPTSettings(n_views=8, selection=0.25))
    sizes, encode = [], openclip_tiny.encode_text_with_context

    def recording(context, names):
        sizes.append(len(names))
        return encode(context, names)

    monkeypatch.setattr(openclip_tiny, "encode_text_with_context", recording)
    chunked = tpt_batched(openclip_tiny, images, NAMES, TPTSettings(n_views=8, selection=0.25, text_chunk=4))
    assert max(sizes[1:]) <= 4 and sum(sizes[1:]) == 3 * len(NAMES)  # after the shared step: 15 prompts, 4 at a time
    torch.testing.assert_close(chunked.logits, whole.logits, atol=1e-4, rtol=1e-4)
