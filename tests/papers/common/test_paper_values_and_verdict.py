"""The data file of paper figures, and the verdict record."""

import json

import pandas as pd
import pytest

from vlmcal.papers.common.paper_values import paper_value, paper_values
from vlmcal.papers.common.verdict import Verdict, load_verdicts


def test_every_row_names_its_source_and_claims_exist():
    frame = paper_values()
    assert frame["source"].notna().all() and (frame["source"].str.len() > 5).all()
    assert set(frame["claim"].dropna()) == {f"C{i}" for i in range(1, 13)}


def test_values_match_the_claims_sheet():
    # A few figures from the claims sheet (../shared/CLAIMS.md), read back through the loader.
    assert paper_value("c7_ece_init").value == 4.43
    assert paper_value("c7_ece_tpt").value == 11.6
    assert paper_value("c9_vitb16_hard_ctpt_ece").value == 5.13
    assert paper_value("c12_coop_new_ece").value == 14.58
    assert paper_value("es_ece_bins").value == 15
    assert paper_value("c11_statement").value is None



def test_unknown_id_and_claim_raise():
    with pytest.raises(KeyError, match="nope"):
        paper_value("nope")
    with pytest.raises(KeyError, match="C99"):
        paper_values("C99")


def _verdict(claim="C11", holds=True):
    return Verdict(claim, "s", "p", "m", "ci", holds, "none")


def test_verdict_requires_a_computed_bool():
    with pytest.raises(TypeError):
        Verdict("C1", "s", "p", "m", "", "yes", "b")


def test_verdict_record_and_load(tmp_path, monkeypatch):
    monkeypatch.delenv("VLMCAL_VERDICT_DIR", raising=False)
    assert _verdict().record() is None
    _verdict("C11").record(tmp_path)
    _verdict("C2", holds=False).record(tmp_path)
    _verdict("C10").record(tmp_path)
    assert not list(tmp_path.glob(".*"))  # no temporary files left
    table = load_verdicts(tmp_path)
    assert list(table.index) == ["C2", "C10", "C11"]
    assert table.loc["C2", "verdict"] == "does not hold here"
    assert json.loads((tmp_path / "C11.json").read_text())["holds"] is True
    assert "holds here" in _verdict()._repr_markdown_()


def test_table2_hard_prompt_tpt_accuracy_is_mean_of_its_parts():
    # CLAIMS gives the four per-set values behind the TPT average of Table 2 (ViT-B/16, hard prompt).
    assert sum([52.6, 63.0, 76.7, 47.5]) / 4 == pytest.approx(paper_value("t2_vitb16_hard_tpt_acc").value, abs=0.06)


def test_untested_verdict_must_say_why():
    with pytest.raises(ValueError, match="why"):
        Verdict("C1", "s", "p", "m", "", None, "b")
    v = Verdict("C1", "s", "p", "m", "", None, "b", why="no supervised baseline for this data set")
    assert v.outcome == "not tested here"
