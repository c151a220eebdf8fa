"""Prompt learning in the base-to-new protocol of CoOp/CoCoOp, as the DOR paper uses it (C12): data, runs, tables.

Prompts learned on ``shots`` images per base class (the first half of the sorted labels, ``base_new_split``) are
evaluated on each half's test images against its classes; HM, the harmonic mean of the two accuracies, sums up the
trade. The seed draws the shots, initial context, batch order and DOR's outliers, as the reference code's does."""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Mapping, Sequence

import pandas as pd
import torch

from vlmcal.adaptation.outliers import OutlierPoolSettings, outlier_pool
from vlmcal.adaptation.prompt_learning import METHODS, PromptTuner, TrackedSplit, method_settings
from vlmcal.data.datasets import base_new_split
from vlmcal.data.published import dataset_template
from vlmcal.metrics.paired import outcome_figures, paired_bootstrap
from vlmcal.pipeline.cache import cached, entry_path
from vlmcal.pipeline.features import image_features
from vlmcal.pipeline.predictions import (RowSubset, clean_data, evaluation_rows, is_supervised, load_model,
                                         model_inputs, prompt_class_names)
from vlmcal.prompting.dispersion import feature_divergence
from vlmcal.prompting.zeroshot import class_text_features, zero_shot_logits

__all__ = ["SPLITS", "BaseToNewData", "few_shot_rows", "base_to_new_data", "PromptLearningRun", "zero_shot_run",
           "train_method", "run_table", "method_summary", "harmonic_mean", "weight_sweep", "split_outcomes", "Contrast",
           "contrast_figures", "PageRuns", "page_runs"]

SPLITS = ("base", "new")
PROMPT_LEARNING_CACHE_VERSION = 1  # bump when training's results change


@dataclass(frozen=True)
class BaseToNewData:
    """The features one seed's runs train and evaluate on.
    Attributes:
        model, seed: the backbone's name, and the seed that drew the shots.
        base_names, new_names: the classes of each half (the names prompts use).
        train_features: [N, D] image features of the shots; ``train_labels`` [N] index ``base_names``.
        splits: ``{"base": TrackedSplit, "new": TrackedSplit}``, each half's test images, labels indexing its names.
        identity: what the features are, for cache keys.
        dataset: the data set's spec.
    """
    model: str
    seed: int
    base_names: list[str]
    new_names: list[str]
    train_features: torch.Tensor = field(repr=False)
    train_labels: torch.Tensor = field(repr=False)
    splits: Mapping[str, TrackedSplit] = field(repr=False)
    identity: Mapping = field(repr=False)
    dataset: str = ""


def few_shot_rows(labels, classes: Sequence[int], shots: int, seed: int) -> torch.Tensor:
    """The sorted indices ([len(classes) * shots]) of ``shots`` rows of each class in ``classes`` among ``labels``
    ([N]), drawn without replacement by ``seed``."""
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise ValueError(f"Expected `shots` to be an integer >= 1, but got {shots!r}")
    labels = torch.as_tensor(labels)
    generator = torch.Generator().manual_seed(int(seed))
    rows = []
    for c in classes:
        members = torch.nonzero(labels == c).flatten()
        if len(members) < shots:
            raise ValueError(f"Class {c} has {len(members)} training images, fewer than `shots` = {shots}; lower `shots`")
        rows.append(members[torch.randperm(len(members), generator=generator)[:shots]])
    return torch.cat(rows).sort().values


def _relabel(labels: torch.Tensor, classes: Sequence[int], n_classes: int) -> torch.Tensor:
    """Labels of ``classes`` renumbered ``0..K-1`` in the order given (any other label becomes -1)."""
    mapping = torch.full((n_classes,), -1, dtype=torch.long)
    mapping[torch.tensor(list(classes))] = torch.arange(len(classes))
    return mapping[labels]


def base_to_new_data(model: str, dataset: str = "fashion-mnist", *, shots: int = 16, seed: int = 1,
                     max_test: int | None = None, class_names: Sequence[str] | None = None, device: str | None = None,
                     cache_dir: str | os.PathLike | None = None, progress: bool = True) -> BaseToNewData:
    """The shots of the base classes and the test images of both halves, as cached image features.
    Args:
        model: a backbone name (a stand-in or ``openclip:<arch>:<pretrained>``).
        dataset: a data-set spec with a train and a test split.
        shots, seed: training images per base class (16 in the papers), and the seed that draws them.
        max_test: evaluate on a stratified subset of at most this many test images (None or 0: all).
        class_names: the names prompts use (default as :func:`vlmcal.pipeline.predictions.predict`).
    """
    if is_supervised(model):
        raise ValueError(f"Prompt learning tunes a prompt, so it needs a vision-language backbone; {model!r} has no text tower")
    train, test = clean_data(dataset, "train"), clean_data(dataset, "test")
    names = list(class_names) if class_names is not None else prompt_class_names(dataset, test)
    if len(names) != len(test.class_names):
        raise ValueError(f"Expected {len(test.class_names)} class names for {dataset!r}, but got {len(names)}")
    base, new = base_new_split(names)
    cache = None if cache_dir is None else str(cache_dir)
    net = load_model(model, device, cache)

    def features(data, split: str):
        inputs, preprocessing = model_inputs(net, data, clean_data(dataset, split))
        identity = {**data.identity, "dataset": dataset, "split": split, "preprocessing": preprocessing}
        return image_features(net, inputs, identity, cache_dir=cache, progress=progress, num_workers=0 if inputs is data else None)

    shot_rows = few_shot_rows(train.labels, base, shots, seed)
    shots_set = features(RowSubset(train, shot_rows), "train")
    test_rows = evaluation_rows(test.labels, max_test)
    test_set = features(test if test_rows is None else RowSubset(test, test_rows), "test")
    splits = {}
    for split, classes in zip(SPLITS, (base, new)):
        keep = torch.isin(test_set.labels, torch.tensor(classes))
        splits[split] = TrackedSplit(test_set.features[keep], _relabel(test_set.labels[keep], classes, len(names)),
                                     [names[c] for c in classes])
    identity = {"model": getattr(net, "cache_identity", net.name), "dataset": dict(test.identity), "class_names": names,
                "shots": shots, "seed": int(seed), "rows": hashlib.sha256(shot_rows.numpy().tobytes()).hexdigest(),
                "test_rows": None if test_rows is None else hashlib.sha256(test_rows.numpy().tobytes()).hexdigest()}
    return BaseToNewData(model, int(seed), [names[c] for c in base], [names[c] for c in new], shots_set.features,
                         _relabel(shots_set.labels, base, len(names)), splits, identity, dataset)


@dataclass(frozen=True)
class PromptLearningRun:
    """One method's outcome on one seed's data.
    Attributes:
        method, seed: its name in the tables (``"zero-shot"``, ``"CoOp + DOR"``, ...), and the data's seed.
        weight: the weight of its regulariser (KgCoOp's w, DOR's lambda); None without one.
        logits, labels: per half (``"base"``, ``"new"``), [N, C] logits and [N] labels.
        history: the training history (:attr:`vlmcal.adaptation.PromptTuner.history_`); zero-shot's: one row.
        seconds_per_epoch: mean training time of an epoch (NaN for zero-shot).
        dataset: the data set's spec.
    """
    method: str
    seed: int
    weight: float | None
    logits: Mapping[str, torch.Tensor] = field(repr=False)
    labels: Mapping[str, torch.Tensor] = field(repr=False)
    history: pd.DataFrame = field(repr=False)
    seconds_per_epoch: float = math.nan
    dataset: str = ""


def zero_shot_run(data: BaseToNewData, template: str | None = None, fd_neighbours: int = 3, device: str | None = None,
                  cache_dir: str | os.PathLike | None = None) -> PromptLearningRun:
    """The frozen zero-shot classifier of ``template`` on both halves; its history: epoch 0's feature divergences.
    ``template``: default the data set's own (``vlmcal.data.published.dataset_template``, "a photo of a {}." for most)."""
    template = template or dataset_template(data.dataset)
    net = load_model(data.model, device, None if cache_dir is None else str(cache_dir))
    logits, labels, history = {}, {}, {"epoch": [0]}
    with torch.no_grad():
        for split, part in data.splits.items():
            text = class_text_features(net, part.class_names, template).cpu()  # [C, D]
            logits[split] = zero_shot_logits(part.image_features, text, net.logit_scale)  # [N, D] @ [D, C] -> [N, C]
            labels[split] = part.labels
            history[f"{split}_fd"] = [float(feature_divergence(text, fd_neighbours))]
    return PromptLearningRun("zero-shot", data.seed, None, logits, labels, pd.DataFrame(history), dataset=data.dataset)


def train_method(data: BaseToNewData, method: str, *, pool=None, device: str | None = None,
                 cache_dir: str | os.PathLike | None = None, progress: bool = True, **overrides) -> PromptLearningRun:
    """Train ``method`` on the data's shots (following both test halves), computed once and cached.

    ``method``: a name of :data:`vlmcal.adaptation.prompt_learning.METHODS` other than zero-shot; ``pool``: DOR's
    :class:`~vlmcal.adaptation.outliers.OutlierPool` (required with DOR); ``overrides``: settings other than the
    method's defaults (``epochs``, ``kg_weight``, ``dor_weight``, ...)."""
    settings = method_settings(method, seed=data.seed, **overrides)
    if settings.dor_weight > 0 and pool is None:
        raise ValueError(f"{settings.name} needs DOR's outlier pool: pass pool=outlier_pool(backbone, data.base_names)")
    outliers = hashlib.sha256("\n".join(pool.names).encode()).hexdigest() if settings.dor_weight > 0 else None
    identity = {"kind": "prompt-learning", "version": PROMPT_LEARNING_CACHE_VERSION, "data": dict(data.identity),
                "settings": asdict(settings), "outliers": outliers}

    def train() -> dict:
        net = load_model(data.model, device, None if cache_dir is None else str(cache_dir))
        tuner = PromptTuner(net, settings, pool).fit(data.train_features, data.train_labels, data.base_names, track=data.splits,
                                                     progress=progress)
        return {"logits": {split: tuner.logits(part.image_features, part.class_names).cpu()
                           for split, part in data.splits.items()},
                "history": {k: torch.tensor(v.to_numpy(dtype="float64")) for k, v in tuner.history_.items()},
                "seconds_per_epoch": torch.tensor(tuner.seconds_per_epoch_)}

    payload = cached(entry_path("prompt-learning", data.model, identity, cache_dir), identity, train)
    history = pd.DataFrame({k: v.numpy() for k, v in payload["history"].items()}).astype({"epoch": int})
    weight = (settings.dor_weight if settings.dor_weight > 0
              else settings.kg_weight if settings.method == "KgCoOp" else None)
    return PromptLearningRun(settings.name, data.seed, None if weight is None else float(weight), payload["logits"],
                             {split: part.labels for split, part in data.splits.items()}, history,
                             float(payload["seconds_per_epoch"]), data.dataset)


def harmonic_mean(a: float, b: float) -> float:
    """The harmonic mean of two accuracies (0 when either is 0)."""
    return 0.0 if a <= 0 or b <= 0 else 2 * a * b / (a + b)


def split_outcomes(run: PromptLearningRun, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(confidence [N], correct [N])`` of a run on one half."""
    confidence, predicted = run.logits[split].double().softmax(dim=-1).max(dim=-1)  # max over [N, C] probabilities
    return confidence, predicted == run.labels[split]


def run_table(runs: Sequence[PromptLearningRun], n_bins: int = 10) -> pd.DataFrame:
    """One row per run: each half's accuracy, ECE, gap (confidence - accuracy) and final feature divergence, and HM."""
    rows = []
    for run in runs:
        row = {"method": run.method, "dataset": run.dataset, "seed": run.seed, "weight": run.weight}
        for split in SPLITS:
            figures = outcome_figures(*split_outcomes(run, split), n_bins)
            row.update({f"{split}_{k}": figures[k] for k in ("accuracy", "ece", "gap")})
            row[f"{split}_fd"] = float(run.history[f"{split}_fd"].iloc[-1])
        row["hm"] = harmonic_mean(row["base_accuracy"], row["new_accuracy"])
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Contrast:
    """A figure of the methods on one half: ``metric`` of method ``a`` minus that of ``b`` (or of ``a`` alone), mean over seeds.

    ``split``: ``"base"`` or ``"new"``; ``metric``: ``"ece"``, ``"accuracy"``, ``"confidence"``, ``"gap"`` (confidence -
    accuracy) or ``"fd"``."""
    split: str
    metric: str
    a: str
    b: str | None = None


def contrast_figures(runs: Sequence[PromptLearningRun], contrasts: Mapping[str, Contrast], n_bins: int = 10,
                     n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Each contrast's mean over seeds (and data sets), its paired-bootstrap 95% interval over test images, and its
    value per seed.

    One row per contrast: name, split, metric, a, b, estimate, lower, upper, per_seed (a list: one value per (data set,
    seed)) and seeds (their number), from ``runs`` of every method (the same seeds for the methods a contrast names),
    ECE in ``n_bins`` bins, and the bootstrap's ``n_resamples`` and ``seed`` (each data set's images resampled apart).
    The feature divergence depends on the text features alone: its interval is the estimate itself."""
    by_key = {(r.method, (r.dataset, r.seed)): r for r in runs}
    if len(by_key) != len(runs):
        raise ValueError("Expected one run per (method, data set, seed), but one appears twice in `runs`")
    values = run_table(runs, n_bins).set_index(["method", "dataset", "seed"])
    rows = []
    for name, c in contrasts.items():
        methods = [m for m in (c.a, c.b) if m is not None]
        seeds = sorted(set.intersection(*[{s for (m, s) in by_key if m == method} for method in methods]))
        if not seeds:
            raise ValueError(f"Contrast {name!r}: no seed has runs of {methods}")
        column = f"{c.split}_{c.metric}"
        per_seed = [float(values.loc[(c.a, *s), column] - (values.loc[(c.b, *s), column] if c.b is not None else 0.0))
                    for s in seeds]
        estimate = sum(per_seed) / len(per_seed)
        if c.metric == "fd":
            lower = upper = estimate
        else:
            outcomes = {(m, s): split_outcomes(by_key[(m, s)], c.split) for m in methods for s in seeds}

            def figure(per_key, c=c, seeds=seeds):
                def of(method, s):
                    f = per_key[(method, s)]
                    return f["confidence"] - f["accuracy"] if c.metric == "gap" else f[c.metric]
                return sum(of(c.a, s) - (of(c.b, s) if c.b is not None else 0.0) for s in seeds) / len(seeds)

            interval = paired_bootstrap(outcomes, figure, n_bins=n_bins, n_resamples=n_resamples, seed=seed,
                                        groups={key: key[1][0] for key in outcomes})  # each data set apart
            lower, upper = interval.lower, interval.upper
        rows.append({"name": name, "split": c.split, "metric": c.metric, "a": c.a, "b": c.b, "estimate": estimate,
                     "lower": lower, "upper": upper, "per_seed": per_seed, "seeds": len(seeds)})
    return pd.DataFrame(rows)


def method_summary(table: pd.DataFrame, methods: Sequence[str] = METHODS) -> pd.DataFrame:
    """Mean and standard deviation over seeds of every column of :func:`run_table`, one row per method, in ``methods``' order."""
    figures = ["base_accuracy", "new_accuracy", "hm", "base_ece", "new_ece", "base_gap", "new_gap", "base_fd", "new_fd"]
    grouped = table.groupby("method")[figures]
    summary = grouped.mean().join(grouped.std(ddof=1).fillna(0.0).add_suffix("_sd"))
    summary["seeds"] = table.groupby("method")["seed"].nunique()
    return summary.reindex([m for m in methods if m in summary.index])


def weight_sweep(data: BaseToNewData, weights: Sequence[float], *, pool, methods: Mapping[str, str] | None = None,
                 n_bins: int = 10, device: str | None = None, cache_dir: str | os.PathLike | None = None,
                 progress: bool = True, **overrides) -> pd.DataFrame:
    """Accuracy and ECE as the regulariser's weight varies: KgCoOp's w against DOR's lambda (the DOR paper's Fig. 4).

    :func:`run_table`'s rows, one per (method, weight), on one seed's ``data``, with DOR's outlier ``pool``;
    ``methods`` maps each method to the setting its weight is (default: KgCoOp's ``kg_weight``, CoOp + DOR's
    ``dor_weight``), ``overrides`` are shared settings (``epochs``, ...)."""
    methods = dict(methods or {"KgCoOp": "kg_weight", "CoOp + DOR": "dor_weight"})
    runs = [train_method(data, method, pool=pool, device=device, cache_dir=cache_dir, progress=progress,
                         **{**overrides, setting: float(w)}) for method, setting in methods.items() for w in weights]
    return run_table(runs, n_bins=n_bins)


@dataclass(frozen=True)
class PageRuns:
    """Everything the C12 page shows: the first data set's data per seed and DOR's outlier pool, every method's runs.

    ``pool`` is DOR's :class:`~vlmcal.adaptation.outliers.OutlierPool` for its base classes; ``runs`` hold one
    :class:`PromptLearningRun` per (method, data set, seed), methods in :data:`METHODS` order."""
    data: Mapping[int, BaseToNewData] = field(repr=False)
    pool: object = field(repr=False)
    runs: list[PromptLearningRun] = field(repr=False)

    def run(self, method: str, seed: int | None = None) -> PromptLearningRun:
        """The run of ``method`` on ``seed`` (default: the first seed) of the first data set."""
        seed = min(self.data) if seed is None else seed
        dataset = next(iter(self.data.values())).dataset
        for r in self.runs:
            if r.method == method and r.seed == seed and r.dataset == dataset:
                return r
        raise KeyError(f"No run of {method!r} on seed {seed}; methods: {sorted({r.method for r in self.runs})}, seeds: {sorted(self.data)}")


def page_runs(settings, progress: bool = True) -> PageRuns:
    """Every method of :data:`METHODS` on every seed and data set of ``settings`` (a ``DORPageSettings``), cached."""
    device, cache = settings.device, settings.cache_dir
    schedule = {"epochs": settings.epochs, "batch_size": settings.batch_size}
    first, runs = None, []
    for dataset in (settings.dataset, *settings.datasets):
        data = {seed: base_to_new_data(settings.backbone, dataset, shots=settings.shots, seed=seed, max_test=settings.n_test or None,
                                       device=device, cache_dir=cache, progress=progress) for seed in settings.seeds}
        pool = outlier_pool(load_model(settings.backbone, device, cache), data[settings.seeds[0]].base_names,
                            OutlierPoolSettings(size=settings.pool_size), cache_dir=cache, progress=progress)
        first = first or (data, pool)
        runs += [zero_shot_run(seed_data, device=device, cache_dir=cache) if method == "zero-shot" else
                 train_method(seed_data, method, pool=pool, device=device, cache_dir=cache, progress=progress, **schedule)
                 for method in METHODS for seed_data in data.values()]
    order = {method: k for k, method in enumerate(METHODS)}
    return PageRuns(*first, sorted(runs, key=lambda r: order[r.method]))  # stable: data sets, then seeds, per method
