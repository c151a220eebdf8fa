"""Every ```python block of README.md, run as typed, so that the quick start can never rot.

Each block runs on its own in a fresh interpreter (the one running the tests), offline, in an
empty directory with its own vlmcal cache, and must exit cleanly.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each block starts torch; the backbone example loads open_clip

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```python blocks of a Markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


BLOCKS = python_blocks((ROOT / "README.md").read_text())


def test_readme_has_the_three_examples():
    assert len(BLOCKS) >= 3, f"expected the README's quick start (measure, calibrate, backbone), found {len(BLOCKS)} blocks"


def test_python_blocks_are_read_from_the_text():
    text = "x\n```python\nprint(1)\n```\n```bash\nmake a\n```\n```python\nimport os\nos.getcwd()\n```\n"
    assert python_blocks(text) == ["print(1)\n", "import os\nos.getcwd()\n"]


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i + 1}" for i in range(len(BLOCKS))])
def test_readme_example_runs_as_typed(code, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", VLMCAL_CACHE_DIR=str(tmp_path / "cache"),
               CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"this README example failed:\n{code}\n--- stdout\n{done.stdout[-2000:]}\n--- stderr\n{done.stderr[-4000:]}"
    assert done.stdout.strip(), "the example printed nothing"
