"""The book's API reference (book/api.md, book/api_book.md): it lists what vlmcal exports, and it builds.

The slow test builds the API part of the book alone (no notebooks) with the project's own
_config.yml, templates and extensions, as `make book` builds the whole book: `jb build -W -n`,
so that a docstring that Sphinx cannot read, or a reference it cannot resolve, fails here.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

import vlmcal

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
PAGES = ["api.md", "api_book.md"]
CAPTION = "API reference"


def autosummary_entries(page: Path) -> list[str]:
    """The full names that the autosummary tables of a page list, with the page's currentmodule."""
    names, module, in_table = [], None, False
    for line in page.read_text().splitlines():
        if match := re.match(r"\.\. currentmodule:: (\S+)", line):
            module = match.group(1)
        elif line.startswith(".. autosummary::"):
            in_table = True
        elif in_table and line.startswith("   ") and not line.strip().startswith(":"):
            name = line.strip().lstrip("~")
            names.append(f"{module}.{name}" if module and not name.startswith("vlmcal.") else name)
        elif in_table and line.strip() and not line.startswith("   "):
            in_table = False
    return names


def test_top_level_names_are_all_listed():
    """Every name `import vlmcal` exports is in the API page's tables, under its defining module."""
    listed = set(autosummary_entries(BOOK / "api.md"))
    for name in vlmcal.__all__:
        obj = getattr(vlmcal, name)
        assert f"{obj.__module__}.{obj.__qualname__}" in listed, f"vlmcal.{name} is missing from book/api.md"
    for entry in listed:  # and nothing that is no longer there
        module, _, attr = entry.rpartition(".")
        assert hasattr(importlib.import_module(module), attr), entry


def test_every_package_is_documented():
    """The library's packages on the API page, the book's code on its own page; nothing left out."""
    library = set(autosummary_entries(BOOK / "api.md"))
    book = set(autosummary_entries(BOOK / "api_book.md"))
    public = {f"vlmcal.{m.name}" for m in pkgutil.iter_modules(vlmcal.__path__) if not m.name.startswith("_")}
    assert public == {p for p in library | book if p.count(".") == 1}
    assert book == {"vlmcal.standins", "vlmcal.papers", "vlmcal.book"}


def test_toc_has_the_api_part():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    (part,) = [p for p in toc["parts"] if p["caption"] == CAPTION]
    assert [c["file"] for c in part["chapters"]] == [p.removesuffix(".md") for p in PAGES]
    assert "book/api/" in (ROOT / ".gitignore").read_text().splitlines()


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data):
        self.parts.append(data)


def page_text(path: Path) -> str:
    """A page's text as a reader sees it: no tags, entities decoded, curly quotes straightened."""
    parser = _Text()
    parser.feed(path.read_text())
    return " ".join(" ".join(parser.parts).replace("\u2019", "'").replace("\u2018", "'").split())


def summary(obj) -> str:
    """The first paragraph of an object's docstring, on one line."""
    return " ".join(inspect.getdoc(obj).split("\n\n")[0].split())


@pytest.mark.slow
def test_api_part_builds_without_warnings(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    shutil.copy(ROOT / "_config.yml", book / "_config.yml")
    for page in PAGES:
        shutil.copy(BOOK / page, book / page)
    for folder in ("_ext", "_templates"):
        shutil.copytree(BOOK / folder, book / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (book / "_vendor").mkdir()  # MathJax, which `make setup` copies in; the build needs only the folder
    (book / "intro.md").write_text("# The API reference alone\n\nThe book's API part, built without its notebooks.\n")
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    parts = [p for p in toc["parts"] if p["caption"] == CAPTION]
    (book / "_toc.yml").write_text(yaml.safe_dump({"format": "jb-book", "root": "intro", "parts": parts}))

    done = subprocess.run([str(Path(sys.executable).parent / "jb"), "build", "-W", "-n", "--keep-going", str(book)],
                          check=False, capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    log = done.stdout + done.stderr
    warnings = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
    assert done.returncode == 0 and not warnings, "\n".join(warnings) or log[-3000:]

    html = book / "_build" / "html"
    from vlmcal.calibration.temperature import TemperatureScaling
    from vlmcal.metrics.scores import ece

    for obj in (ece, TemperatureScaling):  # vlmcal.ece, vlmcal.TemperatureScaling: documented where defined
        page = html / "api" / f"{obj.__module__}.{obj.__qualname__}.html"
        assert page.is_file(), f"no page for {obj.__qualname__}"
        assert summary(obj) in page_text(page), f"{page.name} lacks its docstring's first paragraph"
    listing = (html / "api.html").read_text()  # the top-level tables link every exported name to its page
    for name in vlmcal.__all__:
        obj = getattr(vlmcal, name)
        assert f'href="api/{obj.__module__}.{obj.__qualname__}.html' in listing, f"vlmcal.{name} is not linked"
    # vlmcal.adaptation.tpt is the module (the package binds the name `tpt` to a function too)
    assert "TPTSettings" in page_text(html / "api" / "vlmcal.adaptation.tpt.html")
