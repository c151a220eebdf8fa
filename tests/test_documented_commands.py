"""Every shell command that README.md, CONTRIBUTING.md and the book's pages show a reader, run as typed.

The commands are read from the files' ```bash blocks at collection time (every ``book/*.md``
page is read, so a command added to a new page needs a plan too), so the tests follow
the documentation: a new command without a plan below fails, and a changed one is run as it
now reads. Each command gets one plan:

- ``as_typed``: run exactly as written, in a sandbox laid out like a clone (its own ``book/``,
  the clone's ``.venv`` and notebooks), and must succeed;
- ``in_ci``: ``make test`` and ``make book`` are what CI's ``.ci/run`` runs on every
  submission; here it is checked that ``.ci/run`` runs them exactly so;
- ``needs_clip``: a command that names real CLIP weights (or a GPU, or data that cannot be
  installed here). It is run as typed and must stop at once with vlmcal's clear message,
  then run again with the substitutions listed (the tiny random-weight open_clip model, the
  CPU, a small image folder, small parameters), and must succeed.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ("README.md", "CONTRIBUTING.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "book").glob("*.md")))
TINY = "openclip:vlmcal-tiny:random"


def documented_commands(text: str) -> list[str]:
    """The commands in ```bash blocks: continuation lines joined, comments and blank lines dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for command in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s+#.*$", "", command).strip()  # a trailing comment
            if command and not command.startswith("#"):
                commands.append(" ".join(command.split()))
    return commands


@dataclass(frozen=True)
class Plan:
    kind: str  # "as_typed", "in_ci" or "needs_clip"
    writes: str = ""  # a notebook the command writes, checked after it ran
    expect: str = ""  # a regex that the written notebook's sources and outputs must match
    refusal: str = ""  # needs_clip: a regex of the clear message the command as typed stops with
    substitutions: dict[str, str] = field(default_factory=dict)  # needs_clip: what replaces what
    extra: str = ""  # needs_clip: small parameters appended to the substituted command


C11 = "notebooks/c11_max_softmax_vs_logit_spread.ipynb"
NO_WEIGHTS = r"are not on this machine|no CUDA device"
PLANS = {
    "make test": Plan("in_ci"),
    "make book": Plan("in_ci"),
    f".venv/bin/papermill {C11} out.ipynb -p n_draws 50000 -p n_classes '[2, 1000]'": Plan(
        "as_typed", writes="out.ipynb", expect=r"n_classes\s+2\s+1000\s"),
    "make setup": Plan("as_typed"),
    "source .venv/bin/activate": Plan("as_typed"),
    f"papermill {C11} out.ipynb -p n_draws 50000 -p n_classes '[2, 10, 1000]'": Plan(
        "as_typed", writes="out.ipynb", expect=r"n_classes\s+2\s+10\s+1000\s"),
    f"python -m vlmcal.book.run {C11} book/{C11} -p seed 1": Plan("as_typed", writes=f"book/{C11}", expect=r"seed = 1"),
    f".venv/bin/python -m vlmcal.book.run {C11} book/{C11} -p seed 1": Plan("as_typed", writes=f"book/{C11}", expect=r"seed = 1"),
    "jb build -W book/": Plan("as_typed", writes="book/_build/html/index.html"),
    **{f"{python}python -m vlmcal.book.run --profile book/profiles/tiny.yml --out tiny-book": Plan(
        "as_typed", writes="tiny-book/notebooks/claims_summary.ipynb", expect=r"Compared with another build")
       for python in ("", ".venv/bin/")},
    "papermill notebooks/zero_shot.ipynb out.ipynb -p backbone openclip:ViT-B-16:openai -p device cuda": Plan(
        "needs_clip", refusal=NO_WEIGHTS, writes="out.ipynb", expect=re.escape(TINY),
        substitutions={"openclip:ViT-B-16:openai": TINY, "device cuda": "device cpu"},
        extra="-p max_samples 60 -p n_examples 2 -p shifts '[gaussian_noise]' -p family '[]'"),
    "papermill notebooks/dor_base_to_new.ipynb out.ipynb -p backbone openclip:ViT-B-16:openai -p device cuda -p epochs 200": Plan(
        "needs_clip", refusal=NO_WEIGHTS, writes="out.ipynb", expect=re.escape(TINY),
        substitutions={"openclip:ViT-B-16:openai": TINY, "device cuda": "device cpu", "epochs 200": "epochs 2"},
        extra="-p shots 2 -p seeds '[1, 2]' -p pool_size 50 -p n_test 60 -p weights '[1.0]' -p n_resamples 50"),
    "torchrun --standalone --nproc_per_node 8 -m vlmcal.book.precompute ctpt_tables -p backbone openclip:ViT-B-16:openai "
    "-p n_images 0 -p device cuda": Plan(
        "needs_clip", refusal=NO_WEIGHTS,
        substitutions={"nproc_per_node 8": "nproc_per_node 2", "openclip:ViT-B-16:openai": TINY, "n_images 0": "n_images 8",
                       "device cuda": "device cpu"},
        extra="-p n_calibration 0 -p shifts '[]' -p ensemble '[]' -p batch_size 2"),
    "papermill notebooks/es_ts_across_shifts.ipynb out.ipynb -p backbones '[\"openclip:ViT-B-32:openai\"]' "
    "-p dataset cifar10:/path/to/data": Plan(
        "needs_clip", refusal=NO_WEIGHTS + "|/path/to/data", writes="out.ipynb", expect=re.escape(TINY),
        substitutions={"openclip:ViT-B-32:openai": TINY, "cifar10:/path/to/data": "imagefolder:images"},
        extra="-p seeds '[0]' -p shifts '[gaussian_noise]' -p severities '[1]' -p n_resamples 20"),
}

CASES = [(doc, command) for doc in DOCUMENTS for command in documented_commands((ROOT / doc).read_text())]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A directory laid out like a clone after ``make setup``, so that commands write only here.

    The clone's ``.venv``, library, notebooks, Makefile and set-up files are linked in; ``book/``
    is its own copy, with every page present unexecuted so that ``jb build`` finds the whole
    table of contents. A small image folder stands in for a torchvision data set.
    """
    root = tmp_path_factory.mktemp("clone")
    for name in (".venv", "vlmcal", "notebooks", "Makefile", "pyproject.toml", "_config.yml", "_toc.yml"):
        (root / name).symlink_to(ROOT / name)
    book = root / "book"
    (book / "notebooks").mkdir(parents=True)
    for item in (ROOT / "book").iterdir():
        if item.name in ("_config.yml", "_toc.yml"):
            (book / item.name).symlink_to(os.readlink(item))  # relative links, as in the clone
        elif item.is_dir() and (item.name.startswith("_") or item.name == "profiles") and item.name not in ("_build", "_failed"):
            (book / item.name).symlink_to(item)  # MathJax, the Sphinx extensions, templates, profiles
        elif item.suffix == ".md":
            (book / item.name).write_text(item.read_text())
    stamp = time.time()  # one time for every page, newer than its source: `jb build book/` finds them all current
    for source in sorted((ROOT / "notebooks").glob("*.ipynb")):
        (book / "notebooks" / source.name).write_bytes(source.read_bytes())
        os.utime(book / "notebooks" / source.name, (stamp, stamp))
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog", "fish"):
        (root / "images" / cls).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / "images" / cls / f"{i}.png")
    return root


def _run(command: str, cwd: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    (tmp_path / "verdicts").mkdir(exist_ok=True)  # where pages record verdicts, and the summary page reads them
    env = dict(os.environ, HF_HUB_OFFLINE="1", VLMCAL_CACHE_DIR=str(tmp_path / "cache"),
               VLMCAL_VERDICT_DIR=str(tmp_path / "verdicts"), CUDA_VISIBLE_DEVICES="")
    env.pop("VIRTUAL_ENV", None)
    # A reader's shell after `source .venv/bin/activate` (the set-up step this page starts with).
    env["PATH"] = f"{cwd / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _outputs(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    texts = [cell.source for cell in nb.cells]
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            texts.append(out.get("text", "") if "text" in out else str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


def test_every_documented_command_has_a_plan():
    missing = [f"{doc}: {command}" for doc, command in CASES if command not in PLANS]
    assert not missing, "documented commands that no test runs (add each to PLANS):\n" + "\n".join(missing)
    assert len(CASES) >= 8, f"expected the commands of README.md and the book's pages, found only {CASES}"


@pytest.mark.parametrize("doc, command", CASES, ids=[f"{d}:{c[:60]}" for d, c in CASES])
def test_documented_command_runs_as_typed(doc, command, sandbox, tmp_path):
    plan = PLANS.get(command)
    if plan is None:
        pytest.fail(f"{doc} shows `{command}`, which has no plan in PLANS")
    if plan.kind == "in_ci":
        ci_commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
        assert command in ci_commands, f"{doc} shows `{command}`, but .ci/run does not run it"
        return
    written = sandbox / plan.writes if plan.writes else None
    if written is not None and written.exists():
        written.unlink()
    if plan.kind == "needs_clip":
        refused = _run(command, sandbox, tmp_path)
        assert refused.returncode != 0, f"`{command}` ran here, but this machine has no CLIP weights:\n{refused.stdout[-2000:]}"
        assert re.search(plan.refusal, refused.stdout + refused.stderr), (
            f"`{command}` failed without vlmcal's clear message:\n{refused.stderr[-3000:]}")
        for old, new in plan.substitutions.items():
            assert old in command, f"substitution {old!r} no longer matches the documented command"
            command = command.replace(old, new)
        command = f"{command} {plan.extra}"
    result = _run(command, sandbox, tmp_path)
    assert result.returncode == 0, f"`{command}` failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    if written is not None:
        assert written.exists(), f"`{command}` did not write {plan.writes}"
        if plan.expect:
            assert re.search(plan.expect, _outputs(written)), f"{plan.writes} does not show {plan.expect!r}"


def test_documented_commands_are_read_from_the_files():
    text = "```bash\nmake a   # comment\n# only a comment\npapermill x.ipynb \\\n    -p a '[1, 2]'\n```\n```python\nnot_bash()\n```"
    assert documented_commands(text) == ["make a", "papermill x.ipynb -p a '[1, 2]'"]

