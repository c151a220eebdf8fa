"""Test-wide settings (no hub, no display, fixed hashing) and the two tiny backbones the tuning tests share."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def standin(tmp_path_factory):
    """A tiny stand-in (4-8-8 CNN, one epoch on 384 scenes), trained once per test session."""
    from vlmcal import standins
    from vlmcal.standins.corpus import CorpusConfig

    config = standins.StandInConfig(widths=(4, 8, 8), epochs=1, batch_size=64, warmup_steps=2, corpus=CorpusConfig(n_scenes=384))
    return standins.load_default("tiny", device="cpu", cache_dir=tmp_path_factory.mktemp("standin-cache"), progress=False, config=config)


@pytest.fixture(scope="session")
def openclip_tiny():
    """The tiny random-weight open_clip model."""
    from vlmcal.backbones.openclip import load_openclip

    return load_openclip("openclip:vlmcal-tiny:random", device="cpu")
