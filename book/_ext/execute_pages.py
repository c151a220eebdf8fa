"""Sphinx extension: `jb build book/` first executes the pages that are missing or stale.

A page is stale when its executed notebook (``book/notebooks/<name>.ipynb``) is older than its
source (``notebooks/<name>.py``) or than vlmcal's files; the summary page also when any page
before it is newer. Each runs through the book's runner (``python -m vlmcal.book.run``), with
its caching and its line per page: :func:`vlmcal.book.whole.execute_stale`. ``make book`` is the
set-up, then this same ``jb build``: one way to build the book.

Where vlmcal's runner cannot be imported the build fails at once and says what to run.
``VLMCAL_EXECUTE_PAGES=0`` skips the step (a profile's book, whose pages its command ran).
"""

from __future__ import annotations

import os
from pathlib import Path

from sphinx.errors import ExtensionError


def _execute(app, config) -> None:
    if os.environ.get("VLMCAL_EXECUTE_PAGES", "1") == "0":
        return
    try:
        from vlmcal.book.whole import PageFailed, execute_stale
    except ImportError as err:
        raise ExtensionError(
            f"the book's pages are executed by vlmcal's runner, which this Python ({os.sys.executable}) cannot "
            f"import ({err}). Run `make book` from the repository (it sets up .venv, then builds the book), or "
            "`pip install -e '.[book]'` and then `jb build book/` again."
        ) from None
    try:
        ran = execute_stale(Path(app.srcdir))
    except (PageFailed, FileNotFoundError) as err:
        raise ExtensionError(f"a page could not be executed: {err}") from None
    print(f"== pages executed before the build: {', '.join(ran) if ran else 'none (all current)'}", flush=True)


def setup(app):
    app.connect("config-inited", _execute)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
