"""Text-feature dispersion: how far apart the class text features of a prompt lie.

C-TPT's (Yoon et al., ICLR 2024) Average Text Feature Dispersion, for L2-normalised ``t_c``:

    ATFD = (1/C) sum_c || t_c - centroid ||_2,  centroid = (1/C) sum_c t_c (not renormalised)

DOR's (Wang, Li & Wei, ICML 2025) feature divergence, as secondary sources describe it:

    FD_M = (1/C) sum_c (1/M) sum_{j in N_M(c)} || t_c - t_j ||_2   (N_M(c): the M classes nearest c)

O-TPT's (Sharifdeen et al., CVPR 2025) orthogonality penalty, from its code (otpt_classification.py of
ashshaksharifdeen/O-TPT): with G = T T^T, each row g_i is reflected onto the i-th axis by a Householder matrix and
the penalty is the mean of || H_i g_i - e_i ||_2; for unit t_c that is (1/C) sum_i (||g_i||_2 - 1), 0 when orthogonal.
"""

from __future__ import annotations

import torch

__all__ = ["text_feature_dispersion", "feature_divergence", "orthogonality_penalty"]


def _unit_rows(text_features, normalize: bool, min_rows: int) -> torch.Tensor:
    feats = torch.as_tensor(text_features)
    if feats.ndim != 2 or feats.shape[0] < min_rows:
        raise ValueError(f"Expected `text_features` of shape [C, D] with C >= {min_rows}, but got shape {tuple(feats.shape)}")
    if not torch.isfinite(feats).all():
        raise ValueError("Expected finite `text_features`, but got NaN or inf entries")
    return torch.nn.functional.normalize(feats, dim=-1) if normalize else feats  # [C, D]


def text_feature_dispersion(text_features: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """ATFD of class text features; differentiable, so C-TPT can use it as a loss term.

    ``text_features``: [C, D] one feature per class (tensor or array-like); rows L2-normalised first if
    ``normalize``. Returns a 0-d tensor: the mean Euclidean distance of the class features to their centroid.

    Example:
        >>> t = torch.eye(2)  # two orthogonal unit features
        >>> round(float(text_feature_dispersion(t)), 4)  # each is sqrt(2)/2 from the centroid
        0.7071
    """
    feats = _unit_rows(text_features, normalize, 1)  # [C, D]
    centroid = feats.mean(dim=0, keepdim=True)  # [1, D], not renormalised
    return (feats - centroid).norm(dim=-1).mean()  # mean over C of ||t_c - centroid||_2


def feature_divergence(text_features: torch.Tensor, n_neighbours: int = 3, normalize: bool = True) -> torch.Tensor:
    """DOR's feature divergence: the mean distance of each class text feature to its nearest others.

    ``text_features``: [C, D] one feature per class, C >= 2; rows L2-normalised first if ``normalize``.
    ``n_neighbours``: M, the nearest other classes each class is measured against (at most C - 1).
    Returns a 0-d tensor: the mean over classes of the mean Euclidean distance to the M nearest others.

    Example:
        >>> round(float(feature_divergence(torch.eye(3), n_neighbours=2)), 4)  # every pair sqrt(2) apart
        1.4142
    """
    if isinstance(n_neighbours, bool) or not isinstance(n_neighbours, int) or n_neighbours < 1:
        raise ValueError(f"Expected `n_neighbours` to be an integer >= 1, but got {n_neighbours!r}")
    feats = _unit_rows(text_features, normalize, 2)  # [C, D]
    n_classes = feats.shape[0]
    self_pairs = torch.eye(n_classes, dtype=torch.bool, device=feats.device)  # a class is not its own neighbour
    distances = torch.cdist(feats, feats).masked_fill(self_pairs, float("inf"))  # [C, D] x [C, D] -> [C, C]
    return distances.sort(dim=1).values[:, :min(n_neighbours, n_classes - 1)].mean()  # [C, M] nearest


def orthogonality_penalty(text_features: torch.Tensor) -> torch.Tensor:
    """O-TPT's penalty of [..., C, D] unit class text features -> [...]; differentiable, for O-TPT's loss.

    As its code computes it: G = T T^T; for each row g_i, v_i = (g_i - ||g_:,i|| e_i) / ||.||, H_i = I - 2 v_i v_i^T;
    the penalty is the mean over i of ||H_i g_i - e_i||_2. A row already on its axis is left as it is.

    Example:
        >>> float(orthogonality_penalty(torch.eye(3)))  # orthogonal features
        0.0
        >>> round(float(orthogonality_penalty(torch.tensor([[1.0, 0.0], [1.0, 0.0]]))), 4)  # two equal features
        0.4142
    """
    gram = text_features @ text_features.transpose(-1, -2)  # [..., C, D] @ [..., D, C] -> [..., C, C]
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    u = gram - eye * gram.norm(dim=-2, keepdim=True)  # row i minus its column's norm on the diagonal
    v = u / u.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(gram.dtype).tiny)  # [..., C, C] unit rows (0 stays 0)
    reflected = gram - 2 * v * (v * gram).sum(dim=-1, keepdim=True)  # H_i g_i = g_i - 2 v_i (v_i . g_i)
    return (reflected - eye).norm(dim=-1).mean(dim=-1)
