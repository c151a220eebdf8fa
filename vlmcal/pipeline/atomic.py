"""Atomic file writes: a reader sees a file's old content or its complete new content, never a part.

The one home of the pattern every writer in vlmcal uses (the cache, the verdict records, the
book's executed notebooks, downloaded data files): write to a temporary file in the target's
directory, fsync it, and ``os.replace`` it over the target, which POSIX makes atomic within
one file system. If the writer raises (or the run is interrupted), the temporary file is
removed and the target is left as it was.

A directory that is built once and never changed (a copied data set) is made the same way by
:func:`atomic_directory`: built under a temporary name beside the target, fsynced, and renamed
into place; of two builders, the first rename wins and the other's copy is discarded.

Temporary names are ``.<target name>.<random>.tmp`` (hidden, so that a glob such as
``*.json`` never picks up a file being written), created with ``O_EXCL`` so that two writers
of the same target, in threads or processes, never share one. It imports nothing heavy, so
that ``vlmcal.book.run`` stays quick to start.

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
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

__all__ = ["atomic_path", "atomic_write", "atomic_directory"]

_NAME_ATTEMPTS = 100  # O_EXCL collisions of 64 random bits: never in practice; the bound only stops a loop on a broken file system


def _create_temporary(path: Path, suffix: str) -> Path:
    """A new empty file beside ``path``, with a name no other writer has (created with O_EXCL).

    Unlike ``tempfile.mkstemp`` (mode 0600), the file gets the umask's default permissions,
    which the target then keeps.
    """
    for _ in range(_NAME_ATTEMPTS):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}{suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"Could not create a temporary file beside {path}: {_NAME_ATTEMPTS} random names were all taken")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path to write to, moved over ``path`` only when the block succeeds.

    For writers that open the file themselves (papermill, a download checked before it is
    kept). On leaving the block normally, the temporary file is fsynced and renamed over
    ``path``; on any exception (``KeyboardInterrupt`` too) it is removed and ``path`` is left
    as it was. A writer may also move the temporary file away itself before raising (the book
    runner keeps a failed notebook that way).

    Args:
        path: the target file; its directory is created if missing.
        suffix: the temporary name's ending, for writers that choose a format by extension
            (papermill wants ``.ipynb``).

    Yields:
        The temporary path, an existing empty file in ``path``'s directory.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temporary(path, suffix)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """An open file whose content replaces ``path`` only when the block succeeds.

    Args:
        path: the target file; its directory is created if missing.
        mode: ``"w"`` (text) or ``"wb"`` (bytes); the file starts empty.
        encoding: the text encoding (ignored in binary mode).

    Yields:
        The file object; it is closed, fsynced and renamed over ``path`` after the block.

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
    """A temporary directory to fill, renamed to ``path`` when the block succeeds.

    For a directory written once and then only read. If ``path`` already exists the block gets
    None and nothing is written. Otherwise it gets an empty temporary directory beside
    ``path``; on leaving the block normally, its files are fsynced and it is renamed to
    ``path``. If another process renamed its own copy there first, this copy is removed and
    theirs is kept. On an exception the temporary directory is removed.

    Yields:
        The temporary directory to fill, or None when ``path`` exists.
    """
    import shutil

    path = Path(path)
    if path.is_dir():
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    tmp.mkdir()
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
