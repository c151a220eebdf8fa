"""From [N, C] scores to top-label confidences, block by block: no second [N, C] array is made from an
input (at most ``CHUNK_ELEMENTS`` numbers a block), and every reduction is summed in float64."""

from __future__ import annotations

import torch

from vlmcal.metrics._validation import Inputs, _check_pair, _check_scores

# Largest number of [rows x classes] entries held in a temporary block: 4M float32 = 16 MB.
CHUNK_ELEMENTS = 1 << 22


def _row_blocks(n_rows: int, n_cols: int):
    """Slices of consecutive rows, each block of at most ``CHUNK_ELEMENTS`` (rows x n_cols) entries."""
    step = max(1, CHUNK_ELEMENTS // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def _work_dtype(s: torch.Tensor) -> torch.dtype:
    """Blocks are computed in the input's precision (float16/bfloat16 in float32); sums in float64."""
    return s.dtype if s.dtype in (torch.float32, torch.float64) else torch.float32


def _probs_block(s: torch.Tensor, inputs: str) -> torch.Tensor:
    return s if inputs == "probs" else torch.softmax(s.to(_work_dtype(s)), dim=1)


def probs_from_logits(logits) -> torch.Tensor:
    """Softmax over classes of [N, C] ``logits`` (CLIP's include the logit scale), in their dtype and device: a new
    [N, C] array, which the metrics never need (pass them inputs='logits')."""
    return torch.softmax(_check_scores(logits, "logits"), dim=1)


def top_label(scores, labels, inputs: Inputs = "probs") -> tuple[torch.Tensor, torch.Tensor]:
    """Top-label ``(confidences, correct)``, each [N], of the predictions of [N, C] ``scores`` for integer ``labels``.

    The confidences are in the input's dtype, or from logits ``1 / (1 + sum_{c != top} exp(z_c - z_top))`` in float64,
    below 1 even where a float32 softmax would round to 1.

    Example:
        >>> conf, ok = top_label(torch.tensor([[0.3, 0.7], [0.9, 0.1]], dtype=torch.float64), torch.tensor([1, 1]))
        >>> conf.tolist(), ok.tolist()
        ([0.7, 0.9], [True, False])
    """
    s, y = _check_pair(scores, labels, inputs)
    if inputs == "probs":
        conf, pred = s.max(dim=1)  # [N], [N]
        return conf, pred == y
    n = s.shape[0]
    conf = torch.empty(n, dtype=torch.float64, device=s.device)
    pred = torch.empty(n, dtype=torch.long, device=s.device)
    for rows in _row_blocks(n, s.shape[1]):
        z = s[rows].to(_work_dtype(s))  # [r, C]
        top, arg = z.max(dim=1)  # [r], [r]
        rest = torch.exp(z - top[:, None])  # [r, C], 1 at the top class
        rest.scatter_(1, arg[:, None], 0.0)  # drop the top class's 1
        conf[rows] = 1.0 / (1.0 + rest.sum(dim=1).to(torch.float64))  # [r]
        pred[rows] = arg
    return conf, pred == y

