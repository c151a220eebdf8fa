"""Atomic writes: a failed writer changes nothing and leaves nothing behind; a writer that
finishes replaces the file whole; concurrent writers never share a temporary file."""

from __future__ import annotations

import json
import threading

import pytest
import torch

from vlmcal.papers.common import verdict as verdict_module
from vlmcal.pipeline.atomic import atomic_path, atomic_write
from vlmcal.pipeline.cache import atomic_torch_save
from vlmcal.papers.common.verdict import Verdict


class WriterFailed(RuntimeError):
    pass


@pytest.fixture
def target(tmp_path):
    path = tmp_path / "out" / "file.txt"
    path.parent.mkdir()
    path.write_text("old content")
    return path


def _only(path):
    """The names of every file in ``path``'s directory, hidden temporary files included."""
    return sorted(p.name for p in path.parent.iterdir())


def test_atomic_write_that_raises_mid_write_changes_nothing(target):
    with pytest.raises(WriterFailed):
        with atomic_write(target) as fh:
            fh.write("half of the new")
            fh.flush()
            raise WriterFailed
    assert target.read_text() == "old content"
    assert _only(target) == ["file.txt"]


def test_atomic_path_that_raises_changes_nothing(target):
    with pytest.raises(KeyboardInterrupt):  # an interrupted run too
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise KeyboardInterrupt
    assert target.read_text() == "old content"
    assert _only(target) == ["file.txt"]


def test_torch_save_that_fails_changes_nothing(target):
    with pytest.raises(Exception):
        atomic_torch_save({"f": lambda x: x}, target)  # a lambda cannot be pickled: torch.save raises mid-write
    assert target.read_text() == "old content"
    assert _only(target) == ["file.txt"]


def test_verdict_record_that_fails_in_json_dump_changes_nothing(tmp_path, monkeypatch):
    Verdict("C11", "s", "p", "old measurement", "", True, "none").record(tmp_path)
    before = (tmp_path / "C11.json").read_text()

    def failing_dump(obj, fh, **kwargs):
        fh.write('{"claim": "C1')  # the first bytes are written, then the value cannot be serialised
        raise TypeError("Object of type Tensor is not JSON serializable")

    monkeypatch.setattr(verdict_module.json, "dump", failing_dump)
    with pytest.raises(TypeError, match="not JSON serializable"):
        Verdict("C11", "s", "p", "new measurement", "", True, "none").record(tmp_path)
    assert (tmp_path / "C11.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["C11.json"]


def test_success_replaces_an_existing_file(target):
    with atomic_write(target) as fh:
        fh.write("new content")
        assert target.read_text() == "old content"  # readers see the old file until the end
    assert target.read_text() == "new content"
    assert _only(target) == ["file.txt"]


def test_binary_write_and_missing_directory(tmp_path):
    path = tmp_path / "a" / "b" / "x.bin"
    with atomic_write(path, "wb") as fh:
        fh.write(b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    atomic_torch_save({"t": torch.arange(3)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["t"], torch.arange(3))


def test_temporary_path_is_hidden_beside_the_target_with_its_suffix(target):
    with atomic_path(target, suffix=".partial.ipynb") as tmp:
        assert tmp.parent == target.parent and tmp.exists()
        assert tmp.name.startswith(".file.txt.") and tmp.name.endswith(".partial.ipynb")


def test_written_file_gets_ordinary_permissions(tmp_path):
    # mkstemp's files are 0600; a file replaced atomically should look like one written with open().
    plain, atomic = tmp_path / "plain", tmp_path / "atomic"
    plain.write_text("x")
    with atomic_write(atomic) as fh:
        fh.write("x")
    assert atomic.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_append_mode_is_refused(target):
    with pytest.raises(ValueError, match="got 'a'"):
        with atomic_write(target, "a"):
            pass
    assert _only(target) == ["file.txt"]


def test_concurrent_writers_get_distinct_temporary_files(target):
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second
        first.write_text("first")
        second.write_text("second")
    assert target.read_text() == "first"  # the outer block finished last
    assert _only(target) == ["file.txt"]


def test_concurrent_threads_leave_one_complete_file(target):
    texts = [json.dumps({"writer": i, "data": [i] * 20_000}) for i in range(8)]
    barrier = threading.Barrier(len(texts))
    errors = []

    def write(text):
        try:
            barrier.wait()
            with atomic_write(target) as fh:
                fh.write(text)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(text,)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert target.read_text() in texts  # one writer's content, whole
    assert _only(target) == ["file.txt"]


def test_download_that_fails_its_checksum_leaves_no_file(tmp_path, monkeypatch):
    import gzip
    import hashlib
    import io

    from vlmcal.data import datasets

    payload = bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])  # an IDX file: 1-D uint8, 3 items
    good = ("labels.gz", hashlib.sha256(payload).hexdigest())
    monkeypatch.setattr(datasets, "_FASHION_MNIST_FILES", {("test", "labels"): good})
    served = {"bytes": gzip.compress(payload[:-1] + b"\xff")}  # a damaged download first
    monkeypatch.setattr(datasets.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(served["bytes"]))

    with pytest.raises(ValueError, match="Checksum mismatch"):
        datasets._download_fashion_mnist(tmp_path)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one
    served["bytes"] = gzip.compress(payload)
    datasets._download_fashion_mnist(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["labels.gz"]


def test_atomic_directory_appears_whole_or_not_at_all(tmp_path):
    from vlmcal.pipeline.atomic import atomic_directory

    target = tmp_path / "copy"
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "a.txt").write_text("half")
            raise RuntimeError("interrupted")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("first")
        with atomic_directory(target) as other:  # a second builder finishes first: its copy is kept
            (other / "a.txt").write_text("second")
    assert (target / "a.txt").read_text() == "second" and sorted(p.name for p in tmp_path.iterdir()) == ["copy"]
    with atomic_directory(target) as tmp:
        assert tmp is None  # already there: nothing to build
