"""The summary page's Markdown: one short row per claim, each linked to its full record."""

from __future__ import annotations

import re

import pytest
from markdown_it import MarkdownIt

from vlmcal.papers.common.verdict import (
    SHORT_CHARS, Verdict, claim_anchor, load_verdicts, read_verdicts, summary_table, verdict_details, verdict_tally,
)

LONG_REASON = (
    "on clean data ECE went from 0.0123 to 0.0119; 0.0123 before TS is already at or below the paper's post-TS level "
    "of 0.05, so TS had little to fix there; fitted temperatures: stand-in A 1.02, stand-in B 0.98"
)


@pytest.fixture
def verdicts(tmp_path):
    recorded = [
        Verdict("C11", "The max softmax rises with the logit spread", "rises [Wang, Li & Wei, ICML 2025, Thm. 1]",
                "rises at every step of the grid", "", True, "none: simulation"),
        Verdict("C2", "After temperature scaling, VLM calibration improves markedly",
                "average ECE after temperature scaling: 0.05 fraction [Tu et al., ICML 2024, Sec. 4 (about 0.05)]",
                "VLMs' mean ECE over 9 condition(s): 0.0512 before TS, 0.0300 after, 59% of before (marked: at most 50%)",
                "95% CI of after/before [48%, 70%]", False, "`standin:vlm-a`, `standin:vlm-b`", why=LONG_REASON),
        Verdict("C1", "VLMs before calibration are not better calibrated", "similar or worse [Tu et al., Fig. 1]",
                "VLMs' mean ECE before TS: 0.0410 | <b>below</b> 0.05", "", None, "`standin:vlm-a`",
                why="no supervised baseline was in this run, so the VLMs' ECE had nothing to be compared with"),
    ]
    for v in recorded:
        v.record(tmp_path)
    return read_verdicts(tmp_path)


def _table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("|")][2:]  # after the header and its rule


def test_read_verdicts_sorts_by_claim_number(verdicts, tmp_path):
    assert [v.claim for v in verdicts] == ["C1", "C2", "C11"]
    assert list(load_verdicts(tmp_path).index) == ["C1", "C2", "C11"]  # the DataFrame view still works


def test_table_has_one_row_per_claim_with_paper_and_verdict(verdicts):
    rows = _table_rows(summary_table(verdicts))
    assert len(rows) == 3
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]
    assert all(len(row) == 5 for row in cells), "a pipe in a text must not add a column"
    assert [row[1] for row in cells] == ["ES", "ES", "DOR"]  # from vlmcal.papers.common.paper_values
    assert [row[2].replace("&nbsp;", " ") for row in cells] == ["– not tested", "✗ does not hold", "✓ holds"]


def test_every_link_in_the_table_has_its_target_in_the_details(verdicts):
    table, details = summary_table(verdicts), verdict_details(verdicts)
    links = re.findall(r"\]\(#([\w-]+)\)", table)
    assert links == [claim_anchor(c) for c in ("C1", "C2", "C11")]
    for anchor in links:
        assert details.count(f'id="{anchor}"') == 1
    back = set(re.findall(r"\]\(#([\w-]+)\)", details))
    assert back and all(f"id='{anchor}'" in table for anchor in back)  # "back to the table" links land on it


def test_long_reasons_stay_out_of_the_table_and_are_in_the_details(verdicts):
    table, details = summary_table(verdicts), verdict_details(verdicts)
    for part in LONG_REASON.split("; "):
        assert part not in table and part in details
    assert "95% CI" not in table and "standin:vlm-b" not in table  # interval and backbone: details only
    assert "(marked: at most 50%)" in details and "(marked: at most 50%)" not in table
    assert "Tu et al." not in table  # the paper figure's source is in the details only
    for row in _table_rows(table):
        for cell in re.split(r"(?<!\\)\|", row)[4:6]:
            assert len(cell.strip()) <= SHORT_CHARS + 6  # + the escapes of one pipe and one "<"


def test_markdown_renders_as_one_table_with_the_anchors(verdicts):
    # As MyST-NB renders a displayed Markdown output with `nb_render_markdown_format: gfm`.
    html = MarkdownIt("commonmark").enable("table").render(summary_table(verdicts) + "\n\n" + verdict_details(verdicts))
    assert html.count("<table>") == 1 and html.count("<tr>") == 4
    assert "<b>" not in html and "&lt;b&gt;below" in html  # text is escaped, never raw HTML
    for claim in ("C1", "C2", "C11"):
        assert f'<a href="#{claim_anchor(claim)}">{claim}</a>' in html
        assert f'<a id="{claim_anchor(claim)}"></a>' in html


def test_tally_counts_outcomes(verdicts):
    assert verdict_tally(verdicts) == "**1** holds here, **1** does not hold here, **1** not tested here (3 claims reproduced so far)."


def test_no_verdicts(tmp_path):
    assert read_verdicts(tmp_path) == []
    assert "No verdict" in summary_table([]) and verdict_details([]) == ""
    assert load_verdicts(tmp_path).empty


def test_unknown_claim_names_the_known_ones():
    with pytest.raises(KeyError, match="C99.*claims"):
        summary_table([Verdict("C99", "s", "p", "m", "", True, "none")])


def test_code_spans_are_kept_as_written():
    v = Verdict("C5", "s", "p", "ECE < 0.05 for `lower < conf`", "", True, "`openclip:ViT-B-32|openai`")
    html = MarkdownIt("commonmark").render(verdict_details([v]))
    assert "<code>lower &lt; conf</code>" in html and "ECE &lt; 0.05" in html
    assert "<code>openclip:ViT-B-32|openai</code>" in html  # no table here, so no escaped pipe either


def test_a_long_head_loses_its_remarks_not_its_notation():
    v = Verdict(
        "C11", "s",
        "For K logits i.i.d. N(mu, sigma^2), E[max softmax] increases strictly with sigma, for every mu [DOR, Prop. 3.1]",
        "median smallest sufficient n over 3 VLM(s) and 9 (model, seed) pair(s): 100 (sufficient: mean ECE after TS "
        "within 0.0100 of the full calibration set's 0.0148; bar: at most 50 samples); at n = 50 it is +0.0138 away",
        "", False, "none", why="w",
    )
    row = _table_rows(summary_table([v]))[0]
    assert "i.i.d. N(mu, sigma^2), E[max softmax] increases strictly with…" in row and "Prop. 3.1" not in row
    assert "| median smallest sufficient n over 3 VLM(s) and 9 pair(s): 100 |" in row


def test_verdict_of_renders_numbers_by_kind_and_records_them(tmp_path):
    import numpy as np

    from vlmcal.papers.common.verdict import Verdict, read_verdicts, render

    assert render("{a:ece} {a:ece_change} {s:share} {d:points} {t:temperature} {r:r} {n:count} {x:.2e}",
                  {"a": 0.01234, "s": 0.456, "d": -0.0717, "t": 1.5, "r": -0.25, "n": 7, "x": 1234.5}) == \
        "0.0123 +0.0123 46% -7.17 1.50 -0.250 7 1.23e+03"
    v = Verdict.of("C2", holds=False, backbone="b", numbers={"before": np.float64(0.2), "n": np.int64(4)},
                   measured="ECE {before:ece} over {n:count} conditions", why="only {n:count}")
    assert (v.measured, v.why, v.statement) == ("ECE 0.2000 over 4 conditions", "only 4", statement_of("C2"))
    assert v.paper_figure.startswith(v.statement) and v.numbers == {"before": 0.2, "n": 4}
    assert type(v.numbers["n"]) is int and type(v.numbers["before"]) is float
    v.record(tmp_path)
    assert read_verdicts(tmp_path) == [v]


def statement_of(claim):
    from vlmcal.papers.common.rules import statement

    return statement(claim)


def test_noise_reason_states_interval_bar_half_width_and_margin():
    from vlmcal.metrics import BootstrapResult
    from vlmcal.papers.common.rules import compare_with_bar, noise_reason

    rise = BootstrapResult(0.02, -0.03, 0.07, 0.95, 200, 0)
    test = compare_with_bar(rise, bar=0.05, margin=0.05, at_most=True)
    assert test.holds is None
    assert noise_reason("the ECE rise", rise, test, 0.05, 0.05, kind="points", width_kind="percent", unit=" points") == (
        "not testable at this sample size: the 95% CI of the ECE rise [-3.00, +7.00] points contains the bar "
        "(+5.00 points) and its half-width 5.00 points is not below the margin of 5.00 points")


def test_compare_verdicts_sets_each_outcome_beside_the_other_builds():
    from vlmcal.papers.common.verdict import compare_verdicts

    here = [Verdict("C1", "s", "p", "ECE 0.10", "", True, "b"), Verdict("C2", "s", "p", "ECE 0.20", "", False, "b"),
            Verdict("C3", "s", "p", "m", "", None, "b", why="noise")]
    there = [Verdict("C1", "s", "p", "ECE 0.12", "", True, "b"), Verdict("C2", "s", "p", "ECE 0.05", "", True, "b")]
    lines = compare_verdicts(here, there).splitlines()
    assert lines[0] == "**1** of the 2 claims in both builds have the same outcome here as in the default book."
    assert lines[4] == "| C1 | ✓&nbsp;holds | ✓&nbsp;holds | yes | ECE 0.10 | ECE 0.12 |"
    assert lines[5] == "| C2 | ✗&nbsp;does&nbsp;not&nbsp;hold | ✓&nbsp;holds | **no** | ECE 0.20 | ECE 0.05 |"
    assert lines[6] == "| C3 | –&nbsp;not&nbsp;tested | – | – | m | – |"
