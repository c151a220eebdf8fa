"""Vector scaling (Guo et al., ICML 2017): one weight and one bias per class, fitted by L-BFGS on NLL."""

from __future__ import annotations

import math

import torch

from vlmcal.calibration._common import _fitted_input, _like, _LogitsToLogits
from vlmcal.metrics._validation import _check_pair


class VectorScaling(_LogitsToLogits):
    """Per-class affine map of the logits, ``z * w + b`` (w, b in R^C), fitted by L-BFGS on NLL.

    It contains temperature scaling (``w = 1 / T``, ``b = 0``); started from the identity, it is never worse than the
    identity on the fit set. L-BFGS runs at most ``max_iter`` iterations (200: ample for C <= 1000 on a calibration
    set), and with separable data stops there with large weights.

    Attributes:
        weight_, bias_: [C] per-class scale and offset.
        nll_before_, nll_after_: NLL on the fit set before and after.
        n_classes_: C.
    """

    def __init__(self, max_iter: int = 200):
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"Expected argument `max_iter` to be an integer larger than 0, but got {max_iter!r}")
        self.max_iter = max_iter

    def fit(self, logits, labels) -> "VectorScaling":
        """Fit w and b on ``logits`` [N, C] and integer ``labels`` [N]."""
        z, y = _check_pair(logits, labels, "logits")
        z = z.detach().to(torch.float64)  # [N, C]: the calibration set, usually small
        w = torch.ones(z.shape[1], dtype=torch.float64, device=z.device, requires_grad=True)  # [C]
        b = torch.zeros(z.shape[1], dtype=torch.float64, device=z.device, requires_grad=True)  # [C]
        opt = torch.optim.LBFGS([w, b], max_iter=self.max_iter, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(z * w + b, y)
            loss.backward()
            return loss

        before = float(torch.nn.functional.cross_entropy(z, y))
        opt.step(closure)
        after = float(torch.nn.functional.cross_entropy(z * w + b, y))
        if not math.isfinite(after) or after > before:
            w, b, after = torch.ones_like(w), torch.zeros_like(b), before
        self.weight_, self.bias_, self.nll_before_, self.nll_after_ = w.detach(), b.detach(), before, after
        self.n_classes_ = int(z.shape[1])
        return self

    def transform(self, logits):
        """Calibrated logits ``logits * weight_ + bias_`` ([N, C], float64, same type as the input)."""
        z = _fitted_input(self, logits, "weight_")
        out = z.to(torch.float64) * self.weight_.to(z.device) + self.bias_.to(z.device)  # [N, C] * [C] + [C]
        return _like(out, logits)
