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


# Fixtures that train a model, by the file that defines them ("*" for this file's). A test that uses
# one trains (or reads what its module trained), so it is marked slow: `make test-fast` skips it.
TRAINING_FIXTURES = {
    ("*", "standin"),
    ("test_standins.py", "tiny"),
    ("test_supervised.py", "clf"),
    ("test_cards.py", "vlm"),
    ("test_cards.py", "clf"),
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.path.name
        used = set(getattr(item, "fixturenames", ()))
        # A parameter that names a fixture the test looks up itself (request.getfixturevalue).
        used |= {v for v in getattr(getattr(item, "callspec", None), "params", {}).values() if isinstance(v, str)}
        if any(where in ("*", module) and name in used for where, name in TRAINING_FIXTURES):
            item.add_marker(pytest.mark.slow)
