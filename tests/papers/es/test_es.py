"""The empirical study's computations (C1-C6), against direct computations on known logits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from vlmcal import metrics
from vlmcal.papers import es as study
from vlmcal.calibration import TemperatureScaling
from vlmcal.papers.common.params import list_parameter


def _logits(n=600, c=4, scale=3.0, seed=0):
    """Logits of a known model: labels drawn from softmax(z), then z multiplied by ``scale``."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, c, generator=gen, dtype=torch.float64)
    labels = torch.multinomial(z.softmax(dim=1), 1, generator=gen).squeeze(1)
    return z * scale, labels


def _run(shift="clean", severity=0, model="m", kind="VLM", **kw):
    z, y = _logits(**kw)
    return study.Run(model, kind, shift, severity, z, y)


def test_restrict_to_classes_keeps_rows_columns_and_relabels():
    z = torch.arange(12.0).reshape(4, 3)
    y = torch.tensor([0, 2, 1, 2])
    sub, labels, rows = study.restrict_to_classes(z, y, [2, 0])
    assert rows.tolist() == [0, 1, 3]
    assert labels.tolist() == [1, 0, 0]  # class 2 -> 0, class 0 -> 1
    assert torch.equal(sub, z[[0, 1, 3]][:, [2, 0]])
    with pytest.raises(ValueError, match="two distinct"):
        study.restrict_to_classes(z, y, [1, 1])


def test_split_calibration_partitions_and_stratifies():
    y = torch.tensor([0] * 40 + [1] * 60)
    cal, ev = study.split_calibration(y, seed=3)
    assert sorted(torch.cat([cal, ev]).tolist()) == list(range(100))
    assert torch.bincount(y[cal]).tolist() == [20, 30]
    assert torch.equal(cal, study.split_calibration(y, seed=3)[0])
    assert not torch.equal(cal, study.split_calibration(y, seed=4)[0])


def test_ts_across_shifts_matches_direct_computation():
    clean, shifted = _run(seed=1), _run("noise", 3, seed=2)
    cal, ev = study.split_calibration(clean.labels, seed=0)
    table = study.ts_across_shifts([clean, shifted], cal, ev, n_bins=15)
    t = TemperatureScaling().fit(clean.logits[cal], clean.labels[cal]).temperature_
    assert t == pytest.approx(3.0, rel=0.25)  # the known model was sharpened by 3
    row = table[table["shift"] == "noise"].iloc[0]
    assert row["temperature"] == pytest.approx(t)
    assert row["ece_before"] == pytest.approx(metrics.ece(shifted.logits[ev], shifted.labels[ev], inputs="logits"))
    assert row["ece_after"] == pytest.approx(metrics.ece(shifted.logits[ev] / t, shifted.labels[ev], inputs="logits"))
    assert row["ece_after"] < row["ece_before"]
    with pytest.raises(ValueError, match="clean run"):
        study.ts_across_shifts([shifted], cal, ev)


def test_label_shift_recovers_most_of_the_reduction_for_a_uniformly_sharpened_model():
    run = _run(n=2000, c=6, seed=5)
    cal, ev = study.split_calibration(run.labels, seed=0)
    table = study.label_shift([run], [0, 1, 2], {"new": [3, 4, 5], "all": list(range(6))}, cal, ev)
    assert set(table["target"]) == {"new", "all"}
    assert (table["ece_target_ts"] < table["ece_before"]).all()
    assert (table["recovered"] > 0.5).all()  # one temperature fits every class of this model
    ci = study.bootstrap_label_shift([run], table, {"new": [3, 4, 5], "all": list(range(6))}, ev, n_resamples=30)
    before, source, target = (table[c].mean() for c in ("ece_before", "ece_source_ts", "ece_target_ts"))
    assert ci.estimate == pytest.approx((before - source) / (before - target))  # a ratio of means over the cells
    assert ci.lower <= ci.upper


def test_calibration_set_size_and_smallest_sufficient_n():
    run = _run(n=1000, seed=7)
    cal, ev = study.split_calibration(run.labels, seed=0)
    table = study.calibration_set_size(run, [4, 20, 100, "all"], cal, ev, n_draws=5, seed=0)
    assert table.groupby("size").size().to_dict() == {"4": 5, "20": 5, "100": 5, "all": 1}
    for row in table.iloc[[0, 7, 15]].itertuples():  # each ECE, directly at its fitted temperature
        assert row.ece_after == pytest.approx(metrics.ece(run.logits[ev] / row.temperature, run.labels[ev], inputs="logits"), abs=1e-12)
    means = table.groupby("n")["ece_after"].mean()
    assert means.loc[4] > means.loc[len(cal)]  # four samples give a worse temperature than all
    best = study.smallest_sufficient_n(table, tolerance=10.0)  # a loose bar: the smallest size passes
    assert best.loc[0, "smallest_n"] == 4
    strict = study.smallest_sufficient_n(table, tolerance=-1.0)  # an impossible bar: none passes
    assert np.isnan(strict.loc[0, "smallest_n"])
    with pytest.raises(ValueError, match="calibration sizes"):
        study.calibration_set_size(run, [0], cal, ev)
    with pytest.raises(ValueError, match="distinct calibration sizes"):
        study.calibration_set_size(run, [5, "5"], cal, ev)


def test_calibration_set_size_of_several_models_is_each_model_alone():
    sharp = _run(n=1000, seed=7)
    soft = study.Run("soft", "supervised", "clean", 0, sharp.logits / 4.0, sharp.labels)
    cal, ev = study.split_calibration(sharp.labels, seed=1)
    both = study.calibration_set_size([sharp, soft], [10, "all"], cal, ev, n_draws=4, seed=3)
    alone = pd.concat([study.calibration_set_size(r, [10, "all"], cal, ev, n_draws=4, seed=3) for r in (sharp, soft)], ignore_index=True)
    pd.testing.assert_frame_equal(both, alone)
    assert both.groupby("model")["temperature"].first().to_dict() == pytest.approx({"m": both["temperature"][0], "soft": both["temperature"][0] / 4.0}, rel=1e-5)
    other = study.Run("x", "VLM", "clean", 0, sharp.logits, sharp.labels.roll(1))
    with pytest.raises(ValueError, match="same images"):
        study.calibration_set_size([sharp, other], [10], cal, ev)


def test_confidence_vs_accuracy_against_scipy():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 1.0, 30)
    points = pd.DataFrame({"confidence_after": x, "accuracy": x + rng.normal(0, 0.05, 30)})
    out = study.confidence_vs_accuracy(points)
    assert out["r2"] == pytest.approx(stats.linregress(x, points["accuracy"]).rvalue ** 2)
    assert out["spearman"] == pytest.approx(stats.spearmanr(x, points["accuracy"]).statistic)
    tied = points.round(1)  # many ties: Spearman averages their ranks
    assert study.confidence_vs_accuracy(tied)["spearman"] == pytest.approx(stats.spearmanr(tied["confidence_after"], tied["accuracy"]).statistic)
    with pytest.raises(ValueError, match="at least 3"):
        study.confidence_vs_accuracy(points.iloc[:2])


def test_mean_ece_bootstrap_estimate_is_the_direct_mean():
    runs = [_run(seed=s) for s in range(3)]
    ev = torch.arange(0, 600, 2)
    direct = np.mean([metrics.ece(r.logits[ev], r.labels[ev], inputs="logits") for r in runs])
    ci = study.mean_ece_bootstrap({"g": runs}, ev, lambda m: m["g"], n_resamples=40, seed=1)
    assert ci.estimate == pytest.approx(direct)
    assert ci.lower < direct < ci.upper


def test_confidence_accuracy_points_apply_the_temperature():
    run = _run(seed=2)
    ev = torch.arange(600)
    pts = study.confidence_accuracy_points([run], {"m": 2.0}, ev, {"all": [0, 1, 2, 3], "half": [0, 1]})
    row = pts[pts["labels"] == "all"].iloc[0]
    assert row["confidence_after"] == pytest.approx(metrics.mean_confidence(run.logits / 2.0, run.labels, inputs="logits"))
    assert row["confidence_after"] < row["confidence_before"]


def test_study_settings_validate_parameters_by_name():
    good = dict(backbones=["a"], supervised="", dataset="fashion-mnist", seeds=[0], n_bins=15, device="", cache_dir="")
    s = study.StudySettings(**good, shifts=["all"])
    assert len(s.conditions) == 1 + len(s.shifts) * 5
    assert study.StudySettings(**{**good, "backbones": "a"}).backbones == ("a",)
    assert study.StudySettings(**{**good, "supervised": "supervised"}).models == ["a", "supervised"]
    assert study.StudySettings(**{**good, "supervised": "supervised", "dataset": "cifar10:/x"}).models == ["a"]
    for change, name in [({"n_bins": 0}, "n_bins"), ({"shifts": ["nope"]}, "shifts"), ({"severities": [9]}, "severities"),
                         ({"backbones": []}, "backbones"), ({"templates": "x"}, "templates"), ({"seeds": ["x"]}, "seeds")]:
        with pytest.raises(ValueError, match=name):
            study.StudySettings(**{**good, **change})


def test_list_parameter_names_what_it_received():
    class S:
        pass

    s = S()
    s.values = [1, "2"]
    assert list_parameter(s, "values", int) == (1, 2)
    s.values = "abc"
    with pytest.raises(ValueError, match=r"`values`.*'abc'"):
        list_parameter(s, "values", float)


def test_gap_to_full_set():
    table = pd.DataFrame({"model": ["a"] * 4 + ["b"] * 4, "n": [50, 50, 50, 999] * 2, "size": ["50"] * 3 + ["all"] + ["50"] * 3 + ["all"],
                          "ece_after": [0.02, 0.04, 0.03, 0.01, 0.06, 0.06, 0.06, 0.02]})
    r = study.gap_to_full_set(table, 50, n_resamples=50)
    assert r.estimate == pytest.approx(((0.03 - 0.01) + (0.06 - 0.02)) / 2)
    assert r.lower <= r.estimate <= r.upper
    assert np.isnan(study.gap_to_full_set(table, 7).estimate)


def test_plan_calibration_sizes_reports_what_the_pool_cannot_supply():
    plan = study.plan_calibration_sizes([5, 50, 60, 61, 500, "all"], pool=60)
    assert plan.kept == (5, 50, 60, "all") and plan.skipped == (61, 500) and plan.pool == 60
    assert "61, 500" in plan.describe() and "60 calibration images" in plan.describe()
    assert "Skipped" not in study.plan_calibration_sizes([5, "all"], pool=60).describe()
    with pytest.raises(ValueError, match="integers >= 1 or 'all'"):
        study.plan_calibration_sizes([0], pool=60)


def test_verdict_intervals_estimate_what_the_tables_show():
    vlm_clean, vlm_shifted = _run(seed=1), _run("noise", 3, seed=2)
    sup_clean, sup_shifted = _run(model="s", kind="supervised", seed=3), _run("noise", 3, model="s", kind="supervised", seed=4)
    runs = [vlm_clean, vlm_shifted, sup_clean, sup_shifted]
    cal, ev = study.split_calibration(vlm_clean.labels, seed=0)
    table = study.ts_across_shifts(runs, cal, ev)
    temperatures = study.model_temperatures(table)
    vlm, sup = table[table["kind"] == "VLM"], table[table["kind"] == "supervised"]

    difference = study.vlm_minus_supervised_ece(runs, ev, n_resamples=30)
    assert difference.estimate == pytest.approx(vlm["ece_before"].mean() - sup["ece_before"].mean())
    assert difference.lower <= difference.upper
    assert study.vlm_minus_supervised_ece([vlm_clean, vlm_shifted], ev) is None  # no supervised run: nothing to compare

    ratio = study.ts_ece_ratio(runs, temperatures, ev, n_resamples=30)
    assert ratio.estimate == pytest.approx(vlm["ece_after"].mean() / vlm["ece_before"].mean())

    rise = study.shift_rise_after_ts(runs, temperatures, ev, n_resamples=30)
    clean = vlm["shift"] == "clean"
    assert rise.estimate == pytest.approx(vlm.loc[~clean, "ece_after"].mean() - vlm.loc[clean, "ece_after"].mean())
    assert study.shift_rise_after_ts([vlm_clean, sup_clean], temperatures, ev) is None  # no shifted VLM run


def test_full_set_ece_and_correlation_intervals():
    run = _run(n=1000, seed=7)
    cal, ev = study.split_calibration(run.labels, seed=0)
    table = study.calibration_set_size(run, [10, "all"], cal, ev, n_draws=3, seed=0)
    full = study.full_set_ece([run], table, ev, n_resamples=30)
    assert set(full) == {"m"}
    assert full["m"].estimate == pytest.approx(table.loc[table["size"] == "all", "ece_after"].iloc[0])
    assert full["m"].upper > full["m"].lower

    points = pd.DataFrame({"kind": ["VLM"] * 6 + ["supervised"], "accuracy": [0.2, 0.3, 0.5, 0.6, 0.8, 0.9, 0.1],
                           "confidence_after": [0.25, 0.3, 0.45, 0.65, 0.8, 0.85, 0.99]})
    intervals = study.bootstrap_confidence_vs_accuracy(points, n_resamples=30)
    pooled = study.confidence_vs_accuracy(points[points["kind"] == "VLM"])
    assert intervals["r2"].estimate == pytest.approx(pooled["r2"])
    assert intervals["spearman"].estimate == pytest.approx(pooled["spearman"])


# ----------------------------------------------------------------------------- coverage: covered / held out / unknown

NOISE_ONLY = ("gaussian_noise", "shot_noise")  # a model whose training data showed these two shifts


def _covered_run(shift="clean", severity=0, model="m", kind="VLM", covered=NOISE_ONLY, **kw):
    z, y = _logits(**kw)
    return study.Run(model, kind, shift, severity, z, y, covered_shifts=covered)


def test_coverage_label_of_each_case():
    assert study.coverage_label("clean", None) == "clean"
    assert study.coverage_label("gaussian_noise", NOISE_ONLY) == "covered"
    assert study.coverage_label("pixelate", NOISE_ONLY) == "held out"
    assert study.coverage_label("gaussian_noise", ()) == "held out"  # training data known to show no shift
    assert study.coverage_label("gaussian_noise", None) == "unknown"


def test_run_carries_its_coverage():
    assert _covered_run("gaussian_noise", 3).coverage == "covered"
    assert _covered_run("contrast", 3).coverage == "held out"
    assert _covered_run("contrast", 3, covered=None).coverage == "unknown"
    assert _run("contrast", 3).covered_shifts is None  # a run built without coverage: unknown
    assert _covered_run(covered=["gaussian_noise"]).covered_shifts == ("gaussian_noise",)  # stored as a tuple
    with pytest.raises(ValueError, match="covered_shifts.*'gaussian_noise'"):
        _covered_run(covered="gaussian_noise")


def test_covered_shifts_of_reads_the_loaded_object():
    class Backbone:
        covered_shifts = ["invert"]

    class Unknown:  # e.g. an open_clip model: Backbone.covered_shifts stays None
        covered_shifts = None

    class Classifier:  # the supervised baseline states no coverage: it trains on clean images
        pass

    assert study.covered_shifts_of("default", Backbone()) == ("invert",)
    assert study.covered_shifts_of("openclip:x:y", Unknown()) is None
    assert study.covered_shifts_of("openclip:x:y", Classifier()) is None
    assert study.covered_shifts_of("supervised", Classifier()) == ()


def test_predict_labels_an_open_clip_model_unknown(tmp_path):
    run = study.predict("openclip:vlmcal-tiny:random", "fashion-mnist", "contrast", 2, max_samples=20, cache_dir=tmp_path, progress=False)
    assert run.covered_shifts is None and run.coverage == "unknown"


def test_model_coverage_is_read_from_the_runs_and_must_agree():
    runs = [_covered_run(), _covered_run("contrast", 1), _covered_run(model="s", kind="supervised", covered=()),
            _covered_run(model="clip", covered=None)]
    assert study.model_coverage(runs) == {"m": NOISE_ONLY, "s": (), "clip": None}
    with pytest.raises(ValueError, match="same covered shifts.*'m'|'m'.*same covered shifts"):
        study.model_coverage([_covered_run(), _covered_run("contrast", 1, covered=("contrast",))])


def _coverage_runs():
    """A VLM that saw noise, one of unknown coverage, and a supervised model, on clean, a covered and a held-out shift."""
    runs = []
    for i, (shift, severity) in enumerate([("clean", 0), ("gaussian_noise", 3), ("contrast", 3)]):
        runs += [_covered_run(shift, severity, seed=10 + i), _covered_run(shift, severity, model="clip", covered=None, seed=20 + i),
                 _covered_run(shift, severity, model="s", kind="supervised", covered=(), seed=30 + i)]
    labels = runs[0].labels  # one test set: every run labels the same images
    return [study.Run(r.model, r.kind, r.shift, r.severity, r.logits, labels, r.covered_shifts) for r in runs]


def test_tables_carry_family_and_coverage():
    runs = _coverage_runs()
    cal, ev = study.split_calibration(runs[0].labels, seed=0)
    table = study.ts_across_shifts(runs, cal, ev).set_index(["model", "shift"])
    assert table.loc[("m", "gaussian_noise"), "coverage"] == "covered" and table.loc[("m", "gaussian_noise"), "family"] == "noise"
    assert table.loc[("m", "contrast"), "coverage"] == "held out" and table.loc[("m", "contrast"), "family"] == "digital"
    assert set(table.loc["clip", "coverage"]) == {"clean", "unknown"}
    assert table.loc[("s", "gaussian_noise"), "coverage"] == "held out"  # the supervised baseline saw no shift
    assert table.loc[("m", "clean"), "family"] == "clean"
    points = study.confidence_accuracy_points(runs, {"m": 1.0, "clip": 1.0, "s": 1.0}, ev, {"all": [0, 1, 2, 3]})
    assert points.set_index(["model", "shift"]).loc[("m", "contrast"), "coverage"] == "held out"


def test_side_rows_and_panels():
    runs = _coverage_runs()
    cal, ev = study.split_calibration(runs[0].labels, seed=0)
    table = study.ts_across_shifts(runs, cal, ev)
    paper_like = study.shifted_rows(table, "paper-like")
    assert set(zip(paper_like["model"], paper_like["shift"])) == {("m", "gaussian_noise"), ("clip", "gaussian_noise"), ("clip", "contrast")}
    held_out = study.side_rows(table, "held out")
    assert set(held_out["coverage"]) == {"clean", "held out"} and (held_out["coverage"] == "clean").sum() == 3
    panels = study.coverage_panels(table)
    assert [p.side for p in panels] == ["paper-like", "held out"]
    assert "clip" in panels[0].title and "unknown" in panels[0].title
    assert [p.side for p in study.coverage_panels(table[table["model"] == "m"])] == ["paper-like", "held out"]
    assert "covered" in study.coverage_panels(table[table["model"] == "m"])[0].title
    assert study.coverage_panels(table[table["shift"] == "clean"])[0].title.startswith("clean data only")
    with pytest.raises(ValueError, match="side.*'covered'"):
        study.side_rows(table, "covered")
    with pytest.raises(ValueError, match="coverage"):
        study.side_rows(table.drop(columns="coverage"), "held out")


def test_intervals_by_side_estimate_what_the_tables_show():
    runs = _coverage_runs()
    cal, ev = study.split_calibration(runs[0].labels, seed=0)
    table = study.ts_across_shifts(runs, cal, ev)
    temperatures = study.model_temperatures(table)
    vlm = table[table["kind"] == "VLM"]
    clean = vlm.loc[vlm["shift"] == "clean", "ece_after"].mean()
    rises = study.shift_rise_by_side(runs, temperatures, ev, n_resamples=20)
    assert set(rises) == {"paper-like", "held out"}
    assert rises["paper-like"].estimate == pytest.approx(study.shifted_rows(vlm, "paper-like")["ece_after"].mean() - clean)
    assert rises["held out"].estimate == pytest.approx(study.shifted_rows(vlm, "held out")["ece_after"].mean() - clean)
    only_covered = [r for r in runs if r.shift != "contrast" and r.model != "clip"]
    assert study.shift_rise_by_side(only_covered, temperatures, ev, n_resamples=20)["held out"] is None
    with pytest.raises(ValueError, match="collection of coverage labels"):
        study.shift_rise_after_ts(runs, temperatures, ev, coverage="held out")

    points = study.confidence_accuracy_points(runs, temperatures, ev, {"all": [0, 1, 2, 3], "half": [0, 1], "other": [2, 3]})
    intervals = study.bootstrap_confidence_vs_accuracy_by_side(points, n_resamples=20)
    vlm_points = points[points["kind"] == "VLM"]
    for side in ("paper-like", "held out"):
        direct = study.confidence_vs_accuracy(study.side_rows(vlm_points, side))
        assert intervals[side]["r2"].estimate == pytest.approx(direct["r2"])
        assert intervals[side]["spearman"].estimate == pytest.approx(direct["spearman"])
    no_held_out = points[points["coverage"] != "held out"]
    assert study.bootstrap_confidence_vs_accuracy_by_side(no_held_out, n_resamples=20)["held out"] is None

    by_side = study.confidence_vs_accuracy_by_side(points)
    row = by_side[(by_side["model"] == "m") & (by_side["side"] == "held out") & (by_side["confidence"] == "confidence_after")].iloc[0]
    m_points = points[points["model"] == "m"]
    assert row["n"] == 6  # 3 label sets x (clean + contrast)
    assert row["r2"] == pytest.approx(study.confidence_vs_accuracy(study.side_rows(m_points, "held out"))["r2"])
    assert set(by_side.loc[by_side["model"] == "clip", "side"]) == {"paper-like"}  # no held-out shift for a model of unknown coverage


def test_coverage_note_names_the_corpus_families_and_each_model():
    from vlmcal.standins.corpus import COVERED_FAMILIES, HELD_OUT_FAMILIES

    note = study.coverage_note(_coverage_runs())
    for family in COVERED_FAMILIES + HELD_OUT_FAMILIES:
        assert family in note
    assert "`clip`: coverage **unknown**" in note
    assert "`m`: **covered** 1 shift(s): noise (gaussian_noise); **held out** 1: digital (contrast)" in note
    assert "`s`: **covered** 0 shift(s): none; **held out** 2: noise (gaussian_noise); digital (contrast)" in note
    assert "stand-in" not in note.lower()
