"""Prompt sweep (C8): per-template points against numpy references, the near-top window, and the
ATFD-ECE correlations against scipy, on the project's bootstrap draws."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch

from fakes import HashTextBackbone
from vlmcal import metrics
from vlmcal.data.templates import HARD_PROMPT
from vlmcal.pipeline import predictions
from vlmcal.papers.ctpt.prompt_sweep import (
    REGIMES,
    correlation_by_regime,
    dispersion_correlation,
    near_top,
    sweep_condition,
    template_points,
)

TINY = "openclip:vlmcal-tiny:random"
CLASSES = ["cat", "dog", "sea lion", "owl"]
TEMPLATES = ["a photo of a {}.", "a drawing of a {}.", "itap of the {}.", "a blurry photo of the {}."]
D = 8


def _image_features(n=300, seed=0):
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(n, D))
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    return torch.tensor(feats, dtype=torch.float32), torch.tensor(rng.integers(0, len(CLASSES), n))


def _reference_row(image_features, labels, backbone, template, n_bins):
    """Every figure of one template, in float64 numpy, with C-TPT's binning written out."""
    text = backbone.encode_text([template.format(c) for c in CLASSES]).double().numpy()  # [C, D]
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    logits = backbone.logit_scale * image_features.double().numpy() @ text.T  # [N, C]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    conf, hit = probs.max(axis=1), (probs.argmax(axis=1) == labels.numpy())
    ece = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        in_bin = (conf > lo) & (conf <= hi) if b else conf <= hi
        ece += abs(conf[in_bin].sum() - hit[in_bin].sum()) / len(conf)
    centroid = text.mean(axis=0)
    return {
        "accuracy": hit.mean(),
        "ece": ece,
        "confidence": conf.mean(),
        "atfd": np.linalg.norm(text - centroid, axis=1).mean(),
        "logit_spread": logits.std(axis=1).mean(),
    }


def test_template_points_match_a_numpy_reference():
    feats, labels = _image_features()
    bb = HashTextBackbone(dim=D, logit_scale=20.0)
    points = template_points(feats, labels, bb, CLASSES, TEMPLATES, n_bins=20)
    assert list(points.columns) == ["template", "accuracy", "ece", "confidence", "gap", "regime", "atfd", "logit_spread"]
    assert points["template"].tolist() == TEMPLATES
    for template, (_, row) in zip(TEMPLATES, points.iterrows()):
        ref = _reference_row(feats, labels, bb, template, 20)
        for column, value in ref.items():
            assert row[column] == pytest.approx(value, abs=1e-5), (template, column)
        assert row["gap"] == pytest.approx(row["confidence"] - row["accuracy"])
        assert row["regime"] == (REGIMES[0] if row["gap"] > 0 else REGIMES[1])


def test_template_points_regimes_follow_the_gap():
    """Random labels under a sharp softmax: over-confident; the model's own predictions as labels
    (accuracy 1, confidence below 1): under-confident."""
    feats, random_labels = _image_features()
    bb = HashTextBackbone(dim=D, logit_scale=20.0)
    assert set(template_points(feats, random_labels, bb, CLASSES, TEMPLATES)["regime"]) == {"over-confident"}
    text = torch.nn.functional.normalize(bb.encode_text([HARD_PROMPT.format(c) for c in CLASSES]), dim=-1)  # [C, D]
    own_predictions = (feats @ text.T).argmax(dim=1)  # [N,D] @ [D,C] -> [N,C] -> [N]
    points = template_points(feats, own_predictions, bb, CLASSES, [HARD_PROMPT])
    assert points["accuracy"].item() == 1.0 and points["regime"].item() == "under-confident"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"templates": "a photo of a {}."}, "wrap a single template in a list"),
        ({"templates": []}, "non-empty list"),
        ({"templates": [lambda c: c]}, "string"),
        ({"templates": ["no slot"]}, "exactly one"),
        ({"image_features": torch.zeros(5)}, r"\[N, D\]"),
        ({"labels": torch.zeros(7, dtype=torch.long)}, r"labels.*\[300\]"),
    ],
)
def test_template_points_bad_input(kwargs, match):
    feats, labels = _image_features()
    args = {"image_features": feats, "labels": labels, "backbone": HashTextBackbone(dim=D, logit_scale=20.0), "class_names": CLASSES, "templates": TEMPLATES}
    with pytest.raises(ValueError, match=match):
        template_points(**{**args, **kwargs})


def test_near_top_is_per_condition_and_inclusive():
    points = pd.DataFrame({
        "condition": ["clean"] * 3 + ["invert-5"] * 3,
        "accuracy": [0.83, 0.80, 0.79, 0.40, 0.38, 0.36],
    })
    kept = near_top(points, 0.03)
    assert kept.index.tolist() == [0, 1, 3, 4]  # 0.80 is within 3 points of 0.83 despite float rounding
    assert near_top(points.drop(columns="condition"), 0.03).index.tolist() == [0, 1]  # one best over all rows
    assert near_top(points, 0).index.tolist() == [0, 3]


@pytest.mark.parametrize("window", [-0.01, 3, "3%", True, math.nan])
def test_near_top_bad_window(window):
    with pytest.raises(ValueError, match="window"):
        near_top(pd.DataFrame({"accuracy": [0.5]}), window)


def test_near_top_needs_accuracy():
    with pytest.raises(ValueError, match="accuracy"):
        near_top(pd.DataFrame({"ece": [0.1]}), 0.03)


def _linear_points(n, seed=0, slope=-1.0):
    rng = np.random.default_rng(seed)
    atfd = rng.uniform(0.2, 0.4, n)
    return pd.DataFrame({"atfd": atfd, "ece": 0.3 + slope * atfd + rng.normal(0, 0.03, n)})


def test_dispersion_correlation_matches_scipy():
    points = _linear_points(30)
    r = dispersion_correlation(points, n_resamples=300)
    assert r.n == 30
    assert r.pearson.estimate == pytest.approx(scipy.stats.pearsonr(points["atfd"], points["ece"])[0], abs=1e-12)
    assert r.spearman.estimate == pytest.approx(scipy.stats.spearmanr(points["atfd"], points["ece"])[0], abs=1e-12)
    for result in (r.pearson, r.spearman):
        assert result.lower <= result.estimate <= result.upper
        assert -1 <= result.lower and result.upper <= 1
        assert (result.level, result.n_resamples, result.seed) == (0.95, 300, 0)


def test_spearman_uses_average_ranks_for_ties():
    points = pd.DataFrame({"atfd": [1.0, 2.0, 2.0, 3.0, 4.0], "ece": [5.0, 3.0, 4.0, 4.0, 1.0]})
    r = dispersion_correlation(points, n_resamples=10)
    assert r.spearman.estimate == pytest.approx(scipy.stats.spearmanr(points["atfd"], points["ece"])[0], abs=1e-12)


def test_dispersion_correlation_uses_the_project_bootstrap_draws():
    """The interval is the percentile interval of scipy's r on metrics.bootstrap_rows' resamples."""
    points = _linear_points(25, seed=3)
    x, y = points["atfd"].to_numpy(), points["ece"].to_numpy()
    ours = dispersion_correlation(points, n_resamples=200, seed=7, level=0.9)
    reference = metrics.bootstrap_rows(lambda idx: scipy.stats.pearsonr(x[idx.numpy()], y[idx.numpy()])[0], 25, 200, 0.9, 7)
    assert (ours.pearson.lower, ours.pearson.upper) == pytest.approx((reference.lower, reference.upper), abs=1e-12)


def test_dispersion_interval_narrows_with_more_prompts():
    few = dispersion_correlation(_linear_points(12), n_resamples=400)
    many = dispersion_correlation(_linear_points(300), n_resamples=400)
    for name in ("pearson", "spearman"):
        a, b = getattr(few, name), getattr(many, name)
        assert b.upper - b.lower < 0.5 * (a.upper - a.lower), name


def test_constant_resamples_are_dropped_and_a_constant_column_gives_nan():
    three = dispersion_correlation(pd.DataFrame({"atfd": [0.1, 0.2, 0.3], "ece": [0.3, 0.1, 0.2]}), n_resamples=500)
    assert three.n == 3 and math.isfinite(three.pearson.lower) and math.isfinite(three.pearson.upper)  # 1 resample in 9 is constant
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flat = dispersion_correlation(pd.DataFrame({"atfd": [0.1, 0.2, 0.3, 0.4], "ece": [0.05] * 4}), n_resamples=50)
    assert all(math.isnan(v) for v in (flat.pearson.estimate, flat.pearson.lower, flat.spearman.upper))


@pytest.mark.parametrize("n", [0, 1, 2])
def test_fewer_than_three_prompts_give_nan(n):
    r = dispersion_correlation(_linear_points(n), n_resamples=50, seed=4)
    assert r.n == n
    for result in (r.pearson, r.spearman):
        assert math.isnan(result.estimate) and math.isnan(result.lower) and math.isnan(result.upper)
        assert (result.n_resamples, result.seed) == (50, 4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"x": "dispersion"}, "lacks \\['dispersion'\\]"),
        ({"n_resamples": 0}, "n_resamples"),
        ({"level": 1.5}, "level"),
    ],
)
def test_dispersion_correlation_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dispersion_correlation(_linear_points(5), **kwargs)


def test_dispersion_correlation_rejects_nan_rows():
    points = _linear_points(5)
    points.loc[2, "ece"] = math.nan
    with pytest.raises(ValueError, match="NaN or inf in 1 of 5 rows"):
        dispersion_correlation(points)


def test_correlation_by_regime_is_dispersion_correlation_per_group():
    under = _linear_points(20, seed=1, slope=-1.0).assign(stage="zero-shot", regime="under-confident")
    over = _linear_points(15, seed=2, slope=1.0).assign(stage="after TPT", regime="over-confident")
    lone = _linear_points(2, seed=3).assign(stage="zero-shot", regime="over-confident")
    points = pd.concat([under, over, lone], ignore_index=True)
    table = correlation_by_regime(points, n_resamples=100, seed=5)
    assert list(table.columns) == ["stage", "regime", "n", "pearson", "pearson_lower", "pearson_upper", "spearman", "spearman_lower", "spearman_upper"]
    assert list(zip(table["stage"], table["regime"], table["n"])) == [
        ("zero-shot", "under-confident", 20), ("after TPT", "over-confident", 15), ("zero-shot", "over-confident", 2)]
    direct = dispersion_correlation(over, n_resamples=100, seed=5)
    row = table.iloc[1]
    assert (row["pearson"], row["pearson_lower"], row["spearman_upper"]) == (direct.pearson.estimate, direct.pearson.lower, direct.spearman.upper)
    assert table.iloc[0]["pearson"] < 0 < table.iloc[1]["pearson"]
    assert table.iloc[2][["pearson", "pearson_lower", "spearman", "spearman_upper"]].isna().all()
    by_regime = correlation_by_regime(points, by="regime", n_resamples=20)
    assert by_regime["regime"].tolist() == ["under-confident", "over-confident"] and by_regime["n"].tolist() == [20, 17]


@pytest.mark.parametrize("by, match", [(("stage", "regime"), "lacks \\['stage'\\]"), ((), "at least one column")])
def test_correlation_by_regime_bad_by(by, match):
    with pytest.raises(ValueError, match=match):
        correlation_by_regime(_linear_points(5).assign(regime="under-confident"), by=by)


def test_sweep_condition_rejects_the_supervised_baseline():
    with pytest.raises(ValueError, match="no text tower"):
        sweep_condition("supervised")


def test_sweep_condition_agrees_with_predict_and_reuses_its_features(tmp_path):
    run = predictions.predict(TINY, "fashion-mnist", templates="hard", max_samples=20, cache_dir=tmp_path, progress=False)
    cached = sorted((tmp_path / "features").iterdir())
    points = sweep_condition(TINY, templates=[HARD_PROMPT, "a drawing of a {}."], max_samples=20, cache_dir=tmp_path, progress=False)
    assert sorted((tmp_path / "features").iterdir()) == cached  # predict's image features, read back
    assert points["template"].tolist() == [HARD_PROMPT, "a drawing of a {}."]
    assert (points["condition"] == "clean").all() and (points["shift"] == "clean").all() and (points["severity"] == 0).all()
    hard = points.iloc[0]
    assert hard["accuracy"] == pytest.approx(metrics.accuracy(run.logits, run.labels, inputs="logits"))
    assert hard["ece"] == pytest.approx(metrics.ece(run.logits, run.labels, n_bins=20, inputs="logits"), abs=1e-6)


def test_sweep_condition_names_a_shifted_condition(tmp_path):
    points = sweep_condition(TINY, shift="invert", severity=5, templates=[HARD_PROMPT], max_samples=20, cache_dir=tmp_path, progress=False)
    assert points[["condition", "shift", "severity"]].iloc[0].tolist() == ["invert-5", "invert", 5]
