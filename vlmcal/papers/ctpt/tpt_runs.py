"""Test-time prompt tuning on a named model and condition, cached, and the figures of the C-TPT pages (C7, C9, C10).

The methods of C-TPT's Tables 1, 2 and Fig. 4 (``zero-shot``, ``TPT``, ``C-TPT``, ``TPT + TS``) and, on the same
images and views, ``O-TPT`` and ``ZERO``; every condition holds the same image rows, so bootstraps are paired.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from vlmcal import metrics
from vlmcal.adaptation.tpt import TPTResult, TPTSettings, tpt_batched, zero_batched
from vlmcal.calibration import TemperatureScaling, stratified_sample
from vlmcal.data.templates import HARD_PROMPT
from vlmcal.metrics.paired import outcome_figures, paired_bootstrap
from vlmcal.papers.common.verdict import render
from vlmcal.papers.ctpt.prompt_sweep import regime_of
from vlmcal.pipeline.cache import cached, entry_path
from vlmcal.pipeline.predictions import (clean_data, is_supervised, load_model, load_test_data, model_inputs,
                                         prompt_class_names)
from vlmcal.pipeline.runs import condition_name, is_dataset_shift
from vlmcal.pipeline.sharding import compute_rows, launch

__all__ = [
    "TPTGrid", "tpt_grid", "tpt_template_points", "method_contrast", "claim_intervals", "paper_layout", "lambda_sweep",
    "template_prefix", "TPTRun", "METHODS", "split_rows", "predict_tpt", "fit_tpt_temperature", "tpt_outcomes",
    "method_table", "tpt_bootstrap", "ALL_METHODS", "best_calibrated", "ranking_text",
]

METHODS = ("zero-shot", "TPT", "C-TPT", "TPT + TS")  # C-TPT's tables
ALL_METHODS = ("zero-shot", "TPT", "C-TPT", "O-TPT", "ZERO", "TPT + TS")  # with the methods that came after it
TPT_CACHE_VERSION = 3  # bump when the engine's results change (2: the shared first step; 3: views made at once)


@dataclass(frozen=True)
class TPTRun:
    """Test-time tuning of one model on one condition.

    Attributes:
        model, shift, severity: the backbone's name and the condition (``"clean"``, 0 for the clean test set).
        settings: the :class:`~vlmcal.adaptation.TPTSettings` used.
        rows, labels, dispersion: [N] the images' indices in the split, their labels, and the ATFD of their tuned
            class text features.
        logits, initial_logits: [N, C] after tuning (each image's original view), and with the initial prompt.
    """

    model: str
    shift: str
    severity: int
    settings: TPTSettings
    rows: torch.Tensor = field(repr=False)
    labels: torch.Tensor = field(repr=False)
    logits: torch.Tensor = field(repr=False)
    initial_logits: torch.Tensor = field(repr=False)
    dispersion: torch.Tensor = field(repr=False)

    @property
    def condition(self) -> str:
        return condition_name(self.shift, self.severity)


def split_rows(labels, n_images: int, n_calibration: int = 0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint stratified rows of [N] ``labels``: ``(evaluation_rows, calibration_rows)``, each sorted.

    ``n_images`` to evaluate on (0: every image not used for calibration), ``n_calibration`` to fit a temperature on.
    """
    labels = torch.as_tensor(labels)
    for name, value in (("n_images", n_images), ("n_calibration", n_calibration)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"Expected `{name}` to be an integer >= 0, but got {value!r}")
    if n_images + n_calibration > len(labels):
        raise ValueError(f"Asked for {n_images} evaluation and {n_calibration} calibration images, but the split holds "
                         f"{len(labels)}")
    drawn = stratified_sample(labels, int(n_calibration), seed=seed) if n_calibration else []
    calibration = torch.as_tensor(drawn, dtype=torch.long).sort().values
    rest = torch.as_tensor(np.setdiff1d(np.arange(len(labels)), calibration.numpy()), dtype=torch.long)
    if n_images == 0 or n_images == len(rest):
        return rest, calibration
    picked = torch.as_tensor(stratified_sample(labels[rest], int(n_images), seed=seed + 1), dtype=torch.long)
    return rest[picked].sort().values, calibration


def _inputs_of(net, data, clean) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function from row indices to the backbone's [B, C, H, W] input tensors of those rows."""
    inputs, _ = model_inputs(net, data, clean)
    if inputs is data:
        images = data.images_float()  # [N, C, H, W] in memory: the stand-ins take them as they are
        return lambda rows: images[rows]
    return lambda rows: torch.stack([net.preprocess(inputs[int(i)][0]) for i in rows])  # PIL -> the model's own


def predict_tpt(
    model: str, dataset: str = "fashion-mnist", shift: str = "clean", severity: int = 0, *,
    settings: TPTSettings = TPTSettings(), rows: Sequence[int] | torch.Tensor, class_names: Sequence[str] | None = None,
    split: str = "test", shift_seed: int = 0, batch_size: int = 16, device: str | None = None,
    cache_dir: str | os.PathLike | None = None, progress: bool = True, shard_batches: int = 1, zero: bool = False,
) -> TPTRun:
    """TPT (or C-TPT) of ``model`` on the given rows of one condition, computed once and cached.

    Args:
        model, dataset, shift, severity, class_names, split, shift_seed, device, cache_dir, progress: as for
            :func:`vlmcal.pipeline.predictions.predict`.
        settings: the TPT settings (``ctpt_lambda > 0``: C-TPT; ``otpt_lambda > 0``: O-TPT).
        rows: the images' indices in the split (:func:`split_rows`); each image's views are seeded by its index.
        batch_size: images tuned at once (results do not depend on it).
        shard_batches: batches per shard under ``torchrun`` (:mod:`vlmcal.pipeline.sharding`); ignored otherwise.
        zero: run ZERO instead (:func:`vlmcal.adaptation.zero_batched`): its logits are the log vote shares, so that
            their softmax is the vote share, and its dispersion is NaN (nothing is tuned).
    """
    if is_supervised(model):
        raise ValueError(f"TPT tunes a prompt, so it needs a vision-language backbone; {model!r} has no text tower")
    if not isinstance(settings, TPTSettings):
        raise ValueError(f"Expected `settings` to be a vlmcal.adaptation.TPTSettings, but got {settings!r:.100}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Expected `batch_size` to be an integer >= 1, but got {batch_size!r}")
    data = load_test_data(dataset, shift, severity, split, shift_seed)
    rows = torch.as_tensor(rows, dtype=torch.long).reshape(-1)
    if len(rows) == 0 or int(rows.min()) < 0 or int(rows.max()) >= len(data):
        raise ValueError(f"Expected `rows` to be non-empty indices in [0, {len(data)}), but got {len(rows)} rows")
    severity = 0 if shift == "clean" else int(severity)
    class_names = prompt_class_names(shift if is_dataset_shift(shift) else dataset, data) if class_names is None else class_names
    net = load_model(model, device, None if cache_dir is None else str(cache_dir))
    identity = {"kind": "tpt", "version": TPT_CACHE_VERSION, "model": getattr(net, "cache_identity", net.name),
                "data": dict(data.identity), "split": split, "class_names": list(class_names),
                "rows": hashlib.sha256(rows.numpy().tobytes()).hexdigest(), "settings": asdict(settings),
                **({"method": "zero"} if zero else {})}
    path = entry_path("tpt", model, identity, cache_dir)
    fields = ("labels", "logits", "initial_logits", "dispersion")

    def tune() -> dict[str, torch.Tensor]:
        images_of = _inputs_of(net, data, clean_data(dataset, split))
        labels = torch.as_tensor(data.labels)[rows]
        method = "ZERO" if zero else "C-TPT" if settings.ctpt_lambda else "O-TPT" if settings.otpt_lambda else "TPT"
        desc = f"{method} {model} {condition_name(shift, severity)}"

        def run(batch: torch.Tensor):
            if not zero:
                return tpt_batched(net, images_of(batch), list(class_names), settings, indices=batch.tolist())
            voted = zero_batched(net, images_of(batch), list(class_names), settings, indices=batch.tolist())
            return TPTResult(voted.probs.log(), voted.initial_logits, torch.full((len(batch),), float("nan")))

        def compute(positions: range) -> dict[str, torch.Tensor]:
            """The tuned outputs of ``rows[positions]``, in batches of ``batch_size`` from the first."""
            starts = range(positions.start, positions.stop, batch_size)
            parts = [run(rows[start : min(start + batch_size, positions.stop)])
                     for start in tqdm(starts, desc=desc, unit="batch", disable=not progress, leave=False)]
            tuned = {name: torch.cat([getattr(p, name) for p in parts]) for name in fields[1:]}
            return {"labels": labels[positions.start : positions.stop], **tuned}

        # Under torchrun each rank tunes its shards of images, each shard cached on its own.
        return compute_rows(compute, len(rows), identity, path.parent / "shards", batch_size * shard_batches)

    payload = cached(path, identity, tune, save=launch().rank == 0)
    return TPTRun(model, shift, severity, settings, rows, **{k: payload[k] for k in fields})


def fit_tpt_temperature(run: TPTRun) -> float:
    """One temperature fitted by vlmcal's temperature scaling on a (calibration) run's tuned logits."""
    return float(TemperatureScaling().fit(run.logits, run.labels).temperature_)


def tpt_outcomes(
    runs: Mapping[tuple[str, str], Mapping[str, TPTRun]], temperature: float | Mapping[str, float] | None = None
) -> dict[tuple[str, str, str], tuple[torch.Tensor, torch.Tensor]]:
    """Each method's (confidence [N], correct [N]) as ``{(set, init, method): (confidence, correct)}``.

    Args:
        runs: ``{(set, init): {"TPT": run, "C-TPT": run}}``, all on the same rows (zero-shot: TPT's initial logits).
        temperature: TPT + TS's temperature, one for all or one per init (None: no ``TPT + TS``).
    """
    out, reference_rows = {}, {}
    for (set_name, init), pair in runs.items():
        if "TPT" not in pair:
            raise ValueError(f"Expected a 'TPT' run for ({set_name!r}, {init!r}); got {sorted(pair)}")
        tpt = pair["TPT"]
        logits = {"zero-shot": tpt.initial_logits, "TPT": tpt.logits}
        t = temperature.get(init) if isinstance(temperature, Mapping) else temperature
        if t is not None:
            logits["TPT + TS"] = tpt.logits / t
        for name, run in pair.items():
            reference = reference_rows.setdefault(set_name, run.rows)
            if not torch.equal(run.rows, reference):
                raise ValueError(f"Expected every run of a set on the same image rows (a paired comparison), but {name} "
                                 f"on {set_name!r} differs")
            if name != "TPT":
                logits[name] = run.logits
        for method, z in logits.items():
            confidence, prediction = z.softmax(dim=1).max(dim=1)  # [N, C] -> [N], [N]
            out[(set_name, init, method)] = (confidence, prediction == tpt.labels)
    return out


def method_table(
    outcomes: Mapping[tuple[str, str, str], tuple[torch.Tensor, torch.Tensor]], n_bins: int = 20
) -> pd.DataFrame:
    """Accuracy, ECE (C-TPT's 20 bins), mean confidence and its gap to accuracy per (set, init, method)."""
    return pd.DataFrame([{"set": set_name, "init": init, "method": method, "n": len(correct),
                          **outcome_figures(confidence, correct, n_bins)}
                         for (set_name, init, method), (confidence, correct) in outcomes.items()])


def tpt_bootstrap(
    outcomes: Mapping[tuple[str, str, str], tuple[torch.Tensor, torch.Tensor]],
    figure: Callable[[Mapping[tuple[str, str, str], Mapping[str, torch.Tensor]]], torch.Tensor],
    n_bins: int = 20, n_resamples: int = 1000, seed: int = 0, groups: Mapping | None = None,
) -> metrics.BootstrapResult:
    """:func:`vlmcal.metrics.paired_bootstrap` over the outcomes of :func:`tpt_outcomes` (one draw for all sets of the
    same images; ``groups``: outcome key -> its image set, each set resampled apart).

    ``figure``: e.g. ``method_contrast("ece", "TPT", "zero-shot")``, the ECE rise from zero-shot to TPT.
    """
    return paired_bootstrap(outcomes, figure, n_bins=n_bins, n_resamples=n_resamples, seed=seed, groups=groups)


def template_prefix(template: str) -> str | None:
    """The context phrase of a template whose class name comes last (``"a photo of a {}."`` -> ``"a photo of a"``).

    Any other template (``"a {} in a video game."``) gives None: TPT's context stands before the class name.
    """
    if template.count("{}") != 1:
        return None
    before, after = template.split("{}")
    return before.strip() or None if after.strip() in ("", ".") else None


@dataclass(frozen=True)
class TPTGrid:
    """The C-TPT tables' runs: TPT and C-TPT per (set, init), and TPT + TS's temperatures.

    Attributes:
        runs: ``{(set, init): {"TPT": run, "C-TPT": run}}``; sets ``"clean"`` and ``"<shift>-<severity>"``, inits
            ``"hard"`` and (with an ensemble) ``"ensemble"``.
        temperatures, phrases: init -> the temperature fitted on TPT's logits of the calibration images; its phrase(s).
        lambdas: set -> C-TPT's lambda there.
        evaluation_rows, calibration_rows: the clean images' indices in the test split.
        sides: set -> ``"clean"`` (the clean and fine-grained sets, as Table 1) or ``"shifted"`` (as Table 2).
        image_sets: set -> the images it holds: ``"clean"`` for the clean set and its shifted copies, else its own name.
    """

    runs: dict
    temperatures: dict
    phrases: dict
    lambdas: dict
    evaluation_rows: torch.Tensor = field(repr=False)
    calibration_rows: torch.Tensor = field(repr=False)
    sides: dict = field(default_factory=dict)
    image_sets: dict = field(default_factory=dict)

    def outcomes(self) -> dict:
        """:func:`tpt_outcomes` of every run, with each init's temperature."""
        return tpt_outcomes(self.runs, self.temperatures)

    def bootstrap(self, outcomes: Mapping, figure: Callable, settings) -> metrics.BootstrapResult:
        """:func:`tpt_bootstrap` of ``figure`` with the page's ``settings``, each image set resampled apart."""
        groups = {key: self.image_sets.get(key[0], "clean") for key in outcomes}
        return tpt_bootstrap(outcomes, figure, settings.n_bins, settings.n_resamples, settings.seed, groups=groups)

    def sets(self, side: str | None = None) -> list[str]:
        """The set names: all, or the ``"clean"`` or ``"shifted"`` side."""
        names = list(dict.fromkeys(s for s, _ in self.runs))
        return names if side is None else [s for s in names if self.sides.get(s, "clean" if s == "clean" else "shifted") == side]


def _page_run(settings, shift: str, severity: int, tpt: TPTSettings, rows, zero: bool = False) -> TPTRun:
    """One run of a page's grid; the page shows one progress bar over its runs, not one per run."""
    return predict_tpt(settings.backbone, settings.dataset, shift, severity, settings=tpt, rows=rows, progress=False,
                       batch_size=settings.batch_size, device=settings.device, cache_dir=settings.cache_dir, zero=zero)


def tpt_grid(settings, progress: bool = True) -> TPTGrid:
    """TPT and C-TPT per init and set, and TPT + TS's temperature per init, for a page's ``TPTPageSettings``."""
    labels = load_test_data(settings.dataset).labels
    evaluation, calibration = split_rows(labels, settings.n_images, settings.n_calibration, settings.seed)
    phrases = {"hard": (template_prefix(HARD_PROMPT),)}
    if settings.ensemble:
        phrases["ensemble"] = tuple(settings.ensemble)
    bases = {init: TPTSettings(init_phrase=phrase, augmix=settings.augmix) for init, phrase in phrases.items()}
    runs, temperatures, lambdas, sides, image_sets = {}, {}, {}, {}, {}
    plan = [(init, shift, severity) for init in phrases for shift, severity in settings.conditions]
    for init, shift, severity in tqdm(plan, desc="test-time runs", unit="run", disable=not progress):
        name, base, clean = condition_name(shift, severity), bases[init], settings.side(shift) == "clean"
        sides[name], image_sets[name] = settings.side(shift), name if is_dataset_shift(shift) else "clean"
        lambdas[name] = settings.lambda_clean if clean else settings.lambda_shifted
        variants = {"TPT": base, "C-TPT": replace(base, ctpt_lambda=lambdas[name])}
        if settings.others:  # O-TPT at its lambda for the kind of set, and ZERO, on the same images and views
            lam = settings.otpt_lambda_clean if clean else settings.otpt_lambda_shifted
            variants.update({"O-TPT": replace(base, otpt_lambda=lam),
                             "ZERO": replace(base, selection=settings.zero_gamma)})
        # Another data set: its own images, drawn as the clean ones are.
        rows = split_rows(load_test_data(shift).labels, settings.n_images, 0, settings.seed)[0] if is_dataset_shift(shift) else evaluation
        runs[(name, init)] = {method: _page_run(settings, shift, severity, tpt, rows, zero=method == "ZERO")
                              for method, tpt in variants.items()}
    if len(calibration):
        for init in tqdm(phrases, desc="TPT on the calibration images", unit="run", disable=not progress):
            temperatures[init] = fit_tpt_temperature(_page_run(settings, "clean", 0, bases[init], calibration))
    return TPTGrid(runs, temperatures, phrases, lambdas, evaluation, calibration, sides, image_sets)


def lambda_sweep(settings, grid: TPTGrid, init: str = "hard", progress: bool = True) -> pd.DataFrame:
    """Accuracy, ECE and mean ATFD of C-TPT (lambda 0: TPT) on the clean evaluation images per ``settings.lambdas``."""
    rows = []
    for lam in tqdm(settings.lambdas, desc="lambda sweep", unit="lambda", disable=not progress):
        tpt = TPTSettings(init_phrase=grid.phrases[init], augmix=settings.augmix, ctpt_lambda=float(lam))
        run = _page_run(settings, "clean", 0, tpt, grid.evaluation_rows)
        rows.append({"lambda": float(lam), **_summary(run, settings.n_bins)})
    return pd.DataFrame(rows)


def _summary(run: TPTRun, n_bins: int) -> dict:
    """Accuracy, ECE, mean confidence and mean ATFD of a run's tuned logits."""
    table = method_table(tpt_outcomes({("", ""): {"TPT": run}}), n_bins=n_bins).set_index("method").loc["TPT"]
    return {**{k: table[k] for k in ("accuracy", "ece", "confidence")}, "atfd": float(run.dispersion.mean())}


def method_contrast(
    metric: str, a: str, b: str, sets: Sequence[str] = ("clean",), init: str = "hard", ratio: bool = False
) -> Callable[[Mapping[tuple[str, str, str], Mapping[str, torch.Tensor]]], torch.Tensor]:
    """A figure for :func:`tpt_bootstrap`: method ``a``'s mean ``metric`` over ``sets`` minus (or over) method ``b``'s.

    ``metric``: ``"ece"``, ``"accuracy"`` or ``"confidence"``; ``a``, ``b``: methods (:data:`METHODS`); ``ratio``:
    divide instead of subtract.
    """
    sets = list(sets)

    def figure(per_key):
        mean_a, mean_b = (sum(per_key[(s, init, m)][metric] for s in sets) / len(sets) for m in (a, b))
        return mean_a / mean_b if ratio else mean_a - mean_b

    return figure


def claim_intervals(grid: TPTGrid, outcomes: Mapping, settings) -> dict[str, dict]:
    """The paired bootstrap intervals of C7, C9 and C10, as their claim functions' keyword arguments (but ``backbone``).

    ``outcomes`` is ``grid.outcomes()``, ``settings`` the page's :class:`~vlmcal.papers.ctpt.TPTPageSettings`.
    Returns ``{"C7": {...}, "C9": {...}, "C10": {...}}``; C10's difference is None without calibration images.
    """
    def interval(figure):
        return grid.bootstrap(outcomes, figure, settings)

    def overconfidence(per_key):
        return sum(per_key[(s, "hard", "TPT")]["confidence"] - per_key[(s, "hard", "TPT")]["accuracy"]
                   for s in grid.sets("clean")) / len(grid.sets("clean"))

    clean, shifted = grid.sets("clean"), grid.sets("shifted")
    difference = method_contrast("ece", "C-TPT", "TPT + TS", grid.sets())
    others = []
    for init in grid.phrases:
        for side, sets in (("clean", clean), ("shifted", shifted)):
            if sets and (init, side) != ("hard", "clean"):
                r = interval(method_contrast("ece", "C-TPT", "TPT", sets, init, ratio=True))
                others.append({"init": init, "side": side, "ratio": r.estimate, "lower": r.lower, "upper": r.upper})
    return {
        "C7": {
            "ece_rise": interval(method_contrast("ece", "TPT", "zero-shot", clean)),
            "accuracy_gain": interval(method_contrast("accuracy", "TPT", "zero-shot", clean)),
            "overconfidence": interval(overconfidence),
            "shifted_ece_rise": interval(method_contrast("ece", "TPT", "zero-shot", shifted)) if shifted else None,
        },
        "C9": {
            "ece_ratio": interval(method_contrast("ece", "C-TPT", "TPT", clean, ratio=True)),
            "accuracy_change": interval(method_contrast("accuracy", "C-TPT", "TPT", clean)),
            "others": pd.DataFrame(others, columns=["init", "side", "ratio", "lower", "upper"]),
        },
        "C10": {
            "ece_difference": interval(difference) if "hard" in grid.temperatures else None,
            "temperature": grid.temperatures.get("hard"),
            "fitted_on": f"TPT's logits of {len(grid.calibration_rows)} other labelled clean test images",
        },
    }


def best_calibrated(
    grid: TPTGrid, outcomes: Mapping, settings, side: str = "clean", init: str = "hard"
) -> pd.DataFrame:
    """Each method's mean ECE over one side's sets with its 95% interval (a paired bootstrap over images), and its
    difference from the lowest, with that difference's interval; sorted by ECE.

    ``grid``, ``outcomes``, ``settings``: as for :func:`claim_intervals`; ``side``: ``"clean"`` or ``"shifted"``.
    """
    sets = grid.sets(side)
    methods = [m for m in ALL_METHODS if all((s, init, m) in outcomes for s in sets)]

    def interval(figure):
        return grid.bootstrap(outcomes, figure, settings)

    def mean_ece(method):
        return lambda per_key: sum(per_key[(s, init, method)]["ece"] for s in sets) / len(sets)

    eces = {m: interval(mean_ece(m)) for m in methods}
    best = min(methods, key=lambda m: eces[m].estimate)
    itself = metrics.BootstrapResult(0.0, 0.0, 0.0, 0.95, 0, 0)  # the lowest's difference from itself
    gaps = {m: interval(method_contrast("ece", m, best, sets, init)) if m != best else itself for m in methods}
    rows = [{"method": m, "ece": eces[m].estimate, "lower": eces[m].lower, "upper": eces[m].upper,
             "minus lowest": gaps[m].estimate, "its lower": gaps[m].lower, "its upper": gaps[m].upper} for m in methods]
    return pd.DataFrame(rows).sort_values("ece").set_index("method")


def ranking_text(frame: pd.DataFrame, side: str) -> str:
    """:func:`best_calibrated`'s table in words: the lowest ECE, and which methods its interval tells apart."""
    best = frame.index[0]
    apart = [m for m in frame.index[1:] if frame.loc[m, "its lower"] > 0]
    close = [m for m in frame.index[1:] if m not in apart]
    text = render(f"On the {side} sets the lowest mean ECE is {best}'s: {{ece:ece}} "
                  "(95% CI [{lower:ece}, {upper:ece}]).", frame.loc[best, ["ece", "lower", "upper"]].to_dict())
    if close:
        text += (f" Its difference from {', '.join(close)} has an interval that contains 0: the noise does not tell "
                 "them apart.")
    if apart:
        text += f" {', '.join(apart)}: higher, each difference's interval above 0."
    below = [m for m in frame.index if frame.loc[m, "ece"] < frame.loc[m, "lower"]]
    if below:  # the binned ECE of a resample (images repeated, others left out) is biased up on few images per bin
        text += (f" For {len(below)} of the {len(frame)} methods ({', '.join(below)}) the ECE lies below its own "
                 "interval: a resample repeats some images and leaves others out, which raises a binned ECE when its "
                 "bins hold few images, so the resampled ECEs sit above the estimate. The differences are taken within "
                 "each resample, the same images entering both methods' ECEs.")
    return text


def paper_layout(table: pd.DataFrame, sides: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """:func:`method_table` as C-TPT lays out its Tables 1 and 2: "Acc / ECE" in percent, means over each side's sets.

    ``sides``: side name -> its sets (``{"clean (Table 1)": ["clean"], "shifted (Table 2)": [...]}``). Returns one row
    per (side, init), one column per method.
    """
    out = []
    for side, sets in sides.items():
        chosen = table[table["set"].isin(list(sets))]
        means = chosen.groupby(["init", "method"], sort=False)[["accuracy", "ece"]].mean()
        for init in chosen["init"].unique():
            cells = {m: f"{100 * means.loc[(init, m), 'accuracy']:.1f} / {100 * means.loc[(init, m), 'ece']:.2f}"
                     for m in ALL_METHODS if (init, m) in means.index}
            out.append({"sets": side, "init": init, **cells})
    return pd.DataFrame(out).set_index(["sets", "init"])


def tpt_template_points(settings, templates: Sequence[str], rows, progress: bool = True) -> pd.DataFrame:
    """One calibration point per template (columns as :func:`~vlmcal.papers.ctpt.template_points`) after TPT from it.

    Runs on the clean images ``rows``; templates without a :func:`template_prefix` are skipped.
    """
    net = load_model(settings.backbone, settings.device, settings.cache_dir)
    out = []
    for template in tqdm(templates, desc="TPT per template", unit="template", disable=not progress):
        phrase = template_prefix(template)
        if phrase is None:
            continue
        tpt = TPTSettings(init_phrase=phrase, n_ctx=int(net.embed_phrase(phrase).shape[0]), augmix=settings.augmix)
        summary = _summary(_page_run(settings, "clean", 0, tpt, rows), settings.n_bins)
        gap = summary["confidence"] - summary["accuracy"]
        out.append({"template": template, **{k: summary[k] for k in ("accuracy", "ece", "confidence")}, "gap": gap,
                    "regime": regime_of(gap), "atfd": summary["atfd"]})
    return pd.DataFrame(out)
