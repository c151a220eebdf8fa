"""Precompute a page's expensive, cached work over the processes of a torchrun launch.

Usage: ``torchrun --standalone --nproc_per_node N -m vlmcal.book.precompute PAGE [-p NAME VALUE ...]``. ``PAGE``
is a page's name (``notebooks/<PAGE>.py`` under the current directory) or its notebook's path; ``-p`` overrides
its parameters cell as papermill's does. The page, run afterwards with the same parameters, reads the cache.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping

import torch

from vlmcal.papers import ctpt, es
from vlmcal.papers.common.params import refuse_unknown_parameters, yaml_text
from vlmcal.pipeline.sharding import launch

__all__ = ["PAGES", "page_defaults", "precompute", "main"]

# page -> (its settings class, what the launch precomputes for it)
PAGES = {
    **dict.fromkeys(["ctpt_tables", "ctpt_prompt_dispersion"], (ctpt.TPTPageSettings, "tpt")),
    **dict.fromkeys(["es_ts_across_shifts", "es_label_shift", "es_confidence_vs_accuracy", "es_calibration_set_size"],
                    (es.StudySettings, "study")),
}


def _notebook_path(page: str) -> Path:
    """The page's notebook: the path given, or ``notebooks/<page>.py`` (or ``.ipynb``) under the current directory."""
    given = Path(page)
    if given.suffix in (".py", ".ipynb"):
        if not given.is_file():
            raise FileNotFoundError(f"No notebook at {given}")
        return given
    candidates = [Path.cwd() / "notebooks" / f"{page}{suffix}" for suffix in (".py", ".ipynb")]
    if found := next((c for c in candidates if c.is_file()), None):
        return found
    raise FileNotFoundError(f"No notebooks/{page}.py under {Path.cwd()}: run from a clone of the project, "
                            "or give the path of the page's notebook")


def _parameters_cell(path: Path) -> str:
    """The source of the notebook's cell tagged ``parameters``."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        cell = next((c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
        source = None if cell is None else "".join(cell["source"])
    else:  # jupytext percent format
        cell = next((c for c in path.read_text().split("# %%") if c.startswith(' tags=["parameters"]')), None)
        source = None if cell is None else cell.split("\n", 1)[1]
    if source is None:
        raise ValueError(f"{path} has no cell tagged `parameters`")
    return source


def page_defaults(page: str) -> dict[str, Any]:
    """The values of a page's parameters cell, as the page itself starts with them."""
    name = Path(page).stem
    if name not in PAGES:
        raise ValueError(f"Expected a page whose work can be sharded, one of {sorted(PAGES)}, but got {page!r}")
    values: dict[str, Any] = {}
    exec(_parameters_cell(_notebook_path(page)), {}, values)  # the cell only assigns literals
    return values


def precompute(page: str, parameters: Mapping[str, Any], progress: bool = True) -> str:
    """Run the expensive, cached part of ``page`` with these parameters (every rank of a launch calls it) and
    say what was computed, in words."""
    defaults = page_defaults(page)
    refuse_unknown_parameters(Path(page).stem, list(defaults), parameters)
    values = {**defaults, **parameters}
    cls, kind = PAGES[Path(page).stem]
    settings = cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})
    if kind == "tpt":
        grid = ctpt.tpt_grid(settings, progress=progress)
        methods = list(dict.fromkeys(m for pair in grid.runs.values() for m in pair))
        return (f"{sum(map(len, grid.runs.values()))} test-time runs ({', '.join(methods)}) of {settings.backbone} on "
                f"{len(grid.evaluation_rows)} images per set")
    runs = es.collect_runs(settings, progress=progress)
    return f"{len(runs)} runs of {', '.join(settings.models)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vlmcal.book.precompute",
                                     description="Precompute a page's cached work, sharded over the processes of a torchrun launch.")
    parser.add_argument("page", help=f"one of {', '.join(sorted(PAGES))}, or the path of its notebook")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a page parameter, as papermill's -p takes it")
    args = parser.parse_args(argv)
    parameters = {name: yaml_text(value) for name, value in args.parameter}
    here = launch()
    done = precompute(args.page, parameters, progress=here.rank == 0)
    if here.rank == 0:
        print(f"vlmcal.book.precompute: {done} on {here.world_size} process{'es' if here.sharded else ''}; "
              f"now run the page with the same parameters in one process: it reads them from the cache")
    if here.sharded:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
