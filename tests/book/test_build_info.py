"""The book's footer names the commit it was built from and when (book/_ext/build_info.py)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXT = ROOT / "book" / "_ext"
NOW = datetime(2026, 11, 22, 20, 15, 42, tzinfo=timezone.utc)
LINE = re.compile(r"Built from commit ([0-9a-f]{7,40}|unknown)( with uncommitted changes)? on (\d{4}-\d\d-\d\d \d\d:\d\d) UTC")

spec = importlib.util.spec_from_file_location("build_info", EXT / "build_info.py")
build_info = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_info)


def git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "clone"
    (root / "book").mkdir(parents=True)
    (root / "book" / "intro.md").write_text("# Tiny\n\nOne page.\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "tiny")
    return root


def test_config_loads_the_extension():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    path = config["sphinx"]["local_extensions"]["build_info"]
    assert (ROOT / "book" / path / "build_info.py").is_file()  # jb resolves it from book/, where book/_config.yml is


def test_line_names_the_commit_and_the_time(repo):
    commit = git(repo, "rev-parse", "--short", "HEAD")
    assert build_info.build_line(repo / "book", now=NOW) == f"Built from commit {commit} on 2026-11-22 20:15 UTC"


def test_line_is_in_utc(repo):
    paris = NOW.astimezone(timezone(timedelta(hours=1)))
    assert build_info.build_line(repo / "book", now=paris).endswith("on 2026-11-22 20:15 UTC")
    assert LINE.fullmatch(build_info.build_line(repo / "book"))  # the default: now


def test_line_says_when_tracked_files_changed(repo):
    (repo / "untracked.txt").write_text("not part of the build's sources")
    assert "uncommitted" not in build_info.build_line(repo / "book", now=NOW)
    (repo / "book" / "intro.md").write_text("# Tiny\n\nEdited.\n")
    commit = git(repo, "rev-parse", "--short", "HEAD")
    assert build_info.build_line(repo / "book", now=NOW) == (
        f"Built from commit {commit} with uncommitted changes on 2026-11-22 20:15 UTC")


def test_line_without_a_repository_or_git(tmp_path, monkeypatch):
    tarball = tmp_path / "vlmcal-0.1.0" / "book"
    tarball.mkdir(parents=True)
    assert build_info.build_line(tarball, now=NOW) == "Built from commit unknown on 2026-11-22 20:15 UTC"
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    assert build_info.build_line(ROOT / "book", now=NOW) == "Built from commit unknown on 2026-11-22 20:15 UTC"


def test_line_is_appended_to_the_theme_footer(repo):
    config = SimpleNamespace(html_theme_options={"extra_footer": "<p>first</p>", "home_page_in_toc": True})
    build_info.add_build_line(SimpleNamespace(srcdir=str(repo / "book")), config)
    footer = config.html_theme_options["extra_footer"]
    assert footer.startswith("<p>first</p><p class=\"build-info\">Built from commit ")
    assert LINE.search(footer) and config.html_theme_options["home_page_in_toc"] is True
    empty = SimpleNamespace(html_theme_options=None)
    build_info.add_build_line(SimpleNamespace(srcdir=str(repo / "book")), empty)
    assert LINE.fullmatch(re.sub(r"<[^>]+>", "", empty.html_theme_options["extra_footer"]))


@pytest.mark.slow
def test_built_page_shows_commit_and_date(repo):
    """A one-page book with the project's own _config.yml, built by jb as `make book` builds."""
    book = repo / "book"
    shutil.copy(ROOT / "_config.yml", book / "_config.yml")
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (book / "_ext").symlink_to(EXT)
    if (ROOT / "book" / "_vendor").is_dir():  # MathJax, copied in by `make setup`
        (book / "_vendor").symlink_to(ROOT / "book" / "_vendor")
    else:
        (book / "_vendor").mkdir()
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "config")
    commit = git(repo, "rev-parse", "--short", "HEAD")
    before = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    done = subprocess.run([str(Path(sys.executable).parent / "jb"), "build", "-W", "-n", "--keep-going", str(book)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    page = (book / "_build" / "html" / "intro.html").read_text()
    footer = re.search(r'<div class="extra_footer">\s*<p class="build-info">(.*?)</p>', page)
    assert footer, "the page has no build line in its footer"
    match = LINE.fullmatch(footer.group(1))
    assert match and match.group(1) == commit and not match.group(2), footer.group(1)
    built = datetime.strptime(match.group(3), "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc)
    assert before <= built <= datetime.now(timezone.utc)
