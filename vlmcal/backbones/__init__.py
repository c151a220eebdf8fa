"""Backbones by name: one loader for every family.

- ``default``, ``default-<variant>``: vlmcal's offline stand-in backbones (``vlmcal.backbones.standins``).
- ``openclip:<arch>:<pretrained>``: an open_clip model (``vlmcal.backbones.openclip``), e.g.
  ``openclip:ViT-B-16:openai``, ``openclip:ViT-B-16:/path/to/checkpoint.pt``, or
  ``openclip:vlmcal-tiny:random`` (random weights, for tests and dry runs).

Example:
    >>> backbone = load_backbone("openclip:vlmcal-tiny:random", device="cpu")
    >>> backbone.encode_text(["a photo of a cat."]).shape
    torch.Size([1, 32])
"""

from __future__ import annotations

import os

import torch

from vlmcal.backbones.base import Backbone, Classifier, default_device

__all__ = ["load_backbone", "list_backbones", "Backbone", "Classifier", "default_device"]

_ACCEPTED = (
    "`default` or `default-<variant>` (vlmcal's offline stand-ins), or "
    "`openclip:<arch>:<pretrained tag | checkpoint path | random>` (e.g. `openclip:ViT-B-16:openai`)"
)


def load_backbone(
    name: str,
    device: str | torch.device | None = None,
    cache_dir: str | os.PathLike | None = None,
    **kwargs,
) -> Backbone:
    """Load a backbone by name.

    Args:
        name: ``default``, ``default-<variant>`` or ``openclip:<arch>:<pretrained>``.
        device: where it runs; default CUDA when present, else CPU.
        cache_dir: vlmcal's cache directory (default ``$VLMCAL_CACHE_DIR`` or ``~/.cache/vlmcal``).
        **kwargs: passed to the family's loader (for open_clip: ``weights_dir``, ``quick_gelu``,
            ``text_batch_size``; see :func:`vlmcal.backbones.openclip.load_openclip`).

    Returns:
        The frozen backbone.

    Raises:
        ValueError: for a name no family accepts (the message lists what is accepted).
    """
    if not isinstance(name, str):
        raise ValueError(f"Expected a backbone name (a string: {_ACCEPTED}), but got {name!r}")
    if name.startswith("openclip:"):
        from vlmcal.backbones.openclip import load_openclip

        return load_openclip(name, device=device, cache_dir=cache_dir, **kwargs)
    if name == "default" or name.startswith("default-"):
        from vlmcal.backbones.standins import load_default

        return load_default(name, device=device, cache_dir=cache_dir, **kwargs)
    raise ValueError(f"Unknown backbone {name!r}. Accepted: {_ACCEPTED}; see vlmcal.backbones.list_backbones()")


def list_backbones(include_downloadable: bool = False) -> list[str]:
    """Backbone names that load on this machine (or, optionally, that could be downloaded).

    Args:
        include_downloadable: also list every ``openclip:<arch>:<tag>`` pair open_clip knows,
            whether or not its weights are here.

    Returns:
        The default stand-ins, the random-weight test models, and the open_clip pairs whose
        weights are in the local caches (all pairs with ``include_downloadable``).
    """
    names: list[str] = []
    try:
        from vlmcal.backbones.standins import list_default_variants

        names += list_default_variants()
    except ModuleNotFoundError as err:  # the stand-in family is optional here; other import errors are bugs
        if err.name != "vlmcal.backbones.standins":
            raise
    from vlmcal.backbones.openclip import TEST_CONFIGS, RANDOM_TAG, _find_cached_weights

    names += [f"openclip:{arch}:{RANDOM_TAG}" for arch in TEST_CONFIGS]
    import open_clip

    for arch, tag in open_clip.list_pretrained():
        if include_downloadable or _find_cached_weights(open_clip.get_pretrained_cfg(arch, tag)):
            names.append(f"openclip:{arch}:{tag}")
    return names
