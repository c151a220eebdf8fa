"""Bad input, case by case: every case gets a clear error or is accepted on purpose.

``CASES`` is the matrix: over the public functions of ``vlmcal.metrics``, ``vlmcal.calibration``,
the backbones, ``vlmcal.data.datasets``, ``vlmcal.pipeline.predictions`` (and the zero-shot and shift helpers
they use), each kind of bad input (NaN/inf, wrong shapes, out-of-range and negative labels, empty
inputs, mismatched lengths, unknown names, missing weights or data). A case either expects an
exception of one type whose message matches a regex naming the argument and what was received,
or is accepted on purpose, with a check of its result and the reason.

The book's page "Bad input" (``book/bad_input.md``) shows tables rendered from ``CASES``
(``python tests/test_bad_input.py`` prints them) and :func:`test_book_page_matches_the_matrix`
checks that the page says the same.
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable
from unittest import mock

import numpy as np
import pytest
import torch

from vlmcal import calibration as cal
from vlmcal.data import datasets as ds
from vlmcal import metrics as m
from vlmcal.pipeline import predictions as pred
from vlmcal.data import shifts
from vlmcal.prompting import zeroshot
from vlmcal.backbones import load_backbone
from vlmcal.backbones.openclip import WeightsNotFoundError

TINY = "openclip:vlmcal-tiny:random"
PAGE = Path(__file__).resolve().parents[1] / "book" / "bad_input.md"

# Small valid inputs, broken one way per case.
P = np.array([[0.9, 0.1], [0.3, 0.7], [0.5, 0.5], [0.2, 0.8]])  # [4, 2] probabilities
Z = np.log(P) * 3  # [4, 2] logits
Y = np.array([0, 1, 1, 0])  # [4] labels
CONF = np.array([0.9, 0.7, 0.5, 0.8])  # [4] top-label confidences
OK = np.array([1, 1, 0, 0])  # [4] their outcomes


class Env:
    """What the cases need: scratch folders and objects built once, on first use."""

    def __init__(self, root: Path):
        self.root = root

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @cached_property
    def tiny(self):
        return load_backbone(TINY, device="cpu")

    @cached_property
    def fake_fashion_mnist(self) -> Path:
        """A folder with the four Fashion-MNIST file names (dummy contents): a place a silent fallback would find."""
        folder = self.folder("fake-fashion-mnist")
        for name, _ in ds._FASHION_MNIST_FILES.values():
            with gzip.open(folder / name, "wb") as fh:
                fh.write(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + bytes(3))
        return folder

    @cached_property
    def partial_fashion_mnist(self) -> Path:
        """The two test-split files only."""
        folder = self.folder("partial-fashion-mnist")
        for key in (("test", "images"), ("test", "labels")):
            (folder / ds._FASHION_MNIST_FILES[key][0]).write_bytes(b"x")
        return folder

    def file(self, name: str, content: bytes) -> Path:
        path = self.root / name
        path.write_bytes(content)
        return path

    @cached_property
    def pickled_checkpoint(self) -> Path:
        path = self.root / "training-checkpoint.pt"
        torch.save({"state_dict": {}, "args": argparse.Namespace(lr=0.1)}, path)
        return path

    @cached_property
    def other_arch_checkpoint(self) -> Path:
        path = self.root / "other-arch.pt"
        torch.save({"visual.proj": torch.zeros(3, 3), "unrelated.weight": torch.zeros(2)}, path)
        return path

    @cached_property
    def images(self) -> ds.TensorImageDataset:
        """Four 2x2 images of two classes."""
        return ds.TensorImageDataset(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]), ["a", "b"], {"dataset": "toy"})


@dataclass(frozen=True)
class Case:
    """One bad input: the call, and either the error it must raise or why it is accepted.

    Attributes:
        area: the module it belongs to (a row of the book page's table).
        what: the bad input, in a few words (the test id).
        call: runs the case.
        error: the exception type expected, or None when the input is accepted on purpose.
        match: a regex the message must match (``re.search``): it names the argument.
        check: for an accepted input, a predicate on the result.
        why: for an accepted input, the reason.
    """

    area: str
    what: str
    call: Callable[[Env], Any]
    error: type[BaseException] | None = None
    match: str = ""
    check: Callable[[Any], bool] | None = None
    why: str = ""

    @property
    def id(self) -> str:
        return f"{self.area}: {self.what}"


def bad(area: str, what: str, call: Callable[[Env], Any], error: type[BaseException], match: str) -> Case:
    return Case(area, what, call, error=error, match=match)


def accepted(area: str, what: str, call: Callable[[Env], Any], check: Callable[[Any], bool], why: str) -> Case:
    return Case(area, what, call, check=check, why=why)


def with_env(call: Callable[[], Any], **env: str) -> Any:
    with mock.patch.dict(os.environ, env):
        return call()


def warned(call: Callable[[], Any]) -> tuple[Any, list[str]]:
    """The result of ``call`` and the messages of the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [str(w.message) for w in caught]


NAN, INF = math.nan, math.inf

METRICS = [
    # NaN / inf
    bad("metrics", "NaN probabilities", lambda e: m.ece(np.array([[NAN, 1.0]]), [0]), ValueError, r"finite `probs`, but got NaN"),
    bad("metrics", "NaN logits", lambda e: m.nll(np.array([[NAN, 1.0]]), [0], inputs="logits"), ValueError, r"finite `logits`, but got NaN"),
    bad("metrics", "+inf logit", lambda e: m.ece(np.array([[INF, 1.0]]), [0], inputs="logits"), ValueError, r"finite `logits`.*max inf"),
    bad("metrics", "-inf logit (a masked class)", lambda e: m.brier_score(np.array([[-INF, 1.0]]), [1], inputs="logits"), ValueError,
        r"finite `logits`.*min -inf.*drop their columns"),
    bad("metrics", "NaN confidence", lambda e: m.bin_statistics(np.array([0.5, NAN]), [1, 0]), ValueError, r"`confidences` in \[0, 1\], but got values in \[nan"),
    bad("metrics", "NaN outcome", lambda e: m.smooth_ece_from_confidences([0.5, 0.6], np.array([1.0, NAN])), ValueError, r"`correct` to hold only booleans or 0/1, but got the value nan"),
    bad("metrics", "NaN bin edge", lambda e: m.bin_statistics(CONF, OK, edges=[0.0, NAN, 1.0]), ValueError, r"finite `edges`, but got \[0.0, nan, 1.0\]"),
    bad("metrics", "NaN bootstrap weights", lambda e: m.ece_weighted(CONF[None], OK[None], np.array([[1.0, NAN, 1.0, 1.0]])), ValueError, r"finite, non-negative `weights`"),
    bad("metrics", "infinite sigma", lambda e: m.smooth_ece_from_confidences(CONF, OK, sigma=INF), ValueError, r"argument `sigma` to be a positive finite number or None, but got inf"),
    bad("metrics", "NaN sigma", lambda e: m.smooth_ece_from_confidences(CONF, OK, sigma=NAN), ValueError, r"argument `sigma` .* but got nan"),
    # wrong shapes and types
    bad("metrics", "[N] probabilities", lambda e: m.ece(CONF, Y), ValueError, r"`probs` of shape \[N, C\].*got shape \(4,\)"),
    bad("metrics", "[N, C, K] probabilities", lambda e: m.accuracy(np.full((2, 2, 2), 0.5), [0, 1]), ValueError, r"`probs` of shape \[N, C\].*got shape \(2, 2, 2\)"),
    bad("metrics", "[N, 1] labels", lambda e: m.ece(P, Y[:, None]), ValueError, r"`labels` of shape \[N\], but got shape \(4, 1\)"),
    bad("metrics", "float labels", lambda e: m.nll(P, Y.astype(float)), ValueError, r"integer `labels`, but got dtype torch.float64"),
    bad("metrics", "integer probabilities", lambda e: m.ece(np.array([[1, 0]]), [0]), ValueError, r"`probs` to be a floating-point array, but got dtype torch.int64"),
    bad("metrics", "strings as probabilities", lambda e: m.ece(np.array([["a", "b"]]), [0]), TypeError, r"`probs` to be a numeric .* but got a numpy array of dtype <U1"),
    bad("metrics", "probabilities outside [0, 1]", lambda e: m.ece(np.array([[-0.1, 1.1]]), [0]), ValueError, r"`probs` in \[0, 1\], but got values in \[-0.1, 1.1\]; pass inputs='logits'"),
    bad("metrics", "rows not summing to 1", lambda e: m.ece(np.array([[0.5, 0.6]]), [0]), ValueError, r"each row of `probs` to sum to 1, but a row is 0.1 away"),
    bad("metrics", "[N, 1] confidences", lambda e: m.bin_statistics(CONF[:, None], OK[:, None]), ValueError, r"`confidences` of shape \[N\].*got shape \(4, 1\)"),
    bad("metrics", "[N] confidences to ece_weighted", lambda e: m.ece_weighted(CONF, OK, np.ones((1, 4))), ValueError, r"`confidences` of shape \[R, N\].*got shape \(4,\)"),
    bad("metrics", "weights of another width", lambda e: m.ece_weighted(CONF[None], OK[None], np.ones((2, 3))), ValueError, r"`weights` of shape \[S, 4\].*got \(2, 3\)"),
    bad("metrics", "2-D bin edges", lambda e: m.bin_statistics(CONF, OK, edges=np.array([[0.0, 1.0]])), ValueError, r"`edges` of shape \[B\+1\].*got shape \(1, 2\)"),
    bad("metrics", "float draws", lambda e: m.multiplicities(torch.zeros(2, 3)), ValueError, r"`draws` to be an integer \[S, N\] array .* got torch.float32 of shape \(2, 3\)"),
    bad("metrics", "class_names of another length", lambda e: m.per_class_table(P, Y, class_names=["a"]), ValueError, r"Expected 2 `class_names`, but got 1"),
    # out-of-range values
    bad("metrics", "negative label", lambda e: m.ece(P, [0, -1, 1, 0]), ValueError, r"`labels` in \[0, 1\], but got values in \[-1, 1\]"),
    bad("metrics", "label >= number of classes", lambda e: m.top_label(P, [0, 2, 1, 0]), ValueError, r"`labels` in \[0, 1\], but got values in \[0, 2\]"),
    bad("metrics", "outcomes other than 0/1 (smooth ECE)", lambda e: m.smooth_ece_from_confidences(CONF, [2, 0, 1, 1]), ValueError,
        r"`correct` to hold only booleans or 0/1, but got the value 2"),
    bad("metrics", "outcomes other than 0/1 (binning)", lambda e: m.bin_statistics(CONF, [0.5, 0, 1, 1]), ValueError, r"`correct` to hold only booleans or 0/1, but got the value 0.5"),
    bad("metrics", "confidence above 1", lambda e: m.smooth_ece_from_confidences([0.5, 1.5], [1, 0]), ValueError, r"`confidences` in \[0, 1\], but got values in \[0.5, 1.5\]"),
    bad("metrics", "edges not covering [0, 1]", lambda e: m.bin_statistics(CONF, OK, edges=[0.0, 0.5, 0.8]), ValueError,
        r"`edges` that cover \[0, 1\] \(first edge <= 0, last edge >= 1\), but got \[0.0, 0.5, 0.8\]"),
    bad("metrics", "edges starting above 0", lambda e: m.bin_statistics(CONF, OK, edges=[0.4, 0.7, 1.0]), ValueError, r"`edges` that cover \[0, 1\]"),
    bad("metrics", "decreasing edges", lambda e: m.bin_statistics(CONF, OK, edges=[1.0, 0.5, 0.0]), ValueError, r"non-decreasing `edges`, but got \[1.0, 0.5, 0.0\]"),
    bad("metrics", "negative weights", lambda e: m.ece_weighted(CONF[None], OK[None], np.array([[1.0, -1.0, 1.0, 1.0]])), ValueError, r"non-negative `weights`"),
    bad("metrics", "draws beyond N", lambda e: m.multiplicities(torch.tensor([[0, 5, 1]])), ValueError, r"`draws` in \[0, 2\] \(row indices\), but got values in \[0, 5\]"),
    bad("metrics", "n_bins = 0", lambda e: m.ece(P, Y, n_bins=0), ValueError, r"argument `n_bins` to be an integer larger than 0, but got 0"),
    bad("metrics", "n_bins = 10.0", lambda e: m.adaptive_ece(P, Y, n_bins=10.0), ValueError, r"argument `n_bins` to be an integer larger than 0, but got 10.0"),
    bad("metrics", "n_grid = 1", lambda e: m.smooth_ece_from_confidences(CONF, OK, n_grid=1), ValueError, r"argument `n_grid` to be an integer larger than 1 or None, but got 1"),
    bad("metrics", "level = 1", lambda e: m.bootstrap_ci(m.accuracy, P, Y, level=1.0), ValueError, r"argument `level` to be a number in \(0, 1\), but got 1.0"),
    bad("metrics", "n_resamples = 0", lambda e: m.bootstrap_ci(m.accuracy, P, Y, n_resamples=0), ValueError, r"argument `n_resamples` to be an integer larger than 0, but got 0"),
    # empty inputs
    bad("metrics", "no samples", lambda e: m.ece(np.zeros((0, 2)), np.zeros(0, dtype=int)), ValueError, r"`probs` of shape \[N, C\] with N >= 1 .* got shape \(0, 2\)"),
    bad("metrics", "no classes", lambda e: m.nll(np.zeros((2, 0)), [0, 0]), ValueError, r"`probs` of shape \[N, C\] with N >= 1 and C >= 1, but got shape \(2, 0\)"),
    bad("metrics", "no confidences", lambda e: m.bin_statistics(np.zeros(0), np.zeros(0)), ValueError, r"`confidences` of shape \[N\] with every size >= 1, but got shape \(0,\)"),
    bad("metrics", "no confidences (smooth ECE)", lambda e: m.smooth_ece_from_confidences([], []), ValueError, r"`confidences` of shape \[N\] .* got shape \(0,\)"),
    bad("metrics", "bootstrap of no rows", lambda e: m.bootstrap_ci(m.ece, np.zeros((0, 2)), np.zeros(0, dtype=int)), ValueError,
        r"at least one row to resample, but `probs` has shape \(0, 2\)"),
    bad("metrics", "bootstrap_rows of n = 0", lambda e: m.bootstrap_rows(lambda rows: 0.0, 0), ValueError, r"argument `n` \(the number of rows to resample\) to be an integer larger than 0, but got 0"),
    bad("metrics", "bootstrap_weights of n = 0", lambda e: m.bootstrap_weights(lambda w: w.sum(1), 0), ValueError, r"argument `n` .* larger than 0, but got 0"),
    bad("metrics", "empty edges", lambda e: m.bin_statistics(CONF, OK, edges=[]), ValueError, r"`edges` of shape \[B\+1\] with B >= 1, but got shape \(0,\)"),
    # mismatched lengths
    bad("metrics", "fewer labels than rows", lambda e: m.ece(P, Y[:3]), ValueError, r"`labels` to have one entry per sample \(4\), but got 3"),
    bad("metrics", "fewer outcomes than confidences", lambda e: m.bin_statistics(CONF, OK[:3]), ValueError, r"`correct` of the shape of `confidences` \(4,\), but got shape \(3,\)"),
    bad("metrics", "fewer outcomes (smooth ECE)", lambda e: m.smooth_ece_from_confidences(CONF, OK[:3]), ValueError, r"`correct` of the shape of `confidences`"),
    bad("metrics", "bootstrap labels of another length", lambda e: m.bootstrap_ci(m.accuracy, P, Y[:2]), ValueError,
        r"`labels` to have one entry per row of `probs` \(4\), but got shape \(2,\)"),
    # unknown names
    bad("metrics", "inputs='prob'", lambda e: m.ece(P, Y, inputs="prob"), ValueError, r"argument `inputs` to be one of \('probs', 'logits'\), but got 'prob'"),
    bad("metrics", "convention='middle'", lambda e: m.mce(P, Y, convention="middle"), ValueError, r"argument `convention` to be one of .*'torchmetrics'\), but got 'middle'"),
    # accepted on purpose
    accepted("metrics", "nested lists instead of arrays", lambda e: m.ece(P.tolist(), Y.tolist()), lambda r: r == pytest.approx(m.ece(P, Y)),
             "lists convert to arrays without loss; the result equals that of the arrays"),
    accepted("metrics", "float16 probabilities", lambda e: m.ece(torch.tensor(P, dtype=torch.float16), torch.tensor(Y)), lambda r: abs(r - m.ece(P, Y)) < 1e-3,
             "half precision is how GPU models give scores; rows may sum to 1 within 1e-3, and sums are taken in float64"),
    accepted("metrics", "probability 0 on the true class (NLL)", lambda e: m.nll(np.array([[1.0, 0.0]]), [1]), lambda r: r == math.inf,
             "the true NLL of a certain mistake is infinite; from logits it stays finite"),
    accepted("metrics", "a single class (C = 1)", lambda e: m.ece(np.ones((3, 1)), [0, 0, 0]), lambda r: r == 0.0,
             "degenerate but well defined: every prediction is certain and right, ECE 0"),
    accepted("metrics", "a single sample", lambda e: m.ece(np.array([[0.8, 0.2]]), [1]), lambda r: r == pytest.approx(0.8),
             "the ECE of one prediction is the distance between its confidence and its outcome; whether N is enough is the caller's call"),
    accepted("metrics", "repeated bin edges", lambda e: m.bin_statistics(CONF, OK, edges=[0.0, 0.5, 0.5, 1.0]), lambda r: r.count.tolist() == [1.0, 0.0, 3.0],
             "equal-mass edges of tied confidences repeat; the zero-width bin stays empty"),
    accepted("metrics", "integer 0/1 confidences", lambda e: m.bin_statistics(np.array([1, 0]), np.array([1, 0])), lambda r: r.ece == 0.0,
             "0 and 1 are valid confidences whatever their dtype"),
    accepted("metrics", "bootstrap of a single row", lambda e: m.bootstrap_ci(m.accuracy, P[:1], Y[:1], n_resamples=20),
             lambda r: r.lower == r.estimate == r.upper == 1.0, "every resample is that row: the interval collapses to the estimate"),
    accepted("metrics", "ece_weighted with no weightings (S = 0)", lambda e: m.ece_weighted(CONF[None], OK[None], np.zeros((0, 4))),
             lambda r: tuple(r.shape) == (0, 1), "zero resamples give zero ECEs: an empty [0, R] result"),
]

CALIBRATION = [
    bad("calibration", "NaN logits (temperature scaling)", lambda e: cal.TemperatureScaling().fit(np.array([[NAN, 1.0]]), [0]), ValueError, r"finite `logits`, but got NaN"),
    bad("calibration", "+inf logits (vector scaling)", lambda e: cal.VectorScaling().fit(np.array([[INF, 1.0], [0.0, 1.0]]), [0, 1]), ValueError, r"finite `logits`"),
    bad("calibration", "NaN logits (fit_temperatures)", lambda e: cal.fit_temperatures(np.full((2, 3, 2), NAN), np.zeros((2, 3), dtype=int)), ValueError, r"finite `logits`"),
    bad("calibration", "no samples", lambda e: cal.TemperatureScaling().fit(np.zeros((0, 3)), np.zeros(0, dtype=int)), ValueError, r"`logits` of shape \[N, C\] with N >= 1"),
    bad("calibration", "[N] logits", lambda e: cal.VectorScaling().fit(Z[:, 0], Y), ValueError, r"`logits` of shape \[N, C\].*got shape \(4,\)"),
    bad("calibration", "label out of range", lambda e: cal.TemperatureScaling().fit(Z, [0, 1, 2, 0]), ValueError, r"`labels` in \[0, 1\], but got values in \[0, 2\]"),
    bad("calibration", "negative label", lambda e: cal.HistogramBinning().fit(P, [0, -1, 1, 0]), ValueError, r"`labels` in \[0, 1\], but got values in \[-1, 1\]"),
    bad("calibration", "fewer labels than logits", lambda e: cal.TemperatureScaling().fit(Z, Y[:3]), ValueError, r"`labels` to have one entry per sample \(4\), but got 3"),
    bad("calibration", "fit_temperatures on [N, C] logits", lambda e: cal.fit_temperatures(Z, Y), ValueError, r"`logits` \[G, N, C\] and `labels` \[G, N\].*got \(4, 2\) and \(4,\)"),
    bad("calibration", "transform before fit", lambda e: cal.TemperatureScaling().transform(Z), RuntimeError, r"TemperatureScaling is not fitted yet; call fit"),
    bad("calibration", "temperature scaling: another number of classes", lambda e: cal.TemperatureScaling().fit(Z, Y).transform(np.zeros((2, 3))), ValueError,
        r"Expected 2 classes as at fit time, but got 3 \(`logits` of shape \(2, 3\)\)"),
    bad("calibration", "vector scaling: another number of classes", lambda e: cal.VectorScaling().fit(Z, Y).transform(np.zeros((2, 1))), ValueError,
        r"Expected 2 classes as at fit time, but got 1 \(`logits`"),
    bad("calibration", "histogram binning: fewer classes than at fit time", lambda e: cal.HistogramBinning().fit(P, Y).transform(np.ones((3, 1))), ValueError,
        r"Expected 2 classes as at fit time, but got 1 \(`scores` of shape \(3, 1\)\)"),
    bad("calibration", "histogram binning: n_bins = 0", lambda e: cal.HistogramBinning(n_bins=0), ValueError, r"argument `n_bins` to be an integer larger than 0, but got 0"),
    bad("calibration", "histogram binning: inputs='prob'", lambda e: cal.HistogramBinning(inputs="prob"), ValueError, r"argument `inputs` to be one of"),
    bad("calibration", "search bounds the wrong way round", lambda e: cal.TemperatureSearch(lower=2.0, upper=0.5), ValueError, r"0 < lower < 1 < upper < inf, but got lower=2.0, upper=0.5"),
    bad("calibration", "NaN search bound", lambda e: cal.TemperatureSearch(upper=NAN), ValueError, r"upper=nan"),
    bad("calibration", "max_iter = 0", lambda e: cal.VectorScaling(max_iter=0), ValueError, r"argument `max_iter` to be an integer larger than 0, but got 0"),
    bad("calibration", "stratified sample of no labels", lambda e: cal.stratified_sample(np.zeros(0, dtype=int), 1), ValueError, r"`labels` with at least one entry .* empty array"),
    bad("calibration", "stratified sample of negative labels", lambda e: cal.stratified_sample([0, -3, 1], 2), ValueError, r"non-negative `labels`, but got a minimum of -3"),
    bad("calibration", "stratified sample of n = -5", lambda e: cal.stratified_sample(Y, -5), ValueError, r"argument `n` .* integer in \[1, 4\], but got -5"),
    bad("calibration", "fit on more samples than there are", lambda e: cal.fit_on_n_samples(cal.TemperatureScaling(), Z, Y, n=10), ValueError, r"argument `n` .* in \[1, 4\], but got 10"),
    bad("calibration", "fit_on_n_samples with fewer labels", lambda e: cal.fit_on_n_samples(cal.TemperatureScaling(), Z, Y[:3], n=2), ValueError,
        r"`labels` to have one entry per row of `logits` \(4\), but got 3"),
    accepted("calibration", "every prediction right (temperature scaling)",
             lambda e: warned(lambda: cal.TemperatureScaling().fit(np.array([[3.0, 0.0], [0.0, 3.0]]), [0, 1]).temperature_),
             lambda r: r[0] == 1e-3 and any("search bound" in w for w in r[1]),
             "the NLL optimum is T -> 0; the search bound is returned, with a warning that says so"),
    accepted("calibration", "a single calibration sample", lambda e: warned(lambda: cal.TemperatureScaling().fit(np.array([[3.0, 0.0]]), [1]).temperature_),
             lambda r: r[0] == 1e3 and any("search bound" in w for w in r[1]),
             "one wrong prediction alone makes T -> inf optimal; the bound is returned with a warning"),
    accepted("calibration", "histogram binning: a bin empty at fit time", lambda e: cal.HistogramBinning(n_bins=10).fit(P, Y).transform(np.array([[0.05, 0.95]])),
             lambda r: r.tolist() == [0.95], "no calibration data in that bin: the confidence is kept, not replaced by a guess"),
    accepted("calibration", "stratified sample of every row", lambda e: cal.stratified_sample(Y, 4), lambda r: r.tolist() == [0, 1, 2, 3],
             "n = N is a valid (if pointless) subset"),
]

BACKBONES = [
    bad("backbones", "unknown family", lambda e: load_backbone("nosuch"), ValueError, r"Unknown backbone 'nosuch'. Accepted: `default` .*`openclip:<arch>:"),
    bad("backbones", "a name that is not a string", lambda e: load_backbone(42), ValueError, r"Expected a backbone name \(a string: .*\), but got 42"),
    bad("backbones", "unknown default variant", lambda e: load_backbone("default-nosuch"), ValueError, r"Unknown default backbone 'default-nosuch'; known: default"),
    bad("backbones", "open_clip name without weights part", lambda e: load_backbone("openclip:ViT-B-16"), ValueError, r"`openclip:<arch>:<pretrained>`.*but got 'openclip:ViT-B-16'"),
    bad("backbones", "unknown open_clip architecture", lambda e: load_backbone("openclip:ViT-Z-99:random"), ValueError, r"Unknown open_clip architecture 'ViT-Z-99'"),
    bad("backbones", "unknown pretrained tag", lambda e: load_backbone("openclip:vlmcal-tiny:nosuchtag"), ValueError, r"'nosuchtag' is neither a pretrained tag of 'vlmcal-tiny' nor an existing file"),
    bad("backbones", "checkpoint path that does not exist", lambda e: load_backbone(f"openclip:vlmcal-tiny:{e.root}/missing.pt"), WeightsNotFoundError,
        r"Checkpoint file '.*missing.pt' for open_clip architecture 'vlmcal-tiny' does not exist"),
    bad("backbones", "weights not downloaded, hub offline",
        lambda e: with_env(lambda: load_backbone("openclip:ViT-B-16:openai", weights_dir=e.folder("no-weights")), HF_HUB_OFFLINE="1", HOME=str(e.folder("home"))),
        WeightsNotFoundError, r"weights of openclip:ViT-B-16:openai are not on this machine .*HF_HUB_OFFLINE is set"),
    bad("backbones", "a text file as checkpoint", lambda e: load_backbone(f"openclip:vlmcal-tiny:{e.file('notes.pt', b'hello, not weights')}", device="cpu"), ValueError,
        r"weights file in `name` .* to be a readable open_clip/torch checkpoint .* but .*notes.pt is not one"),
    bad("backbones", "a zip that is no checkpoint", lambda e: load_backbone(f"openclip:vlmcal-tiny:{e.file('archive.pt', b'PK' + bytes(40))}", device="cpu"), ValueError,
        r"readable open_clip/torch checkpoint .* but .*archive.pt is not one"),
    bad("backbones", "a checkpoint with pickled objects", lambda e: load_backbone(f"openclip:vlmcal-tiny:{e.pickled_checkpoint}", device="cpu"), ValueError,
        r"readable open_clip/torch checkpoint, but .*training-checkpoint.pt holds pickled Python objects .*argparse.Namespace"),
    bad("backbones", "a checkpoint of another architecture", lambda e: load_backbone(f"openclip:vlmcal-tiny:{e.other_arch_checkpoint}", device="cpu"), ValueError,
        r"weights of open_clip architecture 'vlmcal-tiny', but the state dict in .*other-arch.pt does not fit it \(\d+ missing"),
    bad("backbones", "28x28 greyscale images to open_clip", lambda e: e.tiny.encode_images(torch.rand(2, 1, 28, 28)), ValueError,
        r"`images` of shape \[B, 3, H, W\] with \(H, W\) = \(32, 32\) .* but got \(2, 1, 28, 28\)\. Apply the model's own `backbone.preprocess`"),
    bad("backbones", "images of the wrong size", lambda e: e.tiny.encode_images(torch.rand(2, 3, 28, 28)), ValueError,
        r"\(H, W\) = \(32, 32\) .* but got \(2, 3, 28, 28\)\. Apply the model's own `backbone.preprocess`"),
    bad("backbones", "one image without batch axis", lambda e: e.tiny.encode_images(torch.rand(3, 32, 32)), ValueError, r"`images` of shape \[B, 3, H, W\].* but got \(3, 32, 32\)"),
    bad("backbones", "uint8 images", lambda e: e.tiny.encode_images(torch.zeros(1, 3, 32, 32, dtype=torch.uint8)), ValueError, r"`images` to be a float tensor .* got dtype torch.uint8"),
    bad("backbones", "NaN images", lambda e: e.tiny.encode_images(torch.full((1, 3, 32, 32), NAN)), ValueError, r"finite `images`, but got NaN or inf"),
    bad("backbones", "no prompts", lambda e: e.tiny.encode_text([]), ValueError, r"`prompts` to be a non-empty list of strings, but got \[\]"),
    bad("backbones", "one prompt string instead of a list", lambda e: e.tiny.encode_text("a cat"), ValueError, r"`prompts` to be a non-empty list of strings, but got 'a cat'"),
    bad("backbones", "context of the wrong width", lambda e: e.tiny.encode_text_with_context(torch.zeros(4, 7), ["cat"]), ValueError, r"`context` of shape \[M, 64\] .* but got \(4, 7\)"),
    bad("backbones", "empty phrase", lambda e: e.tiny.embed_phrase(""), ValueError, r"phrase with at least one token, but got ''"),
    accepted("backbones", "an empty batch of images", lambda e: e.tiny.encode_images(torch.zeros(0, 3, 32, 32)), lambda r: tuple(r.shape) == (0, 32),
             "no images give no features, [0, D] (open_clip's own forward cannot take it)"),
    accepted("backbones", "tag 'RANDOM' in capitals", lambda e: load_backbone("openclip:vlmcal-tiny:RANDOM", device="cpu").embed_dim, lambda r: r == 32,
             "'random' is vlmcal's own tag, read in any case; no open_clip tag is spelt like it"),
]

ZEROSHOT = [
    bad("zero-shot", "no class names", lambda e: zeroshot.ZeroShotClassifier(e.tiny, []), ValueError, r"`class_names` to be a non-empty list of strings, but got \[\]"),
    bad("zero-shot", "one class-name string", lambda e: zeroshot.class_text_features(e.tiny, "cat"), ValueError, r"`class_names` to be a non-empty list of strings, but got 'cat'"),
    bad("zero-shot", "template without {}", lambda e: zeroshot.class_text_features(e.tiny, ["cat"], "a photo"), ValueError, r"template to be a string with exactly one '\{\}' .* got 'a photo'"),
    bad("zero-shot", "features of different widths", lambda e: zeroshot.zero_shot_logits(torch.zeros(2, 3), torch.zeros(4, 5), 100.0), ValueError,
        r"`image_features` \[N, D\] and `text_features` \[C, D\] with the same D, but got \(2, 3\) and \(4, 5\)"),
    bad("zero-shot", "infinite logit_scale", lambda e: zeroshot.zero_shot_logits(torch.zeros(2, 3), torch.zeros(4, 3), INF), ValueError, r"`logit_scale` to be a positive finite number, but got inf"),
    bad("zero-shot", "negative logit_scale", lambda e: zeroshot.zero_shot_logits(torch.zeros(2, 3), torch.zeros(4, 3), -1.0), ValueError, r"`logit_scale` to be a positive finite number, but got -1.0"),
]

DATASETS = [
    bad("datasets", "data_dir: an empty folder", lambda e: ds.load_fashion_mnist("test", data_dir=e.folder("empty")), FileNotFoundError,
        r"argument `data_dir` to be a folder holding the Fashion-MNIST files .* but '.*empty' lacks train-images.*dataset-fashion-mnist.*\$VLMCAL_DATA_DIR"),
    bad("datasets", "data_dir: an empty folder, files under $VLMCAL_DATA_DIR",
        lambda e: with_env(lambda: ds.find_fashion_mnist(e.folder("empty"), download=False), VLMCAL_DATA_DIR=str(e.fake_fashion_mnist)), FileNotFoundError,
        r"argument `data_dir` .* '.*empty' lacks .*t10k-labels-idx1-ubyte.gz"),
    bad("datasets", "data_dir: two of the four files", lambda e: ds.find_fashion_mnist(e.partial_fashion_mnist), FileNotFoundError,
        r"'.*partial-fashion-mnist' lacks train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz \("),
    bad("datasets", "data_dir: a folder that does not exist", lambda e: ds.load_fashion_mnist(data_dir=e.root / "no-such-folder"), FileNotFoundError,
        r"argument `data_dir` .* but '.*no-such-folder' is not a folder"),
    bad("datasets", "spec 'fashion-mnist:<empty folder>'", lambda e: ds.load_dataset(f"fashion-mnist:{e.folder('empty')}"), FileNotFoundError, r"argument `data_dir` .* '.*empty' lacks"),
    bad("datasets", "data_dir: files that are not Fashion-MNIST", lambda e: ds.load_fashion_mnist(data_dir=e.fake_fashion_mnist), ValueError,
        r"Checksum mismatch for .*t10k-images-idx3-ubyte.gz.* delete it"),
    bad("datasets", "split='validation'", lambda e: ds.load_fashion_mnist("validation"), ValueError, r"argument `split` to be 'train' or 'test', but got 'validation'"),
    bad("datasets", "split='val' in load_dataset", lambda e: ds.load_dataset(f"imagefolder:{e.root}", split="val"), ValueError, r"argument `split` to be 'train' or 'test', but got 'val'"),
    bad("datasets", "unknown data set without a path", lambda e: ds.load_dataset("nosuch"), ValueError,
        r"Unknown data set 'nosuch' in argument `spec` \('nosuch'\); known: fashion-mnist, imagefolder, cifar10"),
    bad("datasets", "unknown data set with a path", lambda e: ds.load_dataset(f"nosuch:{e.root}"), ValueError, r"Unknown data set 'nosuch' in argument `spec` \('nosuch:.*'\); known: fashion-mnist"),
    bad("datasets", "a spec that is not a string", lambda e: ds.load_dataset(None), ValueError, r"argument `spec` to be a string .* but got None"),
    bad("datasets", "torchvision data set without a path", lambda e: ds.load_dataset("cifar10"), ValueError, r"a spec like 'cifar10:/path/to/data', but got 'cifar10' \(no path\)"),
    bad("datasets", "torchvision data set: folder missing", lambda e: ds.load_dataset(f"cifar10:{e.root}/nowhere"), FileNotFoundError, r"'cifar10:.*nowhere': the folder .* does not exist"),
    bad("datasets", "torchvision data set: not downloaded", lambda e: ds.load_dataset(f"cifar10:{e.folder('empty')}"), FileNotFoundError,
        r"torchvision's CIFAR10 found no data under .*empty .*vlmcal does not download it: run torchvision.datasets.CIFAR10"),
    bad("datasets", "image folder without class folders", lambda e: ds.load_dataset(f"imagefolder:{e.folder('empty')}"), FileNotFoundError,
        r"'imagefolder:.*empty': expected the layout .*empty/<class>/<image>"),
    bad("datasets", "class subset with a label out of range", lambda e: ds.class_subset(e.images, [0, 2]), ValueError, r"`classes` to be distinct labels in \[0, 2\), but got \[0, 2\]"),
    bad("datasets", "class subset with a negative label", lambda e: ds.class_subset(e.images, [-1]), ValueError, r"`classes` to be distinct labels .* but got \[-1\]"),
    bad("datasets", "class subset of no classes", lambda e: ds.class_subset(e.images, []), ValueError, r"`classes` to be distinct labels .* but got \[\]"),
    bad("datasets", "float images", lambda e: ds.TensorImageDataset(torch.zeros(2, 1, 2, 2), torch.tensor([0, 1]), ["a", "b"], {}), ValueError,
        r"`images` as a \[N, C, H, W\] uint8 tensor, but got torch.float32 \(2, 1, 2, 2\)"),
    bad("datasets", "fewer labels than images", lambda e: ds.TensorImageDataset(torch.zeros(3, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 1]), ["a", "b"], {}), ValueError,
        r"as many labels as images, but got 2 labels for 3 images"),
    bad("datasets", "base/new split of one class", lambda e: ds.base_new_split(["only"]), ValueError, r"at least 2 classes to split, but got 1"),
]

PREDICTIONS = [
    bad("predictions", "max_samples=-5 (predict)", lambda e: pred.predict(TINY, max_samples=-5), ValueError,
        r"argument `max_samples` to be a positive integer .* or None or 0 for every image, but got -5"),
    bad("predictions", "max_samples=-5 (load_test_data)", lambda e: pred.load_test_data("fashion-mnist", max_samples=-5), ValueError, r"argument `max_samples` .* but got -5"),
    bad("predictions", "max_samples=-5 (evaluation_rows)", lambda e: pred.evaluation_rows(torch.arange(10) % 2, -5), ValueError, r"argument `max_samples` .* but got -5"),
    bad("predictions", "max_samples=2.5", lambda e: pred.evaluation_rows(torch.arange(10) % 2, 2.5), ValueError, r"argument `max_samples` .* but got 2.5"),
    bad("predictions", "max_samples=True", lambda e: pred.load_test_data("fashion-mnist", max_samples=True), ValueError, r"argument `max_samples` .* but got True"),
    bad("predictions", "unknown shift", lambda e: pred.predict(TINY, shift="fog", severity=3), ValueError, r"Unknown shift 'fog' in argument `shift`; known: clean, gaussian_noise"),
    bad("predictions", "severity 7", lambda e: pred.load_test_data("fashion-mnist", shift="contrast", severity=7), ValueError, r"argument `severity` to be an integer in 1..5, but got 7"),
    bad("predictions", "severity 2.7", lambda e: pred.predict(TINY, shift="contrast", severity=2.7), ValueError, r"argument `severity` to be an integer in 1..5, but got 2.7"),
    bad("predictions", "unknown templates", lambda e: pred.predict(TINY, templates="nosuch"), ValueError, r"`templates` to be 'hard', 'ensemble' or 'dataset', but got 'nosuch'"),
    bad("predictions", "data-set templates for another data set", lambda e: pred.prompt_templates("dataset", "cifar10:/data"), ValueError,
        r"Dataset-specific templates exist for fashion-mnist only, not 'cifar10:/data'"),
    bad("predictions", "unknown data set", lambda e: pred.predict(TINY, dataset="nosuch"), ValueError, r"Unknown data set 'nosuch' in argument `spec`"),
    accepted("predictions", "max_samples above N", lambda e: pred.evaluation_rows(torch.arange(10) % 2, 50), lambda r: r is None,
             "'at most' that many: every row is kept"),
    accepted("predictions", "max_samples=0", lambda e: pred.evaluation_rows(torch.arange(10) % 2, 0), lambda r: r is None,
             "0 means every image, as in the notebooks' `max_samples` parameter"),
    accepted("predictions", "a severity with shift='clean'", lambda e: pred.load_test_data("fashion-mnist", "clean", severity=3, max_samples=20),
             lambda r: len(r) == 20 and "shift" not in r.identity, "clean images have no severity; the argument is ignored, as documented"),
]

SHIFTS = [
    bad("shifts", "unknown shift", lambda e: shifts.apply_shift(torch.rand(1, 1, 8, 8), "fog", 2), ValueError, r"Unknown shift 'fog' in argument `name`; known: gaussian_noise"),
    bad("shifts", "severity 0", lambda e: shifts.apply_shift(torch.rand(1, 1, 8, 8), "contrast", 0), ValueError, r"argument `severity` to be an integer in 1..5, but got 0"),
    bad("shifts", "severity True", lambda e: shifts.apply_shift(torch.rand(1, 1, 8, 8), "contrast", True), ValueError, r"argument `severity` .* but got True"),
    bad("shifts", "images outside [0, 1]", lambda e: shifts.apply_shift(torch.full((1, 1, 8, 8), 255.0), "contrast", 2), ValueError, r"`images` in \[0, 1\], but got values in \[255.0, 255.0\]"),
    bad("shifts", "NaN images", lambda e: shifts.apply_shift(torch.full((1, 1, 8, 8), NAN), "contrast", 2), ValueError, r"`images` in \[0, 1\], but got values in \[nan"),
    bad("shifts", "[H, W] images", lambda e: shifts.apply_shift(torch.rand(8, 8), "contrast", 2), ValueError, r"`images` as a \[N, C, H, W\] float tensor in \[0, 1\], but got torch.float32 \(8, 8\)"),
    bad("shifts", "fewer indices than images", lambda e: shifts.apply_shift(torch.rand(2, 1, 8, 8), "gaussian_noise", 2, indices=torch.arange(1)), ValueError,
        r"one index per image, but got 1 indices for 2 images"),
    accepted("shifts", "an empty batch", lambda e: shifts.apply_shift(torch.rand(0, 1, 8, 8), "contrast", 2), lambda r: tuple(r.shape) == (0, 1, 8, 8),
             "no images in, no images out (a slice at the end of a data set may be empty)"),
]

CASES: list[Case] = METRICS + CALIBRATION + BACKBONES + ZEROSHOT + DATASETS + PREDICTIONS + SHIFTS
AREAS = ["metrics", "calibration", "backbones", "zero-shot", "datasets", "predictions", "shifts"]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Env:
    return Env(tmp_path_factory.mktemp("bad-input"))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, env: Env):
    if case.error is not None:
        with pytest.raises(case.error) as info:
            case.call(env)
        message = str(info.value)
        assert re.search(case.match, message, flags=re.DOTALL), f"message does not match {case.match!r}:\n{message}"
    else:
        result = case.call(env)
        assert case.check(result), f"accepted on purpose, but the result is not the sensible one: {result!r}"


def test_matrix_is_well_formed():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    for c in CASES:
        assert c.area in AREAS, c.id
        if c.error is None:
            assert c.check is not None and c.why, f"{c.id}: an accepted case needs a check and a reason"
        else:
            assert c.match and c.check is None and not c.why, f"{c.id}: an error case needs a regex"


# ----------------------------------------------------------------------------- the book page's tables


def render_section() -> str:
    """The tables of the book's page "Bad input" (its section "The cases"), from ``CASES``."""
    lines = [
        "| Area | Cases tried | Clear errors | Accepted on purpose |",
        "|---|---:|---:|---:|",
    ]
    tried, errors = Counter(c.area for c in CASES), Counter(c.area for c in CASES if c.error is not None)
    for area in AREAS:
        lines.append(f"| {area} | {tried[area]} | {errors[area]} | {tried[area] - errors[area]} |")
    n_errors = sum(errors.values())
    lines.append(f"| **all** | **{len(CASES)}** | **{n_errors}** | **{len(CASES) - n_errors}** |")
    lines += ["", "Accepted on purpose:", "", "| Area | Input | Why |", "|---|---|---|"]
    lines += [f"| {c.area} | {c.what} | {c.why} |" for c in CASES if c.error is None]
    return "\n".join(lines)


def page_section(text: str) -> str:
    """The body of the page's section "The cases", up to the next section or the end."""
    found = re.search(r"^## The cases\n(.*?)(?=^## |\Z)", text, flags=re.DOTALL | re.MULTILINE)
    assert found, "book/bad_input.md has no '## The cases' section"
    return found.group(1)


def test_book_page_matches_the_matrix():
    section = page_section(PAGE.read_text())
    missing = [line for line in render_section().splitlines() if line.strip() and line not in section.splitlines()]
    assert not missing, "book/bad_input.md is out of date; paste `python tests/test_bad_input.py`. Lines missing:\n" + "\n".join(missing)
    # and nothing in it claims cases the matrix does not hold
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    assert len(rows) == len([line for line in render_section().splitlines() if line.startswith("| ")])


if __name__ == "__main__":
    print(render_section())
