"""The GPU path: the tests that need a CUDA device (skipped without one; ``benchmarks/gpu_check.sh`` runs them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vlmcal.adaptation import TPTSettings, tpt_batched, tpt_reference, zero_batched
from vlmcal.backbones import load_backbone
from vlmcal.data.templates import FASHION_MNIST_CLASSNAMES

ROOT = Path(__file__).resolve().parents[1]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


@pytest.fixture(scope="module")
def tiny_cuda():
    return load_backbone("openclip:vlmcal-tiny:random", device="cuda")


@pytest.mark.cuda
@needs_cuda
def test_tpt_batched_gives_the_reference_predictions_on_cuda(tiny_cuda):
    torch.manual_seed(1)
    images = torch.randn(6, 3, *tiny_cuda.image_size)
    settings = TPTSettings(n_views=16, selection=0.25, ctpt_lambda=20.0, lr=5e-2)
    batched = tpt_batched(tiny_cuda, images, FASHION_MNIST_CLASSNAMES, settings)
    reference = tpt_reference(tiny_cuda, images, FASHION_MNIST_CLASSNAMES, settings)
    assert torch.equal(batched.logits.argmax(1), reference.logits.argmax(1))
    torch.testing.assert_close(batched.logits.softmax(1), reference.logits.softmax(1), atol=2e-3, rtol=0)  # float16 text


@pytest.mark.cuda
@needs_cuda
def test_zero_runs_on_cuda(tiny_cuda):
    torch.manual_seed(1)
    result = zero_batched(tiny_cuda, torch.randn(3, 3, *tiny_cuda.image_size), FASHION_MNIST_CLASSNAMES,
                          TPTSettings(n_views=16, selection=0.3))
    torch.testing.assert_close(result.probs.sum(-1), torch.ones(3))


@pytest.mark.cuda
@needs_cuda
def test_image_features_on_cuda_match_the_cpu(tiny_cuda):
    cpu = load_backbone("openclip:vlmcal-tiny:random", device="cpu")
    torch.manual_seed(2)
    images = torch.randn(8, 3, *cpu.image_size)
    torch.testing.assert_close(tiny_cuda.encode_images(images.cuda()).float().cpu(), cpu.encode_images(images).float(),
                               atol=1e-3, rtol=1e-3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_gpu_check_says_there_is_no_cuda_and_exits_2():
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PY": sys.executable})
    assert done.returncode == 2
    assert "gpu_check: no CUDA device on this machine" in done.stderr and "run it on a machine with a CUDA GPU" in done.stderr
