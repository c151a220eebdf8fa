"""The cache checks itself: an entry of any kind (image features, classifier logits, trained
weights) that is unreadable, changed on disk, or not the one asked for is reported in a
CacheEntryWarning naming the file, deleted, and recomputed; it is never returned."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from vlmcal.standins.card import ModelCard
from vlmcal.standins.checkpoints import checkpoint_path, load_or_train
from vlmcal.pipeline.cache import ENTRY_FORMAT, CacheEntryWarning, atomic_torch_save, load_entry, save_entry
from vlmcal.pipeline.features import classifier_logits, image_features


class Linear:
    """A linear backbone and classifier on [B, 3, 2, 2] tensors: cheap and exact."""

    name = "linear-test"
    device = torch.device("cpu")
    preprocess = None
    class_names = ["a", "b", "c", "d"]

    def __init__(self):
        self.weight = torch.randn(12, 4, generator=torch.Generator().manual_seed(0))

    def encode_images(self, images):
        return F.normalize(images.flatten(1) @ self.weight, dim=-1)  # [B,12] @ [12,4] -> [B,4]

    def logits(self, images):
        return 10.0 * images.flatten(1) @ self.weight  # [B,12] @ [12,4] -> [B,C]


MODEL = Linear()


def _card(name: str) -> ModelCard:
    return ModelCard(
        name=name, kind="test", data="none", architecture="linear + batch norm", n_params=12, epochs=1, batch_size=2,
        lr=0.1, augmentation="none", logit_scale="1, fixed", seed=0, train_seconds=0.25, threads=1,
    )


def _outputs(compute, cache: Path, other: bool = False):
    """Features or logits of 10 items; ``other``: those of another split with 7 items."""
    n, split = (7, "val") if other else (10, "test")
    data = TensorDataset(torch.randn(n, 3, 2, 2, generator=torch.Generator().manual_seed(n)), torch.arange(n) % 4)
    out = compute(MODEL, data, {"dataset": "linear", "split": split}, num_workers=0, cache_dir=cache, progress=False)
    return out.path, {"features": out.features, "labels": out.labels}, out.from_cache


def _weights(cache: Path, other: bool = False):
    """A tiny tower through ``load_or_train``, with a fake trainer that counts its calls."""
    width = 3 if other else 5
    identity = {"name": "tiny", "width": width}
    trained = []

    def make_tower():
        return nn.Sequential(nn.Linear(4, width), nn.BatchNorm1d(width))

    def train():
        trained.append(1)
        torch.manual_seed(width)
        tower = make_tower()
        tower(torch.randn(8, 4))  # moves the batch-norm statistics off their initial values
        return tower.eval(), _card(f"tiny-{width}")

    path = checkpoint_path(identity, cache)
    tower, card = load_or_train(path, identity, make_tower, train)
    return path, {**tower.state_dict(), "card": card}, not trained


KINDS = {"features": partial(_outputs, image_features), "logits": partial(_outputs, classifier_logits), "weights": _weights}


def _tensor_slot(payload: dict) -> tuple[dict, str]:
    """Where a float tensor of the payload is: the outputs, or the first layer's weight."""
    return (payload, "features") if "features" in payload else (payload["state_dict"], "0.weight")


def _garbage(path, run, cache):
    path.write_bytes(bytes(range(256)) * 8)


def _truncated(path, run, cache):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _empty(path, run, cache):
    path.write_bytes(b"")


def _tensor_bytes_changed(path, run, cache):
    """Adds 12 to one stored value in place; the file still loads, with the changed value."""
    holder, name = _tensor_slot(torch.load(path, weights_only=True)["payload"])
    tensor = holder[name]
    raw, data = tensor.numpy().tobytes(), path.read_bytes()
    at = data.find(raw)
    assert at > 0 and data.count(raw) == 1
    path.write_bytes(data[:at] + (tensor.reshape(-1)[:1] + 12).numpy().tobytes() + data[at + 4 :])
    holder, name = _tensor_slot(torch.load(path, weights_only=True)["payload"])
    assert holder[name].reshape(-1)[0] == tensor.reshape(-1)[0] + 12  # loadable, and wrong


def _other_identity(path, run, cache):
    """Another computation's valid entry (another identity and shape) copied over the path."""
    other_path, _, _ = run(cache, other=True)
    assert other_path != path
    shutil.copyfile(other_path, path)


def _wrong_shape(path, run, cache):
    """A valid entry of the right identity whose tensor lost a row."""
    entry = torch.load(path, weights_only=True)
    holder, name = _tensor_slot(entry["payload"])
    holder[name] = holder[name][:-1]
    save_entry(path, entry["payload"], json.loads(entry["identity"]))


def _old_format(path, run, cache):
    """The payload alone, as vlmcal wrote entries before they carried a digest."""
    atomic_torch_save(torch.load(path, weights_only=True)["payload"], path)


DAMAGES = {
    "garbage": (_garbage, "cannot be read"),
    "truncated": (_truncated, "cannot be read"),
    "empty": (_empty, "cannot be read"),
    "tensor-bytes-changed": (_tensor_bytes_changed, "fails its sha256 check"),
    "other-identity": (_other_identity, "holds the result of another computation"),
    "wrong-shape": (_wrong_shape, "holds (outputs|weights) .* (needs|in the tower)"),
    "old-format": (_old_format, "is not a vlmcal cache entry of this version"),
}


def _assert_same(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(got[key], value) if isinstance(value, torch.Tensor) else got[key] == value, key


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_damaged_entry_is_reported_removed_and_recomputed(kind, damage, tmp_path):
    run = KINDS[kind]
    damage_file, problem = DAMAGES[damage]
    path, fresh, from_cache = run(tmp_path)
    assert not from_cache and path.is_file()
    damage_file(path, run, tmp_path)

    with pytest.warns(CacheEntryWarning, match=rf"Cache entry {re.escape(str(path))} {problem}.*removing it and recomputing it"):
        again_path, again, from_cache = run(tmp_path)
    assert again_path == path and not from_cache
    _assert_same(again, fresh)

    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheEntryWarning)
        _, third, from_cache = run(tmp_path)  # the rewritten file is valid
    assert from_cache
    _assert_same(third, fresh)


@pytest.mark.parametrize(
    "edit, problem",
    [
        (lambda e: e["payload"].update(x=e["payload"]["x"].reshape(2, 3)), "fails its sha256 check"),  # same bytes, other shape
        (lambda e: e["payload"].update(x=e["payload"]["x"].view(torch.int32)), "fails its sha256 check"),  # same bytes, other dtype
        (lambda e: e["payload"].update(note="edited"), "fails its sha256 check"),
        (lambda e: e.update(identity=e["identity"].replace("one", "two")), "fails its sha256 check"),
        (lambda e: e.update(format=ENTRY_FORMAT - 1), "has entry format 1"),
    ],
    ids=["shape", "dtype", "payload", "identity", "format"],
)
def test_digest_covers_bytes_shape_dtype_and_identity(tmp_path, edit, problem):
    path = tmp_path / "entry.pt"
    save_entry(path, {"x": torch.arange(6.0), "note": "kept"}, {"name": "one"})
    assert torch.equal(load_entry(path, {"name": "one"})["x"], torch.arange(6.0))
    entry = torch.load(path, weights_only=True)
    edit(entry)
    torch.save(entry, path)  # the old digest, over the edited content
    with pytest.warns(CacheEntryWarning, match=re.escape(str(path)) + " " + problem):
        assert load_entry(path, {"name": "one"}) is None
    assert not path.exists()


def test_model_card_round_trips_as_plain_data(tmp_path):
    card = _card("tiny")
    save_entry(tmp_path / "card.pt", {"card": asdict(card)}, {"name": "card"})
    assert ModelCard(**load_entry(tmp_path / "card.pt", {"name": "card"})["card"]) == card


def test_payload_must_be_plain_data(tmp_path):
    with pytest.raises(TypeError, match=r"numpy.float64 at payload\['card'\]\['results'\]\[0\]"):
        save_entry(tmp_path / "bad.pt", {"card": {"results": [np.float64(0.5)]}}, {"name": "bad"})
    assert not (tmp_path / "bad.pt").exists()


def test_a_missing_file_is_no_warning(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_entry(tmp_path / "absent.pt", {"name": "absent"}) is None


def test_using_the_cache_removes_what_killed_writers_left_once_per_process(tmp_path):
    import fcntl
    import os

    from vlmcal.pipeline.cache import cache_dir

    root = tmp_path / "cache"
    entry = save_entry(root / "features" / "f.pt", {"x": torch.arange(3)}, {"name": "f"})
    killed_file = root / "features" / ".g.pt.0123456789abcdef.tmp"  # a save_entry killed mid-write
    killed_file.write_bytes(b"half")
    killed_dir = root / "wordnet-3.0" / ".abc.0123456789abcdef.tmp"  # an atomic_directory killed mid-copy
    killed_dir.mkdir(parents=True)
    (killed_dir / "data.noun").write_text("half")
    live = root / "backbones" / ".h.pt.fedcba9876543210.tmp"  # a writer still at work
    live.parent.mkdir()
    live.write_bytes(b"in progress")
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert cache_dir(root) == root
        assert not killed_file.exists() and not killed_dir.exists()
        assert live.read_bytes() == b"in progress", "a live writer's temporary file was removed"
    finally:
        os.close(fd)
    assert torch.equal(load_entry(entry, {"name": "f"})["x"], torch.arange(3))
    cache_dir(root)
    assert live.exists()  # swept once per process: the next process that uses the cache removes it


def test_cached_computes_once_then_reads_and_names_files_safely(tmp_path):
    from vlmcal.pipeline.cache import cached, entry_path, file_name

    assert file_name("openclip:ViT-B-16:/data/ckpt v2.pt") == "openclip_ViT-B-16_data_ckpt_v2.pt"
    assert len(file_name("x" * 100)) == 60
    identity = {"what": "a test", "n": 3}
    path = entry_path("memo", "openclip:tiny", identity, tmp_path)
    assert path.parent == tmp_path / "memo" and path.name.startswith("openclip_tiny-") and path.suffix == ".pt"
    calls = []

    def compute():
        calls.append(1)
        return {"x": torch.arange(3)}

    assert not cached(tmp_path / "not-saved.pt", identity, compute, save=False)["x"].equal(torch.zeros(3))
    assert not (tmp_path / "not-saved.pt").exists() and len(calls) == 1
    first, second = cached(path, identity, compute), cached(path, identity, compute)
    assert torch.equal(first["x"], second["x"]) and len(calls) == 2 and path.is_file()
    with pytest.warns(CacheEntryWarning, match="another computation"):  # the file at `path` holds another identity's entry
        assert cached(path, {**identity, "n": 4}, compute)["x"].tolist() == [0, 1, 2] and len(calls) == 3
