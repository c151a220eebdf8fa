"""Trained towers and their cards, kept in vlmcal's cache: read when there, else trained and written.

Each entry is written by ``vlmcal.pipeline.cache.save_entry`` (atomically, with a sha256 digest and the
identity of what was trained) and read back by ``vlmcal.pipeline.cache.load_entry`` with
``weights_only=True``; a damaged or foreign entry is reported, deleted and trained again.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch.nn as nn

from vlmcal.pipeline.cache import entry_path, load_entry, save_entry
from vlmcal.standins.card import ModelCard

__all__ = ["checkpoint_path", "load_or_train"]


def checkpoint_path(identity: dict[str, Any], cache_dir: str | Path | None) -> Path:
    """The cache file of a trained tower: ``backbones/<name>-<content key of identity>.pt``."""
    return entry_path("backbones", identity["name"], identity, cache_dir)


def load_or_train(
    path: Path, identity: dict[str, Any], make_tower: Callable[[], nn.Module], train: Callable[[], tuple[nn.Module, ModelCard]]
) -> tuple[nn.Module, ModelCard]:
    """A trained tower and its card: read from the cache file ``path``, or trained and then
    written there (atomically, with a digest: ``vlmcal.pipeline.cache.save_entry``).

    A file that is unreadable, fails its digest, was written for another ``identity``, or whose
    weights do not fit ``make_tower()`` is reported in a ``CacheEntryWarning``, deleted, and the
    tower trained again.

    Args:
        path: the cache file (its name carries the content hash of ``identity``).
        identity: what was trained (name, config, code version, data; JSON-able), stored in the entry.
        make_tower: builds an untrained tower of the right shape, to load weights into.
        train: trains one: ``() -> (tower, card)``.
    """
    tower = make_tower()
    expected = {k: (v.dtype, tuple(v.shape)) for k, v in tower.state_dict().items()}

    def check(saved: dict) -> str | None:
        got = {k: (v.dtype, tuple(v.shape)) for k, v in saved["state_dict"].items()}
        ModelCard(**saved["card"])  # a TypeError if its fields are not the card's
        wrong = sorted(set(got) ^ set(expected)) or [k for k in expected if got[k] != expected[k]]
        if not wrong:
            return None
        return (f"holds weights that do not fit the tower ({len(wrong)} tensor(s) differ, e.g. {wrong[0]!r}: "
                f"{got.get(wrong[0], 'absent')} in the file, {expected.get(wrong[0], 'absent')} in the tower)")

    saved = load_entry(path, identity, check)
    if saved is not None:
        tower.load_state_dict(saved["state_dict"])
        return tower.eval(), ModelCard(**saved["card"])
    tower, card = train()
    save_entry(path, {"state_dict": dict(tower.state_dict()), "card": asdict(card)}, identity)
    return tower, card
