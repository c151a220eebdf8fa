"""Sharding over processes (``vlmcal.pipeline.sharding``): ``torchrun --nproc_per_node 2`` on CPU (gloo)
gives the single-process results, and a run with a killed rank resumes by computing only the
missing shard."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vlmcal import standins
from vlmcal.pipeline.sharding import Launch, launch, run_sharded, shards_of

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
JOB = ROOT / "tests" / "jobs" / "sharded_job.py"
COMPUTED = re.compile(r"vlmcal\.pipeline\.sharding: rank (\d) computed shard (\d) of (\d)")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "VLMCAL_TEST_DIE_RANK")}
    return {**env, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def _single(out: Path, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(JOB), str(out), str(cache)], env=_env(), capture_output=True, text=True, timeout=600)


def _torchrun(out: Path, cache: Path, **extra_env) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(JOB), str(out), str(cache)]
    return subprocess.run(command, env={**_env(), **extra_env}, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A cache holding the job's tiny stand-in, trained once, so every run below uses the same weights."""
    cache = tmp_path_factory.mktemp("pretrained")
    sys.path.insert(0, str(JOB.parent))
    try:
        from sharded_job import STANDIN
    finally:
        sys.path.remove(str(JOB.parent))
    standins.load_default("tiny", device="cpu", cache_dir=cache, progress=False, config=STANDIN)
    return cache


def _cache_from(pretrained: Path, target: Path) -> Path:
    shutil.copytree(pretrained, target)
    return target


def test_two_processes_give_the_single_process_results(pretrained, tmp_path):
    single = _single(tmp_path / "single.pt", _cache_from(pretrained, tmp_path / "cache-single"))
    assert single.returncode == 0, single.stderr[-3000:]
    assert not COMPUTED.search(single.stderr)  # one process: no shards
    sharded = _torchrun(tmp_path / "sharded.pt", _cache_from(pretrained, tmp_path / "cache-sharded"))
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    computed = sorted(COMPUTED.findall(sharded.stderr))
    # 3 shards for each of the three computations; shards 1 and 3 on rank 0, shard 2 on rank 1.
    assert computed == sorted([("0", "1", "3"), ("1", "2", "3"), ("0", "3", "3")] * 3)
    ones, twos = torch.load(tmp_path / "single.pt"), torch.load(tmp_path / "sharded.pt")
    assert set(ones) == set(twos) and len(ones) == 6
    for name in ones:
        assert torch.equal(ones[name], twos[name]), name
    assert ones["openclip_features"].shape[0] == 48 and ones["tpt_logits"].shape == (12, 10)


def test_a_killed_rank_is_resumed_by_computing_only_its_shard(pretrained, tmp_path):
    cache = _cache_from(pretrained, tmp_path / "cache")
    killed = _torchrun(tmp_path / "killed.pt", cache, VLMCAL_TEST_DIE_RANK="1")
    assert killed.returncode != 0 and not (tmp_path / "killed.pt").exists()
    shards = sorted(p.name.split("-shard")[1] for p in (cache / "features" / "shards").glob("*.pt"))
    assert shards == ["00000-of00003.pt", "00002-of00003.pt"]  # rank 0's shards survived; rank 1's was never written
    resumed = _torchrun(tmp_path / "resumed.pt", cache)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    computed = COMPUTED.findall(resumed.stderr)
    first = [c for c in computed if c[1:] == ("2", "3")]
    # The first extraction recomputed only shard 2; the later ones (never started) ran in full.
    assert sorted(computed) == sorted([("1", "2", "3")] + [("0", "1", "3"), ("1", "2", "3"), ("0", "3", "3")] * 2)
    assert len(first) == 3
    reference = _single(tmp_path / "single.pt", _cache_from(pretrained, tmp_path / "cache-single"))
    assert reference.returncode == 0, reference.stderr[-3000:]
    ones, resumed_results = torch.load(tmp_path / "single.pt"), torch.load(tmp_path / "resumed.pt")
    for name in ones:
        assert torch.equal(ones[name], resumed_results[name]), name


def test_shards_and_the_launch(monkeypatch, tmp_path):
    shards, mine = shards_of(10, 4, Launch(rank=0, world_size=2))
    assert [(s.start, s.stop) for s in shards] == [(0, 4), (4, 8), (8, 10)] and mine == [0, 2]
    assert shards_of(3, 8, Launch())[1] == [0]
    with pytest.raises(ValueError, match="shard_rows"):
        shards_of(10, 0, Launch())
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert launch() == Launch()
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match="torchrun launch sets all"):
        launch()
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("LOCAL_RANK", "x")
    with pytest.raises(ValueError, match="LOCAL_RANK to be an integer"):
        launch()
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert launch() == Launch(0, 1, 0)  # a launch of one process: nothing to shard, no process group
    # One process through run_sharded: every shard computed once, cached, and assembled in order.
    calls = []

    def compute(rows):
        calls.append((rows.start, rows.stop))
        return {"x": torch.arange(rows.start, rows.stop) * 2}

    out = run_sharded(compute, 10, {"what": "test"}, tmp_path, 4, Launch())
    assert torch.equal(out["x"], torch.arange(10) * 2) and calls == [(0, 4), (4, 8), (8, 10)]
    assert torch.equal(run_sharded(compute, 10, {"what": "test"}, tmp_path, 4, Launch())["x"], out["x"]) and len(calls) == 3


def test_the_command_line_precomputes_what_the_page_then_reads(tmp_path, monkeypatch):
    parameters = {"backbone": "openclip:vlmcal-tiny:random", "n_images": "6", "n_calibration": "0", "shifts": "[]", "ensemble": "[]",
                  "batch_size": "2", "device": "cpu"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "vlmcal.book.precompute",
               "ctpt_tables"] + [arg for name, value in parameters.items() for arg in ("-p", name, value)]
    done = subprocess.run(command, env={**_env(), "VLMCAL_CACHE_DIR": str(tmp_path)}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert ("4 test-time runs (TPT, C-TPT, O-TPT, ZERO) of openclip:vlmcal-tiny:random on 6 images per set on 2 processes"
            in done.stdout)
    assert len(COMPUTED.findall(done.stderr)) == 12  # 4 runs (TPT, C-TPT, O-TPT, ZERO) x 3 shards of one batch of 2 images

    from vlmcal.papers import ctpt
    from vlmcal.book.precompute import page_defaults
    from vlmcal.papers.ctpt import tpt_runs

    def no_tuning(*args, **kwargs):
        raise AssertionError("tuned again instead of reading the cache")

    monkeypatch.setattr(tpt_runs, "tpt_batched", no_tuning)
    values = {**page_defaults("ctpt_tables"), "backbone": parameters["backbone"], "n_images": 6, "n_calibration": 0, "shifts": [],
              "ensemble": [], "batch_size": 2, "device": "cpu", "cache_dir": str(tmp_path)}
    from dataclasses import fields

    settings = ctpt.TPTPageSettings(**{f.name: values[f.name] for f in fields(ctpt.TPTPageSettings) if f.name in values})
    grid = ctpt.tpt_grid(settings, progress=False)
    assert len(grid.evaluation_rows) == 6 and set(grid.runs) == {("clean", "hard")}
    with pytest.raises(ValueError, match="no parameter"):
        from vlmcal.book.precompute import precompute

        precompute("ctpt_tables", {"n_imagez": 3})
    with pytest.raises(ValueError, match="one of"):
        page_defaults("zero_shot")
