"""Speed of the study's two inner loops, each against the one-at-a-time way of computing it.

1. Bootstrap of a mean ECE over many runs on the same images (the C1-C3 intervals):
   ``bootstrap_weights`` + ``ece_weighted`` (every resample of every run as one matrix
   product) against ``bootstrap_rows`` with one ``bin_statistics`` call per run and resample.
2. Temperature scaling of many small calibration sets (the C6 study): ``fit_temperatures``
   (one vectorised Newton search) against a loop of ``TemperatureScaling().fit`` and against
   a loop of scipy's bounded Brent search on the same NLL; and one large fit.

Every pair must agree (the script stops if not); it prints the best of ``--repeats`` times
after a warm-up and the ratios. Random inputs of the study's shapes by default.

Run:  .venv/bin/python benchmarks/bench_calibration.py [--runs 243] [--n 5000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import os
import time
import warnings

import numpy as np
import torch
from scipy import optimize

from vlmcal import metrics as M
from vlmcal.calibration import TemperatureScaling, fit_temperatures


def best_time(fn, repeats: int):
    result = fn()  # warm-up, and the result to compare
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def scipy_temperature(z: torch.Tensor, y: torch.Tensor) -> float:
    """The textbook fit: bounded Brent in log T on float64 cross-entropy."""
    z64 = z.to(torch.float64)

    def nll(log_t: float) -> float:
        return float(torch.nn.functional.cross_entropy(z64 / math.exp(log_t), y))

    return math.exp(optimize.minimize_scalar(nll, bounds=(math.log(1e-3), math.log(1e3)), method="bounded", options={"xatol": 1e-6}).x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=243, help="runs in the bootstrap (3 models x 81 conditions)")
    parser.add_argument("--n", type=int, default=5000, help="evaluation images per run")
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--draws", type=int, default=160, help="small calibration sets to fit")
    parser.add_argument("--draw-size", type=int, default=50)
    parser.add_argument("--large-n", type=int, default=1_000_000, help="samples of the single large fit")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    g = torch.Generator().manual_seed(0)

    # 1. Bootstrap of the mean ECE over runs.
    conf = torch.rand(args.runs, args.n, generator=g, dtype=torch.float64) ** 0.3  # [R, n] confident
    hit = torch.rand(args.runs, args.n, generator=g, dtype=torch.float64) < conf**2  # [R, n] over-confident

    def one_at_a_time():
        return M.bootstrap_rows(
            lambda rows: float(np.mean([M.bin_statistics(conf[r, rows], hit[r, rows]).ece for r in range(args.runs)])),
            args.n, args.resamples,
        )

    def at_once():
        return M.bootstrap_weights(lambda w: M.ece_weighted(conf, hit, w).mean(dim=1), args.n, args.resamples)

    t_loop, ref = best_time(one_at_a_time, 1)
    t_fast, got = best_time(at_once, args.repeats)
    assert all(math.isclose(getattr(ref, f), getattr(got, f), abs_tol=1e-12) for f in ("estimate", "lower", "upper")), (ref, got)
    print(f"bootstrap of the mean ECE, {args.runs} runs x {args.n:,} images, {args.resamples} resamples (same interval: {got}):")
    print(f"  bootstrap_rows, bin_statistics per run and resample: {t_loop:8.2f} s")
    print(f"  bootstrap_weights + ece_weighted                   : {t_fast:8.2f} s   ({t_loop / t_fast:.0f}x faster)")

    # 2. Temperature scaling of many small calibration sets, and one large one.
    c = 10
    base = 2.0 * torch.randn(args.draws, args.draw_size, c, generator=g)  # [D, n, C]
    labels = torch.multinomial(base.softmax(-1).view(-1, c), 1, generator=g).view(args.draws, args.draw_size)
    logits = 2.5 * base  # over-confident by 2.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a small set can sit on a search bound
        t_batched, batched = best_time(lambda: fit_temperatures(logits, labels), args.repeats)
        t_each, each = best_time(lambda: [TemperatureScaling().fit(logits[d], labels[d]).temperature_ for d in range(args.draws)], args.repeats)
    t_scipy, brent = best_time(lambda: [scipy_temperature(logits[d], labels[d]) for d in range(args.draws)], 1)
    assert np.allclose(batched.numpy(), each, rtol=1e-9)
    inside = (batched > 1e-3 * 1.01) & (batched < 1e3 / 1.01)
    assert np.allclose(batched.numpy()[inside.numpy()], np.array(brent)[inside.numpy()], rtol=1e-4)
    print(f"temperature scaling of {args.draws} calibration sets of {args.draw_size} samples x {c} classes (all agree):")
    print(f"  scipy bounded Brent, one set at a time : {t_scipy:8.3f} s")
    print(f"  TemperatureScaling().fit, one at a time: {t_each:8.3f} s")
    print(f"  fit_temperatures, all sets at once     : {t_batched:8.3f} s   ({t_scipy / t_batched:.0f}x faster than the Brent loop)")

    big = 2.0 * torch.randn(args.large_n, c, generator=g)
    big_labels = torch.multinomial(big.softmax(-1), 1, generator=g)[:, 0]
    t_big, fitted = best_time(lambda: TemperatureScaling().fit(1.7 * big, big_labels).temperature_, args.repeats)
    t_big_scipy, brent_big = best_time(lambda: scipy_temperature(1.7 * big, big_labels), 1)
    assert math.isclose(fitted, brent_big, rel_tol=1e-5), (fitted, brent_big)
    print(f"one fit on [{args.large_n:,} x {c}] logits (T = {fitted:.4f} both):")
    print(f"  scipy bounded Brent     : {t_big_scipy:8.2f} s")
    print(f"  TemperatureScaling().fit: {t_big:8.2f} s   (ratio {t_big_scipy / t_big:.1f})")


if __name__ == "__main__":
    main()
