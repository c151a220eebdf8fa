"""Text-feature dispersion: how far apart the class text features of a prompt lie.

C-TPT (Yoon et al., ICLR 2024) calls it the Average Text Feature Dispersion (ATFD):

    centroid = (1/C) sum_c t_c                    (t_c: L2-normalised; centroid not renormalised)
    ATFD     = (1/C) sum_c || t_c - centroid ||_2  (Euclidean, not squared)

The DOR paper (Wang, Li & Wei, ICML 2025) links the growth of this spread under prompt
tuning to wider logits and, by its Proposition 3.1, to higher confidence.
"""

from __future__ import annotations

import torch

__all__ = ["text_feature_dispersion"]


def text_feature_dispersion(text_features: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """ATFD of class text features; differentiable, so C-TPT can use it as a loss term.

    Args:
        text_features: [C, D] one feature per class (torch tensor or array-like).
        normalize: L2-normalise each row first (the features the classifier uses are unit norm).

    Returns:
        A 0-d tensor: the mean Euclidean distance of the class features to their centroid.

    Example:
        >>> t = torch.eye(2)  # two orthogonal unit features
        >>> round(float(text_feature_dispersion(t)), 4)  # each is sqrt(2)/2 from the centroid
        0.7071
    """
    feats = torch.as_tensor(text_features)
    if feats.ndim != 2 or feats.shape[0] < 1:
        raise ValueError(f"Expected `text_features` of shape [C, D] with C >= 1, but got shape {tuple(feats.shape)}")
    if not torch.isfinite(feats).all():
        raise ValueError("Expected finite `text_features`, but got NaN or inf entries")
    if normalize:
        feats = torch.nn.functional.normalize(feats, dim=-1)  # [C, D]
    centroid = feats.mean(dim=0, keepdim=True)  # [1, D], not renormalised
    return (feats - centroid).norm(dim=-1).mean()  # mean over C of ||t_c - centroid||_2
