"""Throughput of vlmcal's feature extraction against a plain open_clip inference loop.

Both run the same model (random weights, so no download is needed), on the same images,
through the same DataLoader settings (batch size, workers) on the same device; the plain loop
is what one would write by hand with open_clip. The runs alternate and repeat; the median of
each is reported, with their ratio (vlmcal / plain; 1.0 = no overhead). vlmcal runs with
``use_cache=False`` so that every run computes; a cache hit is timed separately.

Usage:
    python benchmarks/bench_features.py                      # ViT-B-32 at 224 px, CPU or CUDA
    python benchmarks/bench_features.py --arch vlmcal-tiny --n-images 2048 --batch-size 256
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from vlmcal.backbones import load_backbone
from vlmcal.backbones.base import default_device
from vlmcal.pipeline.features import default_num_workers, image_features


class RandomImages(Dataset):
    """(PIL RGB image, label) pairs of random pixels, made once up front."""

    def __init__(self, n: int, size: int, transform=None):
        rng = np.random.default_rng(0)
        self.pixels = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, i):
        image = Image.fromarray(self.pixels[i])
        return (self.transform(image) if self.transform else image), i % 10


def plain_open_clip(model, preprocess, data, batch_size, workers, device) -> torch.Tensor:
    """The hand-written loop: DataLoader, encode_image, normalise, collect."""
    loader = DataLoader(RandomImages(len(data), data.pixels.shape[1], preprocess), batch_size=batch_size,
                        num_workers=workers, pin_memory=device.type == "cuda")
    out = []
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
        for images, _ in loader:
            out.append(F.normalize(model.encode_image(images.to(device)), dim=-1).float().cpu())
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="ViT-B-32", help="open_clip architecture (random weights)")
    parser.add_argument("--n-images", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=256, help="side of the stored images, before preprocessing")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=default_num_workers())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    device = default_device(args.device)
    backbone = load_backbone(f"openclip:{args.arch}:random", device=device)
    data = RandomImages(args.n_images, args.image_size)
    identity = {"dataset": "random-images", "split": f"n{args.n_images}"}
    print(f"{backbone.name} on {device} ({torch.get_num_threads()} threads), {args.n_images} images, "
          f"batch {args.batch_size}, {args.workers} workers, {args.repeats} repeats")

    def run_vlmcal(**kw):
        return image_features(backbone, data, identity, batch_size=args.batch_size, num_workers=args.workers,
                              progress=False, **kw)

    # Warm-up (allocator, thread pools), and a check that both compute the same features.
    plain_feats = plain_open_clip(backbone.model, backbone.preprocess, data, args.batch_size, args.workers, device)
    ours = run_vlmcal(use_cache=False).features
    max_diff = float((plain_feats - ours).abs().max())

    times = {"plain open_clip": [], "vlmcal": []}
    for _ in range(args.repeats):
        t = time.perf_counter()
        plain_open_clip(backbone.model, backbone.preprocess, data, args.batch_size, args.workers, device)
        times["plain open_clip"].append(time.perf_counter() - t)
        t = time.perf_counter()
        run_vlmcal(use_cache=False)
        times["vlmcal"].append(time.perf_counter() - t)

    rates = {k: args.n_images / statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k:>16}: {rates[k]:8.1f} images/s  (runs: {', '.join(f'{s:.2f}s' for s in v)})")
    print(f"{'ratio':>16}: {rates['vlmcal'] / rates['plain open_clip']:.3f}  (vlmcal / plain; >= 0.90 is the target)")
    print(f"{'max |diff|':>16}: {max_diff:.2e}  (features of the two loops)")

    with tempfile.TemporaryDirectory() as tmp:
        run_vlmcal(cache_dir=tmp)
        t = time.perf_counter()
        hit = run_vlmcal(cache_dir=tmp)
        print(f"{'cache hit':>16}: {time.perf_counter() - t:.3f}s for {args.n_images} images (from_cache={hit.from_cache})")


if __name__ == "__main__":
    main()
