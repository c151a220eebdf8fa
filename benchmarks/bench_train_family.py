"""Cold training time of the stand-in family, against the budget: at most 10 minutes for the
whole family and under 3 minutes for each model, on 2 CPU cores.

Every model trains into a fresh, empty cache directory, one after the other, in one process
(as ``make book`` does when a page needs them), so each time includes what that model is the
first to need: building its corpus, encoding the corpus's captions (cached and shared by the
models of the same corpus), loading the text tower. The first model therefore pays for the
text tower and the default corpus's captions. The wall time of each is printed with its pure
training time (the card's ``train_seconds``), its learned logit scale, and the 1-minute load
average before it started: time with nothing else running.

Usage:
    python benchmarks/bench_train_family.py
    python benchmarks/bench_train_family.py --models default default-task
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

FAMILY_BUDGET_SECONDS = 600.0
MODEL_BUDGET_SECONDS = 180.0


def main() -> None:
    from vlmcal.standins import list_default_variants, load_default, load_supervised

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=[*list_default_variants(), "supervised"], help="models to train (default: the family and the baseline)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        start_all = time.perf_counter()
        for name in args.models:
            load = os.getloadavg()[0]
            start = time.perf_counter()
            if name.startswith("supervised"):
                model = load_supervised(name, device="cpu", cache_dir=cache, progress=False)
                scale = "-"
            else:
                model = load_default(name, device="cpu", cache_dir=cache, progress=False)
                scale = f"{model.logit_scale:.2f}"
            wall = time.perf_counter() - start
            rows.append((name, wall, model.card.train_seconds, scale, load))
            print(f"{name:15s} wall {wall:6.1f} s  training {model.card.train_seconds:6.1f} s  learned scale {scale:>6s}  "
                  f"load before {load:.2f}  ({wall / MODEL_BUDGET_SECONDS:.0%} of the {MODEL_BUDGET_SECONDS:.0f} s per model)", flush=True)
        total = time.perf_counter() - start_all
    slowest = max(rows, key=lambda r: r[1])
    print(f"\nfamily: {total:.1f} s for {len(rows)} models ({total / FAMILY_BUDGET_SECONDS:.0%} of the {FAMILY_BUDGET_SECONDS:.0f} s budget); "
          f"slowest: {slowest[0]} at {slowest[1]:.1f} s; torch threads {__import__('torch').get_num_threads()}; "
          f"load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
