"""Batched TPT against the one-image-at-a-time reference: throughput, ratio, where the time goes.

Both engines (``vlmcal.adaptation.tpt_batched`` and ``tpt_reference``) tune the same B test
images of Fashion-MNIST with the same settings (the paper's: 64 views, 6 kept, 1 AdamW step,
context "a photo of a") on the same backbone and device; their predictions are compared. For
each engine the script prints images per second, then a per-image breakdown over
``vlmcal.adaptation.PHASES`` (augmentation, image encoding, text forward, text backward,
optimiser step).

It also prints the text tower's floor for each engine: the matrix-multiply FLOPs of its text passes per image (the
linear layers of the 6-layer MiniLM over the K prompts' tokens; attention scores and everything else left out, so the
true cost is higher), divided by the machine's measured float32 matmul rate. The reference runs two forward passes
and one backward per image; the batched engine one shared forward per batch (every context starts from the same
phrase), then one backward and one forward per image. Each text time is printed as a multiple of its floor, and
the floors' ratio is what batching gains on the text tower when both engines run at the same share of that rate.

Usage:
    python benchmarks/bench_tpt.py               # B = 16, the default stand-in, CPU
    python benchmarks/bench_tpt.py --batch 32 --repeats 3
    python benchmarks/bench_tpt.py --profile     # and where the batched engine's time goes (cProfile)
    python benchmarks/bench_tpt.py --backbone openclip:ViT-B-16:random --device cuda --classes 200 --repeats 1
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
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda (the text tower under float16 autocast)")
    parser.add_argument("--classes", type=int, default=0, help="K synthetic class names instead of Fashion-MNIST's 10")
    parser.add_argument("--profile", action="store_true", help="also profile the batched engine: where its time goes")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    backbone = load_backbone(args.backbone, device=args.device)
    if args.backbone.startswith("openclip:"):  # random pixels at the model's input size: throughput, not accuracy
        torch.manual_seed(0)
        images, names = torch.randn(args.batch, 3, *backbone.image_size), [f"class {k}" for k in range(10)]
    else:
        test = load_fashion_mnist("test")
        images, names = test.images_float()[: args.batch], list(test.class_names)
    names = [f"object number {k}" for k in range(args.classes)] if args.classes else names
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
    print(f"\nbatched / reference throughput: {rate['batched'] / rate['reference']:.2f}x (goal: at least 2.5x); "
          f"same predictions: {same}; largest confidence difference: {gap:.2e}")

    if args.device == "cuda":
        print(f"peak CUDA memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    if args.profile:
        _profile(lambda: tpt_batched(backbone, images, names, settings), args.repeats)
    if not hasattr(backbone, "text_tower"):  # the floor below is written for the stand-ins' MiniLM text tower
        print(f"load average after {os.getloadavg()[0]:.2f}")
        return
    # The floor: matmul FLOPs of the text tower per image, at the measured rate.
    tower = backbone.text_tower
    cfg = tower.bert.config
    length = 2 + settings.n_ctx + max(len(tower.token_ids(f"{n}.")) for n in names)  # tokens per prompt, as the hook builds them
    per_token = cfg.num_hidden_layers * 2 * (4 * cfg.hidden_size**2 + 2 * cfg.hidden_size * cfg.intermediate_size)  # FLOPs of the linear layers
    forward = per_token * length * len(names)
    gflops = _matmul_gflops()
    passes = {"reference": 2 * settings.steps + 1, "batched": 1 / args.batch + 2 * settings.steps}  # forward-sized passes
    floor_ms = {e: forward * n / (gflops * 1e9) * 1e3 for e, n in passes.items()}
    text_ms = {e: statistics.median(sum(t.get(p, 0.0) for p in ("text forward", "text backward")) for t in phases[e]) / args.batch * 1e3
               for e in phases}
    print(f"text tower: {forward / 1e9:.2f} GFLOP per forward pass over {len(names)} prompts of {length} tokens, at the "
          f"measured {gflops:.0f} GFLOP/s matmul rate")
    for engine in ("reference", "batched"):
        print(f"  {engine}: floor {passes[engine]:.2f} passes = {floor_ms[engine]:.1f} ms per image; its text forward + "
              f"backward {text_ms[engine]:.1f} ms = {text_ms[engine] / floor_ms[engine]:.2f}x its floor")
    print(f"  the floors' ratio, {passes['reference'] / passes['batched']:.2f}x, is what the batched engine gains on the "
          f"text tower when both run at the same share of the matmul rate; beyond it the ratio measures how far below "
          f"that rate the reference's one-image passes run")
    print(f"load average after {os.getloadavg()[0]:.2f}")


def _profile(run, repeats: int, top: int = 8) -> None:
    """cProfile ``repeats`` calls of ``run``: the functions with the most time of their own, as shares of the total."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(lambda: [run() for _ in range(repeats)])
    stats = pstats.Stats(profiler).stats  # {(file, line, name): (calls, primitive calls, own time, cumulative, callers)}
    total = sum(own for _, _, own, _, _ in stats.values())
    print(f"\nbatched engine, cProfile of {repeats} calls ({total:.2f} s of own time): the {top} largest shares")
    for (path, line, name), (calls, _, own, _, _) in sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]:
        where = name if path == "~" else f"{os.path.basename(path)}:{line} {name}"
        print(f"  {own / total:6.1%}  {calls:6d} calls  {where}")


if __name__ == "__main__":
    main()
