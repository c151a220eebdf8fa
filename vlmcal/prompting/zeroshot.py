"""Zero-shot classification: class text features from prompt templates, and logits from them.

As CLIP (Radford et al. 2021) and open_clip's ``build_zero_shot_classifier``: fill each template with
each class name, L2-normalise the text and image features, logits = logit_scale * cosine similarity.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence, Union

import torch
import torch.nn.functional as F

from vlmcal.backbones.base import Backbone, Classifier

__all__ = ["Template", "class_text_features", "zero_shot_logits", "ZeroShotClassifier"]

Template = Union[str, Callable[[str], str]]
"""A prompt template: a string with one ``{}`` for the class name, or a function of the class name."""


def _check_class_names(class_names) -> list[str]:
    if (isinstance(class_names, str) or not hasattr(class_names, "__len__") or len(class_names) == 0
            or not all(isinstance(c, str) for c in class_names)):
        raise ValueError(f"Expected `class_names` to be a non-empty list of strings, but got {class_names!r:.200}")
    return list(class_names)


def _check_templates(templates: Template | Sequence[Template]) -> list[Template]:
    templates = [templates] if isinstance(templates, str) or callable(templates) else list(templates)
    if not templates:
        raise ValueError("Expected at least one template (e.g. 'a photo of a {}.'), but got none")
    for t in templates:
        if not callable(t) and (not isinstance(t, str) or t.count("{}") != 1):
            raise ValueError(f"Expected each template to be a string with exactly one '{{}}' for the class name "
                             f"(or a function of the class name), but got {t!r}")
    return templates


def class_text_features(backbone: Backbone, class_names: Sequence[str],
                        templates: Template | Sequence[Template] = "a photo of a {}.") -> torch.Tensor:
    """[C, D] class text features (float32, on the backbone's device) from one template or an ensemble of T.

    The T features of a class are L2-normalised, averaged and normalised again. ``templates``: a template
    (``"a photo of a {}."``) or a list of T; a template may be a function of the class name.
    """
    class_names = _check_class_names(class_names)
    templates = _check_templates(templates)
    prompts = [t(c) if callable(t) else t.format(c) for t in templates for c in class_names]  # T*C, template-major
    # One call, so the backbone batches all T*C prompts (80 templates x 10 classes: 4 passes, not 80).
    feats = backbone.encode_text(prompts).float().view(len(templates), len(class_names), -1)  # [T*C, D] -> [T, C, D]
    return F.normalize(F.normalize(feats, dim=-1).mean(dim=0), dim=-1)  # [T, C, D] -> [C, D]


def zero_shot_logits(image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: float) -> torch.Tensor:
    """[N, C] logits = logit_scale * image_features @ text_features^T, the features used as given.

    ``image_features``: [N, D]; ``text_features``: [C, D]; ``logit_scale``: positive (CLIP's is 100).
    """
    if image_features.ndim != 2 or text_features.ndim != 2 or image_features.shape[1] != text_features.shape[1]:
        raise ValueError(f"Expected `image_features` [N, D] and `text_features` [C, D] with the same D, but got "
                         f"{tuple(image_features.shape)} and {tuple(text_features.shape)}")
    try:
        scale = float(logit_scale)
    except (TypeError, ValueError):
        scale = math.nan
    if not 0 < scale < math.inf:
        raise ValueError(f"Expected `logit_scale` to be a positive finite number, but got {logit_scale!r}")
    text_features = text_features.to(image_features.device, image_features.dtype)
    return scale * image_features @ text_features.T  # [N,D] @ [D,C] -> [N,C]


class ZeroShotClassifier(Classifier):
    """A backbone plus class text features: a :class:`~vlmcal.backbones.base.Classifier`.

    ``templates``: one template or a list (a prompt ensemble); see :func:`class_text_features`.
    """

    def __init__(self, backbone: Backbone, class_names: Sequence[str],
                 templates: Template | Sequence[Template] = "a photo of a {}."):
        self.backbone = backbone
        self.class_names = _check_class_names(class_names)
        self.templates = _check_templates(templates)
        self._text_features: torch.Tensor | None = None
        self.name = f"zero-shot {backbone.name}"

    @property
    def preprocess(self):
        """The backbone's image preprocessing."""
        return self.backbone.preprocess

    @property
    def text_features(self) -> torch.Tensor:
        """[C, D] the class text features, encoded on first use (a cached result never needs them)."""
        if self._text_features is None:
            self._text_features = class_text_features(self.backbone, self.class_names, self.templates)  # [C, D]
        return self._text_features

    @property
    def cache_identity(self) -> dict[str, Any]:
        """What determines this classifier's logits (for feature-cache keys)."""
        return {"backbone": getattr(self.backbone, "cache_identity", self.backbone.name), "classes": self.class_names,
                "templates": [t if isinstance(t, str) else [t(c) for c in self.class_names] for t in self.templates]}

    def logits_from_features(self, image_features: torch.Tensor) -> torch.Tensor:
        """[N, D] image features -> [N, C] logits (for features extracted once and cached)."""
        return zero_shot_logits(image_features, self.text_features, self.backbone.logit_scale)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """[B, ...] preprocessed images -> [B, C] logits."""
        return self.logits_from_features(self.backbone.encode_images(images))  # [B, D] -> [B, C]
