"""The GitHub workflows in .github/workflows: valid, and running the README's two commands.

Everything here is offline: the workflows are checked against the GitHub workflow schema that
check-jsonschema ships (`--builtin-schema vendor.github-workflows`, no download), and read with
PyYAML for what the schema cannot know: that the build steps are the README's commands, that
the Pages workflow publishes book/_build/html, and that the cache is the Makefile's.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
# A `run:` line that builds or tests (as opposed to installing system packages).
BUILDS = re.compile(r"(^|[\s;&|(])(make|pytest|jb|papermill|pip3?|python3?|\S*/bin/\S+)(\s|$)")


def readme_commands() -> list[str]:
    """The `make ...` commands that README.md's ```bash blocks show (its "Two commands"), in order."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks, "README.md has no ```bash block"
    commands = [re.sub(r"\s+#.*$", "", line).strip() for block in blocks for line in block.splitlines()]
    return [" ".join(c.split()) for c in commands if c.startswith("make ")]


def load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as True
    return workflow


def steps(workflow: dict):
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_name, step


def run_lines(workflow: dict) -> list[str]:
    lines = []
    for _, step in steps(workflow):
        for line in str(step.get("run", "")).splitlines():
            line = " ".join(line.split())
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def build_lines(workflow: dict) -> list[str]:
    return [line for line in run_lines(workflow) if BUILDS.search(line)]


def uses(workflow: dict, action: str) -> list[tuple[str, dict]]:
    return [(job, step) for job, step in steps(workflow) if str(step.get("uses", "")).split("@")[0] == action]


def pages_workflow() -> dict:
    found = [load(p) for p in WORKFLOWS if uses(load(p), "actions/deploy-pages")]
    assert len(found) == 1, "expected one workflow that deploys with actions/deploy-pages"
    return found[0]


def makefile_default(name: str) -> str:
    match = re.search(rf"^(?:export\s+)?{name}\s*\?=\s*(.+)$", (ROOT / "Makefile").read_text(), flags=re.M)
    assert match, f"the Makefile sets no default for {name}"
    return match.group(1).strip()


def test_the_two_workflows_exist():
    assert len(WORKFLOWS) >= 2, f"expected a test and a Pages workflow in .github/workflows, found {WORKFLOWS}"
    assert readme_commands() == ["make test", "make book"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_github_schema(path):
    assert CHECK_JSONSCHEMA.exists(), f"{CHECK_JSONSCHEMA} is missing: install the test extras (make setup)"
    done = subprocess.run([str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{path.name} does not validate:\n{done.stdout}{done.stderr}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_build_steps_are_the_readme_commands(path):
    workflow = load(path)
    allowed = readme_commands()
    builds = build_lines(workflow)
    assert builds, f"{path.name} runs none of the README's commands"
    others = [line for line in builds if line not in allowed]
    assert not others, f"{path.name} builds or tests with {others}; use the README's commands {allowed}"


def test_each_readme_command_runs_in_its_workflow():
    pages = pages_workflow()
    assert build_lines(pages) == ["make book"]
    tests = [load(p) for p in WORKFLOWS if "make test" in build_lines(load(p))]
    assert len(tests) == 1, "expected one workflow that runs `make test`"
    on = tests[0]["on"]
    assert "push" in on and "pull_request" in on, "`make test` must run on pushes and on pull requests"


def test_pages_workflow_builds_on_main_and_publishes_the_book():
    workflow = pages_workflow()
    assert "main" in workflow["on"]["push"]["branches"]
    (build_job, upload), = uses(workflow, "actions/upload-pages-artifact")
    assert upload["with"]["path"].strip("/").removeprefix("./") == "book/_build/html"
    assert uses(workflow, "actions/configure-pages")
    job_steps = workflow["jobs"][build_job]["steps"]
    make_book = next(i for i, s in enumerate(job_steps) if s.get("run", "").strip() == "make book")
    assert make_book < job_steps.index(upload), "the site is uploaded after `make book` built it"

    (deploy_job, deploy), = uses(workflow, "actions/deploy-pages")
    job = workflow["jobs"][deploy_job]
    assert build_job in ([job["needs"]] if isinstance(job["needs"], str) else job["needs"])
    assert job["environment"] == {"name": "github-pages", "url": f"${{{{ steps.{deploy['id']}.outputs.page_url }}}}"}
    permissions = {**workflow.get("permissions", {}), **job.get("permissions", {})}
    assert permissions.get("pages") == "write" and permissions.get("id-token") == "write"
    assert workflow["permissions"] == {"contents": "read"}, "the build job needs to read the repository only"
    assert workflow["concurrency"]["cancel-in-progress"] is False, "a deployment in progress is never cancelled"


def test_book_workflow_keeps_the_vlmcal_cache():
    workflow = pages_workflow()
    (job_name, cache), = uses(workflow, "actions/cache")
    default = makefile_default("VLMCAL_CACHE_DIR")
    assert default.startswith("$(CURDIR)/")
    assert cache["with"]["path"] == default.removeprefix("$(CURDIR)/")
    key = cache["with"]["key"]
    assert re.search(r"hashFiles\('vlmcal/\*\*', 'notebooks/\*\*'\)", key), key
    prefix = key.split("${{ hashFiles")[0]
    assert prefix in [k.strip() for k in cache["with"]["restore-keys"].splitlines()], "a partial match must restore the trained models"
    job_steps = workflow["jobs"][job_name]["steps"]
    assert job_steps.index(cache) < next(i for i, s in enumerate(job_steps) if s.get("run", "").strip() == "make book")


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_job_has_a_timeout_and_setup_is_the_makefiles(path):
    workflow = load(path)
    for name, job in workflow["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"{path.name}: job {name} has no timeout-minutes"
    if not build_lines(workflow):
        return
    # The torch pair is the Makefile's (a workflow may add pip options, such as a CPU-only index).
    pins = makefile_default("TORCH_PINS")
    assert workflow.get("env", {}).get("TORCH_PINS", pins).startswith(pins), f"{path.name}: TORCH_PINS differ from the Makefile's {pins}"
    (_, python), = uses(workflow, "actions/setup-python")
    assert str(python["with"]["python-version"]) == "3.11"
    assert uses(workflow, "actions/setup-node"), f"{path.name}: `make setup` needs npm for MathJax"
    assert any("apt-get install -y dataset-fashion-mnist wordnet-base" in line for line in run_lines(workflow))
