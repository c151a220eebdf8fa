"""The project's own files agree with each other: dependencies, notebooks, table of contents."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import jupytext
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# conda-forge spells a few packages differently from PyPI.
CONDA_TO_PYPI = {"pytorch": "torch", "open-clip-torch": "open_clip_torch"}


def _name_and_spec(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    assert m, req
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pyproject = dict(_name_and_spec(r) for r in project["dependencies"])
    for extra in ("book", "test"):
        pyproject.update(_name_and_spec(r) for r in project["optional-dependencies"][extra])

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda: dict[str, str] = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            conda.update(_name_and_spec(r) for r in dep["pip"])
            continue
        name, spec = _name_and_spec(dep)
        if name in ("python", "pip"):
            continue
        conda[CONDA_TO_PYPI.get(name, name).lower().replace("_", "-")] = spec
    assert conda == pyproject


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
# Chapters that teach rather than test a claim: exempt from the computed Verdict only.
CHAPTERS_WITHOUT_VERDICT = {"calibration_101", "zero_shot", "claims_summary"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_skeleton_and_parameters_cell(path):
    nb = jupytext.read(path)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: expected exactly one cell tagged `parameters`"
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    claim = path.stem not in CHAPTERS_WITHOUT_VERDICT
    for heading in ("## Overview", "## Prerequisites", "## Imports", "## Summary", "## References") + ("Verdict",) * claim:
        assert heading in markdown, f"{path.name}: missing section {heading!r}"
    assert "Backbone" in markdown, f"{path.name}: must say which backbone made its figures"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    if claim:
        assert re.search(r"\bclaims\.c\d+_\w+\(", code), f"{path.name}: its verdict must come from a claim function of its paper (<paper>.claims)"
        assert ".record()" in code, f"{path.name}: must record its verdict"
        assert "Verdict(" not in code, f"{path.name}: a verdict is decided in its paper's claims module, not built in the notebook"
    if "backbones = " in code:  # a page that takes its models as parameters names them from its settings
        assert re.search(r"\.backbone_note\(settings\b", code), f"{path.name}: its Backbone box must be computed from the run's settings"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_generated_ipynb_matches_source(path):
    """`make setup` writes notebooks/<name>.ipynb from the .py; a stale copy would mislead papermill users."""
    ipynb = path.with_suffix(".ipynb")
    if not ipynb.exists():
        pytest.skip("run `make setup` to generate the .ipynb files")
    source = [(c.cell_type, c.source) for c in jupytext.read(path).cells]
    generated = [(c.cell_type, c.source) for c in jupytext.read(ipynb).cells]
    assert generated == source


def test_toc_lists_every_notebook_and_page():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = {toc["root"]}
    for part in toc["parts"]:
        for chapter in part["chapters"]:
            files.add(chapter["file"])
            files.update(s["file"] for s in chapter.get("sections", []))
    for nb in NOTEBOOKS:
        assert f"notebooks/{nb.stem}" in files, f"{nb.name} is not in _toc.yml"
    for f in files:
        if not f.startswith("notebooks/"):
            assert (ROOT / "book" / f"{f}.md").exists(), f"_toc.yml names book/{f}.md, which does not exist"
    # _config.yml builds only the pages the table of contents names: a page left out would vanish silently
    for page in sorted((ROOT / "book").glob("*.md")):
        assert page.stem in files, f"book/{page.name} is not in _toc.yml"


def test_readme_stays_short():
    """README.md is a newcomer's first page; the details live in the book, CONTRIBUTING.md and benchmarks/README.md."""
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= 150, f"README.md has {lines} lines; move details to the book, CONTRIBUTING.md or benchmarks/README.md"


def test_book_links_to_top_level_config():
    for name in ("_config.yml", "_toc.yml"):
        link = ROOT / "book" / name
        assert link.is_symlink() and link.resolve() == (ROOT / name).resolve()


def test_the_tests_mirror_the_packages():
    """Each package of vlmcal (and each paper's) has its own folder of tests, under the same path."""
    packages = [p.parent.relative_to(ROOT / "vlmcal") for p in (ROOT / "vlmcal").glob("*/__init__.py")]
    packages += [p.parent.relative_to(ROOT / "vlmcal") for p in (ROOT / "vlmcal" / "papers").glob("*/__init__.py")]
    assert len(packages) >= 13
    missing = [str(p) for p in packages if str(p) != "papers" and not list((ROOT / "tests" / p).glob("test_*.py"))]
    assert not missing, f"packages without tests/<package>/test_*.py: {missing}"

