"""open_clip models as vlmcal backbones: ``openclip:<arch>:<tag | checkpoint path | random>``.

``random``: seeded random weights, for tests. Weights are never fetched silently: a tag is looked up in the local
caches (Hugging Face hub, ``~/.cache/clip``); when absent with the hub offline or unreachable, loading stops with
:class:`WeightsNotFoundError`. OpenAI's weights need QuickGELU, which open_clip's plain configs lack (open_clip
issue #441). The prompt-learner hook follows CoOp's ``PromptLearner`` and ``TextEncoder`` (Zhou et al., IJCV 2022).
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import nn

from vlmcal.backbones.base import RANDOM_SEED, RANDOM_TAG, Backbone, WeightsNotFoundError, default_device

__all__ = ["OpenClipBackbone", "WeightsNotFoundError", "load_openclip", "parse_openclip_name", "register_test_configs",
           "TEST_CONFIGS", "RANDOM_TAG"]

PREFIX = "openclip"
CONTEXT_TOKEN_CACHE_SIZE = 32  # class-name lists whose token ids are kept for the prompt-learner hook
HUB_PROBE_TIMEOUT_S = 3.0  # long enough for a healthy connection, short enough to fail "at once"

# Architecture configs in open_clip's JSON schema, tiny for CPU tests; CLIP's tokenizer (vocab 49408, context 77).
_TINY = {"embed_dim": 32,
         "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
         "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}
TEST_CONFIGS: dict[str, dict[str, Any]] = {
    "vlmcal-tiny": _TINY,
    # The same as open_clip's CustomTextCLIP (text tower under `model.text`), as many non-OpenAI models are.
    "vlmcal-tiny-customtext": {**_TINY, "custom_text": True},
}



def parse_openclip_name(name: str) -> tuple[str, str]:
    """Split ``openclip:<arch>:<pretrained>`` into ``(arch, pretrained)``.

    Example:
        >>> parse_openclip_name("openclip:ViT-B-16:openai")
        ('ViT-B-16', 'openai')
    """
    parts = name.split(":", 2) if isinstance(name, str) else []
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        raise ValueError(f"Expected an open_clip backbone name `openclip:<arch>:<pretrained>` (e.g. "
                         f"`openclip:ViT-B-16:openai`, `openclip:ViT-B-16:/path/to/checkpoint.pt` or "
                         f"`openclip:vlmcal-tiny:random`), but got {name!r}")
    return parts[1], parts[2]


def register_test_configs() -> list[str]:
    """Register :data:`TEST_CONFIGS` with open_clip (idempotent, via temporary JSON files); returns their names."""
    import open_clip
    missing = [n for n in TEST_CONFIGS if n not in open_clip.list_models()]
    if missing:
        with tempfile.TemporaryDirectory(prefix="vlmcal-openclip-configs-") as tmp:
            for cfg_name in missing:
                (Path(tmp) / f"{cfg_name}.json").write_text(json.dumps(TEST_CONFIGS[cfg_name]))
            open_clip.add_model_config(tmp)
    return list(TEST_CONFIGS)


def _truthy_env(var: str) -> bool:
    return os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}


def _hub_reachable(host: str = "huggingface.co", timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """False at once when ``HF_HUB_OFFLINE`` is set; else whether a TCP connection opens in ``timeout`` s."""
    if _truthy_env("HF_HUB_OFFLINE"):
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _find_cached_weights(pretrained_cfg: dict, weights_dir: str | os.PathLike | None = None) -> str | None:
    """The local file of a pretrained tag's weights, from the hub cache or the URL cache (never the network)."""
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME
    if pretrained_cfg.get("file") and os.path.isfile(pretrained_cfg["file"]):
        return pretrained_cfg["file"]
    hf_hub = pretrained_cfg.get("hf_hub", "")
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # no hub client: only the URL cache can hold them
        hf_hub = ""
    if hf_hub:
        repo_id, filename = os.path.split(hf_hub)
        filename = filename or HF_WEIGHTS_NAME
        twin = HF_SAFE_WEIGHTS_NAME if filename == HF_WEIGHTS_NAME else filename[:-4] + ".safetensors"
        for candidate in ([twin] if filename.endswith((".bin", ".pth")) else []) + [filename]:  # safetensors first
            found = try_to_load_from_cache(repo_id, candidate, cache_dir=weights_dir)
            if isinstance(found, str) and os.path.isfile(found):
                return found
    url = pretrained_cfg.get("url", "")
    for folder in [weights_dir, Path.home() / ".cache" / "clip"]:
        if url and folder is not None and (Path(folder) / os.path.basename(url)).is_file():
            return str(Path(folder) / os.path.basename(url))
    return None


def _is_torchscript_archive(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a TorchScript zip archive (as OpenAI's released CLIP checkpoints are)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in archive.namelist())


@dataclass(frozen=True)
class _LoadPlan:
    """What to build (``pretrained``: a local file, a tag to download, or None for ``random_seed``), before loading."""
    arch: str
    pretrained: str | None
    quick_gelu: bool
    preprocess: dict = field(default_factory=dict)
    random_seed: int | None = None
    source: str = ""


def _plan(arch: str, pretrained: str, weights_dir: str | os.PathLike | None = None,
          quick_gelu: bool | None = None) -> _LoadPlan:
    """Resolve ``openclip:<arch>:<pretrained>`` into a :class:`_LoadPlan`, failing fast without weights."""
    import open_clip
    if arch in TEST_CONFIGS:
        register_test_configs()
    if arch not in open_clip.list_models():
        raise ValueError(f"Unknown open_clip architecture {arch!r}. Use one of open_clip.list_models() "
                         f"(e.g. 'ViT-B-16', 'RN50') or a test config {sorted(TEST_CONFIGS)}")
    arch_quick_gelu = bool(open_clip.get_model_config(arch).get("quick_gelu", False))
    if pretrained.lower() == RANDOM_TAG:
        return _LoadPlan(arch, None, arch_quick_gelu if quick_gelu is None else quick_gelu,
                         random_seed=RANDOM_SEED, source=f"random weights (seed {RANDOM_SEED})")
    if os.path.isfile(pretrained):
        guess = arch_quick_gelu or "openai" in Path(pretrained).name.lower()
        return _LoadPlan(arch, pretrained, guess if quick_gelu is None else quick_gelu,
                         source=f"local checkpoint {pretrained}")
    tag_cfg = open_clip.get_pretrained_cfg(arch, pretrained)
    if not tag_cfg:
        if os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors")):  # a path, not a tag
            raise WeightsNotFoundError(
                f"Checkpoint file {pretrained!r} for open_clip architecture {arch!r} does not exist. "
                f"Check the path, or name a pretrained tag instead: {open_clip.list_pretrained_tags_by_model(arch)}")
        raise ValueError(
            f"{pretrained!r} is neither a pretrained tag of {arch!r} nor an existing file. Tags for "
            f"{arch!r}: {open_clip.list_pretrained_tags_by_model(arch)} (all pairs: open_clip.list_pretrained()); "
            f"or use `random` for random weights")
    preprocess = {k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag_cfg}
    use_quick_gelu = (bool(tag_cfg.get("quick_gelu", False)) or arch_quick_gelu) if quick_gelu is None else quick_gelu
    local = _find_cached_weights(tag_cfg, weights_dir)
    if local is not None:
        return _LoadPlan(arch, local, use_quick_gelu, preprocess, source=f"cached weights {local}")
    host = "huggingface.co" if tag_cfg.get("hf_hub") else (urlparse(tag_cfg.get("url", "")).hostname or "")
    if host and _hub_reachable(host):
        return _LoadPlan(arch, pretrained, use_quick_gelu, preprocess, source=f"download of tag {pretrained!r}")
    why = "HF_HUB_OFFLINE is set" if _truthy_env("HF_HUB_OFFLINE") else f"{host or 'the hub'} is unreachable"
    raise WeightsNotFoundError(
        f"The weights of openclip:{arch}:{pretrained} are not on this machine and cannot be downloaded "
        f"({why}). Looked in the Hugging Face hub cache"
        f"{f' under {weights_dir}' if weights_dir else ' (HF_HOME / ~/.cache/huggingface)'} and the "
        f"URL cache (~/.cache/clip). To provide them, either (a) on a machine with internet, run "
        f"`python -c \"import open_clip; open_clip.create_model('{arch}', pretrained='{pretrained}')\"` "
        f"and copy the Hugging Face cache here (or set HF_HOME to it), or (b) download the checkpoint "
        f"({tag_cfg.get('url') or tag_cfg.get('hf_hub')}) and load it as openclip:{arch}:/path/to/checkpoint.")


class OpenClipBackbone(Backbone):
    """An open_clip CLIP model, frozen, behind vlmcal's :class:`~vlmcal.backbones.base.Backbone` interface.

    Args:
        model: an open_clip ``CLIP`` (or ``CustomTextCLIP`` with a plain text transformer).
        preprocess, tokenizer: the model's own inference transform (PIL image -> [3, H, W] tensor) and tokenizer.
        device: where it runs (default CUDA when present, else CPU); CUDA uses fp16 autocast, CPU stays fp32.
        text_batch_size: prompts encoded per forward pass in :meth:`encode_text`.
        cache_identity: what identifies its weights in feature-cache keys (defaults to ``name``).
    Attributes:
        model: the frozen open_clip model (eval mode, no parameter requires grad).
        weights_source: where the weights came from (set by :func:`load_openclip`), for reports.
    Example:
        >>> bb = load_openclip("openclip:vlmcal-tiny:random")
        >>> bb.encode_text(["a photo of a cat.", "a photo of a dog."]).shape
        torch.Size([2, 32])
    """

    def __init__(self, model: nn.Module, preprocess: Callable, tokenizer: Callable, name: str,
                 device: str | torch.device | None = None, text_batch_size: int = 256, cache_identity: Any = None):
        self.device = default_device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.preprocess, self.tokenizer, self.name = preprocess, tokenizer, name
        self.text_batch_size = int(text_batch_size)
        self.cache_identity = cache_identity if cache_identity is not None else name
        self.weights_source = "given model"
        self.logit_scale = float(self.model.logit_scale.detach().exp().float().reshape(-1)[0])
        # The text tower's parts live on the model itself for CLIP, on `model.text` for CustomTextCLIP.
        self._tower = self.model if hasattr(self.model, "token_embedding") else getattr(self.model, "text", None)
        self._hookable = self._tower is not None and all(
            hasattr(self._tower, a) for a in ("token_embedding", "positional_embedding", "transformer", "ln_final")
        ) and getattr(self._tower, "cls_emb", None) is None and not getattr(self._tower, "use_pad_mask", False)
        self.token_embedding_dim = int(self._tower.token_embedding.weight.shape[1]) if self._hookable else 0
        with torch.no_grad():
            self.embed_dim = int(self.encode_text(["a"]).shape[1])
        # Token ids per (class names, M), reused across steps; bounded, since DOR redraws its outlier names.
        self._context_tokens: OrderedDict[tuple[tuple[str, ...], int], tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    def __repr__(self) -> str:
        return f"OpenClipBackbone({self.name!r}, device={str(self.device)!r}, embed_dim={self.embed_dim})"

    @property
    def precision(self) -> str:
        """``"amp-fp16"`` on CUDA (autocast), ``"fp32"`` elsewhere; part of feature-cache keys."""
        return "amp-fp16" if self.device.type == "cuda" else "fp32"

    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.device.type == "cuda")

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(H, W) of the image tower's input (what ``preprocess`` makes), or None if the model does not say."""
        size = getattr(self.model.visual, "preprocess_cfg", {}).get("size") or getattr(self.model.visual, "image_size", None)
        size = (size, size) if isinstance(size, int) else size
        return (int(size[0]), int(size[1])) if size is not None and len(size) == 2 else None

    def _check_images(self, images) -> None:
        """A clear error for input the image tower would reject deep inside (wrong size, channels, dtype, NaN)."""
        hw = self.image_size
        expected = f"[B, 3, H, W] with (H, W) = {hw}" if hw else "[B, 3, H, W]"
        how = "Apply the model's own `backbone.preprocess` to each PIL image (it resizes, crops and normalises)"
        if not isinstance(images, torch.Tensor):
            raise ValueError(f"Expected `images` to be a float tensor of shape {expected}, but got {type(images).__name__}. {how}")
        shape = tuple(images.shape)
        if images.ndim != 4 or shape[1] != 3 or (hw is not None and shape[2:] != hw):
            raise ValueError(f"Expected `images` of shape {expected} for {self.name}, but got {shape}. {how}")
        if not images.is_floating_point():
            raise ValueError(f"Expected `images` to be a float tensor (as `backbone.preprocess` makes), but got dtype {images.dtype}. {how}")
        if not bool(torch.isfinite(images).all()):
            raise ValueError(f"Expected finite `images`, but got NaN or inf entries. {how}")

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] preprocessed images -> [B, D] L2-normalised image features (float32); B = 0 gives [0, D]."""
        self._check_images(images)
        if images.shape[0] == 0:  # no images, no features (open_clip's forward cannot take an empty batch)
            return torch.empty(0, self.embed_dim, device=self.device)
        with torch.no_grad(), self._autocast():
            feats = self.model.encode_image(images.to(self.device, non_blocking=True))  # [B,3,H,W] -> [B,D]
        return F.normalize(feats.float(), dim=-1)  # [B,D]

    def encode_text(self, prompts: Sequence[str]) -> torch.Tensor:
        """P prompts -> [P, D] L2-normalised text features (float32), encoded in batches."""
        if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts) or len(prompts) == 0:
            raise ValueError(f"Expected `prompts` to be a non-empty list of strings, but got {prompts!r:.200}")
        b = self.text_batch_size
        with torch.no_grad():  # [b, L] token ids -> [b, D] per batch, concatenated to [P, D]
            return torch.cat([self._encode_tokens(self.tokenizer(list(prompts[start:start + b])).to(self.device))
                              for start in range(0, len(prompts), b)])

    def _encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """[P, L] token ids -> [P, D] normalised features (through the hookable path when there is one)."""
        if not self._hookable:
            with self._autocast():
                return F.normalize(self.model.encode_text(tokens).float(), dim=-1)
        return self._encode_embeddings(self._tower.token_embedding(tokens), self._pool_index(tokens))  # [P, L, W], [P]

    def _pool_index(self, tokens: torch.Tensor) -> torch.Tensor:
        """[P, L] token ids -> [P] the position whose output is the text feature (as open_clip pools)."""
        pool = getattr(self._tower, "text_pool_type", None) or getattr(self._tower, "pool_type", "argmax")
        if pool == "argmax":  # CLIP: the EOT token has the largest id
            return tokens.argmax(dim=-1)
        if pool == "eos":
            eos = getattr(self._tower, "text_eos_id", None) or getattr(self._tower, "eos_id", None)
            return (tokens == eos).int().argmax(dim=-1)
        if pool == "first":
            return torch.zeros(tokens.shape[0], dtype=torch.long, device=tokens.device)
        if pool == "last":
            return torch.full((tokens.shape[0],), tokens.shape[1] - 1, dtype=torch.long, device=tokens.device)
        raise NotImplementedError(f"Text pooling {pool!r} of {self.name} is not supported by vlmcal's text path")

    def _encode_embeddings(self, x: torch.Tensor, pool_index: torch.Tensor) -> torch.Tensor:
        """The frozen text transformer on embeddings, as open_clip's ``CLIP.encode_text``: [P, L, W], [P] -> [P, D]."""
        tower = self._tower
        with self._autocast():
            cast = tower.transformer.get_cast_dtype()
            x = x.to(cast) + tower.positional_embedding.to(cast)  # [P, L, W] + [L, W] -> [P, L, W]
            x = tower.transformer(x, attn_mask=tower.attn_mask)  # [P, L, W] -> [P, L, W]
            x = tower.ln_final(x)  # [P, L, W]
            x = x[torch.arange(x.shape[0], device=x.device), pool_index]  # [P, L, W] -> [P, W]
            proj = tower.text_projection
            if proj is not None:
                x = proj(x) if isinstance(proj, nn.Linear) else x @ proj  # [P, W] @ [W, D] -> [P, D]
        return F.normalize(x.float(), dim=-1)  # [P, D]

    def _require_hook(self) -> None:
        if not self._hookable:
            raise NotImplementedError(
                f"{self.name}: learnable context needs a CLIP-style text transformer (token embedding, "
                f"positional embedding, causal transformer); this model's text tower is "
                f"{type(getattr(self.model, 'text', self.model)).__name__}. Use a CLIP architecture such as ViT-B-16")
        if not hasattr(self.tokenizer, "encode") or not hasattr(self.tokenizer, "sot_token_id"):
            raise NotImplementedError(f"{self.name}: learnable context needs CLIP's BPE tokenizer, but this model uses "
                                      f"{type(self.tokenizer).__name__}")

    def embed_phrase(self, phrase: str) -> torch.Tensor:
        """The token embeddings of ``phrase`` (no SOT/EOT): [M, W], a detached copy on the backbone's device."""
        self._require_hook()
        ids = self.tokenizer.encode(phrase)
        if not ids:
            raise ValueError(f"Expected a phrase with at least one token, but got {phrase!r}")
        return self._tower.token_embedding(torch.tensor(ids, dtype=torch.long, device=self.device)).detach().clone()

    def _context_token_ids(self, class_names: tuple[str, ...], n_ctx: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids of ``[SOT] X*M <class>. [EOT]`` ([C, L]) and the pooling positions ([C])."""
        key = (class_names, n_ctx)
        if key in self._context_tokens:
            self._context_tokens.move_to_end(key)
            return self._context_tokens[key]
        tok, length = self.tokenizer, int(self._tower.positional_embedding.shape[0])
        if n_ctx + 2 > length:
            raise ValueError(f"{n_ctx} context tokens do not fit the text tower's context length {length}")
        ids = torch.zeros(len(class_names), length, dtype=torch.long)  # [C, L], 0 = padding
        for i, cls in enumerate(class_names):
            row = [tok.sot_token_id] + [0] * n_ctx + tok.encode(f"{cls}.") + [tok.eot_token_id]
            if len(row) > length:  # truncate the class name, keep EOT last (as the tokenizer does)
                row = row[:length - 1] + [tok.eot_token_id]
            ids[i, :len(row)] = torch.tensor(row)
        ids = ids.to(self.device)
        self._context_tokens[key] = (ids, self._pool_index(ids))
        if len(self._context_tokens) > CONTEXT_TOKEN_CACHE_SIZE:
            self._context_tokens.popitem(last=False)
        return self._context_tokens[key]

    def encode_text_with_context(self, context: torch.Tensor, class_names: Sequence[str]) -> torch.Tensor:
        """Text features of ``[SOT] [ctx_1 .. ctx_M] [class tokens] [.] [EOT]`` (CoOp's layout), read at EOT.

        ``context``: [M, W] shared, or [C, M, W] class-specific, for the C ``class_names``. Returns [C, D]
        L2-normalised text features, differentiable with respect to ``context``.
        """
        self._require_hook()
        names = tuple(class_names)
        if not names or not all(isinstance(n, str) for n in names):
            raise ValueError(f"Expected `class_names` to be a non-empty list of strings, but got {class_names!r:.200}")
        W = self.token_embedding_dim
        if context.ndim == 2 and context.shape[1] == W:
            context = context.unsqueeze(0).expand(len(names), -1, -1)  # [M, W] -> [C, M, W]
        elif not (context.ndim == 3 and context.shape[0] == len(names) and context.shape[2] == W):
            raise ValueError(f"Expected `context` of shape [M, {W}] (shared) or [{len(names)}, M, {W}] "
                             f"(class-specific), but got {tuple(context.shape)}")
        M = context.shape[1]
        ids, pool_index = self._context_token_ids(names, M)  # [C, L], [C]
        with torch.no_grad():
            embedded = self._tower.token_embedding(ids)  # [C, L] -> [C, L, W]
        # [C, 1, W] (SOT) + [C, M, W] (context) + [C, L-1-M, W] (class, EOT, padding) -> [C, L, W]
        x = torch.cat([embedded[:, :1], context.to(self.device, embedded.dtype), embedded[:, 1 + M:]], dim=1)
        return self._encode_embeddings(x, pool_index)  # [C, D]


def _checkpoint_error(name: str, arch: str, path: str, err: Exception) -> ValueError:
    """What went wrong when open_clip read the weights file ``path`` (wrong architecture, pickles, no checkpoint)."""
    text = str(err)
    where = f"Expected the weights file in `name` ({name!r})"
    if isinstance(err, RuntimeError) and "Error(s) in loading state_dict" in text:
        counts = {
            what: len(re.findall(r'"[^"]+"', found.group(1))) if (found := re.search(pattern + r" in state_dict: (.*)", text)) else 0
            for what, pattern in (("missing", r"Missing key\(s\)"), ("unexpected", r"Unexpected key\(s\)"))
        }
        counts["of another shape"] = text.count("size mismatch for")
        detail = ", ".join(f"{k} {what}" for what, k in counts.items() if k)
        return ValueError(
            f"{where} to hold weights of open_clip architecture {arch!r}, but the state dict in {path} does not fit "
            f"it ({detail or text.splitlines()[0][:200]}). The checkpoint is probably of another architecture: "
            f"put that one in the name (openclip:<arch>:{path})")
    if pickled := re.search(r"Unsupported global: GLOBAL (\S+)", text):
        return ValueError(
            f"{where} to be a readable open_clip/torch checkpoint, but {path} holds pickled Python objects besides "
            f"tensors (e.g. {pickled.group(1)}), which vlmcal does not execute. If you trust its source, save its "
            f"weights alone, e.g. torch.save(torch.load(path, weights_only=False)['state_dict'], 'weights.pt'), "
            f"and load that file")
    unpickler = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
    first = (unpickler.group(1).strip() if unpickler else (text.splitlines() or [""])[0])[:200]
    return ValueError(
        f"{where} to be a readable open_clip/torch checkpoint (a state dict saved with torch.save, a .safetensors "
        f"file or an OpenAI TorchScript archive), but {path} is not one (reading it failed with "
        f"{type(err).__name__}: {first}). Check the path, or name a pretrained tag of {arch!r} instead")


def load_openclip(name: str, device: str | torch.device | None = None, cache_dir: str | os.PathLike | None = None, *,
                  weights_dir: str | os.PathLike | None = None, quick_gelu: bool | None = None,
                  text_batch_size: int = 256) -> OpenClipBackbone:
    """Load ``openclip:<arch>:<pretrained>`` as a frozen :class:`OpenClipBackbone`.

    Args:
        name: ``openclip:<arch>:<tag | checkpoint path | random>``; a tag is one open_clip knows for ``<arch>``.
        device, text_batch_size: as for :class:`OpenClipBackbone`.
        cache_dir: vlmcal's cache directory; unused (every loader has one signature).
        weights_dir: where open_clip keeps downloaded weights (default: the hub cache and ``~/.cache/clip``).
        quick_gelu: force QuickGELU on or off; default: the tag's record, or ``openai`` in a file's name.
    Raises:
        ValueError: malformed name, unknown architecture or tag.
        WeightsNotFoundError: the weights are not on this machine and no hub is reachable.
    """
    import open_clip
    arch, pretrained = parse_openclip_name(name)
    plan = _plan(arch, pretrained, weights_dir=weights_dir, quick_gelu=quick_gelu)
    device = default_device(device)
    kwargs = dict(force_quick_gelu=plan.quick_gelu, cache_dir=str(weights_dir) if weights_dir else None,
                  **{f"image_{k}": plan.preprocess.get(k) for k in ("mean", "std", "interpolation", "resize_mode")})
    # Feature-cache identity: name, activation, and a local file's size and mtime (a replaced checkpoint is new).
    identity: dict[str, Any] = {"name": name, "quick_gelu": plan.quick_gelu}
    if plan.random_seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(plan.random_seed)
            model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None, **kwargs)
    else:
        try:
            # OpenAI's TorchScript archives fail torch.load(weights_only=True); open_clip reads their state dict.
            kwargs["weights_only"] = not (os.path.isfile(plan.pretrained) and _is_torchscript_archive(plan.pretrained))
            model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=plan.pretrained, **kwargs)
        except Exception as err:
            if not os.path.isfile(plan.pretrained) or isinstance(err, (MemoryError, torch.OutOfMemoryError)):
                raise
            raise _checkpoint_error(name, arch, plan.pretrained, err) from err
        if os.path.isfile(plan.pretrained):
            stat = os.stat(plan.pretrained)
            identity.update(file_size=stat.st_size, file_mtime_ns=stat.st_mtime_ns)
    backbone = OpenClipBackbone(model, preprocess, open_clip.get_tokenizer(arch), name=name, device=device,
                                text_batch_size=text_batch_size, cache_identity=identity)
    backbone.weights_source = plan.source
    return backbone

