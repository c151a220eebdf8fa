"""Sharding work over the processes of a ``torchrun`` launch, with one shard per cache entry.

Shard ``i`` is computed on rank ``i % world_size`` and cached as its own entry (a re-run computes only missing
shards); after a barrier every rank reads all shards from the shared cache directory.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from vlmcal.pipeline.cache import cached, content_key, load_entry

__all__ = ["Launch", "launch", "shards_of", "run_sharded", "compute_rows", "LAUNCH_VARIABLES"]

LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class Launch:
    """This process's place in a launch.

    Attributes:
        rank, world_size: its index among all processes, and their number (0 and 1 without torchrun).
        local_rank: its index on this machine: the GPU it uses.
    """
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def sharded(self) -> bool:
        """True when work is split between several processes."""
        return self.world_size > 1


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"Expected the launch variable {name} to be an integer, but got {value!r}; "
                         f"launch with `torchrun --nproc_per_node N ...`, which sets it") from None


def launch() -> Launch:
    """The launch this process belongs to, from ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (``Launch()`` when they are
    absent); under torchrun, joins the process group (NCCL on CUDA, else gloo) once.

    Raises:
        ValueError: only some of torchrun's variables are set, or they do not fit together.
    """
    if not (present := [name for name in LAUNCH_VARIABLES if name in os.environ]):
        return Launch()
    if len(present) != len(LAUNCH_VARIABLES):
        missing = sorted(set(LAUNCH_VARIABLES) - set(present))
        raise ValueError(f"Found {present} in the environment but not {missing}: a torchrun launch sets all of "
                         f"{list(LAUNCH_VARIABLES)}; unset them to run as one process")
    here = Launch(_env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK"))
    if here.world_size < 1 or not 0 <= here.rank < here.world_size:
        raise ValueError(f"Expected 0 <= RANK < WORLD_SIZE, but got RANK={here.rank}, WORLD_SIZE={here.world_size}")
    if here.sharded and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(here.local_rank)
        torch.distributed.init_process_group(backend=backend)
    return here


def shards_of(n_rows: int, shard_rows: int, here: Launch) -> tuple[list[range], list[int]]:
    """All shards of ``n_rows`` rows, and the indices of those that belong to this rank.

    Example:
        >>> shards, mine = shards_of(10, 4, Launch(rank=1, world_size=2))
        >>> [(s.start, s.stop) for s in shards], mine
        ([(0, 4), (4, 8), (8, 10)], [1])
    """
    if isinstance(shard_rows, bool) or not isinstance(shard_rows, int) or shard_rows < 1:
        raise ValueError(f"Expected `shard_rows` to be an integer >= 1, but got {shard_rows!r}")
    n_shards = max(1, math.ceil(n_rows / shard_rows))
    shards = [range(i * shard_rows, min(n_rows, (i + 1) * shard_rows)) for i in range(n_shards)]
    return shards, [i for i in range(n_shards) if i % here.world_size == here.rank]


def run_sharded(compute: Callable[[range], Mapping[str, torch.Tensor]], n_rows: int, identity: Mapping[str, Any],
                directory: str | os.PathLike, shard_rows: int, here: Launch | None = None) -> dict[str, torch.Tensor]:
    """Compute ``compute(rows)`` shard by shard over the ranks, caching each shard in ``directory``, and assemble
    the whole: the dict of concatenated tensors, [N, ...] each, on every rank.

    Args:
        compute: rows -> a dict of tensors whose first dimension is ``len(rows)``.
        identity: the cache identity of the unsharded computation; each shard adds its row range.
        shard_rows: rows per shard (a multiple of the caller's batch size, so results equal one process's).
        here: the launch (default :func:`launch`).
    """
    here = here or launch()
    shards, mine = shards_of(n_rows, shard_rows, here)
    directory = Path(directory)
    key = content_key(**identity)

    def entry(i: int) -> tuple[Path, dict]:
        shard_identity = {**identity, "shard": [shards[i].start, shards[i].stop]}
        return directory / f"{key}-shard{i:05d}-of{len(shards):05d}.pt", shard_identity

    def fits(i: int):
        return lambda payload: None if all(v.shape[0] == len(shards[i]) for v in payload.values()) else "holds another shard's rows"

    def compute_shard(i: int) -> dict[str, torch.Tensor]:
        payload = dict(compute(shards[i]))
        print(f"vlmcal.pipeline.sharding: rank {here.rank} computed shard {i + 1} of {len(shards)}",
              file=sys.stderr, flush=True)
        return payload

    for i in mine:
        cached(*entry(i), functools.partial(compute_shard, i), fits(i))
    if here.sharded:
        torch.distributed.barrier()
    parts = []
    for i in range(len(shards)):
        path, shard_identity = entry(i)
        payload = load_entry(path, shard_identity, fits(i))
        if payload is None:
            raise RuntimeError(f"Shard {i + 1} of {len(shards)} ({path}) is missing after every rank finished; "
                               "the cache directory must be shared by all ranks (one node, or a shared file system)")
        parts.append(payload)
    return {name: torch.cat([p[name] for p in parts]) for name in parts[0]}


def compute_rows(compute: Callable[[range], Mapping[str, torch.Tensor]], n_rows: int, identity: Mapping[str, Any],
                 directory: str | os.PathLike, shard_rows: int) -> dict[str, torch.Tensor]:
    """``compute(range(n_rows))`` in one process; under a torchrun launch of several, :func:`run_sharded`."""
    here = launch()
    if here.sharded:
        return run_sharded(compute, n_rows, identity, directory, shard_rows, here)
    return dict(compute(range(n_rows)))
