"""Speed and memory of vlmcal's calibration metrics on large inputs, against torchmetrics.

Run:  .venv/bin/python benchmarks/bench_metrics.py [--n 10000000] [--repeats 5]

Prints, for each case, the best of ``--repeats`` wall-clock times (after one warm-up run)
on the CPU with torch's default thread count, and the ratio to torchmetrics where it has
the same metric. The inputs are random (the timing does not depend on the values).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import torch

from vlmcal import metrics as M

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from torchmetrics.functional.classification import multiclass_calibration_error


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000_000, help="samples for the top-label cases")
    parser.add_argument("--classes", type=int, default=10, help="classes for the top-label cases")
    parser.add_argument("--wide-n", type=int, default=1_000_000, help="samples for the 1000-class case")
    parser.add_argument("--wide-classes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}, load average {load}")
    g = torch.Generator().manual_seed(0)
    n, c = args.n, args.classes

    # Top-label confidences and correctness of N predictions: the binning core alone.
    conf = torch.rand(n, generator=g)  # [N] float32
    correct = torch.rand(n, generator=g) < conf  # [N] bool
    t_core = best_time(lambda: M.bin_statistics(conf, correct, n_bins=15), args.repeats)
    print(f"bin_statistics (ECE + reliability data), N = {n:,} confidences, 15 bins: {t_core * 1e3:8.1f} ms")

    # Full front door on [N, C] probabilities: top label, validation, binning.
    probs = torch.softmax(torch.randn(n, c, generator=g), dim=1)  # [N, C] float32
    labels = torch.randint(0, c, (n,), generator=g)
    t_ece = best_time(lambda: M.ece(probs, labels), args.repeats)
    t_rel = best_time(lambda: M.reliability_data(probs, labels), args.repeats)
    t_tm = best_time(lambda: multiclass_calibration_error(probs, labels, num_classes=c, n_bins=15), args.repeats)
    t_tm_fast = best_time(
        lambda: multiclass_calibration_error(probs, labels, num_classes=c, n_bins=15, validate_args=False), args.repeats
    )
    print(f"ece(probs [{n:,} x {c}])               : {t_ece * 1e3:8.1f} ms")
    print(f"reliability_data(probs [{n:,} x {c}])  : {t_rel * 1e3:8.1f} ms")
    print(f"torchmetrics multiclass_calibration_error: {t_tm * 1e3:8.1f} ms (validate_args=False: {t_tm_fast * 1e3:.1f} ms)")
    print(f"  ratio torchmetrics / vlmcal ece        : {t_tm / t_ece:8.2f} (validate_args=False: {t_tm_fast / t_ece:.2f})")
    del probs, labels

    # Wide case: N x 1000 logits, where a second [N, C] array would cost gigabytes.
    wn, wc = args.wide_n, args.wide_classes
    logits = torch.randn(wn, wc, generator=g) * 3  # [N, C] float32
    labels = torch.randint(0, wc, (wn,), generator=g)
    gb = logits.numel() * logits.element_size() / 1e9
    print(f"[{wn:,} x {wc}] logits ({gb:.1f} GB); vlmcal works in blocks of {M.CHUNK_ELEMENTS:,} entries:")
    for name, fn in [
        ("ece(logits)", lambda: M.ece(logits, labels, inputs="logits")),
        ("nll(logits)", lambda: M.nll(logits, labels, inputs="logits")),
        ("brier_score(logits)", lambda: M.brier_score(logits, labels, inputs="logits")),
        ("classwise_ece(logits)", lambda: M.classwise_ece(logits, labels, inputs="logits")),
    ]:
        print(f"  {name:24s}: {best_time(fn, 1) * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
