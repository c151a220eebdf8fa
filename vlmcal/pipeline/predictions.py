"""Logits of a named model (a backbone, zero-shot, or ``supervised``) on a named condition: a ``Run``."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from typing import Literal, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from vlmcal import backbones
from vlmcal.calibration import stratified_sample
from vlmcal.data import templates as T
from vlmcal.data.datasets import load_dataset
from vlmcal.data.shifts import ShiftedDataset, check_shift
from vlmcal.pipeline.features import classifier_logits, describe_transform, image_features
from vlmcal.pipeline.runs import Run, condition_name, is_dataset_shift
from vlmcal.prompting.zeroshot import ZeroShotClassifier

__all__ = ["predict", "load_model", "clean_data", "RowSubset", "evaluation_rows", "covered_shifts_of", "model_inputs",
           "prompt_class_names", "is_supervised", "prompt_templates", "load_test_data", "TemplateChoice"]

TemplateChoice = Literal["hard", "ensemble", "dataset"]


def is_supervised(model: str) -> bool:
    """Whether ``model`` names a supervised baseline (the stand-in, or a ``timm:`` ImageNet classifier), not a VLM."""
    return model == "supervised" or model.startswith(("supervised-", "timm:"))


def prompt_templates(choice: TemplateChoice, dataset: str) -> list[str]:
    """The prompt templates a zero-shot run on the data set ``dataset`` (a spec) uses: ``choice`` ``"hard"`` ("a photo
    of a {}."), ``"ensemble"`` (CLIP's 80) or ``"dataset"`` (Fashion-MNIST only)."""
    if choice == "hard":
        return [T.HARD_PROMPT]
    if choice == "ensemble":
        return list(T.CLIP_TEMPLATES)
    if choice == "dataset":
        if not dataset.startswith("fashion-mnist"):
            raise ValueError(f"Dataset-specific templates exist for fashion-mnist only, not {dataset!r}; use 'ensemble' or 'hard'")
        return list(T.FASHION_MNIST_TEMPLATES)
    raise ValueError(f"Expected `templates` to be 'hard', 'ensemble' or 'dataset', but got {choice!r}")


def prompt_class_names(dataset: str, data) -> list[str]:
    """The default class names of prompts: Fashion-MNIST's prompt spellings, else the data set's ``class_names``."""
    return list(T.FASHION_MNIST_CLASSNAMES) if dataset.startswith("fashion-mnist") else list(data.class_names)


class _AsPIL(Dataset):
    """Serves a tensor-image data set as PIL images, so that any model's own preprocessing applies."""

    def __init__(self, dataset):
        self.dataset = dataset

    def prepare(self) -> None:
        getattr(self.dataset, "prepare", lambda: None)()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        image, label = self.dataset[i][:2]
        if isinstance(image, torch.Tensor):
            array = (image.clamp(0, 1) * 255).round().to(torch.uint8)  # [C, H, W]
            image = Image.fromarray(array[0].numpy(), mode="L") if array.shape[0] == 1 else Image.fromarray(array.permute(1, 2, 0).numpy())
        return image, label


@lru_cache(maxsize=4)
def clean_data(dataset: str, split: str):
    """The clean split of a data set (``vlmcal.data.datasets.load_dataset``), kept for the next call."""
    return load_dataset(dataset, split=split)


@lru_cache(maxsize=2)
def _shifted_data(dataset: str, split: str, shift: str, severity: int, shift_seed: int):
    """The shifted split, kept for the next call: every model of a study meets the same images."""
    return ShiftedDataset(clean_data(dataset, split), shift, severity, seed=shift_seed)


class RowSubset(Dataset):
    """A fixed subset of a data set's rows (labels, class names and identity follow)."""

    def __init__(self, dataset, rows: torch.Tensor):
        self.dataset, self.rows = dataset, rows
        self.labels = dataset.labels[rows]
        self.class_names = list(dataset.class_names)
        self.imagenet_classes = getattr(dataset, "imagenet_classes", None)
        digest = hashlib.sha256(rows.numpy().tobytes()).hexdigest()[:12]
        self.identity = {**dataset.identity, "rows": f"{len(rows)}:{digest}"}

    def prepare(self) -> None:
        getattr(self.dataset, "prepare", lambda: None)()

    def images_float(self) -> torch.Tensor:
        """[M, C, H, W] the kept rows' images."""
        return self.dataset.images_float()[self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        return self.dataset[int(self.rows[i])]


def _check_max_samples(max_samples) -> int | None:
    """``max_samples`` as an int >= 1, or None (also for 0) for every row; anything else raises."""
    if max_samples is None:
        return None
    if isinstance(max_samples, (bool, np.bool_)) or not isinstance(max_samples, (int, np.integer)) or max_samples < 0:
        raise ValueError(f"Expected argument `max_samples` to be a positive integer (at most that many images, a "
                         f"stratified subset), or None or 0 for every image, but got {max_samples!r}")
    return int(max_samples) or None


def evaluation_rows(labels: torch.Tensor, max_samples: int | None, seed: int = 0) -> torch.Tensor | None:
    """A stratified, seeded subset of at most ``max_samples`` rows (None or 0: every row)."""
    max_samples = _check_max_samples(max_samples)
    if max_samples is None or max_samples >= len(labels):
        return None
    return torch.as_tensor(stratified_sample(labels, int(max_samples), seed=seed), dtype=torch.long).sort().values


def load_test_data(dataset: str, shift: str = "clean", severity: int = 0, split: str = "test", shift_seed: int = 0,
                   max_samples: int | None = None):
    """The (possibly shifted) evaluation data, tensor images in [0, 1]: the whole split shifted, then a subset. A
    ``shift`` that is a data-set spec (``is_dataset_shift``) is that data set's split itself."""
    _check_max_samples(max_samples)  # before any data is read
    if shift != "clean" and not is_dataset_shift(shift):
        check_shift(shift, severity, "shift", also=("clean",))
    if shift == "clean" or is_dataset_shift(shift):
        data = clean_data(dataset if shift == "clean" else shift, split)
    else:
        data = _shifted_data(dataset, split, shift, severity, shift_seed)
    rows = evaluation_rows(data.labels, max_samples)
    return data if rows is None else RowSubset(data, rows)


@lru_cache(maxsize=8)
def load_model(model: str, device: str | None = None, cache_dir: str | None = None):
    """The named backbone or classifier (``vlmcal.backbones.load_model``), loaded once per process."""
    return backbones.load_model(model, device=device, cache_dir=cache_dir)


def covered_shifts_of(model: str, net) -> tuple[str, ...] | None:
    """The shifts the training data of ``net``, the loaded ``model``, shows: ``net.covered_shifts`` (None: not known;
    a supervised baseline that states none: ``()``)."""
    covered = getattr(net, "covered_shifts", () if is_supervised(model) else None)
    return None if covered is None else tuple(covered)


def model_inputs(net, data, clean=None) -> tuple[Dataset, str]:
    """``(inputs, description)``: ``data`` (tensor images in [0, 1]) as the backbone or classifier ``net`` takes it
    (tensors if they fit its ``input_shape``, else PIL images), and a description of that preprocessing for cache
    keys. The first image of ``clean`` (default: ``data``) gives the shape."""
    expected = getattr(net, "input_shape", None)
    shape = tuple((clean if clean is not None else data)[0][0].shape)
    if expected is not None and tuple(expected) == shape:
        return data, f"tensor images in [0, 1] of shape {shape}"
    return _AsPIL(data), "PIL, then " + describe_transform(net.preprocess)


@lru_cache(maxsize=32)
def _zero_shot_classifier(model: str, device: str | None, cache_dir: str | None, class_names: tuple[str, ...],
                          templates: tuple[str, ...]):
    with torch.no_grad():
        return ZeroShotClassifier(load_model(model, device, cache_dir), list(class_names), list(templates))


def predict(model: str, dataset: str = "fashion-mnist", shift: str = "clean", severity: int = 0, *,
            templates: TemplateChoice = "ensemble", class_names: Sequence[str] | None = None, split: str = "test",
            shift_seed: int = 0, max_samples: int | None = None, device: str | None = None,
            cache_dir: str | os.PathLike | None = None, progress: bool = True) -> Run:
    """One model's logits on one condition of a data set.

    Args:
        model: a backbone name (zero-shot VLM) or ``"supervised"``.
        dataset: a data-set spec (``"fashion-mnist"``, ``"cifar10:/path"``, ...; see ``vlmcal.data.datasets``).
        shift, severity: ``"clean"``, a name from ``vlmcal.data.shifts.list_shifts()`` (severity 1..5), or another data
            set's spec, whose test images replace the clean ones (``"imagenet-sketch:/data/sketch"``; its severity is
            only a label).
        templates: prompt templates of a zero-shot run (see :func:`prompt_templates`).
        class_names: the names prompts use (default: :func:`prompt_class_names`).
        shift_seed: the seed of the shift's random draws.
        max_samples: keep a stratified subset of at most this many images (None or 0: all).
        device: ``"cpu"``, ``"cuda"``, or None for automatic.
    Returns:
        A :class:`vlmcal.pipeline.runs.Run` with logits [N, C], labels [N] and :func:`covered_shifts_of`.
    """
    if shift != "clean" and not is_dataset_shift(shift):
        check_shift(shift, severity, "shift", also=("clean",))  # before int(): 2.7 is an error, not severity 2
    severity = 0 if shift == "clean" else int(severity)
    if not is_supervised(model):
        prompt_templates(templates, dataset)  # a bad `templates` fails before any data or model is loaded
    data = load_test_data(dataset, shift, severity, split, shift_seed, max_samples)
    identity = {"split": split, "dataset": dataset, **data.identity}
    cache = None if cache_dir is None else str(cache_dir)
    net = load_model(model, device, cache)
    inputs, identity["preprocessing"] = model_inputs(net, data, clean_data(dataset, split))
    covered = covered_shifts_of(model, net)
    if is_supervised(model):
        out = classifier_logits(net, inputs, identity, cache_dir=cache, progress=progress, num_workers=0 if inputs is data else None)
        subset = getattr(data, "imagenet_classes", None)  # ImageNet-A/-R: the logits of their 200 classes
        logits = out.features if subset is None else out.features[:, subset]  # [N, 1000] -> [N, 200]
        return Run(model, "supervised", shift, severity, logits, out.labels, covered_shifts=covered)
    if class_names is None:
        class_names = prompt_class_names(shift if is_dataset_shift(shift) else dataset, data)
    elif len(class_names) != len(data.class_names):
        raise ValueError(f"Expected {len(data.class_names)} class names for the data of {condition_name(shift, severity)}, "
                         f"but got {len(class_names)} in `class_names`")
    templates_used = tuple(prompt_templates(templates, dataset))
    classifier = _zero_shot_classifier(model, device, cache, tuple(class_names), templates_used)
    if inputs is data:
        # A stand-in's image tower costs less than reading features from disk: cache the logits (N x C) instead.
        out = classifier_logits(classifier, inputs, identity, cache_dir=cache, progress=progress, num_workers=0)
        return Run(model, "VLM", shift, severity, out.features, out.labels, covered_shifts=covered)
    feats = image_features(net, inputs, identity, cache_dir=cache, progress=progress)  # [N, D], cached: the costly part
    logits = classifier.logits_from_features(feats.features)  # [N, D] x [C, D] -> [N, C]
    return Run(model, "VLM", shift, severity, logits, feats.labels, covered_shifts=covered)
