"""Where vlmcal keeps what it computes once, and how it writes (atomically) and reads there.

Entries carry a sha256 digest and their computation's identity; a bad one is reported (:class:`CacheEntryWarning`),
deleted and recomputed. The directory: the ``cache_dir`` argument, ``$VLMCAL_CACHE_DIR``, or ``~/.cache/vlmcal``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from vlmcal.pipeline.atomic import atomic_write, sweep_once

__all__ = ["cache_dir", "content_key", "file_name", "entry_path", "cached", "atomic_torch_save", "save_entry",
           "load_entry", "CacheEntryWarning", "CACHE_ENV", "ENTRY_FORMAT"]

CACHE_ENV = "VLMCAL_CACHE_DIR"
ENTRY_FORMAT = 2  # the layout written by `save_entry`; bump when it changes (older entries are then recomputed)
_ENTRY_KEYS = {"format", "identity", "payload", "sha256"}


class CacheEntryWarning(UserWarning):
    """A cache entry could not be used (unreadable, damaged, or another computation's); it is deleted and recomputed."""


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache directory, created if missing and swept once per process (:mod:`vlmcal.pipeline.atomic`)."""
    chosen = Path(path or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "vlmcal").expanduser()
    chosen.mkdir(parents=True, exist_ok=True)
    sweep_once(chosen, recursive=True)
    return chosen


def _canonical(parts: Mapping[str, Any]) -> str:
    """``parts`` as JSON text, keys sorted, anything not JSON-able as its ``str``."""
    return json.dumps(dict(parts), sort_keys=True, default=str)


def content_key(**parts: Any) -> str:
    """A short stable hash of keyword parts (JSON-serialisable; sorted by name).

    Example:
        >>> content_key(backbone="default", split="test") == content_key(split="test", backbone="default")
        True
    """
    return hashlib.sha256(_canonical(parts).encode()).hexdigest()[:16]


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` atomically (:func:`vlmcal.pipeline.atomic.atomic_write`)."""
    with atomic_write(path, "wb") as fh:
        torch.save(obj, fh)
    return Path(path)


def _digest(payload: Any, identity: str) -> str:
    """sha256 over the entry format, the identity and the payload (structure, scalars, tensors' dtype, shape, bytes)."""
    h = hashlib.sha256(f"vlmcal-entry {ENTRY_FORMAT}\n{identity}\n".encode())

    def walk(x: Any, where: str) -> None:
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().reshape(-1)  # contiguous: a view of a contiguous tensor, else a copy
            h.update(f"tensor {x.dtype} {list(x.shape)}\n".encode())
            h.update(t.view(torch.uint8).numpy() if t.numel() else b"")
        elif isinstance(x, dict):
            h.update(f"dict {len(x)}\n".encode())
            for k in sorted(x, key=repr):
                walk(k, where)
                walk(x[k], f"{where}[{k!r}]")
        elif isinstance(x, (list, tuple)):
            h.update(f"{type(x).__name__} {len(x)}\n".encode())
            for i, v in enumerate(x):
                walk(v, f"{where}[{i}]")
        elif x is None or type(x) in (str, int, float, bool):
            text = repr(x)
            h.update(f"{type(x).__name__} {len(text)} {text}\n".encode())
        else:
            raise TypeError(
                f"Expected a cache payload of tensors, str, int, float, bool, None, lists, tuples and dicts, "
                f"but got a {type(x).__module__}.{type(x).__qualname__} at payload{where}; convert it to one of those"
            )

    walk(payload, "")
    return h.hexdigest()


def save_entry(path: str | os.PathLike, payload: Any, identity: Mapping[str, Any]) -> Path:
    """Write a cache entry to ``path`` atomically (returned): ``payload`` with its identity and sha256 digest.

    Args:
        payload: tensors, str, int, float, bool, None, and lists, tuples and dicts of them.
        identity: what the entry is the result of (JSON-able).
    """
    text = _canonical(identity)
    return atomic_torch_save({"format": ENTRY_FORMAT, "identity": text, "payload": payload,
                              "sha256": _digest(payload, text)}, path)


def _problem(entry: Any, identity: str, check: Callable[[Any], str | None] | None) -> str | None:
    """What is wrong with a loaded entry, in words; None if nothing."""
    if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS:
        return "is not a vlmcal cache entry of this version (no digest: written by an older vlmcal or another program)"
    if entry["format"] != ENTRY_FORMAT:
        return f"has entry format {entry['format']!r}, but this vlmcal reads format {ENTRY_FORMAT}"
    if entry["sha256"] != _digest(entry["payload"], entry["identity"]):
        return "fails its sha256 check: its content changed after it was written (a disk fault, or an edit)"
    if entry["identity"] != identity:
        got, want = json.loads(entry["identity"]), json.loads(identity)
        diff = "; ".join(f"{k} {json.dumps(got.get(k))} instead of {json.dumps(want.get(k))}"
                         for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k))
        return f"holds the result of another computation ({diff[:400]})"
    return check(entry["payload"]) if check is not None else None


def load_entry(path: str | os.PathLike, identity: Mapping[str, Any],
               check: Callable[[Any], str | None] | None = None) -> Any | None:
    """The payload of the valid cache entry at ``path``, else None; a bad file is reported in a
    :class:`CacheEntryWarning` and deleted. Read with ``torch.load(weights_only=True)``.

    Args:
        identity: what it must be the result of (as given to :func:`save_entry`).
        check: ``payload -> None`` if it fits the caller, else what does not (raising counts as not fitting).
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # garbage, truncated or empty: never trust it
        first = (str(err).strip().splitlines() or [""])[0].split(". ")[0][:200]
        problem = f"cannot be read by torch.load ({path.stat().st_size} bytes; {': '.join(filter(None, (type(err).__name__, first)))})"
    else:
        try:
            problem = _problem(entry, _canonical(identity), check)
        except Exception as err:
            problem = f"does not hold what this vlmcal expects ({type(err).__name__}: {err})"
    if problem is None:
        return entry["payload"]
    warnings.warn(f"Cache entry {path} {problem}; removing it and recomputing it.", CacheEntryWarning, stacklevel=2)
    path.unlink(missing_ok=True)
    return None


def file_name(text: str, limit: int = 60) -> str:
    """``text`` as a file-name piece, cut at ``limit``: ``openclip:ViT-B-16:openai`` -> ``openclip_ViT-B-16_openai``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:limit]


def entry_path(folder: str, name: str, identity: Mapping[str, Any], cache_dir_: str | os.PathLike | None = None) -> Path:
    """Where the entry of ``identity`` lives: ``<cache>/<folder>/<name>-<content key>.pt`` (``name`` made safe)."""
    return cache_dir(cache_dir_) / folder / f"{file_name(name)}-{content_key(**identity)}.pt"


def cached(path: str | os.PathLike, identity: Mapping[str, Any], compute: Callable[[], Any],
           check: Callable[[Any], str | None] | None = None, save: bool = True) -> Any:
    """The valid entry at ``path`` (:func:`load_entry`), else ``compute()``, saved (:func:`save_entry`) if ``save``."""
    payload = load_entry(path, identity, check)
    if payload is None:
        payload = compute()
        if save:
            save_entry(path, payload, identity)
    return payload
