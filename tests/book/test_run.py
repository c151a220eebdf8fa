"""The notebook runner behind `make book`: atomic output, loud failure, no stale site."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import nbformat
import pytest

pytestmark = pytest.mark.slow


def _notebook(path, *sources, parameters="x = 1"):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    param = nbformat.v4.new_code_cell(parameters)
    param.metadata["tags"] = ["parameters"]
    nb.cells = [param] + [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def book(tmp_path):
    root = tmp_path / "book"
    (root / "_build" / "html").mkdir(parents=True)
    (root / "_build" / "html" / "index.html").write_text("<html>an older, complete-looking site</html>")
    (root / "_config.yml").write_text("title: t\n")
    return root


def _run(*args):
    return subprocess.run([sys.executable, "-m", "vlmcal.book.run", *map(str, args)], capture_output=True, text=True, timeout=300)


def test_failing_notebook_fails_loudly_and_leaves_no_site(book, tmp_path):
    src = _notebook(tmp_path / "broken.ipynb", "y = x + 1", "raise RuntimeError('boom in cell two')")
    dest = book / "notebooks" / "broken.ipynb"
    dest.parent.mkdir()
    dest.write_text("{}")  # an older successful copy
    result = _run(src, dest)
    assert result.returncode == 1
    assert "boom in cell two" in result.stderr
    assert "raise RuntimeError" in result.stderr  # the failing cell's source is shown
    assert "\x1b[" not in result.stderr  # without terminal colour codes
    assert not dest.exists(), "a stale successful copy must not survive a failure"
    assert not (book / "_build" / "html").exists(), "the previous site must not look complete"
    assert (book / "_failed" / "broken.ipynb").exists()
    assert not list(dest.parent.glob(".*partial*"))


def test_successful_notebook_is_written_with_parameters(book, tmp_path):
    src = _notebook(tmp_path / "ok.ipynb", "print('value', x * 2)")
    dest = book / "notebooks" / "ok.ipynb"
    result = _run(src, dest, "-p", "x", "21")
    assert result.returncode == 0, result.stderr
    assert "done in" in result.stdout
    nb = nbformat.read(dest, as_version=4)
    outputs = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "value 42" in outputs
    assert (book / "_build" / "html" / "index.html").exists()  # success leaves the site alone


def test_missing_notebook_is_a_clear_error(tmp_path):
    from vlmcal.book.run import execute_notebook

    with pytest.raises(FileNotFoundError, match="make setup"):
        execute_notebook(tmp_path / "nope.ipynb", tmp_path / "out.ipynb")


def test_misspelt_parameter_stops_the_run_naming_the_closest(book, tmp_path):
    src = _notebook(tmp_path / "p.ipynb", "print(n_draws)", parameters="n_draws = 10  # draws\nseed = 0")
    dest = book / "notebooks" / "p.ipynb"
    result = _run(src, dest, "-p", "n_draw", "500")
    assert result.returncode == 2
    assert "no parameter `n_draw`" in result.stderr and "did you mean `n_draws`?" in result.stderr
    assert "n_draws, seed" in result.stderr  # every defined parameter is listed
    assert not dest.exists()


def test_yaml_lists_reach_the_notebook_as_lists(book, tmp_path):
    src = _notebook(tmp_path / "l.ipynb", "print('sum', sum(ks))", parameters="ks = [1]")
    dest = book / "notebooks" / "l.ipynb"
    result = _run(src, dest, "-p", "ks", "[2, 1000]")
    assert result.returncode == 0, result.stderr
    outputs = "".join(o.get("text", "") for c in nbformat.read(dest, as_version=4).cells for o in c.get("outputs", []))
    assert "sum 1002" in outputs


# ----------------------------------------------------------------------------- interruptions

def _start(*args, ignored=()):
    """The runner in its own session, with SIGINT and SIGHUP at their defaults as in a terminal's
    foreground job (or ignored, as ``nohup`` leaves SIGHUP)."""

    def dispositions():
        for signum in (signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN if signum in ignored else signal.SIG_DFL)

    return subprocess.Popen(
        [sys.executable, "-m", "vlmcal.book.run", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True, preexec_fn=dispositions,
    )


def _wait_for(path, process, timeout=120):
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the runner ended (status {process.returncode}) before {path.name} appeared:\n{process.stderr.read()}")
        assert time.monotonic() < deadline, f"{path.name} did not appear in {timeout} s"
        time.sleep(0.05)


def _running(processes):
    import psutil

    alive = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            pass
    return alive


def _slow_notebook(tmp_path):
    marker = tmp_path / "cell-running"
    src = _notebook(tmp_path / "slow.ipynb", f"import pathlib, time\npathlib.Path({str(marker)!r}).write_text('x')\ntime.sleep(600)")
    return src, marker


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: signal.Signals(s).name)
def test_signal_stops_the_kernel_removes_the_partial_and_says_what_stopped(book, tmp_path, signum):
    import psutil

    src, marker = _slow_notebook(tmp_path)
    dest = book / "notebooks" / "slow.ipynb"
    dest.parent.mkdir()
    dest.write_text("{}")  # an older complete copy
    runner = _start(src, dest)
    try:
        _wait_for(marker, runner)
        kernels = psutil.Process(runner.pid).children(recursive=True)
        assert kernels, "papermill's kernel was not found"
        (partial,) = (book / "_build" / "partial").iterdir()  # written where the book build never reads
        assert partial.name.startswith(".slow.ipynb.") and partial.name.endswith(".partial.ipynb")
        assert sorted(p.name for p in dest.parent.iterdir()) == ["slow.ipynb"]
        runner.send_signal(signum)
        _, err = runner.communicate(timeout=60)
    finally:
        runner.kill()
    assert runner.returncode == 128 + signum
    (line,) = [line for line in err.splitlines() if "INTERRUPTED" in line]
    assert f"by {signal.Signals(signum).name}" in line and str(src) in line
    assert _running(kernels) == [], "the kernel outlived the runner"
    assert not partial.exists() and dest.read_text() == "{}"
    assert not [p for p in book.rglob("*") if "partial.ipynb" in p.name]


def test_a_signal_ignored_at_start_stays_ignored(book, tmp_path):
    src, marker = _slow_notebook(tmp_path)
    runner = _start(src, book / "notebooks" / "slow.ipynb", ignored=(signal.SIGHUP,))  # as under nohup
    try:
        _wait_for(marker, runner)
        runner.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        assert runner.poll() is None, "SIGHUP stopped a run started with SIGHUP ignored"
        runner.send_signal(signal.SIGTERM)
        runner.communicate(timeout=60)
    finally:
        runner.kill()
    assert runner.returncode == 128 + signal.SIGTERM


def test_a_run_removes_what_killed_runs_left_in_the_book(book, tmp_path):
    src = _notebook(tmp_path / "ok.ipynb", "print('value', x)")
    dest = book / "notebooks" / "ok.ipynb"
    leftovers = [
        book / "notebooks" / ".ok.ipynb.0123456789abcdef.partial.ipynb",  # where an older runner wrote
        book / "_build" / "partial" / ".ok.ipynb.fedcba9876543210.partial.ipynb",
        book / "_failed" / ".other.ipynb.00112233aabbccdd.partial.ipynb",
        book / "_verdicts" / ".C11.json.8899aabbccddeeff.tmp",
    ]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()  # 0 bytes, as a killed run leaves them
    result = _run(src, dest)
    assert result.returncode == 0, result.stderr
    assert [p for p in leftovers if p.exists()] == []
    assert sorted(p.name for p in dest.parent.iterdir()) == ["ok.ipynb"]
