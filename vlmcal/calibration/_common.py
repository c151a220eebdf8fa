"""What the calibrators share: the checks on the scores they are applied to, and numpy in, numpy out."""

from __future__ import annotations

import numpy as np
import torch

from vlmcal.metrics._validation import Inputs, _as_tensor, _check_scores


def _like(result: torch.Tensor, template):
    """Return numpy when the caller passed numpy, a tensor otherwise."""
    return result.cpu().numpy() if isinstance(template, np.ndarray) else result


def _not_fitted(obj) -> RuntimeError:
    return RuntimeError(f"This {type(obj).__name__} is not fitted yet; call fit(...) first")


def _check_n_classes(obj, z: torch.Tensor, name: str = "logits") -> None:
    if z.shape[1] != obj.n_classes_:
        raise ValueError(
            f"Expected {obj.n_classes_} classes as at fit time, but got {z.shape[1]} (`{name}` of shape "
            f"{tuple(z.shape)}); pass scores over the classes {type(obj).__name__} was fitted on"
        )


def _fitted_input(calibrator, scores, fitted: str, inputs: Inputs = "logits", name: str = "logits") -> torch.Tensor:
    """The [N, C] scores a fitted calibrator is applied to, checked: the calibrator has its learned
    attribute ``fitted``, the scores are valid ``inputs``, and they have the C classes seen at fit time."""
    if not hasattr(calibrator, fitted):
        raise _not_fitted(calibrator)
    s = _check_scores(scores, inputs, name)
    _check_n_classes(calibrator, s, name)
    return s


class _LogitsToLogits:
    """A calibrator whose ``transform`` maps [N, C] logits to calibrated logits."""

    def predict_proba(self, logits):
        """Calibrated probabilities: the softmax of :meth:`transform` ([N, C], same type as the input)."""
        z = self.transform(_as_tensor(logits, "logits"))
        return _like(torch.softmax(z, dim=1), logits)
