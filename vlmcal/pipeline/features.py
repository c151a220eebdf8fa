"""Image features (and classifier logits) extracted once, batched, and cached on disk (in shards under torchrun)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from vlmcal.backbones.base import Backbone, Classifier
from vlmcal.pipeline.cache import cache_dir as resolve_cache_dir
from vlmcal.pipeline.cache import content_key, entry_path, load_entry, save_entry
from vlmcal.pipeline.sharding import compute_rows, launch

__all__ = ["FeatureSet", "image_features", "classifier_logits", "describe_transform", "default_num_workers"]

CACHE_FORMAT = 2  # bump when the file layout changes; old files then stop matching (2: entries with a digest)
_SUBDIR = "features"
_IDENTITY_DEFAULTS = {"shift": None, "severity": None}
_SHARD_BATCHES = 16  # batches per shard under torchrun (2,048 images at the default batch size)


@dataclass(frozen=True)
class FeatureSet:
    """The outputs of a frozen model on every image of a dataset, in dataset order.

    Attributes:
        features: [N, K] float32 on CPU: image features (K = D) or logits (K = C).
        labels: [N] int64 on CPU.
        key, path: the content hash the file is stored under, and the cache file.
        from_cache: whether this call read the file instead of computing.
    """
    features: torch.Tensor
    labels: torch.Tensor
    key: str
    path: Path
    from_cache: bool


def default_num_workers() -> int:
    """DataLoader workers: one per spare core, at most 4 (the main process runs the model)."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def describe_transform(transform: Callable | None) -> str:
    """A stable text description of a preprocessing transform (its ``repr`` without memory addresses)."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(transform))


class _Preprocessed(Dataset):
    """Applies ``transform`` to images that are not tensors yet (PIL images), in the worker processes."""

    def __init__(self, dataset: Dataset, transform: Callable | None):
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.dataset[i][:2]
        if not isinstance(image, torch.Tensor):
            if self.transform is None:
                raise TypeError(f"Item {i} is a {type(image).__name__}, not a tensor, and no transform was given; "
                                f"pass `transform=backbone.preprocess` or a dataset that yields tensors")
            image = self.transform(image)
        return image, torch.as_tensor(label, dtype=torch.long)


def _check_identity(identity: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(identity, Mapping) or not all(k in identity for k in ("dataset", "split")):
        raise ValueError("Expected `identity` to be a dict naming at least the dataset and split, e.g. "
                         f"{{'dataset': 'fashion-mnist', 'split': 'test', 'shift': 'gaussian_noise', 'severity': 3}}, "
                         f"but got {identity!r}")
    if reserved := sorted(set(identity) & {"kind", "model", "n_items", "format"}):
        raise ValueError(f"Expected `identity` without the keys vlmcal adds itself, but it has {reserved}; rename them")
    return {**_IDENTITY_DEFAULTS, **dict(identity)}


def _preprocessing_description(dataset: Dataset, transform: Callable[[], Callable | None], identity: dict) -> str:
    """What turns the stored images into model inputs: a part of the cache key."""
    if "preprocessing" in identity:
        return str(identity.pop("preprocessing"))
    if isinstance(dataset[0][0], torch.Tensor):  # the dataset preprocesses its images itself
        return "dataset: " + describe_transform(getattr(dataset, "transform", None))
    return describe_transform(transform())


def _transform_of(model, transform: Callable | None) -> Callable[[], Callable | None]:
    """``transform``, or else the model's ``preprocess``, looked up only when needed (it can import torchvision)."""
    return (lambda: transform) if transform is not None else (lambda: getattr(model, "preprocess", None))


def _shape_problem(payload: dict, n: int) -> str | None:
    """None if ``payload`` holds [n, K] float32 outputs and [n] int64 labels; else what it holds."""
    feats, labels = payload["features"], payload["labels"]
    if feats.ndim == 2 and feats.shape[0] == n and labels.shape == (n,) and (feats.dtype, labels.dtype) == (torch.float32, torch.int64):
        return None
    return (f"holds outputs {feats.dtype} {list(feats.shape)} and labels {labels.dtype} {list(labels.shape)}, "
            f"but this data set needs torch.float32 [{n}, K] and torch.int64 [{n}]")


def _run_cached(compute_batch: Callable[[torch.Tensor], torch.Tensor], model_identity: Any, kind: str, dataset: Dataset,
                identity: Mapping[str, Any], transform: Callable[[], Callable | None], batch_size: int,
                num_workers: int | None, cache_dir_: str | os.PathLike | None, use_cache: bool, progress: bool,
                device: torch.device, shard_batches: int | None = None) -> FeatureSet:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Expected `batch_size` to be an integer >= 1, but got {batch_size!r}")
    n = len(dataset)
    if n == 0:
        raise ValueError("Expected a dataset with at least one item, but got an empty one")
    parts = _check_identity(identity)
    parts["preprocessing"] = _preprocessing_description(dataset, transform, parts)
    entry_identity = {"kind": kind, "model": model_identity, "n_items": n, "format": CACHE_FORMAT, **parts}
    key = content_key(**entry_identity)
    path = entry_path(_SUBDIR, f"{kind}-{parts['dataset']}-{parts['split']}", entry_identity, cache_dir_)
    blob = load_entry(path, entry_identity, lambda payload: _shape_problem(payload, n)) if use_cache else None
    if blob is not None:
        return FeatureSet(blob["features"], blob["labels"], key, path, from_cache=True)
    prepare = getattr(dataset, "prepare", None)
    if callable(prepare):  # a lazy data set computes its images once, before the workers fork
        prepare()
    in_memory = getattr(dataset, "images_float", None)
    images = all_labels = None
    if callable(in_memory) and getattr(dataset, "transform", None) is None:
        # The images are model inputs in one tensor: slice batches from it (the items a DataLoader would yield).
        images, all_labels = in_memory(), torch.as_tensor(dataset.labels, dtype=torch.long)  # [N, C, H, W], [N]

    def compute(rows: range) -> dict[str, torch.Tensor]:
        """The outputs and labels of ``rows``, in batches of ``batch_size`` from the first row."""
        outputs, labels = [], []
        desc = f"{kind} {parts['dataset']}/{parts['split']}"
        if images is not None:
            for start in tqdm(range(rows.start, rows.stop, batch_size), desc=desc, unit="batch", disable=not progress, leave=False):
                stop = min(start + batch_size, rows.stop)
                outputs.append(compute_batch(images[start:stop]).float().cpu())  # [B, ...] -> [B, K]
                labels.append(all_labels[start:stop])
        else:
            workers = default_num_workers() if num_workers is None else int(num_workers)
            items = _Preprocessed(dataset, transform())
            loader = DataLoader(items if len(rows) == n else Subset(items, list(rows)), batch_size=batch_size,
                                shuffle=False, num_workers=workers, pin_memory=device.type == "cuda")
            for batch, y in tqdm(loader, desc=desc, unit="batch", disable=not progress, leave=False):
                outputs.append(compute_batch(batch).float().cpu())  # [B, ...] -> [B, K]
                labels.append(y)
        return {"features": torch.cat(outputs), "labels": torch.cat(labels)}  # [M, K], [M]

    # Under torchrun shards are whole batches, so every batch holds the rows it holds in one process.
    shard_rows = batch_size * (shard_batches or _SHARD_BATCHES)
    payload = compute_rows(compute, n, entry_identity, resolve_cache_dir(cache_dir_) / _SUBDIR / "shards", shard_rows)
    result = FeatureSet(payload["features"], payload["labels"], key, path, from_cache=False)  # [N, K], [N]
    if use_cache and launch().rank == 0:
        save_entry(path, {"features": result.features, "labels": result.labels}, entry_identity)
    return result


def image_features(backbone: Backbone, dataset: Dataset, identity: Mapping[str, Any], *,
                   transform: Callable | None = None, batch_size: int = 128, num_workers: int | None = None,
                   cache_dir: str | os.PathLike | None = None, use_cache: bool = True, progress: bool = True,
                   shard_batches: int | None = None) -> FeatureSet:
    """L2-normalised image features of every item of ``dataset`` by ``backbone.encode_images``, computed once and
    cached: a :class:`~vlmcal.pipeline.features.FeatureSet` with ``features`` [N, D] and ``labels`` [N].

    Args:
        dataset: yields ``(image, label, ...)``; preprocessed tensors, or PIL images for ``transform``.
        identity: the cache key's parts: ``dataset``, ``split``; optionally ``shift``, ``severity``, etc.
        transform: PIL image -> tensor; default ``backbone.preprocess``.
        batch_size, num_workers: images per forward pass; DataLoader workers (default :func:`default_num_workers`).
        cache_dir: vlmcal's cache directory (default ``$VLMCAL_CACHE_DIR`` or ``~/.cache/vlmcal``).
        use_cache: read and write the cache (under ``torchrun`` the shards are cached regardless).
        shard_batches: batches per shard under ``torchrun`` (default 16).
    """
    model_identity = {"backbone": getattr(backbone, "cache_identity", backbone.name),
                      "precision": getattr(backbone, "precision", "fp32")}
    return _run_cached(backbone.encode_images, model_identity, "image_features", dataset, identity,
                       _transform_of(backbone, transform), batch_size, num_workers, cache_dir, use_cache, progress,
                       backbone.device, shard_batches)


def classifier_logits(classifier: Classifier, dataset: Dataset, identity: Mapping[str, Any], *,
                      transform: Callable | None = None, batch_size: int = 128, num_workers: int | None = None,
                      cache_dir: str | os.PathLike | None = None, use_cache: bool = True, progress: bool = True,
                      shard_batches: int | None = None) -> FeatureSet:
    """A classifier's logits on every item of ``dataset``, computed once and cached.

    As :func:`image_features`, with ``classifier.logits``: ``features`` holds [N, C] logits. The cache
    identifies the classifier by ``cache_identity``, else its name and class names.
    """
    model_identity = getattr(classifier, "cache_identity", None) or {"name": classifier.name,
                                                                     "classes": list(classifier.class_names)}
    device = getattr(classifier, "device", None) or getattr(getattr(classifier, "backbone", None), "device", None)
    return _run_cached(classifier.logits, model_identity, "logits", dataset, identity,
                       _transform_of(classifier, transform), batch_size, num_workers, cache_dir, use_cache, progress,
                       torch.device(device or "cpu"), shard_batches)
