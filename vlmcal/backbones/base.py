"""The one interface every backbone implements and every method (zero-shot, TPT, CoOp, DOR, ...) uses.

A backbone is a frozen dual encoder with L2-normalised features of width D; its prompt-learner
hook puts learnable context vectors in the text tower's token-embedding space, CoOp style:
``[prefix] [ctx_1 .. ctx_M] [class-name tokens] [suffix]``.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Callable, Sequence

import torch

__all__ = ["Backbone", "Classifier", "default_device", "WeightsNotFoundError", "RANDOM_TAG", "RANDOM_SEED"]

RANDOM_TAG = "random"  # the weights of a name ending in it (``openclip:<arch>:random``, ``timm:<model>:random``)
RANDOM_SEED = 0  # the seed behind `random` weights: the same name always means the same model


class WeightsNotFoundError(FileNotFoundError):
    """The weights a backbone name asks for are not on this machine and cannot be downloaded now."""


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when present (the process's own GPU under torchrun), else CPU.

    Raises:
        ValueError: ``device`` is not a device name, or names CUDA on a machine without it.
    """
    if device is None or device == "":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        # Under torchrun each process on a machine takes its own GPU (LOCAL_RANK; vlmcal.pipeline.sharding).
        return torch.device("cuda", int(os.environ["LOCAL_RANK"])) if "LOCAL_RANK" in os.environ else torch.device("cuda")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"Expected `device` to be 'cpu', 'cuda', 'cuda:<index>' or '' (automatic), but got {device!r}") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"`device` is {device!r}, but this machine has no CUDA device; use 'cpu', or '' to pick automatically")
    return chosen


class Backbone(ABC):
    """A frozen image-text dual encoder.

    Attributes:
        name: the name it was loaded by (``"default"``, ``"openclip:ViT-B-16:openai"``).
        logit_scale: multiplier of cosine similarities (a float; CLIP's is 100).
        embed_dim: D, the width of the shared feature space.
        token_embedding_dim: W, the width of the text tower's token embeddings (for context vectors).
        preprocess: maps one PIL image to the image tower's input tensor.
        covered_shifts: the shifts (``vlmcal.data.shifts`` names) its pretraining data shows; None if unknown.
    """

    name: str
    logit_scale: float
    covered_shifts: tuple[str, ...] | None = None
    embed_dim: int
    token_embedding_dim: int
    device: torch.device
    preprocess: Callable

    @abstractmethod
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """[B, ...] preprocessed images -> [B, D] L2-normalised image features."""

    @abstractmethod
    def encode_text(self, prompts: Sequence[str]) -> torch.Tensor:
        """P prompts -> [P, D] L2-normalised text features."""

    @abstractmethod
    def embed_phrase(self, phrase: str) -> torch.Tensor:
        """The token embeddings of ``phrase`` (no special tokens): [M, W]. Initialises context vectors."""

    @abstractmethod
    def encode_text_with_context(self, context: torch.Tensor, class_names: Sequence[str]) -> torch.Tensor:
        """Text features with learnable context before each class name.

        ``context``: [M, W] shared, or [C, M, W] class-specific, for the C ``class_names``. Returns [C, D]
        L2-normalised text features, differentiable with respect to ``context``; the context
        ``embed_phrase("a photo of a")`` gives ``encode_text`` of "a photo of a <class>." (to float error).
        """


class Classifier(ABC):
    """Anything that maps preprocessed images to class logits: a zero-shot VLM or the supervised baseline."""

    name: str
    class_names: list[str]

    @abstractmethod
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """[B, ...] preprocessed images -> [B, C] logits."""
