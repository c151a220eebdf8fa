"""Named model + named condition -> logits: routing, subsets, and lazy shifts behind the cache."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from vlmcal.pipeline import predictions
from vlmcal.data.shifts import ShiftedDataset

TINY = "openclip:vlmcal-tiny:random"


def test_shifted_data_is_lazy():
    data = predictions.load_test_data("fashion-mnist", "gaussian_noise", 2)
    assert isinstance(data, ShiftedDataset) and data._images is None
    assert len(data) == 10_000 and data.identity["shift"] == "gaussian_noise"
    data.prepare()
    assert data._images is not None and data.images.shape == (10_000, 1, 28, 28)


def test_max_samples_keeps_the_same_stratified_rows_for_every_shift():
    clean = predictions.load_test_data("fashion-mnist", max_samples=50)
    shifted = predictions.load_test_data("fashion-mnist", "invert", 5, max_samples=50)
    assert len(clean) == 50 and torch.equal(clean.labels, shifted.labels)
    assert torch.bincount(clean.labels).tolist() == [5] * 10
    assert torch.allclose(shifted.images_float(), 1 - clean.images_float(), atol=1e-6)  # invert at full strength


def test_model_inputs_routes_by_declared_input_shape():
    data = predictions.load_test_data("fashion-mnist", max_samples=10)

    class TakesTensors:
        input_shape = (1, 28, 28)

    class TakesPIL:
        preprocess = staticmethod(lambda img: torch.zeros(3, 8, 8))

    same, desc = predictions.model_inputs(TakesTensors(), data)
    assert same is data and "tensor" in desc
    wrapped, desc = predictions.model_inputs(TakesPIL(), data)
    assert isinstance(wrapped[0][0], Image.Image) and desc.startswith("PIL")


@pytest.mark.slow  # an elastic transform of the test split, twice
def test_second_prediction_reads_the_cache_without_computing_the_shift(tmp_path):
    first = predictions.predict(TINY, "fashion-mnist", "elastic_transform", 3, max_samples=20, cache_dir=tmp_path, progress=False)
    predictions._shifted_data.cache_clear()
    second = predictions.predict(TINY, "fashion-mnist", "elastic_transform", 3, max_samples=20, cache_dir=tmp_path, progress=False)
    assert torch.equal(first.logits, second.logits) and first.logits.shape == (20, 10)
    assert predictions._shifted_data("fashion-mnist", "test", "elastic_transform", 3, 0)._images is None
