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


# ----------------------------------------------------------------------------- what killed writers leave behind

_WRITER = """
import os, sys, time
from pathlib import Path
from vlmcal.pipeline.atomic import atomic_directory, atomic_path, atomic_write
kind, target, ready = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
if kind == "file":
    with atomic_write(target) as fh:
        fh.write("half")
        fh.flush()
        ready.write_text("writing")
        time.sleep(600)
elif kind == "partial":
    with atomic_path(target, suffix=".partial.ipynb", temp_dir=target.parent / "partial") as tmp:
        ready.write_text("writing")
        time.sleep(600)
else:
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("half")
        ready.write_text("writing")
        time.sleep(600)
"""


def _temporaries(directory):
    from vlmcal.pipeline.atomic import TEMPORARY_NAME

    return sorted(p for p in directory.rglob("*") if TEMPORARY_NAME.fullmatch(p.name))


@pytest.mark.parametrize("kind", ["file", "partial", "directory"])
def test_sweep_keeps_a_live_writers_temporary_and_removes_a_killed_ones(tmp_path, kind):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from vlmcal.pipeline.atomic import sweep

    target, ready = tmp_path / "out" / "target.txt", tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, kind, str(target), str(ready)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert writer.poll() is None, f"the writer ended early: {writer.stderr.read()}"
            assert time.monotonic() < deadline, "the writer did not start writing in 60 s"
            time.sleep(0.02)
        (temporary,) = _temporaries(tmp_path)
        assert sweep(tmp_path, recursive=True) == [] and temporary.exists(), "a live writer's temporary was removed"
    finally:
        writer.send_signal(signal.SIGKILL)  # no clean-up can run
        writer.wait(timeout=30)
    assert temporary.exists()  # what SIGKILL leaves: the temporary, unlocked now
    assert sweep(tmp_path, recursive=True) == [temporary]
    assert _temporaries(tmp_path) == [] and not target.exists()


def test_sweep_touches_only_vlmcal_temporary_names(tmp_path):
    from vlmcal.pipeline.atomic import sweep

    abandoned = tmp_path / ".entry.pt.0123456789abcdef.tmp"
    abandoned.write_bytes(b"half an entry")
    abandoned_dir = tmp_path / ".wordnet.0123456789abcdef.tmp"
    (abandoned_dir / "sub").mkdir(parents=True)
    (abandoned_dir / "sub" / "data.noun").write_text("half a copy")
    abandoned_partial = tmp_path / ".page.ipynb.fedcba9876543210.partial.ipynb"
    abandoned_partial.touch()
    others = [
        "entry.pt", "notes.tmp", ".hidden", ".entry.pt.0123.tmp", ".entry.pt.0123456789abcdef.bak",
        ".entry.pt.0123456789ABCDEF.tmp", "entry.pt.0123456789abcdef.tmp",
    ]
    for name in others:
        (tmp_path / name).write_text("not a temporary of vlmcal's")
    (tmp_path / ".link.0123456789abcdef.tmp").symlink_to(tmp_path / "entry.pt")  # a link is never ours
    removed = sweep(tmp_path)
    assert sorted(removed) == sorted([abandoned, abandoned_dir, abandoned_partial])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others + [".link.0123456789abcdef.tmp"])
    assert (tmp_path / "entry.pt").read_text() == "not a temporary of vlmcal's"


def test_sweep_respects_a_lock_held_in_another_open_file(tmp_path):
    import fcntl
    import os

    from vlmcal.pipeline.atomic import sweep

    held = tmp_path / ".entry.pt.0123456789abcdef.tmp"
    held.touch()
    fd = os.open(held, os.O_RDONLY)  # flock is per open file: this is what another writer holds
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert sweep(tmp_path) == [] and held.exists()
    finally:
        os.close(fd)
    assert sweep(tmp_path) == [held] and not held.exists()


def test_writer_whose_new_temporary_is_swept_before_it_locks_takes_another(target, monkeypatch):
    """The window between creating a temporary and locking it: a sweeper that takes the lock
    first removes the file; the writer sees that and starts over under another name."""
    from vlmcal.pipeline import atomic

    real_lock, swept = atomic._lock, []

    def lock_after_a_sweep(fd, blocking=True):
        if blocking and not swept:
            swept.extend(atomic.sweep(target.parent))  # another process's sweep, just before our lock
        return real_lock(fd, blocking)

    monkeypatch.setattr(atomic, "_lock", lock_after_a_sweep)
    with atomic_write(target) as fh:
        fh.write("new content")
    assert len(swept) == 1 and swept[0].name.startswith(".file.txt.") and not swept[0].exists()
    assert target.read_text() == "new content"
    assert _only(target) == ["file.txt"]


def test_a_writer_first_sweeps_its_directory_once_per_process(tmp_path):
    from vlmcal.pipeline.atomic import sweep_once

    leftover = tmp_path / ".v.json.0123456789abcdef.tmp"
    leftover.write_text("{")
    with atomic_write(tmp_path / "v.json") as fh:
        fh.write("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.json"]
    leftover.write_text("{")  # left after this process swept here: the next process removes it
    assert sweep_once(tmp_path) == [] and leftover.exists()


def test_temporary_suffix_must_be_one_the_sweep_recognises(target):
    with pytest.raises(ValueError, match=r"'\.bak'"):
        with atomic_path(target, suffix=".bak"):
            pass
    assert _only(target) == ["file.txt"]
