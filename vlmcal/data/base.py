"""The common face of vlmcal's data sets."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

__all__ = ["LabelledDataset"]


class LabelledDataset(Dataset):
    """The common face of vlmcal's data sets.

    Attributes:
        class_names: C names; label ``k`` is ``class_names[k]``.
        labels: [N] int64 labels.
        identity: JSON-able dict naming the data exactly (a cache key's part).
    """

    class_names: list[str]
    labels: torch.Tensor
    identity: dict[str, Any]

    def __len__(self) -> int:
        return len(self.labels)
