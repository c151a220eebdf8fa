"""The whole book in one command: execute the pages that are missing or stale, then build the site.

:func:`execute_stale` serves ``jb build book/`` (through ``book/_ext/execute_pages.py``): it runs every page of the
table of contents whose executed notebook is missing or older than its source or vlmcal's files, the summary last.
:func:`build_profile` serves ``python -m vlmcal.book.run --profile FILE --out DIR``: every page with a profile's
parameters into a book of its own, whose summary compares its verdicts with the default book's. Each page runs in its
own ``python -m vlmcal.book.run`` (its line, caching, clean stop and exit status). A profile is YAML with the optional
keys ``description``, ``all`` (set on every page whose parameters cell defines the name) and ``pages`` (one page's
parameters, over ``all``); an unknown page or parameter is refused before anything runs, naming the closest. A
string may name environment variables (``${PAPERS_DATA}/imagenet``), such as where your data sets are; an unset one
is refused.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import string
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vlmcal.papers.common.params import UnknownParameter, refuse_unknown_parameters

__all__ = ["Profile", "load_profile", "book_pages", "stale_pages", "execute_stale", "build_profile", "SUMMARY_PAGE"]

SUMMARY_PAGE = "claims_summary"  # collects the verdicts the other pages record: it runs last
REPO = Path(__file__).resolve().parents[2]  # the checkout: notebooks/, book/, vlmcal/


def book_pages(book: Path) -> list[str]:
    """The executed pages of a book's table of contents (``file: notebooks/<name>``), the summary last."""
    def files(node: Any) -> list[str]:
        if isinstance(node, dict):
            return ([node["file"]] if "file" in node else []) + [f for v in node.values() for f in files(v)]
        return [f for v in node for f in files(v)] if isinstance(node, list) else []

    toc = yaml.safe_load((book / "_toc.yml").read_text())
    names = [Path(f).name for f in files(toc) if f.startswith("notebooks/")]
    return sorted(names, key=lambda name: name == SUMMARY_PAGE)


def _library_mtime(repo: Path) -> float:
    """When vlmcal's code or data last changed (as ``make book`` reads its ``LIB_FILES``); 0 without a ``vlmcal/``."""
    files = [p for p in (repo / "vlmcal").rglob("*") if p.suffix in (".py", ".csv", ".json") and p.is_file()]
    return max((p.stat().st_mtime for p in files), default=0.0)


def _ipynb(repo: Path, name: str) -> Path:
    """``notebooks/<name>.ipynb``, written from its jupytext source when missing or older (papermill runs .ipynb)."""
    source, notebook = repo / "notebooks" / f"{name}.py", repo / "notebooks" / f"{name}.ipynb"
    if not source.exists():
        raise FileNotFoundError(f"the book's table of contents lists notebooks/{name}, but {source} does not exist")
    if not notebook.exists() or notebook.stat().st_mtime < source.stat().st_mtime:
        import jupytext

        jupytext.write(jupytext.read(source), notebook)
    return notebook


def stale_pages(book: Path, repo: Path = REPO) -> list[str]:
    """The pages of ``book`` to execute: missing, or older than their source or vlmcal's files; the
    summary too when any page before it is newer (the rule of ``make book``). A page without a source
    (``notebooks/<name>.py``) is current if it exists."""
    pages = book_pages(book)
    library = _library_mtime(repo) if pages else 0.0
    stale, newest = [], 0.0
    for name in pages:
        dest = book / "notebooks" / f"{name}.ipynb"
        sources = [p for p in (repo / "notebooks" / f"{name}.py", repo / "notebooks" / f"{name}.ipynb") if p.exists()]
        built = dest.stat().st_mtime if dest.exists() else -1.0
        changed = max([library] + [p.stat().st_mtime for p in sources]) if sources else -1.0
        missing = not dest.exists()  # with no source either, running it says which file is missing
        if missing or built < changed or (name == SUMMARY_PAGE and (stale or built < newest)):
            stale.append(name)
        newest = max(newest, built)
    return stale


def _run_page(repo: Path, name: str, dest: Path, parameters: dict[str, Any], env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "vlmcal.book.run", str(_ipynb(repo, name)), str(dest)]
    for key, value in parameters.items():
        command += ["-p", key, json.dumps(value)]  # JSON is YAML, which is how the runner reads -p values
    status = subprocess.run(command, env=env).returncode
    if status:
        raise PageFailed(name, status)


class PageFailed(RuntimeError):
    """A page's run ended with a non-zero status (the runner printed why)."""

    def __init__(self, name: str, status: int):
        super().__init__(f"page {name} did not run to the end (status {status}); the lines above say why")
        self.status = status


def execute_stale(book: Path, repo: Path | None = None) -> list[str]:
    """Execute the stale pages of ``book`` (:func:`stale_pages`) in order and return their names; ``repo`` (default:
    the folder above ``book``) holds their sources in ``notebooks/``."""
    book = Path(book).resolve()
    repo = book.parent if repo is None else repo
    env = {**os.environ, "VLMCAL_VERDICT_DIR": os.environ.get("VLMCAL_VERDICT_DIR", str(book / "_verdicts"))}
    pages = stale_pages(book, repo)
    for name in pages:
        _run_page(repo, name, book / "notebooks" / f"{name}.ipynb", {}, env)
    return pages


# ----------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile:
    """Page parameters for a whole book (see the module docstring)."""

    path: Path
    description: str = ""
    all: dict[str, Any] = field(default_factory=dict)
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)

    def parameters(self, page: str, defined: list[str]) -> dict[str, Any]:
        """What ``page`` (whose parameters cell defines ``defined``) runs with."""
        return {**{k: v for k, v in self.all.items() if k in defined}, **self.pages.get(page, {})}


def _defined(repo: Path, name: str) -> list[str]:
    import papermill as pm

    return list(pm.inspect_notebook(str(_ipynb(repo, name))))


def _expand(value: Any, path: Path) -> Any:
    """``value`` with ``${NAME}`` in its strings replaced by the environment's ``NAME`` (lists and mappings too)."""
    if isinstance(value, dict):
        return {k: _expand(v, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, path) for v in value]
    if not isinstance(value, str) or "$" not in value:
        return value
    try:
        return string.Template(value).substitute(os.environ)
    except KeyError as unset:
        raise ValueError(f"profile {path.name} uses ${{{unset.args[0]}}} (in {value!r}), which is not set: set it, e.g. "
                         f"`export {unset.args[0]}=/data` for the folder that holds the data sets") from None


def load_profile(path: str | os.PathLike, book: Path | None = None, repo: Path = REPO) -> Profile:
    """Read and check a profile against the book's pages and their parameters cells.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a mapping of ``description``, ``all`` and ``pages``.
        UnknownParameter: a page or a parameter that the book does not have (naming the closest).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"profile {path} does not exist (the book's profiles are in {repo / 'book' / 'profiles'})")
    data = yaml.safe_load(path.read_text()) or {}
    unknown = set(data) - {"description", "all", "pages"} if isinstance(data, dict) else {"(not a mapping)"}
    if unknown or not all(isinstance(data.get(k) or {}, dict) for k in ("all", "pages")):
        raise ValueError(f"profile {path}: expected a mapping with the keys description, all and pages (all and "
                         f"pages mappings), but got the keys {sorted(data) if isinstance(data, dict) else type(data).__name__}")
    profile = Profile(path, str(data.get("description") or ""), _expand(dict(data.get("all") or {}), path),
                      {k: _expand(dict(v or {}), path) for k, v in (data.get("pages") or {}).items()})
    pages = book_pages(book or repo / "book")
    for page in profile.pages:
        if page not in pages:
            close = difflib.get_close_matches(page, pages, n=1, cutoff=0.5)
            raise UnknownParameter(f"profile {path.name} names the page `{page}`, which the book does not have: "
                                   + (f"did you mean `{close[0]}`? " if close else "") + f"Its pages are: {', '.join(pages)}.")
    defined = {name: _defined(repo, name) for name in pages}
    for name, parameters in profile.pages.items():
        refuse_unknown_parameters(f"profile {path.name}, page {name}", defined[name], list(parameters))
    refuse_unknown_parameters(f"profile {path.name} (its `all`)", sorted({p for d in defined.values() for p in d}),
                              list(profile.all))
    return profile


def _current(dest: Path, parameters: dict[str, Any], changed: float) -> bool:
    """Whether ``dest`` was executed with ``parameters`` after ``changed`` (a re-run of a profile redoes only what changed)."""
    if not dest.exists() or dest.stat().st_mtime < changed:
        return False
    import nbformat

    recorded = nbformat.read(dest, as_version=4).metadata.get("papermill", {}).get("parameters")
    return json.loads(json.dumps(recorded)) == json.loads(json.dumps(parameters))


def _write_book(out: Path, profile: Profile, pages: list[str], repo: Path) -> None:
    """The profile's own book: a table of contents of its pages, the default book's configuration
    (without the API reference), an introduction naming the profile and what it set."""
    book = repo / "book"
    out.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((book / "_config.yml").read_text())
    config["title"] = f"vlmcal: the book with profile {profile.path.stem}"
    sphinx = config.setdefault("sphinx", {})
    sphinx["extra_extensions"] = []
    sphinx["local_extensions"] = {"build_info": "_ext"}  # its pages are run by build_profile, not by the build
    for key in [k for k in sphinx.get("config", {}) if k.startswith(("autosummary", "autodoc", "napoleon", "templates"))]:
        del sphinx["config"][key]
    (out / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    guides = ["rerun", "standins", "scaling", "bad_input"]  # the book's own pages that the executed pages link to
    for guide in guides:
        shutil.copy2(book / f"{guide}.md", out / f"{guide}.md")
    toc = {"format": "jb-book", "root": "intro",
           "parts": [{"caption": "Using the book", "chapters": [{"file": g} for g in guides]},
                     {"caption": "Pages", "chapters": [{"file": f"notebooks/{name}"} for name in pages]}]}
    (out / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    shown = {"all pages": profile.all, **{f"page {k}": v for k, v in profile.pages.items()}}
    lines = [f"# The book with profile `{profile.path.name}`", "", profile.description or "", "",
             "Every page below was executed with these parameters (a page takes those its parameters cell defines):", ""]
    lines += [f"- **{where}**: " + ", ".join(f"`{k}` = `{json.dumps(v)}`" for k, v in params.items())
              for where, params in shown.items() if params]
    lines += ["", "The summary page compares this profile's verdicts with the default book's."]
    (out / "intro.md").write_text("\n".join(lines) + "\n")
    (out / "_ext").mkdir(exist_ok=True)
    shutil.copy2(book / "_ext" / "build_info.py", out / "_ext" / "build_info.py")
    if (book / "_vendor").is_dir() and not (out / "_vendor").exists():
        shutil.copytree(book / "_vendor", out / "_vendor")


def build_profile(profile_path: str | os.PathLike, out: str | os.PathLike, repo: Path = REPO,
                  build_site: bool = True) -> Path:
    """Execute every page with a profile into ``out`` and build the site there; returns its ``index.html`` (or
    ``out`` without ``build_site``). The default book is not touched; its verdicts are what the summary compares with."""
    out = Path(out).resolve()
    if out == (repo / "book").resolve():
        raise ValueError(f"--out {out} is the default book; give a folder of its own")
    profile = load_profile(profile_path, repo=repo)
    pages = book_pages(repo / "book")
    _write_book(out, profile, pages, repo)
    env = {**os.environ, "VLMCAL_VERDICT_DIR": str(out / "_verdicts")}
    changed, library = False, _library_mtime(repo)
    for name in pages:
        parameters = profile.parameters(name, _defined(repo, name))
        if name == SUMMARY_PAGE:
            parameters = {"verdict_dir": str(out / "_verdicts"), "compare_dir": str(repo / "book" / "_verdicts"), **parameters}
        dest = out / "notebooks" / f"{name}.ipynb"
        if changed and name == SUMMARY_PAGE or not _current(dest, parameters, max(library, (repo / "notebooks" / f"{name}.py").stat().st_mtime)):
            _run_page(repo, name, dest, parameters, env)
            changed = True
        else:
            print(f"== notebook {name}: current (run with these parameters, after its last change)", flush=True)
    if not build_site:
        return out
    jb = Path(sys.executable).with_name("jb")
    status = subprocess.run([str(jb) if jb.exists() else "jb", "build", "-W", "-n", "--keep-going", str(out)],
                            env={**env, "VLMCAL_EXECUTE_PAGES": "0"}).returncode
    if status:
        raise PageFailed("(the site build)", status)
    return out / "_build" / "html" / "index.html"

