"""The whole book in one command: stale pages, profiles, a profile's own site, `jb build book/` as typed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vlmcal.book.whole import SUMMARY_PAGE, book_pages, load_profile, stale_pages
from vlmcal.papers.common.params import UnknownParameter

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "book" / "profiles" / "tiny.yml"


def _touch(path: Path, mtime: float, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


def test_book_pages_follow_the_toc_with_the_summary_last():
    pages = book_pages(REPO / "book")
    assert pages[-1] == SUMMARY_PAGE and "ctpt_tables" in pages and len(pages) == len(set(pages)) == 11


def test_stale_pages_are_missing_older_than_source_or_library_and_the_summary_after_them(tmp_path):
    repo, book = tmp_path, tmp_path / "book"
    _touch(book / "_toc.yml", 0, "root: intro\nchapters:\n- file: notebooks/a\n- file: notebooks/b\n- file: notebooks/claims_summary\n")
    _touch(repo / "vlmcal" / "x.py", 100)
    for name in ("a", "b", "claims_summary"):
        _touch(repo / "notebooks" / f"{name}.py", 100)
        _touch(book / "notebooks" / f"{name}.ipynb", 200)
    assert stale_pages(book, repo) == []
    _touch(repo / "notebooks" / "b.py", 300)  # a changed source: b, then the summary that collects it
    assert stale_pages(book, repo) == ["b", SUMMARY_PAGE]
    _touch(repo / "notebooks" / "b.py", 100)
    _touch(repo / "vlmcal" / "x.py", 300)  # a changed library: every page
    assert stale_pages(book, repo) == ["a", "b", SUMMARY_PAGE]
    _touch(repo / "vlmcal" / "x.py", 100)
    (book / "notebooks" / "a.ipynb").unlink()  # a missing page
    assert stale_pages(book, repo) == ["a", SUMMARY_PAGE]
    _touch(book / "notebooks" / "a.ipynb", 250)  # a page newer than the summary
    assert stale_pages(book, repo) == [SUMMARY_PAGE]


def test_the_tiny_profile_is_valid_and_sets_parameters_only_where_defined():
    profile = load_profile(TINY)
    assert profile.parameters("c11_max_softmax_vs_logit_spread", ["n_draws", "seed"])["n_draws"] == 500
    assert "backbone" not in profile.parameters("c11_max_softmax_vs_logit_spread", ["n_draws", "seed"])
    assert profile.parameters("zero_shot", ["backbone", "family"]) == {"backbone": "openclip:vlmcal-tiny:random", "family": [],
                                                                      "shifts": ["gaussian_noise"], "n_examples": 2, "n_scenes": 4}


@pytest.mark.parametrize("text, error, message", [
    ("pages:\n  ctpt_table: {n_images: 8}\n", UnknownParameter, "names the page `ctpt_table`, which the book does not have: did you mean `ctpt_tables`"),
    ("pages:\n  ctpt_tables: {n_image: 8}\n", UnknownParameter, "page ctpt_tables has no parameter `n_image`: did you mean `n_images`"),
    ("all:\n  n_draw: 8\n", UnknownParameter, "has no parameter `n_draw`: did you mean `n_draws`"),
    ("page:\n  ctpt_tables: {}\n", ValueError, "expected a mapping with the keys description, all and pages"),
    ("- a list\n", ValueError, "expected a mapping with the keys description, all and pages"),
])
def test_a_bad_profile_is_refused_before_anything_runs(tmp_path, text, error, message):
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(error, match=message.replace("(", r"\(")):
        load_profile(path)


def test_the_papers_profile_sets_the_papers_data_and_every_page_accepts_it(tmp_path, monkeypatch):
    """The papers' profile, read with PAPERS_DATA set to a tree of the data sets' root folders: each page's settings
    (the page's own defaults, then the profile's values) accept it, with the papers' sets on each side."""
    import ast
    from dataclasses import fields

    import papermill as pm

    from vlmcal.papers import ctpt, dor, es

    with pytest.raises(ValueError, match=r"papers.yml uses \$\{PAPERS_DATA\} .*which is not set: set it"):
        monkeypatch.delenv("PAPERS_DATA", raising=False)
        load_profile(REPO / "book" / "profiles" / "papers.yml")
    monkeypatch.setenv("PAPERS_DATA", str(tmp_path))
    for folder in ("imagenet", "imagenetv2-matched-frequency", "imagenet-sketch", "imagenet-a", "imagenet-r", "imagenet-c/fog/3",
                   "imagenet-c/fog/5"):
        (tmp_path / folder).mkdir(parents=True)
    profile = load_profile(REPO / "book" / "profiles" / "papers.yml")

    def settings(page, cls):
        defined = pm.inspect_notebook(str(REPO / "notebooks" / f"{page}.ipynb"))
        values = {**{k: ast.literal_eval(v["default"]) for k, v in defined.items()}, **profile.parameters(page, list(defined))}
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    study = settings("es_ts_across_shifts", es.StudySettings)
    assert study.models == ["openclip:ViT-B-16:openai", "timm:resnet50.a1_in1k"] and study.dataset == f"imagenet:{tmp_path}/imagenet"
    assert [c for c, _ in study.conditions][-2:] == [f"imagenet-c:fog:3:{tmp_path}/imagenet-c", f"imagenet-c:fog:5:{tmp_path}/imagenet-c"]
    tables = settings("ctpt_tables", ctpt.TPTPageSettings)
    assert len(tables.fine_grained) == 10 and len(tables.shifts) == 4 and tables.side(tables.fine_grained[0]) == "clean"
    assert settings("dor_base_to_new", dor.DORPageSettings).datasets == tables.fine_grained


def test_make_profile_is_the_set_up_then_the_profile_command():
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}  # also under `make test`
    plan = subprocess.run(["make", "--no-print-directory", "-n", "profile", "PROFILE=book/profiles/papers.yml"], cwd=REPO,
                          env=env, capture_output=True, text=True, check=True).stdout.splitlines()
    assert plan[-1].endswith("python -m vlmcal.book.run --profile book/profiles/papers.yml --out papers-book")
    assert any("compileall" in line for line in plan[:-1])  # the set-up comes first


def test_a_missing_profile_says_where_the_profiles_are(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"profile .*nope.yml does not exist \(the book's profiles are in .*book/profiles\)"):
        load_profile(tmp_path / "nope.yml")


@pytest.mark.slow
def test_the_readme_profile_command_builds_a_whole_site_from_the_tiny_profile(tmp_path):
    out = tmp_path / "tiny-book"
    done = subprocess.run([sys.executable, "-m", "vlmcal.book.run", "--profile", str(TINY), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    html = out / "_build" / "html"
    for page in book_pages(REPO / "book"):
        assert (html / "notebooks" / f"{page}.html").exists(), page
    summary = (html / "notebooks" / f"{SUMMARY_PAGE}.html").read_text()
    assert "openclip:vlmcal-tiny:random" in summary
    assert "Compared with another build" in summary
    assert ("have the same outcome here as in the default book" in summary) or ("No verdicts to compare with" in summary)
    assert len(list((out / "_verdicts").glob("C*.json"))) == 12
    assert "tiny.yml" in (html / "intro.html").read_text()  # index.html redirects to it


@pytest.mark.slow
def test_jb_build_book_as_typed_executes_its_pages_then_builds(tmp_path):
    """A clean copy whose table of contents holds one short page: `jb build book/` runs it, then builds."""
    copy = tmp_path / "copy"
    (copy / "notebooks").mkdir(parents=True)
    shutil.copytree(REPO / "book", copy / "book", symlinks=True,
                    ignore=shutil.ignore_patterns("_build", "notebooks", "_verdicts", "_failed", "api", "_vendor"))
    shutil.copy2(REPO / "_config.yml", copy / "_config.yml")  # book/_config.yml and _toc.yml link to these
    (copy / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: notebooks/hello\n")
    header = (REPO / "notebooks" / "calibration_101.py").read_text().split("# ---\n\n")[0] + "# ---\n\n"  # jupytext, kernel
    (copy / "notebooks" / "hello.py").write_text(
        header + "# %% [markdown]\n# # Hello\n\n# %% tags=[\"parameters\"]\nn = 3\n\n# %%\nprint('squares:', [k * k for k in range(n)])\n")
    (copy / "vlmcal").mkdir()  # the library's files are what makes a page stale; this copy's are older than it
    shutil.copy2(REPO / "vlmcal" / "__init__.py", copy / "vlmcal" / "__init__.py")
    jb = Path(sys.executable).with_name("jb")
    done = subprocess.run([str(jb), "build", "book/"], cwd=copy, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "pages executed before the build: hello" in done.stdout
    page = (copy / "book" / "_build" / "html" / "notebooks" / "hello.html").read_text()
    assert "squares: [0, 1, 4]" in page
    again = subprocess.run([str(jb), "build", "book/"], cwd=copy, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0 and "pages executed before the build: none (all current)" in again.stdout
