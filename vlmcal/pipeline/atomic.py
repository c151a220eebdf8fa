"""Atomic file writes: a reader sees a file's old content or its complete new content, never a part.

A temporary (``.<target name>.<16 hex digits>.tmp``) is written beside the target, fsynced and ``os.replace``-d
over it. On POSIX a writer holds an ``fcntl.flock`` on its temporary (the OS drops it when the process dies), so
:func:`sweep` removes only dead writers' temporaries.

Example:
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
    >>> with atomic_write(target) as fh:
    ...     _ = fh.write("complete")
    >>> target.read_text()
    'complete'
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

try:
    import fcntl
except ImportError:  # not POSIX: temporaries are neither locked nor swept
    fcntl = None

__all__ = ["atomic_path", "atomic_write", "atomic_directory", "sweep", "sweep_once", "TEMPORARY_NAME"]

_NAME_ATTEMPTS = 100  # O_EXCL collisions of 64 random bits: never in practice; the bound only stops a loop on a broken file system
_SUFFIX = re.compile(r"\.tmp|\.partial\.[A-Za-z0-9]+")
TEMPORARY_NAME = re.compile(rf"\..+\.[0-9a-f]{{16}}(?:{_SUFFIX.pattern})")
"""The names this module gives temporaries (``fullmatch``); :func:`sweep` removes nothing else."""
_swept: set[str] = set()  # directories this process has swept (absolute paths)
_swept_trees: set[str] = set()  # ... and trees it has swept whole


def _lock(fd: int, blocking: bool = True) -> bool:
    """Take an exclusive ``flock`` on ``fd``; False if held elsewhere (non-blocking) or locks are unavailable."""
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except OSError:
        return False
    return True


def _names(fd: int, path: Path) -> bool:
    """Whether ``path`` (not followed if a link) is the file or directory open as ``fd``."""
    try:
        return os.path.samestat(os.lstat(path), os.fstat(fd))
    except OSError:
        return False


def _create_temporary(path: Path, suffix: str, directory: Path, is_dir: bool = False) -> tuple[Path, int]:
    """A new temporary for ``path`` in ``directory`` (umask permissions) and an fd holding its lock."""
    for _ in range(_NAME_ATTEMPTS):
        tmp = directory / f".{path.name}.{secrets.token_hex(8)}{suffix}"
        try:
            if is_dir:
                tmp.mkdir()
                try:
                    fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
                except FileNotFoundError:
                    continue  # a sweeper removed it between mkdir and open
            else:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        if not _lock(fd) or _names(fd, tmp):  # unlocked (no locks here): no sweeper removes it either
            return tmp, fd
        os.close(fd)  # a sweeper removed it between its creation and our lock: take another name
    raise FileExistsError(f"Could not create a temporary file beside {path}: {_NAME_ATTEMPTS} random names were all taken")


def _remove_if_abandoned(path: Path) -> bool:
    """Remove the temporary ``path`` if no process holds its lock; True if it was removed."""
    if fcntl is None:
        return False
    try:  # O_NOFOLLOW: a link is not ours; O_NONBLOCK: a FIFO must not hang the sweep
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if not _lock(fd, blocking=False) or not _names(fd, path):
            return False  # a live writer's, or already renamed or removed
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            shutil.rmtree(path)
        elif stat.S_ISREG(mode):
            path.unlink()
        else:
            return False
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def sweep(directory: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Remove the temporaries in ``directory`` (``recursive``: and its subdirectories, links not followed) that no
    live process owns (killed writers' leftovers); return the paths removed."""
    removed: list[Path] = []
    try:
        with os.scandir(directory) as it:
            entries = list(it)
    except OSError:
        return removed
    _swept.add(os.path.abspath(directory))
    for entry in entries:
        if TEMPORARY_NAME.fullmatch(entry.name):
            if _remove_if_abandoned(Path(entry.path)):
                removed.append(Path(entry.path))
        elif recursive and entry.is_dir(follow_symlinks=False):
            removed += sweep(entry.path, recursive=True)
    return removed


def sweep_once(directory: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """:func:`sweep`, unless this process has swept ``directory`` (with ``recursive``, its tree) before."""
    key = os.path.abspath(directory)
    if key in (_swept_trees if recursive else _swept):
        return []
    removed = sweep(key, recursive)
    if recursive:
        _swept_trees.add(key)
    return removed


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp", temp_dir: str | os.PathLike | None = None) -> Iterator[Path]:
    """A temporary path (an existing empty file) to write to, moved over ``path`` only when the block succeeds (else
    removed); the folders are created if missing.

    Args:
        suffix: ``.tmp``, or ``.partial.<ext>`` for writers that choose a format by extension.
        temp_dir: where to make the temporary (on ``path``'s file system; default its folder).
    """
    if not _SUFFIX.fullmatch(suffix):
        raise ValueError(f"Expected argument `suffix` to be '.tmp' or '.partial.<ext>' (a name the sweep recognises), but got {suffix!r}")
    path = Path(path)
    where = path.parent if temp_dir is None else Path(temp_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    where.mkdir(parents=True, exist_ok=True)
    sweep_once(where)
    tmp, fd = _create_temporary(path, suffix, where)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)  # releases the lock, once the temporary is renamed or removed


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """An open file (``mode`` ``"w"`` or ``"wb"``, starting empty) whose content replaces ``path`` only when the block
    succeeds: it is then closed, fsynced and renamed over ``path`` (whose directory is created if missing).

    Example:
        >>> import json, tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "v.json"
        >>> with atomic_write(target) as fh:
        ...     json.dump({"holds": True}, fh)
        >>> json.loads(target.read_text())
        {'holds': True}
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"Expected argument `mode` to be 'w' or 'wb' (an atomic write replaces the whole file), but got {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode, encoding=None if "b" in mode else encoding) as fh:
        yield fh


@contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path | None]:
    """A temporary directory to fill, renamed to ``path`` when the block succeeds; None if ``path`` exists (kept)."""
    path = Path(path)
    if path.is_dir():
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_once(path.parent)
    tmp, fd = _create_temporary(path, ".tmp", path.parent, is_dir=True)
    try:
        yield tmp
        for child in tmp.iterdir():  # on disk before the rename makes them visible
            _fsync(child)
        try:
            os.rename(tmp, path)  # atomic; fails when another process put its copy there first
        except OSError:
            if not path.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone after a successful rename; else a discarded copy
        os.close(fd)  # releases the lock
