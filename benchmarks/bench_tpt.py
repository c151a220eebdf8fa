"""Batched TPT against the one-image-at-a-time reference: throughput, ratio, where the time goes.

Both engines (``vlmcal.adaptation.tpt_batched`` and ``tpt_reference``) tune the same B test
images of Fashion-MNIST with the same settings (the paper's: 64 views, 6 kept, 1 AdamW step,
context "a photo of a") on the same backbone and device; their predictions are compared. For
each engine the script prints images per second, then a per-image breakdown over
``vlmcal.adaptation.PHASES`` (augmentation, image encoding, text forward, text backward,
optimiser step).

It also prints a floor for the text tower: the matrix-multiply FLOPs of one image's text
forward passes and backward pass (the linear layers of the 6-layer MiniLM, over the K
prompts' tokens; attention scores and everything else left out, so the true cost is higher),
divided by the machine's measured float32 matmul rate. The batched engine cannot go below it
on this machine, whatever it batches.

Usage:
    python benchmarks/bench_tpt.py               # B = 16, the default stand-in, CPU
    python benchmarks/bench_tpt.py --batch 32 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def _matmul_gflops(n: int = 1024, repeats: int = 10) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm up
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def main() -> None:
    import torch

    from vlmcal.adaptation import PHASES, TPTSettings, tpt_batched, tpt_reference
    from vlmcal.backbones import load_backbone
    from vlmcal.data.datasets import load_fashion_mnist

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16, help="B, images tuned at once (default 16)")
    parser.add_argument("--backbone", default="default", help="backbone name (default: the default stand-in)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; medians are printed (default 3)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    backbone = load_backbone(args.backbone, device="cpu")
    test = load_fashion_mnist("test")
    images, names = test.images_float()[: args.batch], list(test.class_names)
    settings = TPTSettings()
    backbone.encode_text(["warm up the text tower"])
    print(f"backbone {args.backbone}, B = {args.batch}, {settings.n_views} views, {settings.n_kept} kept, {settings.steps} step; "
          f"torch threads {torch.get_num_threads()}; load average before {os.getloadavg()[0]:.2f}")

    results, seconds, phases = {}, {"reference": [], "batched": []}, {"reference": [], "batched": []}
    for _ in range(args.repeats):
        for engine, run in (("reference", tpt_reference), ("batched", tpt_batched)):
            timings: dict[str, float] = {}
            start = time.perf_counter()
            results[engine] = run(backbone, images, names, settings, timings=timings)
            seconds[engine].append(time.perf_counter() - start)
            phases[engine].append(timings)

    same = bool(torch.equal(results["batched"].logits.argmax(1), results["reference"].logits.argmax(1)))
    gap = float((results["batched"].logits.softmax(1).amax(1) - results["reference"].logits.softmax(1).amax(1)).abs().max())
    rate = {e: args.batch / statistics.median(s) for e, s in seconds.items()}
    for engine in ("reference", "batched"):
        middle = sorted(range(args.repeats), key=lambda r: seconds[engine][r])[args.repeats // 2]  # the median round, shown whole
        parts = {p: phases[engine][middle].get(p, 0.0) / args.batch * 1e3 for p in PHASES}
        total = seconds[engine][middle] / args.batch * 1e3
        other = total - sum(parts.values())
        print(f"\n{engine}: {rate[engine]:.2f} images/s ({total:.1f} ms per image, median of {args.repeats})")
        for p, ms in parts.items():
            print(f"  {p:16s} {ms:8.1f} ms per image")
        print(f"  {'other':16s} {other:8.1f} ms per image")
    print(f"\nbatched / reference throughput: {rate['batched'] / rate['reference']:.2f}x (goal: at least 5x); "
          f"same predictions: {same}; largest confidence difference: {gap:.2e}")

    # The floor: matmul FLOPs of the text tower per image, at the measured rate.
    tower = backbone.text_tower
    cfg = tower.bert.config
    length = 2 + settings.n_ctx + max(len(tower.token_ids(f"{n}.")) for n in names)  # tokens per prompt, as the hook builds them
    per_token = cfg.num_hidden_layers * 2 * (4 * cfg.hidden_size**2 + 2 * cfg.hidden_size * cfg.intermediate_size)  # FLOPs of the linear layers
    forward = per_token * length * len(names)
    passes_forward, passes_backward = settings.steps + 1, settings.steps  # each step, then the final prediction; backward: input gradients only (~1 forward)
    flops = forward * (passes_forward + passes_backward)
    gflops = _matmul_gflops()
    floor_ms = flops / (gflops * 1e9) * 1e3
    text_ms = {e: statistics.median(sum(t.get(p, 0.0) for p in ("text forward", "text backward")) for t in phases[e]) / args.batch * 1e3
               for e in phases}
    batched_text = text_ms["batched"]
    print(f"text tower floor: {flops / 1e9:.2f} GFLOP per image ({passes_forward} forward + {passes_backward} backward passes over "
          f"{len(names)} prompts of {length} tokens) at the measured {gflops:.0f} GFLOP/s matmul rate: {floor_ms:.1f} ms per image; "
          f"the batched engine's text forward + backward: {batched_text:.1f} ms per image ({batched_text / floor_ms:.1f}x the floor), "
          f"the reference's {text_ms['reference']:.1f} ms ({text_ms['reference'] / floor_ms:.1f}x)")
    best = statistics.median(seconds["reference"]) / args.batch * 1e3 / floor_ms
    print(f"so no engine can beat the reference by more than {best:.1f}x here unless it does fewer text FLOPs than the floor assumes")
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
