"""Where vlmcal keeps what it computes once (trained stand-in models, extracted features), and
how it writes there: atomically, so a run killed mid-write never leaves a file that a later
run reads as valid.

The directory is, in order: the ``cache_dir`` argument, ``$VLMCAL_CACHE_DIR``, or
``~/.cache/vlmcal``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["cache_dir", "content_key", "atomic_torch_save", "CACHE_ENV"]

CACHE_ENV = "VLMCAL_CACHE_DIR"


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache directory (created if missing)."""
    chosen = Path(path or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "vlmcal").expanduser()
    chosen.mkdir(parents=True, exist_ok=True)
    return chosen


def content_key(**parts: Any) -> str:
    """A short stable hash of keyword parts (JSON-serialisable; sorted by name).

    Example:
        >>> content_key(backbone="default", split="test") == content_key(split="test", backbone="default")
        True
    """
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same directory, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
