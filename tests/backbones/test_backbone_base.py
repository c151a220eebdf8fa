"""The device every backbone is put on: a name that torch knows, and CUDA only where there is CUDA."""

from __future__ import annotations

import pytest
import torch

from vlmcal.backbones.base import default_device


def test_default_device_picks_and_checks():
    assert default_device("cpu") == torch.device("cpu")
    assert default_device("").type == default_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="`device` to be 'cpu', 'cuda'.*but got 'gpu0'"):
        default_device("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="`device` is 'cuda', but this machine has no CUDA device"):
        default_device("cuda")
