"""The prompt learner on a tiny random-weight open_clip model: it reproduces hard prompts, and
an optimiser step moves the context vectors and nothing else."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vlmcal.backbones.openclip import load_openclip
from vlmcal.prompting.prompt_learner import PromptLearner, PromptSettings

CLASSES = ["cat", "dog", "sea lion", "t-shirt/top", "ankle boot"]


@pytest.fixture(scope="module")
def tiny():
    return load_openclip("openclip:vlmcal-tiny:random", device="cpu")


def _open_clip_reference(bb, prompts):
    """Plain open_clip: tokenise, encode, normalise."""
    with torch.no_grad():
        return F.normalize(bb.model.encode_text(bb.tokenizer(prompts)), dim=-1)


@pytest.mark.parametrize("arch, class_specific", [("vlmcal-tiny", False), ("vlmcal-tiny", True),
                                                  ("vlmcal-tiny-customtext", False)])
def test_phrase_init_reproduces_hard_prompt(arch, class_specific):
    tiny = load_openclip(f"openclip:{arch}:random", device="cpu")
    learner = PromptLearner(tiny, CLASSES, PromptSettings(n_ctx=4, init_phrase="a photo of a", class_specific=class_specific))
    prompts = [f"a photo of a {c}." for c in CLASSES]
    with torch.no_grad():
        ours = learner()
    assert ours.shape == (len(CLASSES), tiny.embed_dim)
    torch.testing.assert_close(ours, tiny.encode_text(prompts), atol=1e-5, rtol=0)
    torch.testing.assert_close(ours, _open_clip_reference(tiny, prompts), atol=1e-5, rtol=0)


def test_other_phrase_lengths(tiny):
    learner = PromptLearner(tiny, CLASSES, PromptSettings(n_ctx=6, init_phrase="a low resolution photo of the"))
    with torch.no_grad():
        ours = learner()
    torch.testing.assert_close(
        ours, _open_clip_reference(tiny, [f"a low resolution photo of the {c}." for c in CLASSES]), atol=1e-5, rtol=0
    )


def test_one_step_changes_only_the_context(tiny):
    learner = PromptLearner(tiny, CLASSES, PromptSettings())
    assert [p is learner.ctx for p in learner.parameters()] == [True]
    before_model = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    before_ctx = learner.ctx.detach().clone()

    gen = torch.Generator().manual_seed(0)
    image_features = F.normalize(torch.randn(8, tiny.embed_dim, generator=gen), dim=-1)  # [N, D]
    labels = torch.randint(0, len(CLASSES), (8,), generator=gen)
    optimiser = torch.optim.SGD(learner.parameters(), lr=1.0)
    logits = tiny.logit_scale * image_features @ learner().T  # [N,D] @ [D,C] -> [N,C]
    F.cross_entropy(logits, labels).backward()
    assert learner.ctx.grad is not None and learner.ctx.grad.abs().sum() > 0
    optimiser.step()

    assert not torch.equal(learner.ctx.detach(), before_ctx)
    for name, value in tiny.model.state_dict().items():
        assert torch.equal(value, before_model[name]), f"{name} changed"
    assert all(p.grad is None for p in tiny.model.parameters())


def test_context_is_used(tiny):
    learner = PromptLearner(tiny, CLASSES, PromptSettings(class_specific=True))
    with torch.no_grad():
        before = learner()
        # Move only the third class's context (not by a constant: LayerNorm would cancel that).
        learner.ctx[2] += torch.randn(learner.ctx[2].shape, generator=torch.Generator().manual_seed(0))
        after = learner()
    changed = (after - before).abs().amax(dim=1) > 1e-4
    assert changed.tolist() == [False, False, True, False, False]


@pytest.mark.parametrize("class_specific", [False, True])
def test_random_init(tiny, class_specific):
    settings = PromptSettings(n_ctx=16, init_phrase=None, class_specific=class_specific, seed=3)
    a, b = PromptLearner(tiny, CLASSES, settings), PromptLearner(tiny, CLASSES, settings)
    expected = (len(CLASSES), 16, 64) if class_specific else (16, 64)
    assert a.ctx.shape == expected
    assert torch.equal(a.ctx, b.ctx)
    assert float(a.ctx.detach().std()) == pytest.approx(0.02, rel=0.15)
    other = PromptLearner(tiny, CLASSES, PromptSettings(n_ctx=16, init_phrase=None, class_specific=class_specific, seed=4))
    assert not torch.equal(a.ctx, other.ctx)
    with torch.no_grad():
        feats = a()
    torch.testing.assert_close(feats.norm(dim=-1), torch.ones(len(CLASSES)))


def test_reset(tiny):
    learner = PromptLearner(tiny, CLASSES, PromptSettings())
    start = learner.ctx.detach().clone()
    with torch.no_grad():
        learner.ctx.add_(1.0)
    learner.reset()
    assert torch.equal(learner.ctx.detach(), start)


def test_phrase_length_must_match(tiny):
    with pytest.raises(ValueError, match="has 4 tokens but `n_ctx` is 16"):
        PromptLearner(tiny, CLASSES, PromptSettings(n_ctx=16))


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n_ctx": 0}, "n_ctx"), ({"init_phrase": "  "}, "init_phrase"), ({"init_std": 0.0}, "init_std")],
)
def test_settings_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PromptSettings(**kwargs)


def test_context_shape_is_checked(tiny):
    with pytest.raises(ValueError, match=r"\[M, 64\].*got \(4, 32\)"):
        tiny.encode_text_with_context(torch.zeros(4, 32), CLASSES)
    with pytest.raises(ValueError, match=r"\[5, M, 64\].*got \(2, 4, 64\)"):
        tiny.encode_text_with_context(torch.zeros(2, 4, 64), CLASSES)
