"""Wall time of the empirical-study pages with warm caches, as ``make book`` runs them.

Each page runs through ``python -m vlmcal.book.run`` (a new process and a new kernel per page,
exactly what the Makefile does) into a temporary directory, so the built book is left alone
and no verdict is recorded. The caches (trained stand-ins, logits) must be warm: run
``make book`` once first. The four pages run in sequence, ``--repeats`` times; the median
of each page and of the total are printed, against the 30 s target for the four together.

Two reference timings on the same machine show how much of a page is fixed cost: a
one-cell notebook (kernel start and stop) and ``import torch`` in a fresh process.

Usage:
    python benchmarks/bench_book_warm.py              # three rounds
    python benchmarks/bench_book_warm.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["es_ts_across_shifts", "es_label_shift", "es_confidence_vs_accuracy", "es_calibration_set_size"]
TARGET_SECONDS = 30.0


def _seconds(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def _empty_notebook(path: Path) -> Path:
    cell = {"cell_type": "code", "execution_count": None, "id": "only", "metadata": {}, "outputs": [], "source": "pass"}
    notebook = {"cells": [cell], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(notebook))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the four pages (default 3)")
    args = parser.parse_args()
    missing = [p for p in PAGES if not (ROOT / "notebooks" / f"{p}.ipynb").exists()]
    if missing:
        sys.exit(f"notebooks/{missing[0]}.ipynb is missing: run `make setup` (or `make book`) first")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "0"}
    env.setdefault("VLMCAL_CACHE_DIR", str(ROOT / ".cache" / "vlmcal"))
    env.pop("VLMCAL_VERDICT_DIR", None)  # the book's verdicts stay as they are
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        empty = _empty_notebook(tmp / "empty.ipynb")
        times: dict[str, list[float]] = {p: [] for p in PAGES}
        totals, kernel, torch_import = [], [], []
        for round_ in range(args.repeats):
            kernel.append(_seconds([python, "-m", "vlmcal.book.run", str(empty), str(tmp / "empty-out.ipynb")], env))
            torch_import.append(_seconds([python, "-c", "import torch"], env))
            for page in PAGES:
                times[page].append(
                    _seconds([python, "-m", "vlmcal.book.run", f"notebooks/{page}.ipynb", str(tmp / f"{page}.ipynb")], env)
                )
            totals.append(sum(times[p][-1] for p in PAGES))
            print(f"round {round_ + 1}/{args.repeats}: four pages in {totals[-1]:.1f} s", flush=True)
    print(f"\nmedian of {args.repeats} rounds (each page: new process, new kernel, warm caches)")
    for page in PAGES:
        print(f"  {page:28s} {statistics.median(times[page]):6.1f} s")
    total = statistics.median(totals)
    print(f"  {'four pages together':28s} {total:6.1f} s   (target {TARGET_SECONDS:.0f} s; ratio {total / TARGET_SECONDS:.2f})")
    print(f"  {'one-cell notebook (fixed)':28s} {statistics.median(kernel):6.1f} s   per page: process, kernel start and stop")
    print(f"  {'import torch':28s} {statistics.median(torch_import):6.1f} s   in a fresh process (a machine-speed reference)")


if __name__ == "__main__":
    main()
