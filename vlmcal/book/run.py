"""Execute one notebook with papermill for the book, with progress and a clear failure.

Usage (``make book``): ``python -m vlmcal.book.run notebooks/<name>.ipynb book/notebooks/<name>.ipynb [-p NAME VALUE]``.
``-p`` values are YAML; an unknown parameter stops the run (exit 2). A failed notebook goes to ``<book>/_failed/``
(exit 1); SIGTERM, SIGHUP and SIGINT stop the kernel (exit 128 + the signal). ``--profile FILE --out DIR`` builds
a whole book with a profile (:func:`vlmcal.book.whole.build_profile`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from vlmcal.book.whole import PageFailed, build_profile
from vlmcal.papers.common.params import UnknownParameter, refuse_unknown_parameters, yaml_text
from vlmcal.papers.common.verdict import VERDICT_DIR_ENV
from vlmcal.pipeline.atomic import atomic_path, sweep_once

__all__ = ["Interrupted", "NotebookFailed", "UnknownParameter", "check_parameters", "execute_notebook", "main"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
_KERNEL_STOP_SECONDS = 3.0  # after SIGTERM, how long the kernel gets before SIGKILL


class NotebookFailed(RuntimeError):
    """A notebook raised while papermill executed it."""


class Interrupted(KeyboardInterrupt):
    """The runner received one of :data:`STOP_SIGNALS` (its number: ``signum``); the kernel is already stopped."""
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop_kernels() -> None:
    """Stop this process's children (the kernel) and their process groups: SIGTERM, then SIGKILL if needed."""
    import psutil
    children = psutil.Process().children()

    def signal_all(signum: int) -> None:
        for child in children:
            try:
                group = os.getpgid(child.pid)
                if group == child.pid and group != os.getpgrp():  # jupyter_client starts kernels in their own session
                    os.killpg(group, signum)
                else:
                    os.kill(child.pid, signum)
            except OSError:
                pass  # already gone

    def running() -> bool:
        for child in children:
            try:
                if child.status() != psutil.STATUS_ZOMBIE:  # a zombie has ended: jupyter_client reaps it
                    return True
            except psutil.Error:
                pass  # gone
        return False

    signal_all(signal.SIGTERM)
    deadline = time.monotonic() + _KERNEL_STOP_SECONDS
    while running() and time.monotonic() < deadline:
        time.sleep(0.05)
    if running():
        signal_all(signal.SIGKILL)
        while running() and time.monotonic() < deadline + _KERNEL_STOP_SECONDS:
            time.sleep(0.05)


@contextmanager
def _stop_on(signals: tuple[int, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Within the block, the first of ``signals`` stops the kernel and raises :class:`Interrupted`; main thread only."""
    received: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        if received:
            return
        received.append(signum)
        _stop_kernels()
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, stop) for signum in signals
                if signal.getsignal(signum) is not signal.SIG_IGN}  # a signal ignored at start stays ignored
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _book_root(dest: Path) -> Path | None:
    """The nearest ancestor of ``dest`` that holds a ``_config.yml`` (the book directory)."""
    return next((parent for parent in dest.resolve().parents if (parent / "_config.yml").exists()), None)


def _partial_dir(dest: Path, book: Path | None) -> Path:
    """Where the notebook is written while it runs: ``<book>/_build/partial/``, or beside ``dest`` outside a book."""
    return dest.parent if book is None else book / "_build" / "partial"


def _sweep_leftovers(dest: Path, book: Path | None) -> None:
    """Remove the temporaries that killed runs left in the book's folders (:func:`vlmcal.pipeline.atomic.sweep`)."""
    extra = [] if book is None else [book / "_failed", book / "_verdicts"]
    for folder in [dest.parent, _partial_dir(dest, book), *extra]:
        sweep_once(folder)


def _keep_failed(partial: Path, dest: Path, book: Path | None) -> Path:
    """Move a failed partial notebook to ``<book>/_failed/`` (returned); remove an older ``dest`` and the built site."""
    kept = (book or dest.parent) / "_failed" / dest.name
    kept.parent.mkdir(exist_ok=True)
    shutil.move(str(partial), kept)
    dest.unlink(missing_ok=True)  # an older successful copy must not pass for the current one
    if book is not None:
        shutil.rmtree(book / "_build" / "html", ignore_errors=True)
    return kept


def execute_notebook(source: str | os.PathLike, dest: str | os.PathLike, parameters: dict[str, Any] | None = None,
                     progress_bar: bool = True) -> float:
    """Run the ``.ipynb`` ``source`` with papermill (``parameters`` override its ``parameters`` cell) and write the
    executed notebook to ``dest`` atomically, only if every cell succeeds; return the wall-clock seconds it took.

    Raises:
        FileNotFoundError: ``source`` does not exist.
        NotebookFailed: a cell raised; the message names the cell and carries its traceback.
    """
    import papermill as pm  # imported here: the rest of vlmcal does not need it
    source, dest = Path(source), Path(dest)
    if not source.exists():
        raise FileNotFoundError(f"notebook {source} does not exist (run `make setup` to create the .ipynb files)")
    start = time.perf_counter()
    book = _book_root(dest)
    _sweep_leftovers(dest, book)
    if book is not None:  # verdicts go where the summary page collects them
        os.environ.setdefault(VERDICT_DIR_ENV, str(book / "_verdicts"))
    # papermill wants the .ipynb ending; the book build never reads _build/partial
    with atomic_path(dest, suffix=".partial.ipynb", temp_dir=_partial_dir(dest, book)) as tmp:
        try:
            # Saved once at the end, not after every cell: each save re-encodes every figure (seconds per page).
            pm.execute_notebook(str(source), str(tmp), parameters=parameters or {}, cwd=str(dest.parent),
                                progress_bar=progress_bar, request_save_on_cell_execute=False)
        except pm.PapermillExecutionError as err:
            kept = _keep_failed(tmp, dest, book)
            trace = "\n".join(err.traceback) if err.traceback else f"{err.ename}: {err.evalue}"
            trace = re.sub(r"\x1b\[[0-9;]*m", "", trace)  # the kernel colours its tracebacks
            raise NotebookFailed(f"{source} failed in cell {err.cell_index} (execution count {err.exec_count}):\n"
                                 f"--- cell source ---\n{err.source}\n--- traceback ---\n{trace}\n"
                                 f"The partial notebook is at {kept}.") from None
    return time.perf_counter() - start


def check_parameters(source: str | os.PathLike, parameters: dict[str, Any]) -> None:
    """Refuse a parameter that ``source``'s ``parameters`` cell does not define (papermill only warns).

    Raises:
        UnknownParameter: names the unknown parameter, the closest defined one, and all of them.
    """
    import papermill as pm
    refuse_unknown_parameters(Path(source).name, list(pm.inspect_notebook(str(source))), parameters)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vlmcal.book.run", description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?")
    parser.add_argument("dest", nargs="?")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--profile", help="a YAML file of page parameters: run the whole book with it (needs --out)")
    parser.add_argument("--out", help="with --profile: the folder of that book and its site")
    args = parser.parse_args(argv)
    if args.profile or args.out:
        if not (args.profile and args.out) or args.source or args.parameter:
            parser.error("--profile FILE --out DIR runs the whole book; give both, and no notebook or -p")
        return _whole_book(args.profile, args.out)
    if not (args.source and args.dest):
        parser.error("give a notebook and where to write it (SOURCE DEST), or --profile FILE --out DIR")
    params = {name: yaml_text(value) for name, value in args.parameter}  # as papermill's -y reads values
    print(f"== notebook {args.source} -> {args.dest}", flush=True)
    try:
        with _stop_on(STOP_SIGNALS):
            if not Path(args.source).exists():
                raise FileNotFoundError(f"notebook {args.source} does not exist (run `make setup` to create the .ipynb files)")
            check_parameters(args.source, params)
            seconds = execute_notebook(args.source, args.dest, params)
    except Interrupted as stop:
        print(f"\n!! notebook INTERRUPTED by {stop.args[0]}: {args.source} did not finish (any kernel it started is "
              f"stopped; {args.dest} is left as it was). Run the command again.", file=sys.stderr, flush=True)
        return 128 + stop.signum
    except NotebookFailed as err:
        print(f"\n!! notebook FAILED: {err}", file=sys.stderr, flush=True)
        return 1
    except (UnknownParameter, FileNotFoundError) as err:
        print(f"!! not run: {err}", file=sys.stderr, flush=True)
        return 2
    print(f"== notebook {Path(args.source).stem} done in {seconds:.1f} s", flush=True)
    return 0


def _whole_book(profile: str, out: str) -> int:
    try:
        index = build_profile(profile, out)
    except (UnknownParameter, FileNotFoundError, ValueError) as err:
        print(f"!! not run: {err}", file=sys.stderr, flush=True)
        return 2
    except PageFailed as err:
        print(f"!! {err}", file=sys.stderr, flush=True)
        return err.status
    print(f"== site: {index}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
