"""vlmcal.papers.common.figures: the seaborn-drawn figures show the numbers they are given.

Each figure is drawn on small synthetic data with the Agg backend, and what it shows is read
back from the artists and compared with the same numbers computed here independently
(numpy's ``polyfit`` and ``percentile``, pandas' group means).
"""

import subprocess
import sys

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb

from vlmcal.papers.common import figures as plotting
from vlmcal.papers.es import figures as es_figures

NAMES = ["cat", "dog", "ship"]


@pytest.fixture(autouse=True)
def _agg_backend():
    """Draw off screen (conftest sets MPLBACKEND=Agg as a default only), and close what was drawn."""
    matplotlib.use("Agg")
    yield
    plt.close("all")


def _data_lines(ax):
    """The lines that draw data (seaborn also adds empty lines as legend handles)."""
    return [line for line in ax.lines if len(line.get_xdata())]


def _band_at(ax, collection_index: int, x: float) -> tuple[float, float]:
    """The lower and upper edge of a fill_between band at ``x`` (one of its vertices' x)."""
    vertices = ax.collections[collection_index].get_paths()[0].vertices  # [V, 2]
    ys = vertices[np.isclose(vertices[:, 0], x), 1]
    assert len(ys), f"the band has no vertex at x = {x}"
    return float(ys.min()), float(ys.max())


def _annotations(ax) -> dict[tuple[int, int], str]:
    """Heat-map cell texts by (row, column): seaborn writes cell (i, j) at (j + 0.5, i + 0.5)."""
    return {(round(t.get_position()[1] - 0.5), round(t.get_position()[0] - 0.5)): t.get_text() for t in ax.texts}


# ----------------------------------------------------------------------------- synthetic study tables


def _set_size_table() -> pd.DataFrame:
    """calibration_set_size-like rows: 2 models, 3 sizes, 7 draws with known values."""
    rng = np.random.default_rng(0)
    rows = [
        {"model": model, "n": n, "draw": d, "ece_after": offset + rng.uniform(0, 1) / n}
        for model, offset in (("vlm", 0.02), ("supervised-cnn", 0.05))
        for n in (5, 50, 500)
        for d in range(7)
    ]
    return pd.DataFrame(rows)


def _severity_table() -> pd.DataFrame:
    """ts_across_shifts-like rows over 3 seeds: 3 models, 2 shifts, severities 0 (clean) to 2."""
    rng = np.random.default_rng(1)
    rows = []
    for seed in (0, 1, 2):
        for model in ("vlm-a", "vlm-b", "supervised-cnn"):
            rows.append({"model": model, "shift": "clean", "severity": 0, "seed": seed,
                         "ece_before": rng.uniform(0.0, 0.1), "ece_after": rng.uniform(0.0, 0.05)})
            for shift in ("noise", "blur"):
                for severity in (1, 2):
                    rows.append({"model": model, "shift": shift, "severity": severity, "seed": seed,
                                 "ece_before": rng.uniform(0.1, 0.3), "ece_after": rng.uniform(0.05, 0.2)})
    return pd.DataFrame(rows)


def _points() -> pd.DataFrame:
    """confidence_accuracy_points-like rows: two VLMs near a line, a supervised model far from it."""
    rng = np.random.default_rng(2)
    conf = rng.uniform(0.3, 0.95, size=20)
    vlm = pd.DataFrame({"model": ["vlm-a", "vlm-b"] * 10, "kind": "VLM", "confidence_after": conf,
                        "accuracy": 0.8 * conf + 0.05 + rng.normal(0, 0.03, size=20)})
    supervised = pd.DataFrame({"model": "supervised-cnn", "kind": "supervised", "confidence_after": [0.4, 0.6, 0.9],
                               "accuracy": [0.9, 0.3, 0.2]})  # on the line, they would flip its slope
    return pd.concat([vlm, supervised], ignore_index=True)


# ----------------------------------------------------------------------------- lazy import, settings left alone


def test_importing_plotting_imports_neither_seaborn_nor_scipy():
    code = "import sys, vlmcal.papers.common.figures, vlmcal.papers.es.figures, vlmcal.papers.ctpt.figures, vlmcal.papers.dor.figures; print([m for m in ('seaborn', 'scipy') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


DRAWS = {
    "confusion_matrix": lambda ax: plotting.plot_confusion_matrix(np.eye(3) * 5 + 1, NAMES, ax=ax),
    "text_similarity": lambda ax: plotting.plot_text_similarity(np.eye(3) * 0.2 + 0.8, NAMES, ax=ax),
    "confidence_vs_accuracy": lambda ax: es_figures.plot_confidence_vs_accuracy(_points(), ax=ax),
    "calibration_set_size": lambda ax: es_figures.plot_calibration_set_size(_set_size_table(), ax=ax),
}


@pytest.mark.parametrize("name", DRAWS)
def test_plot_draws_on_the_given_axes_returns_them_and_keeps_rcparams(name):
    _, ax = plt.subplots()
    before = dict(matplotlib.rcParams)
    assert DRAWS[name](ax) is ax
    assert dict(matplotlib.rcParams) == before
    assert plt.get_fignums() == [ax.figure.number]  # no figure of its own


def test_ece_by_severity_returns_the_given_axes_and_keeps_rcparams():
    _, axes = plt.subplots(1, 2)
    before = dict(matplotlib.rcParams)
    assert es_figures.plot_ece_by_severity(_severity_table(), axes=axes) is axes
    assert dict(matplotlib.rcParams) == before


# ----------------------------------------------------------------------------- heat maps


@pytest.mark.parametrize("normalize", [True, False])
def test_confusion_matrix_annotations_are_the_matrix_values(normalize):
    matrix = np.array([[8, 1, 1], [0, 0, 0], [2, 3, 15]])  # the empty row stays zero when normalised
    ax = plotting.plot_confusion_matrix(matrix, NAMES, normalize=normalize)
    shares = matrix / np.clip(matrix.sum(axis=1, keepdims=True), 1, None)
    expected = shares if normalize else matrix
    fmt = "{:.2f}" if normalize else "{:.0f}"
    assert _annotations(ax) == {(i, j): fmt.format(expected[i, j]) for i in range(3) for j in range(3)}
    assert [t.get_text() for t in ax.get_xticklabels()] == NAMES
    assert [t.get_text() for t in ax.get_yticklabels()] == NAMES
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    colours = {(round(t.get_position()[1] - 0.5), round(t.get_position()[0] - 0.5)): to_rgb(t.get_color()) for t in ax.texts}
    assert colours[(2, 2)] == (1.0, 1.0, 1.0)  # the darkest cell: white text
    assert colours[(1, 1)] != (1.0, 1.0, 1.0)  # an empty cell: dark text


def test_text_similarity_annotations_are_the_similarities_with_a_labelled_colour_bar():
    rng = np.random.default_rng(3)
    text = rng.normal(size=(3, 8))
    text /= np.linalg.norm(text, axis=1, keepdims=True)  # [C, D]
    sim = text @ text.T  # [C, D] @ [D, C] -> [C, C]
    ax = plotting.plot_text_similarity(sim, NAMES)
    assert _annotations(ax) == {(i, j): f"{sim[i, j]:.2f}" for i in range(3) for j in range(3)}
    assert [t.get_text() for t in ax.get_yticklabels()] == NAMES
    colour_bar = ax.collections[0].colorbar
    assert colour_bar is not None and colour_bar.ax.get_ylabel() == "cosine similarity"


def test_text_similarity_takes_a_tensor():
    torch = pytest.importorskip("torch")
    sim = torch.eye(3, dtype=torch.float32)
    ax = plotting.plot_text_similarity(sim, NAMES)
    assert _annotations(ax)[(0, 0)] == "1.00" and _annotations(ax)[(0, 1)] == "0.00"


# ----------------------------------------------------------------------------- C5: the fitted line


def _fit_line(ax):
    (line,) = [line for line in ax.lines if line.get_label().startswith("least squares")]
    return line


def test_confidence_vs_accuracy_line_is_the_least_squares_fit_of_the_vlm_points():
    points = _points()
    ax = es_figures.plot_confidence_vs_accuracy(points)
    vlm = points[points["kind"] == "VLM"]
    slope, intercept = np.polyfit(vlm["confidence_after"], vlm["accuracy"], 1)
    x, y = (np.asarray(v, dtype=float) for v in _fit_line(ax).get_data())
    np.testing.assert_allclose(np.polyfit(x, y, 1), [slope, intercept], rtol=1e-9, atol=1e-12)
    assert (x.min(), x.max()) == pytest.approx((vlm["confidence_after"].min(), vlm["confidence_after"].max()))


def test_confidence_vs_accuracy_band_contains_the_line_everywhere():
    ax = es_figures.plot_confidence_vs_accuracy(_points())
    x, y = (np.asarray(v, dtype=float) for v in _fit_line(ax).get_data())
    assert len(ax.collections) == 3 + 1  # the three models' scatters, then the band
    for xi, yi in zip(x[::10], y[::10]):
        lower, upper = _band_at(ax, -1, xi)
        assert lower < yi < upper


def test_confidence_vs_accuracy_fits_every_point_without_a_kind_column_and_none_below_three():
    points = _points().drop(columns="kind")
    ax = es_figures.plot_confidence_vs_accuracy(points)
    x, y = _fit_line(ax).get_data()
    np.testing.assert_allclose(np.polyfit(x, y, 1), np.polyfit(points["confidence_after"], points["accuracy"], 1), rtol=1e-9)
    two = _points().query("kind == 'supervised' or index < 2")  # two VLM points: no line to draw
    ax = es_figures.plot_confidence_vs_accuracy(two)
    assert [line.get_label() for line in ax.lines] == ["identity"]


# ----------------------------------------------------------------------------- curves with bands


def test_calibration_set_size_has_one_line_per_model_at_the_mean_and_a_10_90_band():
    table = _set_size_table()
    ax = es_figures.plot_calibration_set_size(table)
    lines = _data_lines(ax)
    assert len(lines) == table["model"].nunique() == len(ax.collections)
    for k, (model, group) in enumerate(table.groupby("model", sort=False)):
        x, y = lines[k].get_data()
        means = group.groupby("n")["ece_after"].mean()
        np.testing.assert_allclose(x, means.index)
        np.testing.assert_allclose(y, means.to_numpy())
        draws = group.loc[group["n"] == 50, "ece_after"]
        assert _band_at(ax, k, 50) == pytest.approx(tuple(np.percentile(draws, [10, 90])))
    assert to_rgb(lines[1].get_color()) == (0.0, 0.0, 0.0)  # the supervised baseline in black
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["vlm", "supervised-cnn"]
    assert ax.get_xscale() == "log"


def test_ece_by_severity_band_spans_the_seeds_at_a_known_severity():
    table = _severity_table()
    axes = es_figures.plot_ece_by_severity(table)
    models = list(dict.fromkeys(table["model"]))
    per_seed = table.groupby(["model", "severity", "seed"])[["ece_before", "ece_after"]].mean()  # mean over shifts
    for ax, column in zip(axes, ["ece_before", "ece_after"]):
        lines = _data_lines(ax)
        assert len(lines) == len(models)
        for k, model in enumerate(models):
            seeds = per_seed.loc[model][column]  # indexed by (severity, seed)
            np.testing.assert_allclose(lines[k].get_ydata(), seeds.groupby("severity").mean().to_numpy())
            at_two = seeds.xs(2, level="severity")
            assert _band_at(ax, k, 2) == pytest.approx((at_two.min(), at_two.max()))
        assert lines[2].get_linestyle() == "--" and lines[0].get_linestyle() == "-"  # supervised dashed
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == models
    assert axes[1].get_legend() is None


def test_ece_by_severity_without_seeds_draws_the_means_and_no_band():
    table = _severity_table().query("seed == 0").drop(columns="seed")
    axes = es_figures.plot_ece_by_severity(table)
    means = table.groupby(["model", "severity"], sort=False)["ece_after"].mean()
    lines = _data_lines(axes[1])
    np.testing.assert_allclose(lines[0].get_ydata(), means.loc["vlm-a"].to_numpy())
    assert all(len(c.get_paths()) == 0 or not len(c.get_paths()[0].vertices) for c in axes[1].collections)


# ----------------------------------------------------------------------------- the pretraining corpus


def _corpus(n: int = 7):
    """A small Corpus built by hand: known images, captions, styles and severities."""
    torch = pytest.importorskip("torch")
    from vlmcal.standins.corpus import Corpus, CorpusConfig

    images = torch.linspace(0, 1, n)[:, None, None, None].expand(n, 1, 28, 28).clone()  # [n, 1, 28, 28], scene i all one grey
    captions = tuple(f"caption number {i}, a fairly long one that has to wrap over several lines" for i in range(n - 1)) + ("a bag",)
    styles = tuple("sketch" if i % 3 == 1 else "" for i in range(n))
    severities = torch.tensor([4 if s else 0 for s in styles])
    return Corpus(CorpusConfig(n_scenes=n), images, captions, torch.arange(n), torch.full((n, 4), -1), styles, severities)


def test_corpus_samples_show_each_scene_with_its_caption_and_style():
    corpus = _corpus()
    axes = plotting.plot_corpus_samples(corpus, n=5, ncols=3)
    assert axes.shape == (2, 3)
    shown = [ax for ax in axes.flat if ax.get_visible()]
    assert len(shown) == 5 and all(len(ax.images) == 1 for ax in shown)
    for i, ax in enumerate(shown):
        assert " ".join(ax.get_title().split("\n")) == corpus.captions[i]
        assert max(len(line) for line in ax.get_title().split("\n")) <= 24  # wrapped
        assert ax.get_xlabel() == ("sketch, severity 4" if i % 3 == 1 else "plain")
        np.testing.assert_allclose(ax.images[0].get_array(), corpus.images[i, 0].numpy())
        assert ax.images[0].get_clim() == (0, 1)


def test_corpus_samples_with_a_seed_show_distinct_scenes_and_take_given_axes():
    corpus = _corpus()
    fig, axes = plt.subplots(1, 7)
    before = dict(matplotlib.rcParams)
    assert plotting.plot_corpus_samples(corpus, n=7, seed=1, axes=axes) is not None
    titles = [" ".join(ax.get_title().split("\n")) for ax in axes]
    assert sorted(titles) == sorted(corpus.captions) and plt.get_fignums() == [fig.number]
    assert dict(matplotlib.rcParams) == before
    for ax, title in zip(axes, titles):  # each image is its caption's scene
        np.testing.assert_allclose(ax.images[0].get_array(), corpus.images[corpus.captions.index(title), 0].numpy())


def test_corpus_samples_refuse_a_bad_n_or_too_few_axes():
    corpus = _corpus()
    for n in (0, 8, 2.0, True):
        with pytest.raises(ValueError, match=r"Expected `n` to be an integer in 1\.\.7 .* but got"):
            plotting.plot_corpus_samples(corpus, n=n)
    _, axes = plt.subplots(1, 2)
    with pytest.raises(ValueError, match="at least n = 3 axes .* but got 2"):
        plotting.plot_corpus_samples(corpus, n=3, axes=axes)


# ----------------------------------------------------------------------------- the C-TPT and DOR pages' figures


def test_prompt_points_ring_the_near_top_prompts():
    from vlmcal.papers.ctpt import figures as ctpt_figures

    points = pd.DataFrame({"atfd": [0.1, 0.2, 0.3, 0.4], "ece": [0.05, 0.04, 0.02, 0.01], "accuracy": [0.5, 0.6, 0.7, 0.71]})
    ax = ctpt_figures.plot_prompt_points(points, points.iloc[2:], window=0.03, n_bins=20)
    dots, rings = ax.collections[:2]
    assert len(dots.get_offsets()) == 4 and len(rings.get_offsets()) == 2
    assert ax.get_ylabel() == "ECE (20 bins)" and "within 3 points of the best accuracy (2)" in ax.get_legend_handles_labels()[1]
    plt.close(ax.figure)


def test_lambda_sweep_draws_each_figure_against_lambda_with_zero_shot():
    from vlmcal.papers.ctpt import figures as ctpt_figures

    sweep = pd.DataFrame({"lambda": [0.0, 5.0, 50.0], "ece": [0.1, 0.08, 0.05], "accuracy": [0.7, 0.7, 0.69], "atfd": [0.2, 0.3, 0.4]})
    axes = ctpt_figures.plot_lambda_sweep(sweep, {"ece": 0.04, "accuracy": 0.68})
    assert [list(ax.lines[0].get_ydata()) for ax in axes] == [[0.1, 0.08, 0.05], [0.7, 0.7, 0.69], [0.2, 0.3, 0.4]]
    assert [len(ax.lines) for ax in axes] == [2, 2, 1]  # zero-shot's line on ECE and accuracy only
    plt.close(axes[0].figure)


def test_training_curves_and_weight_sweep_of_the_prompt_learning_page():
    from vlmcal.papers.dor import figures as dor_figures

    history = pd.DataFrame({"epoch": [1, 2], "new_fd": [0.3, 0.4], "new_confidence": [0.6, 0.7], "new_accuracy": [0.5, 0.55]})
    zero_shot = pd.Series({"new_fd": 0.25, "new_accuracy": 0.5, "new_gap": 0.02, "hm": 0.6, "base_ece": 0.03, "new_ece": 0.05})
    axes = dor_figures.plot_training_curves({"CoOp": [history, history], "CoOp + DOR": [history]}, zero_shot)
    assert [len(ax.lines) for ax in axes] == [4, 4, 5]  # 3 runs, zero-shot, and the zero line of the gap
    assert list(axes[2].lines[0].get_ydata()) == pytest.approx([10.0, 15.0])  # confidence minus accuracy, in points
    plt.close(axes[0].figure)
    sweep = pd.DataFrame({"method": ["KgCoOp", "KgCoOp", "CoOp + DOR"], "weight": [8.0, 2.0, 1.0], "hm": [0.6, 0.5, 0.55],
                          "base_ece": [0.02, 0.03, 0.04], "new_ece": [0.05, 0.06, 0.07]})
    axes = dor_figures.plot_weight_sweep(sweep, zero_shot)
    assert list(axes[0].lines[0].get_xdata()) == [2.0, 8.0]  # sorted by weight
    assert axes[0].get_legend_handles_labels()[1] == ["KgCoOp (w)", "CoOp + DOR (λ)", "zero-shot"]
    plt.close(axes[0].figure)
