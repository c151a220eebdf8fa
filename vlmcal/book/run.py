"""Execute one notebook with papermill for the book, with progress and a clear failure.

Usage (what ``make book`` runs for every notebook)::

    python -m vlmcal.book.run notebooks/<name>.ipynb book/notebooks/<name>.ipynb [-p NAME VALUE ...]

Values given with ``-p`` are read as YAML (``-p seeds '[0, 1]'`` is a list). A parameter
that the notebook's ``parameters`` cell does not define stops the run before it starts
(exit status 2), naming the closest defined parameter: plain papermill only warns.

The executed notebook is written to a temporary file beside the destination and renamed
into place only when every cell ran (:func:`vlmcal.pipeline.atomic.atomic_path`). When a cell raises,
the partial notebook is moved to ``<book>/_failed/``, the failing cell and its traceback are
printed, any previously built site (``<book>/_build/html``) is removed so that no stale site
looks complete, and the command exits with status 1.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from vlmcal.papers.common.params import UnknownParameter, refuse_unknown_parameters, yaml_text
from vlmcal.papers.common.verdict import VERDICT_DIR_ENV
from vlmcal.pipeline.atomic import atomic_path

__all__ = ["NotebookFailed", "UnknownParameter", "check_parameters", "execute_notebook", "main"]


class NotebookFailed(RuntimeError):
    """A notebook raised while papermill executed it."""


def _book_root(dest: Path) -> Path | None:
    """The nearest ancestor of ``dest`` that holds a ``_config.yml`` (the book directory)."""
    for parent in dest.resolve().parents:
        if (parent / "_config.yml").exists():
            return parent
    return None


def _keep_failed(partial: Path, dest: Path, book: Path | None) -> Path:
    """Move a failed run's partial notebook to ``<book>/_failed/`` and remove what could pass for
    a current result: an older ``dest`` and the previously built site. Returns where it went."""
    failed_dir = (book or dest.parent) / "_failed"
    failed_dir.mkdir(exist_ok=True)
    kept = failed_dir / dest.name
    shutil.move(str(partial), kept)
    dest.unlink(missing_ok=True)  # an older successful copy must not pass for the current one
    if book is not None:
        shutil.rmtree(book / "_build" / "html", ignore_errors=True)
    return kept


def execute_notebook(
    source: str | os.PathLike,
    dest: str | os.PathLike,
    parameters: dict[str, Any] | None = None,
    progress_bar: bool = True,
) -> float:
    """Run ``source`` with papermill and write the executed notebook to ``dest`` atomically.

    Args:
        source: path of the ``.ipynb`` to execute.
        dest: where the executed notebook goes; written only if every cell succeeds.
        parameters: papermill parameters that override the notebook's ``parameters`` cell.
        progress_bar: show papermill's per-cell progress bar.

    Returns:
        The wall-clock seconds the execution took.

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
    if book is not None:  # verdicts go where the summary page collects them

        os.environ.setdefault(VERDICT_DIR_ENV, str(book / "_verdicts"))
    with atomic_path(dest, suffix=".partial.ipynb") as tmp:  # papermill wants the .ipynb ending
        try:
            pm.execute_notebook(
                str(source),
                str(tmp),
                parameters=parameters or {},
                cwd=str(dest.parent),
                progress_bar=progress_bar,
                # Written once at the end (or on failure), not after every cell: each save re-encodes
                # every figure so far, which cost seconds per page; nobody reads the partial file meanwhile.
                request_save_on_cell_execute=False,
            )
        except pm.PapermillExecutionError as err:
            kept = _keep_failed(tmp, dest, book)
            trace = "\n".join(err.traceback) if err.traceback else f"{err.ename}: {err.evalue}"
            trace = re.sub(r"\x1b\[[0-9;]*m", "", trace)  # the kernel colours its tracebacks
            raise NotebookFailed(
                f"{source} failed in cell {err.cell_index} (execution count {err.exec_count}):\n"
                f"--- cell source ---\n{err.source}\n--- traceback ---\n{trace}\n"
                f"The partial notebook is at {kept}."
            ) from None
    return time.perf_counter() - start


def check_parameters(source: str | os.PathLike, parameters: dict[str, Any]) -> None:
    """Refuse a parameter that ``source``'s ``parameters`` cell does not define.

    Plain papermill only warns ("Passed unknown parameter") and runs the notebook with its
    defaults, so a misspelt name silently gives a page that is not what was asked for.

    Raises:
        UnknownParameter: names the unknown parameter, the closest defined one, and all of them.
    """
    import papermill as pm

    refuse_unknown_parameters(Path(source).name, list(pm.inspect_notebook(str(source))), parameters)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vlmcal.book.run", description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("dest")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    args = parser.parse_args(argv)
    params = {name: yaml_text(value) for name, value in args.parameter}  # as papermill's -y reads values
    print(f"== notebook {args.source} -> {args.dest}", flush=True)
    try:
        if not Path(args.source).exists():
            raise FileNotFoundError(f"notebook {args.source} does not exist (run `make setup` to create the .ipynb files)")
        check_parameters(args.source, params)
        seconds = execute_notebook(args.source, args.dest, params)
    except NotebookFailed as err:
        print(f"\n!! notebook FAILED: {err}", file=sys.stderr, flush=True)
        return 1
    except (UnknownParameter, FileNotFoundError) as err:
        print(f"!! not run: {err}", file=sys.stderr, flush=True)
        return 2
    print(f"== notebook {Path(args.source).stem} done in {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
