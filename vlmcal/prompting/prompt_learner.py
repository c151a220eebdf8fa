"""Learnable prompt context, CoOp style: what TPT, C-TPT, O-TPT, CoOp, KgCoOp and DOR tune.

A prompt is ``[SOT] [ctx_1 ... ctx_M] [class] [full stop] [EOT]``, as in CoOp's ``PromptLearner`` (Zhou et al., IJCV
2022; github.com/KaiyangZhou/CoOp).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from vlmcal.backbones.base import Backbone

__all__ = ["PromptSettings", "PromptLearner"]


@dataclass(frozen=True)
class PromptSettings:
    """How the learnable context is shaped and initialised.

    Attributes:
        n_ctx: M, the number of context tokens; with ``init_phrase``, the phrase's token count.
        init_phrase: initialise from this phrase's token embeddings; None for random N(0, init_std^2).
        class_specific: one context per class ([C, M, W], CoOp's "CSC") instead of one shared ([M, W]).
        init_std, seed: the standard deviation and seed of the random initialisation.
    """

    n_ctx: int = 4  # TPT/C-TPT/KgCoOp: the 4 tokens of "a photo of a"
    init_phrase: str | None = "a photo of a"  # the hard prompt every paper starts from
    class_specific: bool = False  # CoOp's default: one context shared by all classes
    init_std: float = 0.02  # CoOp's random initialisation
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.n_ctx, int) or isinstance(self.n_ctx, bool) or self.n_ctx < 1:
            raise ValueError(f"Expected `n_ctx` to be an integer >= 1, but got {self.n_ctx!r}")
        if self.init_phrase is not None and (not isinstance(self.init_phrase, str) or not self.init_phrase.strip()):
            raise ValueError(f"Expected `init_phrase` to be a non-empty string or None, but got {self.init_phrase!r}")
        if not self.init_std > 0:
            raise ValueError(f"Expected `init_std` to be > 0, but got {self.init_std!r}")


class PromptLearner(nn.Module):
    """Learnable context vectors for a frozen backbone; ``forward()`` gives the class text features.

    Args:
        backbone: any :class:`~vlmcal.backbones.base.Backbone` (its text tower is not touched).
    Attributes:
        ctx: the only parameter: [M, W] shared, or [C, M, W] class-specific.
    Example:
        >>> learner = PromptLearner(backbone, ["cat", "dog"], PromptSettings())
        >>> text = learner()                              # [2, D], differentiable w.r.t. learner.ctx
        >>> logits = backbone.logit_scale * img @ text.T  # [N, D] @ [D, 2] -> [N, 2]
    """

    def __init__(self, backbone: Backbone, class_names: Sequence[str], settings: PromptSettings = PromptSettings()):
        super().__init__()
        if isinstance(class_names, str) or len(class_names) == 0:
            raise ValueError(f"Expected `class_names` to be a non-empty list of strings, but got {class_names!r:.200}")
        # Not an nn.Module attribute: the backbone's weights are not this module's parameters.
        object.__setattr__(self, "backbone", backbone)
        self.class_names, self.settings = list(class_names), settings
        self.ctx = nn.Parameter(self.initial_context())

    def initial_context(self) -> torch.Tensor:
        """The initial context: [M, W] or [C, M, W] (a fresh tensor each call; used by :meth:`reset`)."""
        s, bb = self.settings, self.backbone
        if s.init_phrase is None:
            shape = (len(self.class_names), s.n_ctx, bb.token_embedding_dim) if s.class_specific else (
                s.n_ctx, bb.token_embedding_dim)
            return (torch.randn(shape, generator=torch.Generator().manual_seed(s.seed)) * s.init_std).to(bb.device)
        base = bb.embed_phrase(s.init_phrase).detach().float()  # [M, W]
        if base.shape[0] != s.n_ctx:
            raise ValueError(f"`init_phrase` {s.init_phrase!r} has {base.shape[0]} tokens but `n_ctx` is "
                             f"{s.n_ctx}; set n_ctx={base.shape[0]} or init_phrase=None for random context")
        if s.class_specific:
            base = base.unsqueeze(0).repeat(len(self.class_names), 1, 1)  # [M, W] -> [C, M, W]
        return base.clone().to(bb.device)

    @torch.no_grad()
    def reset(self) -> None:
        """Put the context back to its initial value (TPT resets it for every test image)."""
        self.ctx.copy_(self.initial_context())

    def forward(self, class_names: Sequence[str] | None = None) -> torch.Tensor:
        """[C, D] L2-normalised class text features, differentiable with respect to ``ctx``.

        ``class_names``: other names to put after a shared context (new classes, outlier labels); None for the
        learner's classes.
        """
        if class_names is None:
            return self.backbone.encode_text_with_context(self.ctx, self.class_names)  # [C, D]
        if self.settings.class_specific:
            raise ValueError("A class-specific context (class_specific=True) has no context for other class names; "
                             "use a shared context to encode new classes or outlier labels")
        if isinstance(class_names, str) or len(class_names) == 0:
            raise ValueError(f"Expected `class_names` to be a non-empty list of strings, but got {class_names!r:.200}")
        return self.backbone.encode_text_with_context(self.ctx, list(class_names))  # [C', D]
