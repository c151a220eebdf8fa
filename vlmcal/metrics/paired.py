"""Figures of runs that hold the same images, and their paired bootstrap over images (TPT against
C-TPT, CoOp against CoOp + DOR): one draw of images resamples every run."""

from __future__ import annotations

from typing import Callable, Hashable, Mapping

import torch

from vlmcal.metrics.bootstrap import BootstrapResult, bootstrap_weights
from vlmcal.metrics.scores import ece_weighted

__all__ = ["outcome_figures", "paired_bootstrap"]


def outcome_figures(confidence: torch.Tensor, correct: torch.Tensor, n_bins: int) -> dict[str, float]:
    """Accuracy, ECE (``n_bins`` equal-width bins), mean confidence and the gap (confidence minus accuracy) of [N] top-label outcomes."""
    accuracy, mean_confidence = float(correct.double().mean()), float(confidence.double().mean())
    ece = float(ece_weighted(confidence[None], correct[None], torch.ones(1, len(correct)), n_bins=n_bins)[0, 0])
    return {"accuracy": accuracy, "ece": ece, "confidence": mean_confidence, "gap": mean_confidence - accuracy}


def paired_bootstrap(outcomes: Mapping[Hashable, tuple[torch.Tensor, torch.Tensor]],
                     figure: Callable[[Mapping[Hashable, Mapping[str, torch.Tensor]]], torch.Tensor],
                     n_bins: int = 15, n_resamples: int = 1000, seed: int = 0,
                     groups: Mapping[Hashable, Hashable] | None = None) -> BootstrapResult:
    """A paired bootstrap over images of any figure of runs' accuracies, ECEs (``n_bins`` bins) and confidences.

    Args:
        outcomes: run key -> ``(confidence [N], correct [N])``, every run of a group on the same N images in the same order.
        figure: maps ``{key: {"ece": [S], "accuracy": [S], "confidence": [S]}}`` to the [S] figures (elementwise).
        groups: run key -> the image set (data set) it is on; None: one set. Each set's images are resampled apart
            (strata), paired within the set, so the sets may hold different numbers of images.
    """
    keys = list(outcomes)
    members: dict = {}
    for k in keys:
        members.setdefault(None if groups is None else groups[k], []).append(k)
    blocks = []  # per set: its keys, confidence [R, N] and correct [R, N]
    for group, group_keys in members.items():
        sizes = {len(outcomes[k][0]) for k in group_keys}
        if len(sizes) != 1:
            where = "" if group is None else f" of set {group!r}"
            raise ValueError(f"Expected every run{where} to hold the same images, but got runs of {sorted(sizes)} images")
        blocks.append((group_keys, torch.stack([outcomes[k][0] for k in group_keys]).double(),
                       torch.stack([outcomes[k][1] for k in group_keys])))
    sizes = [confidence.shape[1] for _, confidence, _ in blocks]
    strata = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes)) if len(sizes) > 1 else None

    def statistic(weights: torch.Tensor) -> torch.Tensor:  # [S, sum N] -> [S]
        per_key = {}
        for (group_keys, confidence, correct), w in zip(blocks, weights.split(sizes, dim=1)):
            total = w.sum(dim=1, keepdim=True)  # [S, 1]
            ece = ece_weighted(confidence, correct, w, n_bins=n_bins)  # [S, R]
            accuracy = w @ correct.double().T / total  # [S, N] @ [N, R] -> [S, R]
            mean_conf = w @ confidence.T / total  # [S, N] @ [N, R] -> [S, R]
            per_key.update({k: {"ece": ece[:, r], "accuracy": accuracy[:, r], "confidence": mean_conf[:, r]}
                            for r, k in enumerate(group_keys)})
        return figure(per_key)

    return bootstrap_weights(statistic, sum(sizes), n_resamples=n_resamples, seed=seed, strata=strata)
