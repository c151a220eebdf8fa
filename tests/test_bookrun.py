"""The notebook runner behind `make book`: atomic output, loud failure, no stale site."""

from __future__ import annotations

import subprocess
import sys

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
