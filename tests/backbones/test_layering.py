"""The model layer never imports the evaluation layer: no module under ``vlmcal/backbones``
imports metrics, calibration, shifts, zero-shot, the empirical study, predictions or cards,
at module level or inside a function (a lazy import is still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import vlmcal.backbones

BACKBONES = Path(vlmcal.backbones.__file__).parent

EVALUATION_LAYER = (
    "vlmcal.metrics",
    "vlmcal.calibration",
    "vlmcal.data.shifts",
    "vlmcal.prompting.zeroshot",
    "vlmcal.adaptation",
    "vlmcal.study",
    "vlmcal.study.predictions",
    "vlmcal.cards",
    "vlmcal.claims",
    "vlmcal.verdict",
    "vlmcal.plotting",
)


def _module_name(path: Path, root: Path) -> str:
    """``vlmcal.backbones.standins.training`` for ``<root>/standins/training.py``."""
    parts = ["vlmcal", "backbones", *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """Every module ``source`` imports, anywhere in it: ``[(line, dotted name), ...]``.

    ``from a import b`` counts as importing ``a`` and ``a.b`` (``b`` may be a submodule); a
    relative import is resolved against ``module``; ``importlib.import_module("x")`` and
    ``__import__("x")`` with a literal name count too.
    """
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value))
    return found


def _is_evaluation(name: str) -> bool:
    return any(name == layer or name.startswith(layer + ".") for layer in EVALUATION_LAYER)


def test_no_backbone_module_imports_the_evaluation_layer():
    files = sorted(BACKBONES.rglob("*.py"))
    assert len(files) >= 10  # the package, base, openclip and the stand-ins' modules: the walk saw them
    offences, n_vlmcal_imports = [], 0
    for path in files:
        names = imported_modules(path.read_text(), _module_name(path, BACKBONES), is_package=path.name == "__init__.py")
        n_vlmcal_imports += sum(name.startswith("vlmcal.") for _, name in names)
        offences += [f"{path.relative_to(BACKBONES.parent.parent)}:{line} imports {name}" for line, name in names if _is_evaluation(name)]
    assert n_vlmcal_imports > 20  # the walk found the package's own imports, so it would find others
    assert not offences, "the model layer imports the evaluation layer:\n" + "\n".join(offences)


SOURCE = '''
import vlmcal.metrics as m
from vlmcal import calibration
from vlmcal.backbones.base import Backbone

def lazy():
    from vlmcal.data.shifts import apply_shift
    import importlib
    return importlib.import_module("vlmcal.prompting.zeroshot")

class K:
    def method(self):
        from ...study import predictions
        from ...study.runs import Run
        __import__("vlmcal.cards")
'''


def test_the_checker_finds_every_form_of_import():
    """Independent of the package's current code: each line of SOURCE that imports the evaluation layer is found."""
    names = imported_modules(SOURCE, "vlmcal.backbones.standins.training")
    flagged = sorted({name for _, name in names if _is_evaluation(name)})
    assert flagged == sorted([
        "vlmcal.calibration", "vlmcal.cards", "vlmcal.study", "vlmcal.study.predictions", "vlmcal.study.runs",
        "vlmcal.study.runs.Run", "vlmcal.metrics", "vlmcal.data.shifts", "vlmcal.data.shifts.apply_shift",
        "vlmcal.prompting.zeroshot",
    ])
    assert ("vlmcal.backbones.base.Backbone" in {n for _, n in names}) and not _is_evaluation("vlmcal.backbones.base")


@pytest.mark.parametrize(
    ("module", "is_package", "statement", "expected"),
    [
        ("vlmcal.backbones.standins", True, "from .training import fit_tower", "vlmcal.backbones.standins.training"),
        ("vlmcal.backbones.standins.card", False, "from . import config", "vlmcal.backbones.standins"),
        ("vlmcal.backbones.standins.card", False, "from .. import base", "vlmcal.backbones"),
    ],
)
def test_relative_imports_resolve(module, is_package, statement, expected):
    assert imported_modules(statement, module, is_package)[0] == (1, expected)
