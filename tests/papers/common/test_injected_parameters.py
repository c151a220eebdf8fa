"""A misspelt ``-p`` name under plain papermill: the page refuses it (papermill itself only warns)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vlmcal.papers.common.params import UnknownParameter, check_injected_parameters

ROOT = Path(__file__).resolve().parents[3]
PARAMETERS = "sigmas = [0.0, 1.0]\nn_draws = 20000  # Monte Carlo draws\nseed: int = 0\n"


def test_an_injected_name_the_parameters_cell_lacks_is_refused_with_the_closest():
    history = ["", PARAMETERS, "# Parameters\nn_draw = 500\n", "import numpy"]
    with pytest.raises(UnknownParameter, match=r"c11 has no parameter `n_draw`: did you mean `n_draws`\? Its parameters are: sigmas, n_draws, seed\."):
        check_injected_parameters(history, page="c11")


def test_known_names_and_no_injection_pass():
    check_injected_parameters(["", PARAMETERS, "# Parameters\nn_draws = 500\nseed = 3\n"], page="c11")
    check_injected_parameters(["", PARAMETERS, "x = 1"], page="c11")  # nothing injected: the defaults
    check_injected_parameters([], page="c11")
    check_injected_parameters(page="c11")  # outside a kernel: nothing to read, nothing refused


@pytest.mark.slow
def test_plain_papermill_stops_a_page_with_a_misspelt_name(tmp_path):
    papermill = Path(sys.executable).parent / "papermill"
    out = tmp_path / "out.ipynb"
    done = subprocess.run([str(papermill), str(ROOT / "notebooks" / "c11_max_softmax_vs_logit_spread.ipynb"), str(out),
                           "-p", "n_draw", "500", "--cwd", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert "c11_max_softmax_vs_logit_spread has no parameter `n_draw`: did you mean `n_draws`?" in done.stderr + done.stdout
