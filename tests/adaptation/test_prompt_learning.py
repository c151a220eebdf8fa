"""Prompt learning (``vlmcal.adaptation.prompt_learning``): CoOp, KgCoOp and DOR on a tiny stand-in
and a tiny random-weight open_clip model, with the regularisers and the feature divergence
checked against hand-written references."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from vlmcal.adaptation.prompt_learning import (
    PromptTuner,
    PromptTuningSettings,
    TrackedSplit,
    anchor_loss,
    learning_rate,
    method_settings,
)
from vlmcal.prompting.dispersion import feature_divergence
from vlmcal.prompting.prompt_learner import PromptLearner, PromptSettings
from vlmcal.prompting.zeroshot import class_text_features

pytestmark = pytest.mark.slow  # every test here trains prompts (or reads runs trained in its module)

BASE = ["t-shirt", "trouser", "pullover"]
NEW = ["sandal", "sneaker"]
OUTLIERS = ["hat", "scarf", "glove", "jacket", "sock", "belt", "vest", "skirt"]


def _pool(backbone, names=OUTLIERS, template="a photo of a {}."):
    """An outlier pool of fixed names: what the trainer reads from one (names, frozen features, sample)."""
    with torch.no_grad():
        feats = F.normalize(backbone.encode_text([template.format(n) for n in names]).float(), dim=-1)  # [K, D]
    draws = []

    def sample(n, generator):
        drawn = torch.randperm(len(names), generator=generator)[:n]
        draws.append(drawn.tolist())
        return drawn

    return SimpleNamespace(names=list(names), text_features=feats, sample=sample, draws=draws)


def _shots(backbone, n_per_class=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    feats = F.normalize(torch.randn(n_per_class * len(BASE), backbone.embed_dim, generator=gen), dim=-1)  # [N, D]
    labels = torch.arange(len(BASE)).repeat_interleave(n_per_class)
    return feats, labels


@pytest.mark.parametrize("which", ["standin", "openclip_tiny"])
def test_kgcoop_and_dor_regularisers_are_zero_at_the_zero_shot_initialisation(which, request):
    backbone = request.getfixturevalue(which)
    learner = PromptLearner(backbone, BASE, PromptSettings(n_ctx=4, init_phrase="a photo of a"))
    pool = _pool(backbone)
    kg = anchor_loss(learner(), class_text_features(backbone, BASE, "a photo of a {}."))
    dor = anchor_loss(learner(OUTLIERS[:3]), pool.text_features[:3])
    assert abs(float(kg.detach())) < 1e-5 and abs(float(dor.detach())) < 1e-5
    # Away from the initialisation they are not zero: the check above can fail.
    with torch.no_grad():
        learner.ctx.add_(torch.randn(learner.ctx.shape, generator=torch.Generator().manual_seed(0)))
    assert float(anchor_loss(learner(), class_text_features(backbone, BASE, "a photo of a {}.")).detach()) > 1e-3


@pytest.mark.parametrize("which", ["standin", "openclip_tiny"])
@pytest.mark.parametrize("method", ["KgCoOp", "KgCoOp + DOR", "CoOp + DOR"])
def test_regulariser_gradients_reach_only_the_context(which, method, request):
    backbone = request.getfixturevalue(which)
    tuner = PromptTuner(backbone, method_settings(method), _pool(backbone))
    learner = PromptLearner(backbone, BASE, tuner.settings.prompt)
    with torch.no_grad():  # off the initialisation, so that every term has a gradient
        learner.ctx.add_(0.1 * torch.randn(learner.ctx.shape, generator=torch.Generator().manual_seed(1)))
    tower = [p for p in _tower_parameters(backbone)]
    for p in tower:
        p.grad = None
    frozen = class_text_features(backbone, BASE, tuner.settings.template) if tuner.settings.method == "KgCoOp" else None
    feats, labels = _shots(backbone)
    _, _, regulariser = tuner._step_loss(learner, feats, labels, frozen, torch.Generator().manual_seed(0))
    regulariser.backward()
    assert learner.ctx.grad is not None and float(learner.ctx.grad.abs().sum()) > 0
    assert all(p.grad is None for p in tower)


def _tower_parameters(backbone):
    if hasattr(backbone, "model"):
        return list(backbone.model.parameters())
    return list(backbone.text_tower.bert.parameters()) + list(backbone.image_side.parameters())


@pytest.mark.parametrize("which", ["standin", "openclip_tiny"])
@pytest.mark.parametrize("method", ["CoOp", "CoOp + DOR", "KgCoOp", "KgCoOp + DOR"])
def test_the_same_code_trains_on_both_backbones(which, method, request):
    backbone = request.getfixturevalue(which)
    before = {i: p.detach().clone() for i, p in enumerate(_tower_parameters(backbone))}
    feats, labels = _shots(backbone)
    settings = method_settings(method, epochs=3, batch_size=5, lr=0.05, warmup_epochs=0)
    tuner = PromptTuner(backbone, settings, _pool(backbone)).fit(feats, labels, BASE, progress=False)
    initial = PromptLearner(backbone, BASE, settings.prompt).ctx.detach()
    assert not torch.equal(tuner.learner_.ctx.detach(), initial)  # the context moved
    for i, p in enumerate(_tower_parameters(backbone)):  # the backbone did not
        assert torch.equal(p.detach(), before[i])
    history = tuner.history_
    assert list(history["epoch"]) == [0, 1, 2, 3]
    assert history["loss"].iloc[1:].notna().all() and math.isfinite(tuner.seconds_per_epoch_)
    if "DOR" in method or method == "KgCoOp":
        assert (history["regulariser"].iloc[1:] > 0).all()
    else:
        assert (history["regulariser"].iloc[1:] == 0).all()
    logits = tuner.logits(feats[:4], NEW)
    assert logits.shape == (4, len(NEW)) and torch.isfinite(logits).all()


def test_dor_draws_as_many_outliers_as_classes_at_every_step(standin):
    pool = _pool(standin)
    feats, labels = _shots(standin, n_per_class=4)  # 12 shots
    settings = method_settings("CoOp + DOR", epochs=2, batch_size=5)  # 3 steps per epoch
    PromptTuner(standin, settings, pool).fit(feats, labels, BASE, progress=False)
    assert len(pool.draws) == 6 and all(len(d) == len(BASE) and len(set(d)) == len(BASE) for d in pool.draws)
    assert len({tuple(d) for d in pool.draws}) > 1  # redrawn, not one fixed set


def test_one_step_matches_a_hand_written_kgcoop_step(standin):
    """One SGD step of the tuner against the loss written out by hand (CE + w * (1 - mean cos))."""
    feats, labels = _shots(standin, n_per_class=2)  # 6 shots, one batch
    settings = method_settings("KgCoOp", epochs=1, batch_size=6, warmup_epochs=0, lr=0.01, momentum=0.0, weight_decay=0.0)
    tuner = PromptTuner(standin, settings).fit(feats, labels, BASE, progress=False)

    learner = PromptLearner(standin, BASE, settings.prompt)
    zero_shot = F.normalize(standin.encode_text([f"a photo of a {c}." for c in BASE]), dim=-1).detach()  # [C, D]
    text = learner()  # [C, D]
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(settings.seed))
    logits = standin.logit_scale * feats[order] @ text.T  # [N, D] @ [D, C] -> [N, C]
    cos = (text * zero_shot).sum(-1) / (text.norm(dim=-1) * zero_shot.norm(dim=-1))  # [C]
    loss = F.cross_entropy(logits, labels[order]) + 8.0 * (1 - cos.mean())
    loss.backward()
    expected = learner.ctx.detach() - 0.01 * learner.ctx.grad  # plain SGD, cosine lr at epoch 0 of 1 = lr
    torch.testing.assert_close(tuner.learner_.ctx.detach(), expected, atol=1e-5, rtol=1e-4)
    assert abs(tuner.history_["loss"].iloc[1] - float(loss.detach())) < 1e-4


def test_following_splits_does_not_change_training(standin):
    feats, labels = _shots(standin)
    settings = method_settings("CoOp + DOR", epochs=2, batch_size=4)
    plain = PromptTuner(standin, settings, _pool(standin)).fit(feats, labels, BASE, progress=False)
    new_feats = F.normalize(torch.randn(10, standin.embed_dim, generator=torch.Generator().manual_seed(3)), dim=-1)
    tracked = PromptTuner(standin, settings, _pool(standin)).fit(
        feats, labels, BASE, track={"new": TrackedSplit(new_feats, torch.arange(10) % 2, NEW)}, progress=False)
    assert torch.equal(plain.learner_.ctx, tracked.learner_.ctx)
    row = tracked.history_.iloc[-1]
    probs = tracked.logits(new_feats, NEW).softmax(-1)  # [10, 2]
    assert row["new_confidence"] == pytest.approx(float(probs.max(-1).values.mean()), abs=1e-6)
    assert row["new_accuracy"] == pytest.approx(float((probs.argmax(-1) == torch.arange(10) % 2).float().mean()))
    assert row["new_fd"] == pytest.approx(float(feature_divergence(tracked.text_features(NEW), 3)), abs=1e-6)


def test_feature_divergence_against_a_loop():
    feats = F.normalize(torch.randn(6, 5, generator=torch.Generator().manual_seed(0)), dim=-1)
    for m in (1, 2, 5, 9):
        per_class = []
        for c in range(6):
            distances = sorted(float((feats[c] - feats[j]).norm()) for j in range(6) if j != c)
            per_class.append(sum(distances[:min(m, 5)]) / min(m, 5))
        assert float(feature_divergence(feats, m)) == pytest.approx(sum(per_class) / 6, abs=1e-6)
    with pytest.raises(ValueError, match="C >= 2"):
        feature_divergence(feats[:1])
    with pytest.raises(ValueError, match="n_neighbours"):
        feature_divergence(feats, 0)


def test_schedule_and_settings():
    s = PromptTuningSettings(epochs=10, warmup_epochs=1, lr=0.002, warmup_lr=1e-5)
    assert learning_rate(s, 0) == 1e-5
    assert learning_rate(s, 5) == pytest.approx(0.001)
    assert [round(learning_rate(s, e), 8) for e in (1, 9)] == [round(0.001 * (1 + math.cos(math.pi / 10)), 8),
                                                             round(0.001 * (1 + math.cos(math.pi * 9 / 10)), 8)]
    assert method_settings("CoOp").n_ctx == 16 and method_settings("CoOp").init_phrase is None
    assert method_settings("CoOp + DOR").dor_weight == 8.0 and method_settings("KgCoOp + DOR").dor_weight == 2.0
    assert method_settings("KgCoOp").init_phrase == "a photo of a" and method_settings("KgCoOp").name == "KgCoOp"
    assert method_settings("KgCoOp + DOR", dor_weight=4.0).name == "KgCoOp + DOR"
    for bad, match in [({"method": "DOR"}, "method"), ({"lr": 0}, "lr"), ({"epochs": 0}, "epochs"),
                       ({"dor_weight": float("nan")}, "dor_weight"), ({"template": "a photo"}, "template")]:
        with pytest.raises(ValueError, match=match):
            PromptTuningSettings(**bad)
    with pytest.raises(ValueError, match="zero-shot"):
        method_settings("zero-shot")


def test_clear_errors(standin):
    with pytest.raises(ValueError, match="outlier"):
        PromptTuner(standin, method_settings("CoOp + DOR"))
    with pytest.raises(RuntimeError, match="not fitted"):
        PromptTuner(standin, method_settings("CoOp")).logits(torch.zeros(2, standin.embed_dim), NEW)
    feats, labels = _shots(standin)
    with pytest.raises(ValueError, match="labels"):
        PromptTuner(standin, method_settings("CoOp", epochs=1)).fit(feats, labels + 5, BASE, progress=False)
    bad = feats.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        PromptTuner(standin, method_settings("CoOp", epochs=1)).fit(bad, labels, BASE, progress=False)
