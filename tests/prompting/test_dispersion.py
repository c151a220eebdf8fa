"""ATFD against a one-at-a-time reference loop and hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from vlmcal.prompting.dispersion import text_feature_dispersion


def _reference(features: np.ndarray) -> float:
    rows = [[x / math.sqrt(sum(y * y for y in f)) for x in f] for f in features.tolist()]
    dim = len(rows[0])
    centroid = [sum(r[j] for r in rows) / len(rows) for j in range(dim)]
    dists = [math.sqrt(sum((r[j] - centroid[j]) ** 2 for j in range(dim))) for r in rows]
    return sum(dists) / len(dists)


@pytest.mark.parametrize("seed", range(20))
def test_matches_reference_loop(seed):
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(rng.integers(2, 30), rng.integers(2, 16)))
    assert float(text_feature_dispersion(torch.tensor(feats))) == pytest.approx(_reference(feats), rel=1e-10)


def test_hand_cases():
    assert float(text_feature_dispersion(torch.eye(2))) == pytest.approx(math.sqrt(2) / 2)
    same = torch.ones(5, 3)
    assert float(text_feature_dispersion(same)) == pytest.approx(0.0, abs=1e-7)
    # Normalisation first: scaling a row changes nothing.
    t = torch.randn(4, 8, dtype=torch.float64)
    scaled = t * torch.tensor([[1.0], [3.0], [0.5], [10.0]], dtype=torch.float64)
    assert float(text_feature_dispersion(scaled)) == pytest.approx(float(text_feature_dispersion(t)))


def test_is_differentiable():
    t = torch.randn(5, 8, requires_grad=True)
    text_feature_dispersion(t).backward()
    assert t.grad is not None and torch.isfinite(t.grad).all()


@pytest.mark.parametrize("bad", [torch.randn(3), torch.randn(0, 4), torch.tensor([[1.0, float("nan")]])])
def test_bad_input(bad):
    with pytest.raises(ValueError, match="text_features"):
        text_feature_dispersion(bad)
