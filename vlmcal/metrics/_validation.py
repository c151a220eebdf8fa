"""Input checks shared by every metric, each raising with what it expected and what it got; arrays are checked once,
at the door of each public function, and become torch tensors (numpy arrays without a copy)."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

Inputs = Literal["probs", "logits"]
Convention = Literal["right", "left", "torchmetrics"]
_INPUTS = ("probs", "logits")
_CONVENTIONS = ("right", "left", "torchmetrics")


def _as_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    try:
        if isinstance(x, np.ndarray):
            return torch.from_numpy(x)  # no copy
        return torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError) as err:
        what = f"a numpy array of dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"Expected `{name}` to be a numeric torch tensor or numpy array, but got {what}") from err


def _is_int(x) -> bool:  # a Python or numpy int, not a bool
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _is_real(x) -> bool:  # a Python or numpy int or float, not a bool
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _check_n_bins(n_bins) -> int:
    if not _is_int(n_bins) or n_bins < 1:
        raise ValueError(f"Expected argument `n_bins` to be an integer larger than 0, but got {n_bins!r}")
    return int(n_bins)


def _check_choice(value, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise ValueError(f"Expected argument `{name}` to be one of {allowed}, but got {value!r}")
    return value


def _check_scores(scores, inputs: str, name: str | None = None) -> torch.Tensor:
    """Validate [N, C] scores without making a second [N, C] array (reductions only)."""
    _check_choice(inputs, _INPUTS, "inputs")
    name = name or inputs
    s = _as_tensor(scores, name)
    if s.ndim != 2 or s.shape[0] < 1 or s.shape[1] < 1:
        raise ValueError(f"Expected `{name}` of shape [N, C] with N >= 1 and C >= 1, but got shape {tuple(s.shape)}")
    if not s.is_floating_point():
        raise ValueError(f"Expected `{name}` to be a floating-point array, but got dtype {s.dtype}")
    lo, hi = (float(v) for v in torch.aminmax(s))  # NaN propagates through both
    if not (math.isfinite(lo) and math.isfinite(hi)):
        hint = "; to leave classes out, drop their columns instead of setting them to -inf" if lo == -math.inf and not math.isnan(hi) else ""
        raise ValueError(f"Expected finite `{name}`, but got NaN or inf entries (min {lo}, max {hi}){hint}")
    if inputs == "probs":
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"Expected `probs` in [0, 1], but got values in [{lo:.4g}, {hi:.4g}]; "
                             "pass inputs='logits' for logits")
        worst = float((s.sum(dim=1) - 1.0).abs().amax())  # [N] row sums, in the input's precision
        if worst > 1e-3:
            raise ValueError(f"Expected each row of `probs` to sum to 1, but a row is {worst:.3g} away from 1")
    return s


def _check_outcomes(confidences, correct, shape: str = "[N]") -> tuple[torch.Tensor, torch.Tensor]:
    """Checked confidences in [0, 1] of ``shape`` ("[N]" or "[R, N]") and 0/1 outcomes, on one device."""
    conf = _as_tensor(confidences, "confidences")
    hit = _as_tensor(correct, "correct").to(conf.device)
    if conf.ndim != shape.count(",") + 1 or min(conf.shape) < 1:
        raise ValueError(f"Expected `confidences` of shape {shape} with every size >= 1, but got shape {tuple(conf.shape)}")
    if hit.shape != conf.shape:
        raise ValueError(f"Expected `correct` of the shape of `confidences` {tuple(conf.shape)}, but got shape {tuple(hit.shape)}")
    if conf.is_complex() or conf.dtype == torch.bool:
        raise ValueError(f"Expected real-valued `confidences`, but got dtype {conf.dtype}")
    conf = conf if conf.is_floating_point() else conf.to(torch.float64)
    lo, hi = (float(v) for v in torch.aminmax(conf))  # NaN propagates through both
    if not (0.0 <= lo and hi <= 1.0):
        raise ValueError(f"Expected `confidences` in [0, 1], but got values in [{lo}, {hi}]")
    if hit.dtype != torch.bool:
        bad = hit[(hit != 0) & (hit != 1)] if not hit.is_complex() else hit.reshape(-1)
        if bad.numel():
            raise ValueError(f"Expected `correct` to hold only booleans or 0/1, but got the value {bad[0].item()!r}")
    return conf, hit


def _check_pair(scores, labels, inputs: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked [N, C] ``scores`` and their [N] integer ``labels`` in [0, C), as int64 on the scores' device."""
    s, y = _check_scores(scores, inputs), _as_tensor(labels, "labels")
    n, n_classes = s.shape
    if y.ndim != 1:
        raise ValueError(f"Expected `labels` of shape [N], but got shape {tuple(y.shape)}")
    if y.shape[0] != n:
        raise ValueError(f"Expected `labels` to have one entry per sample ({n}), but got {y.shape[0]}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"Expected integer `labels`, but got dtype {y.dtype}")
    y = y.to(device=s.device, dtype=torch.long)
    lo, hi = int(y.min()), int(y.max())  # N >= 1
    if lo < 0 or hi >= n_classes:
        raise ValueError(f"Expected `labels` in [0, {n_classes - 1}], but got values in [{lo}, {hi}]")
    return s, y


def _check_edges(edges) -> torch.Tensor:
    e = _as_tensor(edges, "edges")
    if e.is_complex() or e.dtype == torch.bool:
        raise ValueError(f"Expected real-valued `edges`, but got dtype {e.dtype}")
    e = e.to(torch.float64)
    shown = e.tolist() if e.numel() <= 32 else f"{e.numel()} values from {float(e.reshape(-1)[0])} to {float(e.reshape(-1)[-1])}"
    if e.ndim != 1 or e.numel() < 2:
        raise ValueError(f"Expected `edges` of shape [B+1] with B >= 1, but got shape {tuple(e.shape)}")
    if not bool(torch.isfinite(e).all()):
        raise ValueError(f"Expected finite `edges`, but got {shown}")
    if bool((e[1:] < e[:-1]).any()):
        raise ValueError(f"Expected non-decreasing `edges`, but got {shown}")
    if float(e[0]) > 0.0 or float(e[-1]) < 1.0:
        raise ValueError(f"Expected `edges` that cover [0, 1] (first edge <= 0, last edge >= 1), but got {shown}")
    return e

