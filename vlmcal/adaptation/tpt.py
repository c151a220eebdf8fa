"""Test-time prompt tuning: TPT and C-TPT, batched, with a one-image-at-a-time reference.

TPT (Shu et al., NeurIPS 2022) tunes a prompt's context on each unlabelled test image: the image and 63 augmented views
are classified, the ``int(64 * 0.1) = 6`` lowest-entropy views kept, and the loss is the entropy of their mean
probability; the image is then classified on its original view and the prompt reset. C-TPT (Yoon et al., ICLR 2024)
subtracts ``lambda * ATFD`` of the class text features from that loss; O-TPT (Sharifdeen et al., CVPR 2025) adds
``lambda`` times their orthogonality penalty. ZERO (Farina et al., NeurIPS 2024) tunes nothing: the confident views vote
at zero temperature (:func:`zero_batched`). :func:`tpt_reference` follows the reference code (azshue/TPT), one image at
a time; :func:`tpt_batched` tunes B contexts (AdamW is elementwise, so each update is the one it would make alone). Its
first step is shared: every context starts from the same phrase, so one text forward serves all B images and each
image's gradient is a vector-Jacobian product through the same activations (``is_grads_batched``). Views are random
resized crops (scale 0.08-1) with flips, seeded per ``(seed, index)``, each image's made at once. On CUDA the text tower runs under float16
autocast (untested here).
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
from vlmcal.prompting.dispersion import orthogonality_penalty, text_feature_dispersion
from vlmcal.prompting.prompt_learner import PromptLearner, PromptSettings

__all__ = ["PHASES", "TPTSettings", "TPTResult", "augmented_views", "crop_boxes", "resized_crops", "confident_views", "marginal_entropy",
           "tpt_batched", "tpt_reference", "initial_contexts", "ensemble_features", "input_normalization",
           "ZeroResult", "zero_batched", "zero_reference"]


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
        otpt_lambda: O-TPT's weight in ``L_TPT + lambda * penalty`` (:func:`~vlmcal.prompting.dispersion.orthogonality_penalty`;
            its scripts: 18 for fine-grained sets, test_tpt_otpt_fg.sh, 2 for natural shifts, test_tpt_otpt_ds.sh).
        seed: fixes the augmented views.
        text_chunk: at most this many prompts per text-tower pass without gradients (0: all at once), so that
            B images of 1000 classes fit a fixed memory budget.
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
    otpt_lambda: float = 0.0
    text_chunk: int = 0

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
        for name in ("ctpt_lambda", "otpt_lambda"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"Expected `{name}` >= 0 (0: TPT), but got {value!r}")
        if isinstance(self.text_chunk, bool) or not isinstance(self.text_chunk, int) or self.text_chunk < 0:
            raise ValueError(f"Expected `text_chunk` to be an integer >= 0 (0: no chunks), but got {self.text_chunk!r}")

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


def crop_boxes(generator: torch.Generator, n: int, height: int, width: int) -> tuple[torch.Tensor, ...]:
    """``n`` random resized crops drawn at once, as torchvision's ``RandomResizedCrop`` draws one (area 0.08-1 of the
    image, aspect ratio 3/4-4/3 log-uniform, the first of 10 tries that fits, at a uniform position; else the central
    crop of the nearest ratio), and whether each is flipped: ``(top, left, height, width, flipped)``, each [n]."""
    scale = torch.empty(n, 10, dtype=torch.float64).uniform_(0.08, 1.0, generator=generator)  # [n, tries]
    ratio = torch.empty(n, 10, dtype=torch.float64).uniform_(math.log(3 / 4), math.log(4 / 3), generator=generator).exp()
    w, h = (height * width * scale * ratio).sqrt().round(), (height * width * scale / ratio).sqrt().round()  # [n, tries]
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.double().argmax(dim=1, keepdim=True)  # [n, 1] the first try that fits
    fallback = (width, round(width / (3 / 4))) if width / height < 3 / 4 else (round(height * 4 / 3), height) \
        if width / height > 4 / 3 else (width, height)  # (w, h) of the central crop
    drawn = fits.any(dim=1)  # [n]
    w = torch.where(drawn, w.gather(1, first)[:, 0], float(fallback[0]))  # [n]
    h = torch.where(drawn, h.gather(1, first)[:, 0], float(fallback[1]))
    top = torch.where(drawn, (torch.rand(n, generator=generator, dtype=torch.float64) * (height - h + 1)).floor(), (height - h) // 2)
    left = torch.where(drawn, (torch.rand(n, generator=generator, dtype=torch.float64) * (width - w + 1)).floor(), (width - w) // 2)
    flipped = torch.rand(n, generator=generator) < 0.5
    return top.long(), left.long(), h.long(), w.long(), flipped


def _axis(start: torch.Tensor, size: torch.Tensor, out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear resampling of the spans ``[start, start + size)`` of an axis at ``out`` points (half-pixel centres,
    edges clamped, as ``F.interpolate(mode="bilinear")``): ``(low [n, out], high [n, out], weight of high [n, out])``."""
    last = (start + size - 1)[:, None].double()  # [n, 1]
    position = (start[:, None] + ((torch.arange(out) + 0.5) * size[:, None] / out - 0.5).clamp(min=0)).double()
    position = torch.minimum(position, last)  # [n, out] in image coordinates
    low = position.floor()
    return low.long(), torch.minimum(low + 1, last).long(), (position - low).float()


def resized_crops(image: torch.Tensor, top, left, height, width, flipped) -> torch.Tensor:
    """[C, H, W] ``image``'s crops (each [n] box of :func:`crop_boxes`) resized to [H, W] and flipped where asked, all
    at once by bilinear interpolation: [n, C, H, W] (torchvision's ``resized_crop`` of each, to float error)."""
    c, h, w = image.shape
    y0, y1, fy = (t.to(image.device) for t in _axis(top, height, h))  # [n, H] each
    x0, x1, fx = (torch.where(flipped[:, None], t.flip(1), t).to(image.device)  # a flip reverses the columns
                  for t in _axis(left, width, w))  # [n, W] each
    rows = image[:, y0] * (1 - fy)[None, :, :, None] + image[:, y1] * fy[None, :, :, None]  # [C, n, H, W]
    columns = lambda index: rows.gather(3, index[None, :, None, :].expand(c, -1, h, -1))  # noqa: E731  [C, n, H, W]
    return (columns(x0) * (1 - fx)[None, :, None, :] + columns(x1) * fx[None, :, None, :]).transpose(0, 1)


def augmented_views(images: torch.Tensor, n_views: int, seed: int = 0, indices: Sequence[int] | None = None,
                    augmix: bool = False, normalization: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Each image and ``n_views - 1`` random resized crops with flips of it (AugMix on top if asked).

    Each image's crops are drawn at once from a generator seeded by ``(seed, index)`` (:func:`crop_boxes`) and resized
    at once (:func:`resized_crops`), so both engines see the same views.

    Args:
        images: [B, C, H, W] backbone input tensors (already preprocessed).
        seed: with each image's index, fixes its views.
        indices: [B] the images' indices in their data set (default ``0..B-1``).
        augmix: mix each crop with torchvision's ``AugMix`` (severity 1, no colour operations).
        normalization: the inputs' (mean, std) (:func:`input_normalization`), undone around AugMix.
    Returns:
        [B, V, C, H, W], V = ``n_views``; ``[:, 0]`` is ``images``.
    """
    from torchvision.transforms.v2 import AugMix

    if images.ndim != 4:
        raise ValueError(f"Expected `images` of shape [B, C, H, W], but got {tuple(images.shape)}")
    b, c, h, w = images.shape
    indices = list(range(b)) if indices is None else [int(i) for i in indices]
    out = images.unsqueeze(1).repeat(1, n_views, 1, 1, 1)  # [B, V, C, H, W]
    def seed_of(tag: str, index: int) -> int:  # the image's own seed for its crops ("tpt") or its AugMix draws
        return int.from_bytes(hashlib.sha256(f"{tag}/{seed}/{index}".encode()).digest()[:8], "little") % 2**63

    for k, index in enumerate(indices):
        boxes = crop_boxes(torch.Generator().manual_seed(seed_of("tpt", index)), n_views - 1, h, w)
        out[k, 1:] = resized_crops(images[k], *boxes)  # [V-1, C, H, W]
    if augmix:  # torchvision's AugMix draws from the global generator: seed it per image, restore it after
        mix = AugMix(severity=1, all_ops=False)
        mean, std = (t.to(images.device, images.dtype).view(c, 1, 1) for t in normalization) if normalization else (0.0, 1.0)
        for k, index in enumerate(indices):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed_of("augmix", index))
                out[k, 1:] = torch.stack([(mix((view * std + mean).clamp(0, 1)) - mean) / std for view in out[k, 1:]])
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


def _regularised(loss: torch.Tensor, txt: torch.Tensor, settings: TPTSettings) -> torch.Tensor:
    """TPT's loss [...] with C-TPT's and O-TPT's terms of the class features txt [..., K, D]."""
    if settings.ctpt_lambda:
        atfd = torch.stack([text_feature_dispersion(t) for t in txt.reshape(-1, *txt.shape[-2:])]).view(loss.shape)
        loss = loss - settings.ctpt_lambda * atfd
    if settings.otpt_lambda:
        loss = loss + settings.otpt_lambda * orthogonality_penalty(txt)
    return loss


def _encode(backbone: Backbone, contexts: torch.Tensor, names: list[str], chunk: int = 0) -> torch.Tensor:
    """[N, M, W] contexts -> [N, K, D] class text features, ``chunk`` prompts per text-tower pass at most (0: one pass)."""
    n, k = len(contexts), len(names)
    prompts, labels = contexts.repeat_interleave(k, dim=0), names * n  # [N*K, M, W]: one prompt per (context, class)
    step = chunk or n * k
    with _autocast(backbone.device):
        parts = [backbone.encode_text_with_context(prompts[i:i + step], labels[i:i + step]) for i in range(0, n * k, step)]
    return torch.cat(parts).float().view(n, k, -1)  # [N*K, D] -> [N, K, D]


def _views_and_features(backbone, images, settings, indices, timings):
    b = len(images)
    with _phase(timings, "augmentation"):
        views = augmented_views(images, settings.n_views, settings.seed, indices, settings.augmix,
                                input_normalization(backbone))  # [B, V, C, H, W]
    with torch.no_grad(), _phase(timings, "image encoding"):
        return backbone.encode_images(views.flatten(0, 1).to(backbone.device)).float().view(b, settings.n_views, -1)


def tpt_batched(backbone: Backbone, images: torch.Tensor, class_names: Sequence[str],
                settings: TPTSettings = TPTSettings(), indices: Sequence[int] | None = None,
                timings: dict[str, float] | None = None) -> TPTResult:
    """TPT (C-TPT with ``ctpt_lambda``, O-TPT with ``otpt_lambda``) on B images at once.

    Args:
        backbone: any backbone with the context hook.
        images: [B, C, H, W] backbone inputs.
        indices: [B] the images' indices in their data set (fixes their views; default ``0..B-1``).
        timings: if given, seconds spent in each of ``PHASES`` are added to it.
    """
    _check(backbone, images, class_names)
    device, names, b, k = backbone.device, list(class_names), len(images), len(class_names)
    feats = _views_and_features(backbone, images, settings, indices, timings)  # [B, V, D]
    init = initial_contexts(backbone, settings).to(device)  # [E, M, W]
    e, scale = len(init), backbone.logit_scale

    def losses(txt: torch.Tensor) -> torch.Tensor:  # [B, K, D] class features -> [B] losses on the kept views
        chosen = scale * torch.einsum("bvd,bkd->bvk", feats.gather(1, kept[..., None].expand(-1, -1, feats.shape[-1])), txt)
        return _regularised(marginal_entropy(chosen), txt, settings)  # [B, n_kept, K] -> [B]

    # Step 1, shared: every image starts from the same contexts, so one forward serves all B.
    with _phase(timings, "text forward"):
        start = init.clone().requires_grad_()
        shared = ensemble_features(_encode(backbone, start, names))  # [E, K, D] -> [K, D]
        logits = scale * torch.einsum("bvd,kd->bvk", feats, shared.detach())  # [B, V, D] x [K, D] -> [B, V, K]
        kept = confident_views(logits, settings.n_kept)  # [B, n_kept], chosen at the first step and kept
        initial_logits = logits[:, 0]  # [B, K]
        copies = shared.detach().expand(b, k, -1).clone().requires_grad_()  # [B, K, D]: each image's own copy
        cotangents = torch.autograd.grad(losses(copies).sum(), copies)[0]  # [B, K, D] dL_b / d features
    with _phase(timings, "text backward"):  # B vector-Jacobian products through the one forward's activations
        grads = torch.autograd.grad(shared, start, cotangents, is_grads_batched=True)[0]  # [B, E, M, W]
    ctx = torch.nn.Parameter(init.unsqueeze(0).repeat(b, 1, 1, 1))  # [B, E, M, W]: E contexts per image
    opt = torch.optim.AdamW([ctx], lr=settings.lr)
    with _phase(timings, "optimiser step"):
        ctx.grad = grads
        opt.step()
    for _ in range(settings.steps - 1):  # later steps: each image's contexts differ
        with _phase(timings, "text forward"):
            loss = losses(ensemble_features(_encode(backbone, ctx.flatten(0, 1), names).view(b, e, k, -1)))  # [B]
        with _phase(timings, "text backward"):
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()  # each image's loss reaches only its own context
        with _phase(timings, "optimiser step"):
            opt.step()
    with torch.no_grad(), _phase(timings, "text forward"):
        txt = ensemble_features(_encode(backbone, ctx.flatten(0, 1), names, settings.text_chunk).view(b, e, k, -1))
        logits = scale * torch.einsum("bd,bkd->bk", feats[:, 0], txt)  # [B, D] x [B, K, D] -> [B, K] original views
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
                loss = _regularised(marginal_entropy(logits[kept]), txt, settings)
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


@dataclass(frozen=True)
class ZeroResult:
    """What ZERO gives for B images: ``votes`` [B, C], how many confident views predict each class (+1 for the class
    that broke a tie); ``probs``, the votes normalised (the confidence is the winner's vote share); ``initial_logits``
    [B, C], zero-shot on the original views with ``init_phrase``."""

    votes: torch.Tensor
    probs: torch.Tensor
    initial_logits: torch.Tensor


def _zero_vote(logits: torch.Tensor, n_kept: int) -> torch.Tensor:
    """ZERO's vote for one image, as its code casts it (FarinaMatteo/zero, ttas/zero.py): [V, C] logits -> [C] votes.

    The ``n_kept`` lowest-entropy views each vote for their top class (a softmax at zero temperature). A tie goes to
    the first other view, by increasing entropy, whose top class is tied (else the tied class with the highest logit
    on the most confident of them), which gets one more vote."""
    order = confident_views(logits, logits.shape[0])  # [V] by increasing entropy
    votes = torch.bincount(logits[order[:n_kept]].argmax(-1), minlength=logits.shape[-1]).float()  # [C]
    tied = (votes == votes.max()).nonzero().flatten()
    if len(tied) > 1:
        rest = logits[order[n_kept:]] if n_kept < len(order) else logits[order]
        tops = rest.argmax(-1)
        winner = next((int(t) for t in tops if t in tied), None)
        votes[tied[rest[0, tied].argmax()] if winner is None else winner] += 1
    return votes


def _zero(backbone, images, class_names, settings, indices, timings) -> ZeroResult:
    _check(backbone, images, class_names)
    feats = _views_and_features(backbone, images, settings, indices, timings)  # [B, V, D]
    with torch.no_grad(), _phase(timings, "text forward"):
        txt = ensemble_features(_encode(backbone, initial_contexts(backbone, settings).to(backbone.device),
                                        list(class_names), settings.text_chunk))  # [E, K, D] -> [K, D]
        logits = backbone.logit_scale * torch.einsum("bvd,kd->bvk", feats, txt)  # [B, V, D] x [K, D] -> [B, V, K]
    votes = torch.stack([_zero_vote(v, settings.n_kept) for v in logits]).cpu()  # [B, K]
    return ZeroResult(votes=votes, probs=votes / votes.sum(-1, keepdim=True), initial_logits=logits[:, 0].cpu())


def zero_batched(backbone: Backbone, images: torch.Tensor, class_names: Sequence[str],
                 settings: TPTSettings = TPTSettings(selection=0.3), indices: Sequence[int] | None = None,
                 timings: dict[str, float] | None = None) -> ZeroResult:
    """ZERO (Farina et al., NeurIPS 2024) on B images: TPT's views and confident selection, then a vote, no gradient.

    ``settings``: the views (``n_views``, ``seed``, ``augmix``), the prompt (``init_phrase``) and the share of views
    kept (``selection``; ZERO's gamma, 0.3 in its code, so 19 of 64); the rest is unused.
    """
    return _zero(backbone, images, class_names, settings, indices, timings)


def zero_reference(backbone: Backbone, images: torch.Tensor, class_names: Sequence[str],
                   settings: TPTSettings = TPTSettings(selection=0.3), indices: Sequence[int] | None = None,
                   timings: dict[str, float] | None = None) -> ZeroResult:
    """:func:`zero_batched` one image at a time, as ZERO's code runs it (its batch size is 1)."""
    indices = list(range(len(images))) if indices is None else [int(i) for i in indices]
    parts = [_zero(backbone, image[None], class_names, settings, [index], timings) for image, index in zip(images, indices)]
    return ZeroResult(*(torch.cat([getattr(p, f) for p in parts]) for f in ("votes", "probs", "initial_logits")))
