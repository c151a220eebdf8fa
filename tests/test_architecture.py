"""The dependency graph of vlmcal, enforced with import-linter's contracts (``[tool.importlinter]`` in pyproject.toml).

- the library (metrics, calibration, backbones, prompting, adaptation, data, pipeline) never
  imports the book's code (stand-ins, papers, book machinery);
- the model layer never imports the evaluation layer;
- the book's code in layers: ``vlmcal.book`` above ``vlmcal.papers`` above ``vlmcal.standins``;
- the papers do not import each other, only ``vlmcal.papers.common``;
- the library in layers, and no import cycles between the modules of any package.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import vlmcal

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(vlmcal.__file__).parent
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"]
# Function-local imports of vlmcal's own modules, each with its reason; any other would hide a dependency.
LAZY = {
    ("backbones/__init__.py", "vlmcal.backbones.openclip"): "open_clip and torchvision take seconds to import; only open_clip models need them",
    ("standins/__init__.py", "vlmcal.standins"): "the entry point looks its own loaders up at call time, so that tests can replace them",
}


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([*LINT, "--config", str(cwd / "pyproject.toml"), "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300)


def test_every_contract_is_kept():
    contracts = _contracts()
    assert len(contracts) >= 6
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Contracts: {len(contracts)} kept, 0 broken." in done.stdout


def test_a_library_module_that_imports_a_paper_breaks_the_contracts(tmp_path):
    """The contracts can fail: the same check on a copy where metrics imports the ES package."""
    shutil.copytree(PACKAGE, tmp_path / "vlmcal", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    scores = tmp_path / "vlmcal" / "metrics" / "scores.py"
    scores.write_text(scores.read_text() + "\nfrom vlmcal.papers.es import tables  # noqa\n")
    done = _lint(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "The library never imports the book's code (stand-ins, papers, book machinery) BROKEN" in done.stdout
    assert "vlmcal.metrics.scores -> vlmcal.papers.es.tables" in done.stdout


def test_no_function_local_import_of_vlmcal_hides_a_dependency():
    found, seen = [], 0
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                seen += bool(module and module.startswith("vlmcal"))
                if node.col_offset > 0 and module and module.startswith("vlmcal") and (path.relative_to(PACKAGE).as_posix(), module) not in LAZY:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}")
    assert seen > 100  # the walk saw the package's own imports
    assert not found, "imports inside functions (move them to the top, or give the reason in LAZY):\n" + "\n".join(found)
