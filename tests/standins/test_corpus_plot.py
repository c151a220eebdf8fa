"""The corpus grid on a real (small) pretraining corpus: what it shows is what ``make_corpus`` made."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

from vlmcal.standins.corpus import CorpusConfig, make_corpus
from vlmcal.papers.common.figures import plot_corpus_samples


@pytest.fixture(autouse=True)
def _agg_backend():
    matplotlib.use("Agg")
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def corpus():
    return make_corpus(CorpusConfig(n_scenes=40, p_styled=0.5))


def test_grid_of_a_made_corpus_shows_its_scenes_captions_and_styles(corpus):
    axes = plot_corpus_samples(corpus, n=18)
    assert axes.shape == (3, 6)
    captions = corpus.captions_per_scene()
    for i, ax in enumerate(axes.flat):
        assert " ".join(ax.get_title().split("\n")) == captions[i]
        style, severity = corpus.styles[i], int(corpus.severities[i])
        assert ax.get_xlabel() == (f"{style}, severity {severity}" if style else "plain")
        np.testing.assert_allclose(ax.images[0].get_array(), corpus.images[i, 0].numpy())
    labels = [ax.get_xlabel() for ax in axes.flat]
    assert any(label == "plain" for label in labels) and any(label != "plain" for label in labels)  # both kinds shown


def test_a_task_corpus_grid_shows_single_items_unstyled():
    task = make_corpus(CorpusConfig(kind="task", families=(), n_scenes=12))
    axes = plot_corpus_samples(task, n=12, ncols=4)
    assert [ax.get_xlabel() for ax in axes.flat] == ["plain"] * 12
    assert [" ".join(ax.get_title().split("\n")) for ax in axes.flat] == task.captions_per_scene()
