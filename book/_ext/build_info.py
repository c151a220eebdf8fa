"""Sphinx extension: every page's footer says which commit built the book, and when.

`make book` runs `jb build`, which loads this file through `sphinx: local_extensions:` in
`_config.yml`. At build time it asks git for the commit of the checkout that holds the book
and appends one line to the theme's footer (`html.extra_footer`), e.g.

    Built from commit 04ad201 on 2026-11-22 20:15 UTC

A build from a tree with uncommitted changes to tracked files says so after the commit; where
git or the repository is missing (a source tarball) the line says "commit unknown". The time
is the build's, in UTC. Nothing here can fail a build: git's absence is an answer, not an error.
"""

from __future__ import annotations

import html
import subprocess
from datetime import datetime, timezone
from pathlib import Path


def _git(source: Path, *args: str) -> str | None:
    """git's output for `args` in the repository that holds `source`, or None if it has none."""
    try:
        done = subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def build_line(source: str | Path, now: datetime | None = None) -> str:
    """The footer's sentence for a book whose sources are in `source`, built at `now` (UTC)."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    commit = _git(Path(source), "rev-parse", "--short", "HEAD")
    if commit:
        changes = _git(Path(source), "status", "--porcelain", "--untracked-files=no")
        what = f"commit {commit}" + (" with uncommitted changes" if changes else "")
    else:
        what = "commit unknown"
    return f"Built from {what} on {now:%Y-%m-%d %H:%M} UTC"


def footer_html(line: str) -> str:
    return f'<p class="build-info">{html.escape(line)}</p>'


def add_build_line(app, config) -> None:
    """On `config-inited`: append the build line to the theme's `extra_footer` option."""
    options = dict(config.html_theme_options or {})
    options["extra_footer"] = (options.get("extra_footer") or "") + footer_html(build_line(app.srcdir))
    config.html_theme_options = options


def setup(app):
    app.connect("config-inited", add_build_line)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
