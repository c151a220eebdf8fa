"""Backbones by name: one loader for every family, and a registry that families plug into.

- ``openclip:<arch>:<pretrained>``: an open_clip model (``vlmcal.backbones.openclip``), e.g.
  ``openclip:ViT-B-16:openai`` or ``openclip:vlmcal-tiny:random`` (random weights, for tests).
- ``timm:<model>``: an ImageNet-trained timm classifier, a supervised baseline (``vlmcal.backbones.timm_classifier``).
- Any family registered with :func:`register_family`, e.g. through the ``vlmcal.backbones``
  entry-point group (the book's stand-ins ``default`` and ``supervised``, from ``vlmcal.standins``).

Example:
    >>> backbone = load_backbone("openclip:vlmcal-tiny:random", device="cpu")
    >>> backbone.encode_text(["a photo of a cat."]).shape
    torch.Size([1, 32])
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Callable

import torch

from vlmcal.backbones.base import Backbone, Classifier, default_device
from vlmcal.backbones.timm_classifier import load_timm

__all__ = ["load_backbone", "load_model", "list_backbones", "register_family", "Family", "Backbone", "Classifier", "default_device"]

ENTRY_POINT_GROUP = "vlmcal.backbones"
_BUILT_IN = ("`openclip:<arch>:<pretrained tag | checkpoint path | random>` (e.g. `openclip:ViT-B-16:openai`); "
             "`timm:<model>[:<checkpoint path | random>]` (an ImageNet classifier, e.g. `timm:resnet50.a1_in1k`)")


@dataclass(frozen=True)
class Family:
    """A family of models loadable by name.

    Attributes:
        accepts: whether a model name belongs to the family.
        load: ``load(name, device=..., cache_dir=..., **kwargs)`` -> a ``Backbone`` or ``Classifier``.
        names: the names that load here, for :func:`list_backbones`.
        spelling: how its names are written, for the message about an unknown name.
    """

    name: str
    accepts: Callable[[str], bool]
    load: Callable[..., Backbone | Classifier]
    names: Callable[[], list[str]]
    spelling: str


_FAMILIES: dict[str, Family] = {}
_entry_points_read = False


def register_family(family: Family) -> Family:
    """Add (or replace) a family of named models; returns it."""
    _FAMILIES[family.name] = family
    return family


def _families() -> list[Family]:
    """The registered families, after reading the entry points once."""
    global _entry_points_read
    if not _entry_points_read:
        _entry_points_read = True
        for point in entry_points(group=ENTRY_POINT_GROUP):
            point.load()()  # each entry point is a function that registers its families
    return list(_FAMILIES.values())


def _accepted() -> str:
    return "; ".join([*(f.spelling for f in _families()), _BUILT_IN])


def load_model(name: str, device: str | torch.device | None = None, cache_dir: str | os.PathLike | None = None,
               **kwargs) -> Backbone | Classifier:
    """Load a model by name: a VLM backbone, or a classifier such as a supervised baseline.

    ``name``: ``openclip:<arch>:<pretrained>``, or a name of a registered family; ``device``: where it runs (default
    CUDA when present, else CPU); ``cache_dir``: vlmcal's cache directory (default ``$VLMCAL_CACHE_DIR`` or
    ``~/.cache/vlmcal``); ``**kwargs``: for the family's loader (e.g. :func:`vlmcal.backbones.openclip.load_openclip`).

    Raises:
        ValueError: for a name no family accepts (the message lists what is accepted).
    """
    if not isinstance(name, str):
        raise ValueError(f"Expected a backbone name (a string: {_accepted()}), but got {name!r}")
    if name.startswith("openclip:"):
        from vlmcal.backbones.openclip import load_openclip  # open_clip and torchvision load only for open_clip models

        return load_openclip(name, device=device, cache_dir=cache_dir, **kwargs)
    if name.startswith("timm:"):
        return load_timm(name, device=device, cache_dir=cache_dir, **kwargs)
    for family in _families():
        if family.accepts(name):
            return family.load(name, device=device, cache_dir=cache_dir, **kwargs)
    raise ValueError(f"Unknown backbone {name!r}. Accepted: {_accepted()}; see vlmcal.backbones.list_backbones()")


def load_backbone(name: str, device: str | torch.device | None = None, cache_dir: str | os.PathLike | None = None,
                  **kwargs) -> Backbone:
    """Load a frozen VLM backbone by name (see :func:`load_model` for the arguments).

    Raises:
        ValueError: for a name no family accepts, or one that names a classifier, not a VLM.
    """
    model = load_model(name, device=device, cache_dir=cache_dir, **kwargs)
    if not isinstance(model, Backbone):
        raise ValueError(f"{name!r} is a classifier, not a vision-language backbone: load it with vlmcal.backbones.load_model")
    return model


def list_backbones(include_downloadable: bool = False) -> list[str]:
    """Backbone names that load on this machine (or, optionally, that could be downloaded).

    The registered families' names, the random-weight test models, and the cached open_clip pairs; with
    ``include_downloadable``, every ``openclip:<arch>:<tag>`` pair open_clip knows.
    """
    import open_clip

    from vlmcal.backbones.openclip import RANDOM_TAG, TEST_CONFIGS, _find_cached_weights

    names = [n for family in _families() for n in family.names()] + [f"openclip:{a}:{RANDOM_TAG}" for a in TEST_CONFIGS]
    return names + [f"openclip:{arch}:{tag}" for arch, tag in open_clip.list_pretrained()
                    if include_downloadable or _find_cached_weights(open_clip.get_pretrained_cfg(arch, tag))]
