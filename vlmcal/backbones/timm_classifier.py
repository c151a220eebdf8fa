"""ImageNet-trained timm models as supervised baselines: ``timm:<model>[:<checkpoint path | random>]``.

``timm:resnet50.a1_in1k`` takes its weights from the Hugging Face hub cache (timm's ``hf_hub_id``) or the torch hub
cache (its ``url``), never from the network: when neither holds them, loading stops with ``WeightsNotFoundError``.
``timm:<model>:<path>`` reads a checkpoint file; ``timm:<model>:random``: seeded random weights, for tests. Each
image is preprocessed by the model's own evaluation transform (``timm.data.resolve_data_config``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from vlmcal.backbones.base import RANDOM_SEED, RANDOM_TAG, Classifier, WeightsNotFoundError, default_device

__all__ = ["TimmClassifier", "load_timm"]


def _cached_weights(cfg) -> str | None:
    """The local file of a timm pretrained config's weights (hub cache, then torch hub cache), or None."""
    from huggingface_hub import try_to_load_from_cache

    if cfg.hf_hub_id:
        for filename in ("model.safetensors", "pytorch_model.bin"):
            found = try_to_load_from_cache(cfg.hf_hub_id, filename)
            if isinstance(found, str) and os.path.isfile(found):
                return found
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(cfg.url or "")
    return str(path) if cfg.url and path.is_file() else None


class TimmClassifier(Classifier):
    """A timm ImageNet classifier: ``logits`` maps [B, 3, H, W] preprocessed images to [B, 1000] logits; its
    ``class_names`` are timm's descriptions of ImageNet's classes; its training data shows none of the shifts."""

    covered_shifts: tuple[str, ...] = ()

    def __init__(self, model: torch.nn.Module, name: str, device: torch.device, identity: dict):
        import timm.data

        self.name, self.device, self.cache_identity = name, device, identity
        self.model = model.to(device).eval().requires_grad_(False)
        self.preprocess = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
        self.class_names = list(timm.data.ImageNetInfo().label_descriptions())

    def __repr__(self) -> str:
        return f"TimmClassifier(name={self.name!r})"

    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images.to(self.device)).float()  # [B, 3, H, W] -> [B, 1000]


def load_timm(name: str, device: str | torch.device | None = None, cache_dir: str | os.PathLike | None = None) -> TimmClassifier:
    """Load ``timm:<model>[:<checkpoint path | random>]`` (``cache_dir``: vlmcal's, unused; every loader has one signature).

    Raises:
        ValueError: a malformed name, a model timm does not know, or one that is not a 1000-class ImageNet classifier.
        WeightsNotFoundError: the weights are in neither cache, or the checkpoint file does not exist.
    """
    import timm

    _, model_name, weights = (name.split(":", 2) + [""])[:3]
    if not name.startswith("timm:") or not model_name:
        raise ValueError(f"Expected a timm model as `timm:<model>[:<checkpoint path | random>]` (e.g. "
                         f"`timm:resnet50.a1_in1k`), but got {name!r}")
    if not timm.is_model(model_name):
        raise ValueError(f"{name}: timm knows no model {model_name!r}; see timm.list_models(pretrained=True)")
    identity: dict = {"name": name}
    if weights == RANDOM_TAG:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_SEED)
            model = timm.create_model(model_name, pretrained=False)
    else:
        cfg = timm.models.get_pretrained_cfg(model_name)
        path = weights or (_cached_weights(cfg) if cfg else None)
        if not path or not os.path.isfile(path):
            where = f"the file {path} does not exist" if weights else "its weights are in neither the Hugging Face hub cache nor the torch hub cache"
            raise WeightsNotFoundError(f"{name}: {where}. Download them on a machine with internet (timm.create_model"
                                       f"({model_name!r}, pretrained=True)) and copy the cache, or name a checkpoint file: "
                                       f"timm:{model_name}:/path/to/weights")
        model = timm.create_model(model_name, pretrained=False, checkpoint_path=path)
        stat = os.stat(path)
        identity.update(file_size=stat.st_size, file_mtime_ns=stat.st_mtime_ns)
    if getattr(model, "num_classes", None) != 1000:
        raise ValueError(f"{name}: expected an ImageNet-1k classifier (1000 classes), but the model has {model.num_classes}")
    return TimmClassifier(model, name, default_device(device), identity)
