"""What the calibrators share: the checks on the scores they are applied to, and numpy in, numpy out."""

from __future__ import annotations

import numpy as np
import torch

from vlmcal.metrics._validation import Inputs, _as_tensor, _check_scores


def _like(result: torch.Tensor, template):  # numpy in, numpy out
    return result.cpu().numpy() if isinstance(template, np.ndarray) else result


def _fitted_input(calibrator, scores, fitted: str, inputs: Inputs = "logits", name: str = "logits") -> torch.Tensor:
    """Checked [N, C] ``scores`` of a calibrator that has its learned attribute ``fitted`` and C classes."""
    if not hasattr(calibrator, fitted):
        raise RuntimeError(f"This {type(calibrator).__name__} is not fitted yet; call fit(...) first")
    s = _check_scores(scores, inputs, name)
    if s.shape[1] != calibrator.n_classes_:
        raise ValueError(f"Expected {calibrator.n_classes_} classes as at fit time, but got {s.shape[1]} (`{name}` "
                         f"of shape {tuple(s.shape)}); pass scores over the classes {type(calibrator).__name__} "
                         "was fitted on")
    return s


class _LogitsToLogits:
    """A calibrator whose ``transform`` maps [N, C] logits to calibrated logits."""

    def predict_proba(self, logits):
        """Calibrated probabilities: the softmax of :meth:`transform` ([N, C], same type as the input)."""
        return _like(torch.softmax(self.transform(_as_tensor(logits, "logits")), dim=1), logits)
