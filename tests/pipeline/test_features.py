"""Batched, cached feature extraction: against a one-at-a-time reference loop, and the cache's
behaviour (hits, keys, atomic writes, crashes mid-write)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset, TensorDataset

import vlmcal.pipeline.cache
from vlmcal.backbones.openclip import load_openclip
from vlmcal.pipeline.features import classifier_logits, image_features
from vlmcal.prompting.zeroshot import ZeroShotClassifier, zero_shot_logits

IDENTITY = {"dataset": "toy", "split": "test", "shift": None, "severity": None}


class GreyImages(Dataset):
    """Fashion-MNIST-like items: (28x28 greyscale PIL image, label)."""

    def __init__(self, n: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.pixels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        self.labels = rng.integers(0, 10, n)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return Image.fromarray(self.pixels[i], mode="L"), int(self.labels[i])


@pytest.fixture(scope="module")
def tiny():
    return load_openclip("openclip:vlmcal-tiny:random", device="cpu")


def _reference(bb, dataset):
    """One image at a time through plain open_clip."""
    with torch.no_grad():
        rows = [F.normalize(bb.model.encode_image(bb.preprocess(img).unsqueeze(0)), dim=-1)[0] for img, _ in dataset]
    return torch.stack(rows), torch.tensor([y for _, y in dataset])


def test_batched_matches_one_at_a_time(tiny, tmp_path):
    data = GreyImages(23)
    out = image_features(tiny, data, IDENTITY, batch_size=5, num_workers=0, cache_dir=tmp_path, progress=False)
    ref_feats, ref_labels = _reference(tiny, data)
    assert out.features.shape == (23, tiny.embed_dim) and out.features.dtype == torch.float32
    torch.testing.assert_close(out.features, ref_feats, atol=1e-5, rtol=0)
    assert torch.equal(out.labels, ref_labels)


def test_workers_give_the_same_result(tiny, tmp_path):
    data = GreyImages(12, seed=1)
    serial = image_features(tiny, data, IDENTITY, batch_size=4, num_workers=0, use_cache=False, progress=False)
    parallel = image_features(tiny, data, IDENTITY, batch_size=4, num_workers=2, use_cache=False, progress=False)
    torch.testing.assert_close(parallel.features, serial.features, atol=1e-6, rtol=0)
    assert torch.equal(parallel.labels, serial.labels)


def test_tensor_datasets_need_no_transform(tiny, tmp_path):
    x = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    data = TensorDataset(x, torch.arange(6))
    out = image_features(tiny, data, IDENTITY, batch_size=4, num_workers=0, cache_dir=tmp_path, progress=False)
    torch.testing.assert_close(out.features, F.normalize(tiny.model.encode_image(x), dim=-1), atol=1e-5, rtol=0)


def test_second_call_reads_the_cache(tiny, tmp_path, monkeypatch):
    data = GreyImages(9)
    first = image_features(tiny, data, IDENTITY, num_workers=0, cache_dir=tmp_path, progress=False)
    assert not first.from_cache and first.path.is_file() and first.path.parent.parent == tmp_path

    def no_compute(images):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(tiny, "encode_images", no_compute)
    second = image_features(tiny, data, dict(IDENTITY), num_workers=0, cache_dir=tmp_path, progress=False)
    assert second.from_cache and second.key == first.key
    assert torch.equal(second.features, first.features) and torch.equal(second.labels, first.labels)


def test_cache_dir_from_environment(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv(vlmcal.pipeline.cache.CACHE_ENV, str(tmp_path / "env-cache"))
    out = image_features(tiny, GreyImages(3), IDENTITY, num_workers=0, progress=False)
    assert out.path.is_relative_to(tmp_path / "env-cache")


@pytest.mark.parametrize(
    "change",
    [
        {"split": "val"},
        {"dataset": "toy2"},
        {"shift": "gaussian_noise", "severity": 3},
        {"shift": "gaussian_noise", "severity": 5},
        {"preprocessing": "something else"},
        {"subset_seed": 1},
    ],
)
def test_every_part_changes_the_key(tiny, tmp_path, change):
    data = GreyImages(4)
    base = image_features(tiny, data, IDENTITY, num_workers=0, cache_dir=tmp_path, progress=False)
    other = image_features(tiny, data, {**IDENTITY, **change}, num_workers=0, cache_dir=tmp_path, progress=False)
    assert other.key != base.key and other.path != base.path and not other.from_cache


def test_backbone_and_transform_change_the_key(tiny, tmp_path):
    data = GreyImages(4)
    base = image_features(tiny, data, IDENTITY, num_workers=0, cache_dir=tmp_path, progress=False)
    quick = load_openclip("openclip:vlmcal-tiny:random", device="cpu", quick_gelu=True)
    assert image_features(quick, data, IDENTITY, num_workers=0, cache_dir=tmp_path, progress=False).key != base.key

    def other_transform(img):
        return tiny.preprocess(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT))

    flipped = image_features(tiny, data, IDENTITY, transform=other_transform, num_workers=0, cache_dir=tmp_path,
                             progress=False)
    assert flipped.key != base.key


def test_exception_mid_write_leaves_nothing(tiny, tmp_path, monkeypatch):
    data = GreyImages(5)
    real_save = torch.save

    def half_then_interrupt(obj, fh, *args, **kwargs):
        fh.write(b"PK\x03\x04 partial")
        fh.flush()
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C while the file was written

    monkeypatch.setattr(vlmcal.pipeline.cache.torch, "save", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        image_features(tiny, data, IDENTITY, num_workers=0, cache_dir=tmp_path, progress=False)
    monkeypatch.setattr(vlmcal.pipeline.cache.torch, "save", real_save)
    assert list((tmp_path / "features").iterdir()) == []  # neither a final file nor a temporary one

    again = image_features(tiny, data, IDENTITY, num_workers=0, cache_dir=tmp_path, progress=False)
    assert not again.from_cache and again.path.is_file()
    assert image_features(tiny, data, IDENTITY, num_workers=0, cache_dir=tmp_path, progress=False).from_cache


# A process killed while writing (os._exit runs no cleanup, like SIGKILL). The same code defines
# the backbone and dataset here and in the child, so both compute the same cache key.
_CHILD_SETUP = """
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

class LinearBackbone:
    name = "linear-test"
    device = torch.device("cpu")
    preprocess = None
    def __init__(self):
        self.weight = torch.randn(12, 4, generator=torch.Generator().manual_seed(0))
    def encode_images(self, images):
        return F.normalize(images.flatten(1) @ self.weight, dim=-1)  # [B,12] @ [12,4] -> [B,4]

backbone = LinearBackbone()
data = TensorDataset(torch.randn(10, 3, 2, 2, generator=torch.Generator().manual_seed(1)), torch.arange(10))
identity = {"dataset": "linear", "split": "test"}
"""

_CHILD_CRASH = """
import os, sys
import vlmcal.pipeline.cache
from vlmcal.pipeline.features import image_features

def save_half_then_die(obj, fh, *args, **kwargs):
    fh.write(b"PK\\x03\\x04 partial")
    fh.flush()
    os._exit(9)

vlmcal.pipeline.cache.torch.save = save_half_then_die
image_features(backbone, data, identity, num_workers=0, cache_dir=sys.argv[1], progress=False)
"""


def test_process_killed_mid_write_is_recomputed(tmp_path):
    child = subprocess.run(
        [sys.executable, "-c", _CHILD_SETUP + textwrap.dedent(_CHILD_CRASH), str(tmp_path)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert child.returncode == 9, child.stderr
    leftovers = list((tmp_path / "features").iterdir())
    assert leftovers and all(p.name.startswith(".") and p.name.endswith(".tmp") for p in leftovers)

    scope: dict = {}
    exec(_CHILD_SETUP, scope)
    first = image_features(scope["backbone"], scope["data"], scope["identity"], num_workers=0, cache_dir=tmp_path,
                           progress=False)
    assert not first.from_cache  # the partial file is never read as a cache
    expected = F.normalize(scope["data"].tensors[0].flatten(1) @ scope["backbone"].weight, dim=-1)
    torch.testing.assert_close(first.features, expected)
    second = image_features(scope["backbone"], scope["data"], scope["identity"], num_workers=0, cache_dir=tmp_path,
                            progress=False)
    assert second.from_cache and torch.equal(second.features, first.features)


def test_corrupt_cache_file_is_recomputed(tiny, tmp_path):
    """(Every kind of damage, for features, logits and weights: tests/pipeline/test_cache.py.)"""
    data = GreyImages(4)
    first = image_features(tiny, data, IDENTITY, num_workers=0, cache_dir=tmp_path, progress=False)
    first.path.write_bytes(b"not a torch file")
    with pytest.warns(vlmcal.pipeline.cache.CacheEntryWarning, match=f"Cache entry {re.escape(str(first.path))} cannot be read"):
        again = image_features(tiny, data, IDENTITY, num_workers=0, cache_dir=tmp_path, progress=False)
    assert not again.from_cache and torch.equal(again.features, first.features)
    assert image_features(tiny, data, IDENTITY, num_workers=0, cache_dir=tmp_path, progress=False).from_cache


def test_tampered_features_are_never_returned(tiny, tmp_path):
    """A stored value changed in place (the file still loads) fails the entry's digest."""
    data = GreyImages(4)
    first = image_features(tiny, data, IDENTITY, num_workers=0, cache_dir=tmp_path, progress=False)
    raw, blob = first.features.numpy().tobytes(), first.path.read_bytes()
    at = blob.find(raw)
    first.path.write_bytes(blob[:at] + (first.features[0, :1] + 12).numpy().tobytes() + blob[at + 4 :])
    with pytest.warns(vlmcal.pipeline.cache.CacheEntryWarning, match=f"{re.escape(str(first.path))} fails its sha256 check"):
        again = image_features(tiny, data, IDENTITY, num_workers=0, cache_dir=tmp_path, progress=False)
    assert not again.from_cache and torch.equal(again.features, first.features)


def test_no_cache_writes_nothing(tiny, tmp_path):
    out = image_features(tiny, GreyImages(3), IDENTITY, num_workers=0, cache_dir=tmp_path, use_cache=False,
                         progress=False)
    assert not out.from_cache and not out.path.exists()


def test_classifier_logits_cached(tiny, tmp_path):
    data = GreyImages(7)
    clf = ZeroShotClassifier(tiny, ["cat", "dog", "boot"], ["a photo of a {}.", "a sketch of a {}."])
    first = classifier_logits(clf, data, IDENTITY, batch_size=3, num_workers=0, cache_dir=tmp_path, progress=False)
    feats = image_features(tiny, data, IDENTITY, num_workers=0, cache_dir=tmp_path, progress=False)
    torch.testing.assert_close(first.features, zero_shot_logits(feats.features, clf.text_features, tiny.logit_scale),
                               atol=1e-5, rtol=0)
    assert first.key != feats.key
    assert classifier_logits(clf, data, IDENTITY, num_workers=0, cache_dir=tmp_path, progress=False).from_cache
    other_prompts = ZeroShotClassifier(tiny, ["cat", "dog", "boot"], "a photo of a {}.")
    assert not classifier_logits(other_prompts, data, IDENTITY, num_workers=0, cache_dir=tmp_path,
                                 progress=False).from_cache


def test_identity_must_not_use_the_keys_vlmcal_adds(tiny, tmp_path):
    with pytest.raises(ValueError, match=r"without the keys vlmcal adds itself, but it has \['model'\]"):
        image_features(tiny, GreyImages(2), {**IDENTITY, "model": "x"}, num_workers=0, cache_dir=tmp_path, progress=False)


@pytest.mark.parametrize("identity", [{"dataset": "toy"}, {"split": "test"}, "toy/test"])
def test_identity_must_name_dataset_and_split(tiny, tmp_path, identity):
    with pytest.raises(ValueError, match="dataset and split"):
        image_features(tiny, GreyImages(2), identity, num_workers=0, cache_dir=tmp_path, progress=False)


def test_pil_images_need_a_transform(tmp_path):
    scope: dict = {}
    exec(_CHILD_SETUP, scope)
    with pytest.raises(TypeError, match="no transform was given"):
        image_features(scope["backbone"], GreyImages(2), IDENTITY, num_workers=0, cache_dir=tmp_path, progress=False)
