"""Test-time prompt tuning: TPT and C-TPT, batched, with a one-image-at-a-time reference.

TPT (Shu et al., NeurIPS 2022) tunes a prompt's context on each unlabelled test image: the image and 63 augmented views
are classified, the ``int(64 * 0.1) = 6`` lowest-entropy views kept, and the loss is the entropy of their mean
probability; the image is then classified on its original view and the prompt reset. C-TPT (Yoon et al., ICLR 2024)
subtracts ``lambda * ATFD`` of the class text features from that loss. :func:`tpt_reference` follows the reference code
(azshue/TPT); :func:`tpt_batched` sums the per-image losses of B contexts (AdamW is elementwise, so each update is the
one it would make alone). Views are random resized crops (scale 0.08-1) with flips, seeded per ``(seed, index)``. On
CUDA the text tower runs under float16 autocast (untested here).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from vlmcal.backbones.base import Backbone
from vlmcal.prompting.dispersion import text_feature_dispersion
from vlmcal.prompting.prompt_learner import PromptLearner, PromptSettings

__all__ = ["PHASES", "TPTSettings", "TPTResult", "augmented_views", "confident_views", "marginal_entropy",
           "tpt_batched", "tpt_reference", "initial_contexts", "ensemble_features", "input_normalization"]


@dataclass(frozen=True)
class TPTSettings:
    """TPT's settings, each defaulting to the paper's (C-TPT's ``ctpt_lambda`` to 0: plain TPT).

    Attributes:
        n_views: views per image, the original included (64).
        selection: the fraction of views kept, by lowest entropy (0.1: ``int(64 * 0.1) = 6``).
        steps, lr: AdamW's steps per image (1) and learning rate (5e-3).
        n_ctx, init_phrase: the learnable context: 4 tokens from "a photo of a"; a tuple of
            phrases (each of ``n_ctx`` tokens) starts an ensemble, one context per phrase.
        augmix: put torchvision's AugMix (severity 1) on each view, as the reference does for its fine-grained sets.
        ctpt_lambda: C-TPT's weight in ``L_TPT - lambda * ATFD`` (paper: 50 for fine-grained sets,
            20 for natural shifts); 0 gives TPT.
        seed: fixes the augmented views.
    """

    n_views: int = 64
    selection: float = 0.1
    steps: int = 1
    lr: float = 5e-3
    n_ctx: int = 4
    init_phrase: str | tuple[str, ...] = "a photo of a"
    augmix: bool = False
    ctpt_lambda: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        phrases = (self.init_phrase,) if isinstance(self.init_phrase, str) else tuple(self.init_phrase)
        if not phrases or not all(isinstance(p, str) and p.strip() for p in phrases):
            raise ValueError(f"Expected `init_phrase` to be a phrase or a non-empty list of phrases, but got {self.init_phrase!r}")
        object.__setattr__(self, "init_phrase", phrases[0] if len(phrases) == 1 else phrases)
        if not isinstance(self.augmix, bool):
            raise ValueError(f"Expected `augmix` to be True or False, but got {self.augmix!r}")
        for name in ("n_views", "steps", "n_ctx"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Expected `{name}` to be an integer >= 1, but got {value!r}")
        if not (0.0 < self.selection <= 1.0) or int(self.n_views * self.selection) < 1:
            raise ValueError(f"Expected `selection` in (0, 1] keeping at least one of the {self.n_views} views, "
                             f"but got {self.selection!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"Expected `lr` > 0, but got {self.lr!r}")
        if not (math.isfinite(self.ctpt_lambda) and self.ctpt_lambda >= 0):
            raise ValueError(f"Expected `ctpt_lambda` >= 0 (0: TPT), but got {self.ctpt_lambda!r}")

    @property
    def phrases(self) -> tuple[str, ...]:
        """The initial phrase(s): one for a hard prompt, several for an ensemble."""
        return (self.init_phrase,) if isinstance(self.init_phrase, str) else self.init_phrase

    @property
    def n_kept(self) -> int:
        """How many views the loss keeps: ``int(n_views * selection)``."""
        return int(self.n_views * self.selection)


@dataclass(frozen=True)
class TPTResult:
    """What test-time tuning gives for B images.

    Attributes:
        logits: [B, C] logits of each image's original view with its tuned prompt.
        initial_logits: [B, C] the same with the initial prompt (zero-shot with ``init_phrase``).
        dispersion: [B] ATFD of each image's tuned class text features.
    """

    logits: torch.Tensor
    initial_logits: torch.Tensor
    dispersion: torch.Tensor


def input_normalization(backbone: Backbone) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The per-channel (mean, std) that the backbone's preprocessing ends with, or None (inputs in [0, 1])."""
    from torchvision import transforms as tv1
    from torchvision.transforms import v2

    for step in getattr(getattr(backbone, "preprocess", None), "transforms", ()):
        if isinstance(step, (tv1.Normalize, v2.Normalize)):
            return torch.as_tensor(step.mean, dtype=torch.float32), torch.as_tensor(step.std, dtype=torch.float32)
    return None


def augmented_views(images: torch.Tensor, n_views: int, seed: int = 0, indices: Sequence[int] | None = None,
                    augmix: bool = False,
                    normalization: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Each image and ``n_views - 1`` random resized crops with flips of it (AugMix on top if asked).

    Args:
        images: [B, C, H, W] backbone input tensors (already preprocessed).
        seed: with each image's index, fixes its views.
        indices: [B] the images' indices in their data set (default ``0..B-1``).
        augmix: mix each crop with torchvision's ``AugMix`` (severity 1, no colour operations).
        normalization: the inputs' (mean, std) (:func:`input_normalization`), undone around AugMix.
    Returns:
        [B, V, C, H, W], V = ``n_views``; ``[:, 0]`` is ``images``.
    """
    from torchvision.transforms import RandomResizedCrop
    from torchvision.transforms.v2 import AugMix
    from torchvision.transforms.v2.functional import resized_crop

    if images.ndim != 4:
        raise ValueError(f"Expected `images` of shape [B, C, H, W], but got {tuple(images.shape)}")
    b, c, h, w = images.shape
    indices = list(range(b)) if indices is None else [int(i) for i in indices]
    mix = AugMix(severity=1, all_ops=False) if augmix else None
    if normalization is not None:
        mean, std = (t.to(images.device, images.dtype).view(c, 1, 1) for t in normalization)  # [C, 1, 1]
    out = images.unsqueeze(1).repeat(1, n_views, 1, 1, 1)  # [B, V, C, H, W]
    for k, (image, index) in enumerate(zip(images, indices)):
        with torch.random.fork_rng(devices=[]):  # torchvision draws from the global generator; seed it per image, restore after
            digest = hashlib.sha256(f"tpt/{seed}/{index}".encode()).digest()
            torch.manual_seed(int.from_bytes(digest[:8], "little") % 2**63)
            for v in range(1, n_views):
                top, left, ch, cw = RandomResizedCrop.get_params(image, scale=[0.08, 1.0], ratio=[3 / 4, 4 / 3])
                view = resized_crop(image, top, left, ch, cw, [h, w], antialias=True)  # [C, H, W]
                view = view.flip(-1) if torch.rand(()) < 0.5 else view
                if mix is not None:
                    raw = view if normalization is None else view * std + mean  # back to [0, 1]
                    mixed = mix(raw.clamp(0, 1))
                    view = mixed if normalization is None else (mixed - mean) / std
                out[k, v] = view
    return out


def marginal_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the mean probability over views: [..., V, C] logits -> [...] (TPT's loss)."""
    log_probs = logits.log_softmax(dim=-1)  # [..., V, C]
    log_mean = torch.logsumexp(log_probs, dim=-2) - math.log(logits.shape[-2])  # [..., C] log of the mean probability
    return -(log_mean.exp() * log_mean).sum(dim=-1)


def confident_views(logits: torch.Tensor, n_kept: int) -> torch.Tensor:
    """The ``n_kept`` views of lowest entropy: [..., V, C] logits -> [..., n_kept] view indices."""
    log_probs = logits.log_softmax(dim=-1)
    entropy = -(log_probs.exp() * log_probs).sum(dim=-1)  # [..., V]
    return entropy.topk(n_kept, dim=-1, largest=False).indices


@contextlib.contextmanager
def _phase(timings: dict[str, float] | None, name: str):
    """Add the wall-clock seconds of the block to ``timings[name]`` (nothing when ``timings`` is None)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - start


PHASES = ("augmentation", "image encoding", "text forward", "text backward", "optimiser step")


def _autocast(device: torch.device):
    return torch.autocast(device_type="cuda", dtype=torch.float16, enabled=device.type == "cuda")


def _check(backbone: Backbone, images: torch.Tensor, class_names: Sequence[str]) -> None:
    if not isinstance(backbone, Backbone):
        raise ValueError(f"Expected a vlmcal Backbone (vlmcal.backbones.load_backbone), but got {backbone!r:.100}")
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or len(images) == 0:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"Expected `images` as a non-empty [B, C, H, W] tensor of backbone inputs, but got {got}")
    if not torch.isfinite(images).all():
        raise ValueError("Expected finite `images`, but got NaN or inf values")
    if isinstance(class_names, str) or len(class_names) < 2:
        raise ValueError(f"Expected at least two class names, but got {class_names!r:.100}")


def initial_contexts(backbone: Backbone, settings: TPTSettings) -> torch.Tensor:
    """[E, M, W] the token embeddings of the E initial phrases (each must be ``n_ctx`` tokens)."""
    contexts = []
    for phrase in settings.phrases:
        embedded = backbone.embed_phrase(phrase).detach().float()  # [M, W]
        if embedded.shape[0] != settings.n_ctx:
            raise ValueError(f"`init_phrase` {phrase!r} has {embedded.shape[0]} tokens but `n_ctx` is "
                             f"{settings.n_ctx}; use phrases of {settings.n_ctx} tokens or set "
                             f"n_ctx={embedded.shape[0]}")
        contexts.append(embedded)
    return torch.stack(contexts)


def ensemble_features(text_features: torch.Tensor) -> torch.Tensor:
    """[..., E, K, D] unit class features of E prompts -> [..., K, D] their ensemble (mean, normalised again)."""
    return text_features.select(-3, 0) if text_features.shape[-3] == 1 else F.normalize(text_features.mean(-3), dim=-1)


def tpt_batched(backbone: Backbone, images: torch.Tensor, class_names: Sequence[str],
                settings: TPTSettings = TPTSettings(), indices: Sequence[int] | None = None,
                timings: dict[str, float] | None = None) -> TPTResult:
    """TPT (or C-TPT, with ``settings.ctpt_lambda > 0``) on B images at once.

    Args:
        backbone: any backbone with the context hook.
        images: [B, C, H, W] backbone inputs.
        indices: [B] the images' indices in their data set (fixes their views; default ``0..B-1``).
        timings: if given, seconds spent in each of ``PHASES`` are added to it.
    """
    _check(backbone, images, class_names)
    device, names, b, k = backbone.device, list(class_names), len(images), len(class_names)
    with _phase(timings, "augmentation"):
        views = augmented_views(images, settings.n_views, settings.seed, indices, settings.augmix,
                                input_normalization(backbone))  # [B, V, C, H, W]
    with torch.no_grad(), _phase(timings, "image encoding"):
        feats = backbone.encode_images(views.flatten(0, 1).to(device)).float().view(b, settings.n_views, -1)  # [B, V, D]
    init = initial_contexts(backbone, settings)  # [E, M, W]
    e = len(init)
    ctx = torch.nn.Parameter(init.unsqueeze(0).repeat(b, 1, 1, 1).to(device))  # [B, E, M, W]: E contexts per image
    opt = torch.optim.AdamW([ctx], lr=settings.lr)

    def text_features() -> torch.Tensor:
        with _autocast(device):
            per_context = ctx.flatten(0, 1).repeat_interleave(k, dim=0)  # [B*E*K, M, W]
            txt = backbone.encode_text_with_context(per_context, names * (b * e))  # -> [B*E*K, D]
        return ensemble_features(txt.float().view(b, e, k, -1))  # [B, E, K, D] -> [B, K, D]

    def logits_of(txt: torch.Tensor, image_feats: torch.Tensor) -> torch.Tensor:
        return backbone.logit_scale * torch.einsum("bvd,bkd->bvk", image_feats, txt)  # [B,V,D] x [B,K,D] -> [B,V,K]

    kept = None
    for _ in range(settings.steps):
        with _phase(timings, "text forward"):
            txt = text_features()  # [B, K, D]
            logits = logits_of(txt, feats)  # [B, V, K]
            if kept is None:  # chosen at the first step and kept, as the reference does
                kept = confident_views(logits.detach(), settings.n_kept)  # [B, n_kept]
                initial_logits = logits[:, 0].detach()  # [B, K]: the first step's prompt is the initial one
            chosen = logits.gather(1, kept[..., None].expand(-1, -1, k))  # [B, n_kept, K]
            loss = marginal_entropy(chosen)  # [B]
            if settings.ctpt_lambda:
                loss = loss - settings.ctpt_lambda * torch.stack([text_feature_dispersion(t) for t in txt])  # [B]
        with _phase(timings, "text backward"):
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()  # each image's loss reaches only its own context
        with _phase(timings, "optimiser step"):
            opt.step()
    with torch.no_grad(), _phase(timings, "text forward"):
        txt = text_features()
        logits = logits_of(txt, feats[:, :1])[:, 0]  # [B, K] on the original view
        dispersion = torch.stack([text_feature_dispersion(t) for t in txt])
    return TPTResult(logits=logits.cpu(), initial_logits=initial_logits.cpu(), dispersion=dispersion.cpu())


def tpt_reference(backbone: Backbone, images: torch.Tensor, class_names: Sequence[str],
                  settings: TPTSettings = TPTSettings(), indices: Sequence[int] | None = None,
                  timings: dict[str, float] | None = None) -> TPTResult:
    """The same as :func:`tpt_batched`, one image at a time, as the reference code runs it.

    Each image gets a new :class:`~vlmcal.prompting.prompt_learner.PromptLearner` per initial phrase
    and a new AdamW; the ground truth the batched engine is tested against.
    """
    _check(backbone, images, class_names)
    device, names = backbone.device, list(class_names)
    indices = list(range(len(images))) if indices is None else [int(i) for i in indices]
    prompts = [PromptSettings(n_ctx=settings.n_ctx, init_phrase=phrase) for phrase in settings.phrases]
    normalization = input_normalization(backbone)
    logits_out, initial_out, dispersion_out = [], [], []

    def class_features(learners: list[PromptLearner]) -> torch.Tensor:
        with _autocast(device):
            per_prompt = torch.stack([learner().float() for learner in learners])  # [E, K, D]
        return ensemble_features(per_prompt)  # [K, D]

    for image, index in zip(images, indices):
        with _phase(timings, "augmentation"):
            views = augmented_views(image[None], settings.n_views, settings.seed, [index], settings.augmix, normalization)[0]  # [V, C, H, W]
        with torch.no_grad(), _phase(timings, "image encoding"):
            feats = backbone.encode_images(views.to(device)).float()  # [V, D]
        learners = [PromptLearner(backbone, names, prompt) for prompt in prompts]  # one per initial phrase
        opt = torch.optim.AdamW([learner.ctx for learner in learners], lr=settings.lr)
        kept = None
        for _ in range(settings.steps):
            with _phase(timings, "text forward"):
                txt = class_features(learners)  # [K, D]
                logits = backbone.logit_scale * feats @ txt.T  # [V, D] @ [D, K] -> [V, K]
                if kept is None:
                    kept = confident_views(logits.detach(), settings.n_kept)  # [n_kept]
                    initial_out.append(logits[0].detach())  # [K]: the original view with the initial prompt
                loss = marginal_entropy(logits[kept])
                if settings.ctpt_lambda:
                    loss = loss - settings.ctpt_lambda * text_feature_dispersion(txt)
            with _phase(timings, "text backward"):
                opt.zero_grad(set_to_none=True)
                loss.backward()
            with _phase(timings, "optimiser step"):
                opt.step()
        with torch.no_grad(), _phase(timings, "text forward"):
            txt = class_features(learners)
            logits_out.append(backbone.logit_scale * feats[0] @ txt.T)  # [K]
            dispersion_out.append(text_feature_dispersion(txt))
    return TPTResult(logits=torch.stack(logits_out).cpu(), initial_logits=torch.stack(initial_out).cpu(),
                     dispersion=torch.stack(dispersion_out).cpu())
