"""Trained towers and their cards, kept in vlmcal's cache (``vlmcal.pipeline.cache.cached``)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch.nn as nn

from vlmcal.pipeline.cache import cached, entry_path
from vlmcal.standins.card import ModelCard

__all__ = ["checkpoint_path", "load_or_train"]


def checkpoint_path(identity: dict[str, Any], cache_dir: str | Path | None) -> Path:
    """The cache file of a trained tower: ``backbones/<name>-<content key of identity>.pt``."""
    return entry_path("backbones", identity["name"], identity, cache_dir)


def load_or_train(path: Path, identity: dict[str, Any], make_tower: Callable[[], nn.Module],
                  train: Callable[[], tuple[nn.Module, ModelCard]]) -> tuple[nn.Module, ModelCard]:
    """A trained tower and its card: read from the cache file ``path`` if valid and fitting, else trained and written.

    Args:
        identity: what was trained (name, config, code version, data; JSON-able); ``path``'s name carries its hash.
        make_tower: builds an untrained tower of the right shape, to load weights into (``train`` trains one).
    """
    tower = make_tower()
    expected = {k: (v.dtype, tuple(v.shape)) for k, v in tower.state_dict().items()}
    trained: list[tuple[nn.Module, ModelCard]] = []  # what `train` returned, if it ran

    def check(saved: dict) -> str | None:
        got = {k: (v.dtype, tuple(v.shape)) for k, v in saved["state_dict"].items()}
        ModelCard(**saved["card"])  # a TypeError if its fields are not the card's
        wrong = sorted(set(got) ^ set(expected)) or [k for k in expected if got[k] != expected[k]]
        if not wrong:
            return None
        return (f"holds weights that do not fit the tower ({len(wrong)} tensor(s) differ, e.g. {wrong[0]!r}: "
                f"{got.get(wrong[0], 'absent')} in the file, {expected.get(wrong[0], 'absent')} in the tower)")

    def train_and_pack() -> dict[str, Any]:
        new_tower, card = train()
        trained.append((new_tower, card))
        return {"state_dict": dict(new_tower.state_dict()), "card": asdict(card)}

    saved = cached(path, identity, train_and_pack, check)
    if trained:
        return trained[0]
    tower.load_state_dict(saved["state_dict"])
    return tower.eval(), ModelCard(**saved["card"])
