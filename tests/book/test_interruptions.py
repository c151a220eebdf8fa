"""Fault injection: an interrupted book build recovers by itself (issue 22).

A tiny book (two pages, the project's ``exclude_patterns``) is built as ``make book`` builds
it: each page with ``python -m vlmcal.book.run``, then ``jb build``. Its first, uninterrupted
build is the reference. Each case then interrupts one step with SIGTERM, SIGINT or SIGKILL at
a known point (a page's cell, a cache write inside a page, the site build while it reads the
sources or writes the pages), runs that step again, then the site build, and checks that the
build succeeds, that the pages equal the reference's, and that no temporary file is left in
the book or in the cache. Every point is reached deterministically: the code there writes a
marker file, then sleeps, and the signal is sent once the marker exists.

SIGTERM and SIGINT go to the interrupted process, as ``timeout`` or a terminal's Ctrl-C send
them; SIGKILL goes to its whole process group, as a CI cancellation sends it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml

from vlmcal.pipeline.atomic import TEMPORARY_NAME

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
JB = Path(sys.executable).with_name("jb")
STALL = "VLMCAL_TEST_STALL"  # where the process sleeps: cell, cache, read or write
MARKERS = "VLMCAL_TEST_MARKERS"  # the directory its marker goes to

_MARK = f"""import os, pathlib, time

def stall_at(point):
    if os.environ.get({STALL!r}) == point:
        pathlib.Path(os.environ[{MARKERS!r}], point).write_text(point)
        time.sleep(600)
"""

PAGE_A = [
    ("markdown", "# Page A"),
    ("code", "n = 5"),  # the parameters cell
    ("code", _MARK + "stall_at('cell')"),
    ("code", "from vlmcal.pipeline.cache import cache_dir, load_entry, save_entry\n"
             "path, identity = cache_dir() / 'pages' / 'squares.pt', {'page': 'a', 'n': n}\n"
             "payload = load_entry(path, identity)\n"
             "if payload is None:\n"
             "    payload = {'squares': [i * i for i in range(n)]}\n"
             "    save_entry(path, payload, identity)\n"
             "print('squares', payload['squares'])"),
    ("code", "if os.environ.get(" + repr(STALL) + ") == 'cache':\n"
             "    from vlmcal.pipeline.atomic import atomic_write\n"
             "    with atomic_write(cache_dir() / 'pages' / 'cubes.pt', 'wb') as fh:  # as save_entry writes\n"
             "        fh.write(b'the first bytes of an entry')\n"
             "        fh.flush()\n"
             "        stall_at('cache')\n"
             "print('cubes', [i ** 3 for i in range(n)])"),
]
PAGE_B = [("markdown", "# Page B"), ("code", "k = 3"), ("code", "print('sum', sum(range(10 * k)))")]

# A Sphinx extension of the tiny book that stalls the site build where asked.
STALL_EXTENSION = _MARK + """

def setup(app):
    app.connect("doctree-read", lambda app, doctree: stall_at("read"))
    app.connect("html-page-context", lambda app, pagename, templatename, context, doctree: stall_at("write"))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
"""


def _write_notebook(path: Path, cells) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source in cells:
        cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
        nb.cells.append(cell)
    nb.cells[1].metadata["tags"] = ["parameters"]
    nbformat.write(nb, path)
    return path


class Book:
    """The tiny book, its notebook sources, its cache, and the commands that build it."""

    def __init__(self, root: Path):
        self.root, self.book, self.sources = root, root / "book", root / "notebooks"
        self.cache, self.markers = root / "cache", root / "markers"
        for folder in (self.book / "notebooks", self.book / "_ext", self.sources, self.markers):
            folder.mkdir(parents=True)
        project = yaml.safe_load((ROOT / "_config.yml").read_text())
        config = {
            "title": "tiny", "only_build_toc_files": True, "exclude_patterns": project["exclude_patterns"],
            "execute": {"execute_notebooks": "off"}, "sphinx": {"local_extensions": {"stall": "_ext"}},
        }
        (self.book / "_config.yml").write_text(yaml.safe_dump(config))
        (self.book / "_toc.yml").write_text(
            "format: jb-book\nroot: intro\nchapters:\n  - file: notebooks/page_a\n  - file: notebooks/page_b\n"
        )
        (self.book / "intro.md").write_text("# A tiny book\n\nTwo pages.\n")
        (self.book / "_ext" / "stall.py").write_text(STALL_EXTENSION)
        _write_notebook(self.sources / "page_a.ipynb", PAGE_A)
        _write_notebook(self.sources / "page_b.ipynb", PAGE_B)

    def env(self, stall: str = "") -> dict[str, str]:
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))
        return {**os.environ, "PYTHONPATH": path, "VLMCAL_CACHE_DIR": str(self.cache), MARKERS: str(self.markers), STALL: stall}

    def page_command(self, page: str) -> list[str]:
        return [sys.executable, "-m", "vlmcal.book.run", str(self.sources / f"{page}.ipynb"), str(self.book / "notebooks" / f"{page}.ipynb")]

    def site_command(self) -> list[str]:
        return [str(JB), "build", "-W", "-n", "--keep-going", str(self.book)]

    def prepare(self, command: list[str]) -> None:
        if command[0] == str(JB):
            shutil.rmtree(self.book / "_build" / "html", ignore_errors=True)  # as `make book` does

    def run(self, command: list[str]) -> subprocess.CompletedProcess:
        self.prepare(command)
        result = subprocess.run(command, env=self.env(), capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{' '.join(command[:4])} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result

    def build(self) -> None:
        for page in ("page_a", "page_b"):
            self.run(self.page_command(page))
        self.run(self.site_command())

    def interrupt(self, command: list[str], point: str, signum: int) -> tuple[subprocess.Popen, str, list]:
        """Start ``command`` stalling at ``point``, send ``signum`` once it is there, and wait
        for it to end. Returns the process, its stderr, and the processes it had started."""
        import psutil

        marker = self.markers / point
        marker.unlink(missing_ok=True)

        def terminal_defaults():  # as a terminal's foreground job has them
            for s in (signal.SIGINT, signal.SIGHUP):
                signal.signal(s, signal.SIG_DFL)

        self.prepare(command)
        err_path = self.root / "interrupted.err"
        with open(err_path, "w") as err:
            process = subprocess.Popen(command, env=self.env(point), stdout=subprocess.DEVNULL, stderr=err,
                                       start_new_session=True, preexec_fn=terminal_defaults)
        try:
            deadline = time.monotonic() + 180
            while not marker.exists():
                assert process.poll() is None, f"{command[:4]} ended before reaching {point}:\n{err_path.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"{command[:4]} did not reach {point} in 180 s"
                time.sleep(0.05)
            children = psutil.Process(process.pid).children(recursive=True)
            if signum == signal.SIGKILL:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.send_signal(signum)
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return process, err_path.read_text(), children

    def temporaries(self) -> list[Path]:
        """Every temporary file or directory in the book and the cache, by vlmcal's names or a
        ``.partial.ipynb`` ending."""
        found = []
        for folder in (self.book, self.cache):
            found += [p for p in folder.rglob("*") if TEMPORARY_NAME.fullmatch(p.name) or p.name.endswith(".partial.ipynb")]
        return sorted(found)

    def pages(self) -> dict[str, list]:
        """Each executed page's cells, sources and outputs, without execution metadata."""
        pages = {}
        for page in ("page_a", "page_b"):
            nb = nbformat.read(self.book / "notebooks" / f"{page}.ipynb", as_version=4)
            pages[page] = [
                (c.cell_type, c.source, [{k: v for k, v in o.items() if k != "metadata"} for o in c.get("outputs", [])])
                for c in nb.cells
            ]
        return json.loads(json.dumps(pages))

    def site_text(self) -> str:
        html = "".join((self.book / "_build" / "html" / "notebooks" / f"{p}.html").read_text() for p in ("page_a", "page_b"))
        return re.sub(r"<[^>]+>", " ", html)


def _ended(processes) -> bool:
    import psutil

    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            pass
    return True


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny book after an uninterrupted build, with that build's pages as the reference."""
    book = Book(tmp_path_factory.mktemp("interruptions"))
    book.build()
    reference = book.pages()
    outputs = json.dumps(reference)
    assert "squares [0, 1, 4, 9, 16]" in outputs and "cubes [0, 1, 8, 27, 64]" in outputs and "sum 435" in outputs
    assert book.temporaries() == []
    return book, reference


SIGNALS = [signal.SIGTERM, signal.SIGINT, signal.SIGKILL]


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("point", ["cell", "cache"])
def test_page_run_interrupted_then_run_again_builds_the_same_book(tiny, point, signum):
    book, reference = tiny
    runner, err, children = book.interrupt(book.page_command("page_a"), point, signum)
    name = signal.Signals(signum).name
    if signum == signal.SIGKILL:
        assert runner.returncode == -signal.SIGKILL
        deadline = time.monotonic() + 15  # the kernel, in its own session, ends when it sees its parent gone
        while not _ended(children) and time.monotonic() < deadline:
            time.sleep(0.1)
    else:
        assert runner.returncode == 128 + signum, err[-3000:]
        (line,) = [line for line in err.splitlines() if "INTERRUPTED" in line]
        assert f"by {name}" in line and "page_a.ipynb" in line
    assert _ended(children), f"the kernel outlived the runner killed by {name}"
    assert not [p for p in (book.book / "notebooks").iterdir() if p.name.startswith(".")], "a hidden file in the book's sources"

    book.run(book.page_command("page_a"))
    book.run(book.site_command())
    assert book.pages() == reference
    assert book.temporaries() == []


@pytest.mark.parametrize(
    "point, signum",
    [("read", signal.SIGTERM), ("read", signal.SIGINT), ("read", signal.SIGKILL), ("write", signal.SIGKILL)],
    ids=["read-SIGTERM", "read-SIGINT", "read-SIGKILL", "write-SIGKILL"],
)
def test_site_build_interrupted_then_run_again_succeeds(tiny, point, signum):
    book, reference = tiny
    (book.book / "notebooks" / "page_b.ipynb").touch()  # a changed page: the build reads it again
    builder, err, _ = book.interrupt(book.site_command(), point, signum)
    assert builder.returncode != 0

    book.run(book.site_command())
    assert book.pages() == reference
    text = book.site_text()
    assert "squares [0, 1, 4, 9, 16]" in text and "sum 435" in text
    assert book.temporaries() == []


def test_partial_left_by_a_killed_runner_does_not_break_the_next_site_build(tiny):
    """The issue's reproduction: a 0-byte ``.<page>.ipynb.<hex>.partial.ipynb`` left in the
    book's sources (where the runner wrote before) and a SIGKILLed runner's own leftover; the
    next ``jb build`` succeeds without a clean, and the next page run removes both."""
    book, reference = tiny
    runner, _, children = book.interrupt(book.page_command("page_a"), "cell", signal.SIGKILL)
    deadline = time.monotonic() + 15
    while not _ended(children) and time.monotonic() < deadline:
        time.sleep(0.1)
    old_style = book.book / "notebooks" / ".page_a.ipynb.0123456789abcdef.partial.ipynb"
    old_style.touch()
    left = book.temporaries()
    assert old_style in left and any(p.parent.name == "partial" and p.stat().st_size == 0 for p in left)

    book.run(book.site_command())  # no page run first: the leftovers are all still there
    assert "squares [0, 1, 4, 9, 16]" in book.site_text()
    book.run(book.page_command("page_a"))
    book.run(book.site_command())
    assert book.pages() == reference
    assert book.temporaries() == []
