"""The empirical study of what matters for calibrating VLMs (Tu et al., ICML 2024), claims C1–C6.

Everything here works on logits: ``Run`` holds one model's logits on one condition (a
shift at a severity, and a label set), and each function below turns a list of runs into a
table. Which model produced the logits is the caller's business (``vlmcal.predictions``
makes runs from backbone names), so the same code serves the offline stand-ins and CLIP.

Protocol, as in the paper: the temperature is fitted on a labelled calibration set from
the clean, in-distribution data, and evaluated on held-out data, clean and shifted. Here
the test split is divided once, per seed, into a stratified calibration half and an
evaluation half; every shifted copy of the test split uses the same evaluation indices,
so clean and shifted figures concern the same images.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from vlmcal import metrics
from vlmcal.params import list_parameter
from vlmcal.calibration import TemperatureScaling, fit_temperatures, stratified_sample

__all__ = [
    "Run",
    "restrict_to_classes",
    "split_calibration",
    "ts_across_shifts",
    "label_shift",
    "calibration_set_size",
    "confidence_vs_accuracy",
    "CalibrationSizePlan",
    "plan_calibration_sizes",
    "smallest_sufficient_n",
    "gap_to_full_set",
    "StudySettings",
    "mean_ece_bootstrap",
    "model_temperatures",
    "vlm_minus_supervised_ece",
    "ts_ece_ratio",
    "shift_rise_after_ts",
    "full_set_ece",
    "bootstrap_label_shift",
    "confidence_accuracy_points",
    "bootstrap_confidence_vs_accuracy",
]


@dataclass(frozen=True)
class Run:
    """One model's logits on one condition.

    Attributes:
        model: the model's name (``"default"``, ``"supervised"``, ``"openclip:ViT-B-32:openai"``).
        kind: ``"VLM"`` (zero-shot) or ``"supervised"``.
        shift: ``"clean"`` or the name of a distribution shift.
        severity: 0 for clean, else the shift's severity.
        logits: [N, C] logits (a VLM's already carry its logit scale).
        labels: [N] integer labels in [0, C).
    """

    model: str
    kind: str
    shift: str
    severity: int
    logits: torch.Tensor = field(repr=False)
    labels: torch.Tensor = field(repr=False)

    def __post_init__(self) -> None:
        if self.kind not in ("VLM", "supervised"):
            raise ValueError(f"Expected `kind` to be 'VLM' or 'supervised', but got {self.kind!r}")
        if self.logits.ndim != 2 or self.labels.shape != self.logits.shape[:1]:
            raise ValueError(
                f"Expected logits [N, C] and labels [N], but got {tuple(self.logits.shape)} and {tuple(self.labels.shape)}"
            )

    @property
    def condition(self) -> str:
        return "clean" if self.shift == "clean" else f"{self.shift}-{self.severity}"

    def subset(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, labels) of the given rows."""
        return self.logits[rows], self.labels[rows]


def restrict_to_classes(logits: torch.Tensor, labels: torch.Tensor, classes: Sequence[int]):
    """Keep the samples of ``classes`` and those classes' logits, relabelled 0..len(classes)-1.

    A zero-shot VLM's logit for a class depends on that class's prompt alone, so dropping
    columns is exactly the zero-shot classifier over the smaller label set.

    Args:
        logits: [N, C].
        labels: [N] in [0, C).
        classes: the K class indices to keep, in the order of their new labels.

    Returns:
        ``(logits [M, K], labels [M], rows [M])`` where ``rows`` are the kept samples' indices.
    """
    classes_t = torch.as_tensor(list(classes), dtype=torch.long)
    if classes_t.numel() < 2 or classes_t.unique().numel() != classes_t.numel():
        raise ValueError(f"Expected at least two distinct classes, but got {list(classes)}")
    remap = torch.full((logits.shape[1],), -1, dtype=torch.long)
    remap[classes_t] = torch.arange(classes_t.numel())
    new_labels = remap[labels]  # [N], -1 outside the subset
    rows = torch.nonzero(new_labels >= 0).squeeze(1)  # [M]
    return logits[rows][:, classes_t], new_labels[rows], rows


def split_calibration(labels: torch.Tensor, seed: int, calibration_fraction: float = 0.5):
    """Stratified split of the test split's indices into a calibration and an evaluation part.

    Args:
        labels: [N] labels of the clean test split.
        seed: seed of the split.
        calibration_fraction: share of each class that goes to calibration.

    Returns:
        ``(calibration_rows, evaluation_rows)``: sorted index tensors that partition 0..N-1.
    """
    if not 0.0 < calibration_fraction < 1.0:
        raise ValueError(f"Expected `calibration_fraction` in (0, 1), but got {calibration_fraction!r}")
    n_calib = int(round(calibration_fraction * len(labels)))
    calib = torch.as_tensor(stratified_sample(labels, n_calib, seed=seed), dtype=torch.long).sort().values
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[calib] = False
    return calib, torch.nonzero(mask).squeeze(1)


def _ece(logits, labels, n_bins):
    return metrics.ece(logits, labels, n_bins=n_bins, inputs="logits")


def _top_labels(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], temperatures: Sequence[float] | None = None):
    """Top-label confidence and correctness of R prediction sets of one size: ``([R, n], [R, n])``.

    Args:
        pairs: R pairs ``(logits [n, C], labels [n])``, one per run (same n; C may differ).
        temperatures: R temperatures to divide each run's logits by first (None: as they are).

    Runs with the same C go through :func:`vlmcal.metrics.top_label` together, as one
    [r * n, C] array of at most ``4 * CHUNK_ELEMENTS`` numbers.
    """
    if not pairs:
        raise ValueError("Expected at least one run, but got none")
    temperatures = [1.0] * len(pairs) if temperatures is None else list(temperatures)
    conf, correct = [], []
    start = 0
    while start < len(pairs):
        n, n_classes = pairs[start][0].shape
        stop = start + 1
        while stop < len(pairs) and stop - start < max(1, 4 * metrics.CHUNK_ELEMENTS // (n * n_classes)) and pairs[stop][0].shape[1] == n_classes:
            stop += 1
        logits = torch.stack([z for z, _ in pairs[start:stop]])  # [r, n, C]
        work = torch.promote_types(logits.dtype, torch.float32)  # T is not rounded to float16 (or an integer)
        scale = torch.tensor(temperatures[start:stop], dtype=work, device=logits.device)[:, None, None]  # [r, 1, 1]
        labels = torch.stack([y for _, y in pairs[start:stop]])  # [r, n]
        c, k = metrics.top_label((logits / scale).reshape(-1, n_classes), labels.reshape(-1), inputs="logits")  # [r * n] each
        conf.append(c.view(stop - start, n))
        correct.append(k.view(stop - start, n))
        start = stop
    return torch.cat(conf), torch.cat(correct)  # [R, n], [R, n]


def _run_top_labels(runs: Sequence[Run], rows: torch.Tensor, temperatures: dict[str, float] | None = None):
    """:func:`_top_labels` of every run on ``rows``, after its model's temperature when given."""
    scale = None if temperatures is None else [temperatures[run.model] for run in runs]
    return _top_labels([run.subset(rows) for run in runs], scale)


def _ece_of_rows(confidences: torch.Tensor, correct: torch.Tensor, n_bins: int) -> np.ndarray:
    """[R] ECE of each row of [R, n] confidences and hits, all rows in one pass."""
    unit = torch.ones(1, confidences.shape[1], dtype=torch.float64)  # every sample counted once
    return metrics.ece_weighted(confidences, correct, unit, n_bins=n_bins)[0].cpu().numpy()


def ts_across_shifts(runs: Sequence[Run], calibration_rows, evaluation_rows, n_bins: int = 15) -> pd.DataFrame:
    """ECE before and after temperature scaling fitted on clean calibration data (C1, C2, C3).

    For every model, the temperature is fitted on the rows ``calibration_rows`` of its clean
    run and applied, unchanged, to the rows ``evaluation_rows`` of every run of that model.

    Args:
        runs: runs of one or more models; each model needs a run with ``shift == "clean"``.
        calibration_rows: indices of the clean calibration samples.
        evaluation_rows: indices of the evaluation samples (the same in every run).
        n_bins: ECE bins (ES: 15).

    Returns:
        One row per run: model, kind, shift, severity, condition, temperature, accuracy,
        ece_before, ece_after, confidence_before, confidence_after.
    """
    temperatures = {}
    for run in runs:
        if run.shift == "clean":
            temperatures[run.model] = TemperatureScaling().fit(*run.subset(calibration_rows)).temperature_
    missing = sorted({r.model for r in runs} - set(temperatures))
    if missing:
        raise ValueError(f"Expected a clean run for every model to fit its temperature, but none for {missing}")
    evaluation_rows = torch.as_tensor(evaluation_rows)
    conf_before, correct = _run_top_labels(runs, evaluation_rows)  # [R, n], [R, n]
    conf_after, correct_after = _run_top_labels(runs, evaluation_rows, temperatures)  # [R, n], [R, n]
    return pd.DataFrame(
        {
            "model": [run.model for run in runs],
            "kind": [run.kind for run in runs],
            "shift": [run.shift for run in runs],
            "severity": [run.severity for run in runs],
            "condition": [run.condition for run in runs],
            "temperature": [temperatures[run.model] for run in runs],
            "accuracy": correct.double().mean(dim=1).cpu().numpy(),
            "ece_before": _ece_of_rows(conf_before, correct, n_bins),
            "confidence_before": conf_before.mean(dim=1).cpu().numpy(),
            "ece_after": _ece_of_rows(conf_after, correct_after, n_bins),
            "confidence_after": conf_after.mean(dim=1).cpu().numpy(),
        }
    )


def label_shift(
    runs: Sequence[Run],
    source_classes: Sequence[int],
    target_classes: dict[str, Sequence[int]],
    calibration_rows,
    evaluation_rows,
    n_bins: int = 15,
) -> pd.DataFrame:
    """TS fitted on one label set, evaluated on others (C4), against TS fitted on the target labels.

    Args:
        runs: clean runs, one per model.
        source_classes: the classes whose calibration samples fit the temperature (e.g. base).
        target_classes: name -> classes to evaluate on (e.g. ``{"new": [...], "all": [...]}``).
        calibration_rows: calibration sample indices (the source and the oracle fit use these).
        evaluation_rows: evaluation sample indices.
        n_bins: ECE bins.

    Returns:
        One row per (model, target): temperature_source, temperature_target, ece_before,
        ece_source_ts, ece_target_ts, and ``recovered``: the share of the target-fitted
        TS's ECE reduction that the source-fitted temperature achieves.
    """
    calibration_rows = torch.as_tensor(calibration_rows)
    evaluation_rows = torch.as_tensor(evaluation_rows)
    rows = []
    for run in runs:
        cal_logits, cal_labels = run.subset(calibration_rows)
        ev_logits, ev_labels = run.subset(evaluation_rows)
        src_logits, src_labels, _ = restrict_to_classes(cal_logits, cal_labels, source_classes)
        t_source = TemperatureScaling().fit(src_logits, src_labels).temperature_
        for name, classes in target_classes.items():
            tgt_cal_logits, tgt_cal_labels, _ = restrict_to_classes(cal_logits, cal_labels, classes)
            t_target = TemperatureScaling().fit(tgt_cal_logits, tgt_cal_labels).temperature_
            logits, labels, _ = restrict_to_classes(ev_logits, ev_labels, classes)
            before = _ece(logits, labels, n_bins)
            with_source = _ece(logits / t_source, labels, n_bins)
            with_target = _ece(logits / t_target, labels, n_bins)
            gain = before - with_target
            rows.append(
                {
                    "model": run.model,
                    "kind": run.kind,
                    "target": name,
                    "n_classes": len(classes),
                    "accuracy": metrics.accuracy(logits, labels, inputs="logits"),
                    "temperature_source": t_source,
                    "temperature_target": t_target,
                    "ece_before": before,
                    "ece_source_ts": with_source,
                    "ece_target_ts": with_target,
                    "recovered": (before - with_source) / gain if gain > 0 else np.nan,
                }
            )
    return pd.DataFrame(rows)


def calibration_set_size(
    runs: Run | Sequence[Run],
    sizes: Sequence[int | str],
    calibration_rows,
    evaluation_rows,
    n_draws: int = 20,
    seed: int = 0,
    n_bins: int = 15,
) -> pd.DataFrame:
    """ECE after TS fitted on n calibration samples, over repeated stratified draws (C6).

    Every model is fitted on the same draws (the runs share their images), and all draws of
    one size are fitted at once (:func:`vlmcal.calibration.fit_temperatures`).

    Args:
        runs: clean runs, one per model (or a single run).
        sizes: calibration-set sizes; ``"all"`` means every calibration row (drawn once).
        calibration_rows: the pool the samples are drawn from.
        evaluation_rows: where ECE is measured.
        n_draws: stratified draws per size.
        seed: base seed; draw ``d`` of size ``n`` uses its own derived seed.
        n_bins: ECE bins.

    Returns:
        One row per (model, size, draw): model, kind, n, size, draw, temperature, ece_after.
    """
    runs = [runs] if isinstance(runs, Run) else list(runs)
    calibration_rows = torch.as_tensor(calibration_rows)
    evaluation_rows = torch.as_tensor(evaluation_rows)
    cal_labels = runs[0].labels[calibration_rows]  # [P] the pool's labels
    if any(not torch.equal(run.labels[calibration_rows], cal_labels) for run in runs[1:]):
        raise ValueError("Expected runs on the same images (equal labels); fit each data set's runs separately")
    labels_of_sizes = [str(size) for size in sizes]
    if not labels_of_sizes or len(set(labels_of_sizes)) != len(labels_of_sizes):
        raise ValueError(f"Expected one or more distinct calibration sizes, but got {list(sizes)!r}")
    draws_by_size = {}  # size label -> [D, n] sample indices into the pool
    for size in sizes:
        if size == "all":
            draws_by_size["all"] = torch.arange(len(cal_labels))[None]  # the whole pool, once
            continue
        n = int(size)
        if not 1 <= n <= len(cal_labels):
            raise ValueError(f"Expected calibration sizes in [1, {len(cal_labels)}] or 'all', but got {size!r}")
        draws_by_size[str(size)] = torch.stack([
            torch.as_tensor(stratified_sample(cal_labels, n, seed=seed * 100_003 + n * 1_009 + d), dtype=torch.long)
            for d in range(n_draws)
        ])
    cal_logits = torch.stack([run.logits[calibration_rows] for run in runs])  # [M, P, C], M models
    fits_by_model = [[] for _ in runs]  # per model: (size label, n, draw, temperature)
    for size, draws in draws_by_size.items():
        n_draws_here, n = draws.shape
        with warnings.catch_warnings():  # tiny draws often have every prediction right: T on its bound is expected
            warnings.simplefilter("ignore", RuntimeWarning)
            temperatures = fit_temperatures(
                cal_logits[:, draws].flatten(0, 1),  # [M, D, n, C] -> [M*D, n, C]: every model's draws at once
                cal_labels[draws].repeat(len(runs), 1),  # [M*D, n]
            ).view(len(runs), n_draws_here)  # [M, D]
        for m in range(len(runs)):
            fits_by_model[m] += [(size, n, d, float(t)) for d, t in enumerate(temperatures[m])]
    frames = []
    for run, fits in zip(runs, fits_by_model):
        # Every fitted temperature on the evaluation set, then all ECEs in one pass.
        conf, correct = _top_labels([run.subset(evaluation_rows)] * len(fits), [t for *_, t in fits])  # [F, n], [F, n]
        frames.append(
            pd.DataFrame(
                {
                    "model": run.model,
                    "kind": run.kind,
                    "n": [n for _, n, _, _ in fits],
                    "size": [size for size, *_ in fits],
                    "draw": [d for _, _, d, _ in fits],
                    "temperature": [t for *_, t in fits],
                    "ece_after": _ece_of_rows(conf, correct, n_bins),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class CalibrationSizePlan:
    """Which calibration-set sizes a run can draw from its pool, and which it must skip.

    Attributes:
        kept: the sizes that fit the pool (integers <= ``pool``, and ``"all"``), in the given order.
        skipped: the integer sizes larger than the pool, in the given order.
        pool: how many calibration images there are to draw from.
    """

    kept: tuple[int | str, ...]
    skipped: tuple[int, ...]
    pool: int

    def describe(self) -> str:
        """The plan in a sentence, for the page (Markdown)."""
        kept = ", ".join(str(size) for size in self.kept)
        text = f"Calibration-set sizes run: {kept} (the pool holds {self.pool} calibration images)."
        if self.skipped:
            skipped = ", ".join(str(size) for size in self.skipped)
            text += f" **Skipped, as larger than the pool: {skipped}.**"
        return text


def plan_calibration_sizes(sizes: Sequence[int | str], pool: int) -> CalibrationSizePlan:
    """Split the requested calibration-set sizes into those the pool can supply and those it cannot.

    Args:
        sizes: integers >= 1 and/or ``"all"`` (the whole pool).
        pool: the number of calibration images (e.g. ``len(calibration_rows)``).

    Returns:
        A :class:`CalibrationSizePlan`; :func:`calibration_set_size` accepts its ``kept``.

    Example:
        >>> plan_calibration_sizes([5, 50, 500, "all"], pool=60).skipped
        (500,)
    """
    if isinstance(pool, bool) or not isinstance(pool, (int, np.integer)) or pool < 1:
        raise ValueError(f"Expected `pool` to be an integer larger than 0, but got {pool!r}")
    kept, skipped = [], []
    for size in sizes:
        if size == "all":
            kept.append(size)
        elif isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"Expected calibration sizes to be integers >= 1 or 'all', but got {size!r}")
        elif size > pool:
            skipped.append(int(size))
        else:
            kept.append(int(size))
    return CalibrationSizePlan(tuple(kept), tuple(skipped), int(pool))


def smallest_sufficient_n(table: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Per model, the smallest n whose mean ECE after TS is within ``tolerance`` (absolute) of the full set's.

    Args:
        table: the output of :func:`calibration_set_size` for one seed.
        tolerance: how far above the full-set ECE a size's mean ECE may lie, in ECE units
            (C6 reads it from ``paper_values.csv``: ``c6_threshold_plateau_ece``).

    Returns:
        One row per model: full_ece, smallest_n (NaN when no size below the full set qualifies).
    """
    out = []
    for model, group in table.groupby("model"):
        means = group.groupby("n")["ece_after"].mean().sort_index()
        full = float(group.loc[group["size"] == "all", "ece_after"].mean())
        close = means[(means <= full + tolerance) & (means.index < means.index.max())]
        out.append({"model": model, "full_ece": full, "smallest_n": int(close.index.min()) if len(close) else np.nan})
    return pd.DataFrame(out)


def gap_to_full_set(table: pd.DataFrame, n: int, n_resamples: int = 200, seed: int = 0) -> metrics.BootstrapResult:
    """Mean post-TS ECE with n calibration samples minus the full-set ECE, averaged over models (C6).

    The interval is a 95% percentile bootstrap over the draws: each resample redraws every
    model's draws at size n with replacement (one numpy generator seeded with ``seed``).

    Args:
        table: :func:`calibration_set_size` output for one seed (one or more models).
        n: the calibration-set size to compare (e.g. the paper's 50).
        n_resamples: bootstrap resamples.
        seed: seed of the resampling.

    Returns:
        A ``BootstrapResult`` in ECE units (all NaN when ``table`` has no draws of size n).
    """
    at_n = table[(table["n"] == n) & (table["size"] != "all")]
    full = table[table["size"] == "all"].set_index("model")["ece_after"]
    if at_n.empty:
        return metrics.BootstrapResult(float("nan"), float("nan"), float("nan"), 0.95, int(n_resamples), int(seed))
    rng = np.random.default_rng(seed)
    gaps = []
    for _ in range(n_resamples):
        resampled = at_n.groupby("model")["ece_after"].apply(lambda s: rng.choice(s.to_numpy(), len(s)).mean())
        gaps.append(float((resampled - full[resampled.index]).mean()))
    estimate = float((at_n.groupby("model")["ece_after"].mean() - full).dropna().mean())
    lower, upper = np.quantile(gaps, [0.025, 0.975])
    return metrics.BootstrapResult(estimate, float(lower), float(upper), 0.95, int(n_resamples), int(seed))


def confidence_vs_accuracy(points: pd.DataFrame, confidence: str = "confidence_after", accuracy: str = "accuracy") -> dict:
    """How well mean calibrated confidence tracks accuracy across conditions (C5).

    Args:
        points: one row per condition, with the two columns named below.
        confidence: column of mean (calibrated) confidence.
        accuracy: column of accuracy.

    Returns:
        ``{"r2": R^2 of the least-squares line, "r2_identity": 1 - SS(acc - conf) / SS(acc - mean),
        "spearman": Spearman's rho, "pearson": Pearson's r, "n": number of conditions}``.
    """
    x = points[confidence].to_numpy(dtype=float)
    y = points[accuracy].to_numpy(dtype=float)
    if len(x) < 3:
        raise ValueError(f"Expected at least 3 conditions to correlate, but got {len(x)}")
    pearson = float(np.corrcoef(x, y)[0, 1])
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return {
        "r2": pearson**2,
        "r2_identity": 1.0 - float(np.sum((y - x) ** 2)) / ss_tot if ss_tot > 0 else np.nan,
        "spearman": float(np.corrcoef(pd.Series(x).rank(), pd.Series(y).rank())[0, 1]),  # Pearson's r of the ranks, ties averaged
        "pearson": pearson,
        "n": int(len(x)),
    }


@dataclass(frozen=True)
class StudySettings:
    """The parameters every notebook of the empirical study takes, validated once.

    Attributes:
        backbones: VLM backbone names (zero-shot), e.g. ``["default", "default-wide"]`` or
            ``["openclip:ViT-B-32:openai"]``.
        supervised: the supervised baseline's name, or "" for none. It is trained on
            Fashion-MNIST, so it joins only runs on ``fashion-mnist``.
        dataset: a data-set spec (``fashion-mnist``, ``cifar10:/path``, ``imagefolder:/path``).
        seeds: seeds of the calibration/evaluation split (and of the draws of C6).
        n_bins: ECE bins (the paper: 15).
        device: ``"cpu"``, ``"cuda"`` or "" for automatic.
        cache_dir: vlmcal's cache directory, or "" for the default.
        shifts: shift names, or ``["all"]`` for every shift in ``vlmcal.shifts``.
        severities: shift severities (1..5).
        templates: ``"ensemble"`` (CLIP's 80), ``"hard"`` or ``"dataset"``.
        max_samples: evaluate on a stratified subset of at most this many test images (0: all).
        n_resamples: bootstrap resamples for the verdict's interval.
    """

    backbones: tuple[str, ...]
    supervised: str
    dataset: str
    seeds: tuple[int, ...]
    n_bins: int
    device: str
    cache_dir: str
    shifts: tuple[str, ...] = ("all",)
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    templates: str = "ensemble"
    max_samples: int = 0
    n_resamples: int = 200

    def __post_init__(self) -> None:
        if not list_parameter(self, "backbones", str):
            raise ValueError("Expected parameter `backbones` to name at least one backbone, but got an empty list")
        if not list_parameter(self, "seeds", int):
            raise ValueError("Expected parameter `seeds` to hold at least one seed, but got an empty list")
        from vlmcal.shifts import SEVERITIES, list_shifts

        shifts = list_parameter(self, "shifts", str)
        if shifts == ("all",):
            object.__setattr__(self, "shifts", tuple(list_shifts()))
        unknown = sorted(set(self.shifts) - set(list_shifts()))
        if unknown:
            raise ValueError(f"Unknown shifts {unknown} in parameter `shifts`; known: {list_shifts()} (or ['all'])")
        bad = sorted(set(list_parameter(self, "severities", int)) - set(SEVERITIES))
        if bad or not self.severities:
            raise ValueError(f"Expected parameter `severities` to be a non-empty list of integers in 1..5, but got {list(self.severities)}")
        if isinstance(self.n_bins, bool) or not isinstance(self.n_bins, int) or self.n_bins < 1:
            raise ValueError(f"Expected parameter `n_bins` to be an integer larger than 0, but got {self.n_bins!r}")
        if self.templates not in ("ensemble", "hard", "dataset"):
            raise ValueError(f"Expected parameter `templates` to be 'ensemble', 'hard' or 'dataset', but got {self.templates!r}")
        if not isinstance(self.max_samples, int) or self.max_samples < 0:
            raise ValueError(f"Expected parameter `max_samples` to be an integer >= 0 (0: all), but got {self.max_samples!r}")
        if not isinstance(self.n_resamples, int) or self.n_resamples < 10:
            raise ValueError(f"Expected parameter `n_resamples` to be an integer >= 10, but got {self.n_resamples!r}")
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"Expected parameter `dataset` to be a data-set spec such as 'fashion-mnist', but got {self.dataset!r}")

    @property
    def models(self) -> list[str]:
        """The backbones, plus the supervised baseline where it applies."""
        extra = [self.supervised] if self.supervised and self.dataset.startswith("fashion-mnist") else []
        return list(self.backbones) + extra

    @property
    def conditions(self) -> list[tuple[str, int]]:
        """``("clean", 0)`` then every (shift, severity)."""
        return [("clean", 0)] + [(s, v) for s in self.shifts for v in self.severities]

    def describe_models(self) -> str:
        """The models in words, for a page's Backbone note and its verdicts."""
        return ", ".join(f"`{m}`" for m in self.models)


# ----------------------------------------------------------------------------- intervals behind the verdicts
# Each claim's test and its threshold live in vlmcal.claims and vlmcal/data/paper_values.csv;
# the functions below compute the figures and intervals those tests read.


def mean_ece_bootstrap(
    groups: dict[str, Sequence[Run]],
    evaluation_rows,
    combine: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    temperatures: dict[str, float] | None = None,
    n_bins: int = 15,
    n_resamples: int = 200,
    seed: int = 0,
) -> metrics.BootstrapResult:
    """Bootstrap a figure built from mean ECEs of groups of runs, resampling the evaluation images.

    Every run is resampled with the same draws of images (a paired bootstrap), all resamples
    at once through :func:`vlmcal.metrics.ece_weighted`.

    Args:
        groups: name -> runs; each group's figure is the mean ECE over its runs.
        evaluation_rows: the evaluation images' indices (shared by every run).
        combine: maps ``{group name: [S] mean ECEs}`` to the [S] figures (e.g. a difference);
            elementwise arithmetic on the tensors does it.
        temperatures: model -> temperature to apply first (None: raw logits).
        n_bins: ECE bins.
        n_resamples: bootstrap resamples.
        seed: resampling seed.
    """
    rows = torch.as_tensor(evaluation_rows)
    stacked = {name: _run_top_labels(runs, rows, temperatures) for name, runs in groups.items()}  # [R, n], [R, n] each

    def statistic(weights: torch.Tensor) -> torch.Tensor:  # [S, n] -> [S]
        means = {name: metrics.ece_weighted(c, k, weights, n_bins=n_bins).mean(dim=1) for name, (c, k) in stacked.items()}
        return combine(means)

    return metrics.bootstrap_weights(statistic, len(rows), n_resamples=n_resamples, seed=seed)


def model_temperatures(table: pd.DataFrame) -> dict[str, float]:
    """Each model's fitted temperature, from :func:`ts_across_shifts` output for one seed."""
    if "seed" in table and table["seed"].nunique() > 1:
        raise ValueError(f"Expected the table of one seed, but got seeds {sorted(table['seed'].unique())}")
    return {model: float(t) for model, t in table.groupby("model")["temperature"].first().items()}


def _of_kind(runs: Sequence[Run], kind: str) -> list[Run]:
    return [run for run in runs if run.kind == kind]


def vlm_minus_supervised_ece(
    runs: Sequence[Run], evaluation_rows, n_bins: int = 15, n_resamples: int = 200, seed: int = 0
) -> metrics.BootstrapResult | None:
    """Mean ECE before TS of the VLM runs minus that of the supervised runs, with a paired bootstrap (C1).

    Args:
        runs: runs of VLMs and (maybe) of a supervised baseline, on the same images.
        evaluation_rows: the evaluation images' indices.
        n_bins: ECE bins.
        n_resamples: bootstrap resamples.
        seed: resampling seed.

    Returns:
        A ``BootstrapResult`` in ECE units (positive: the VLMs are worse calibrated), or None
        when the runs hold no supervised model (or no VLM).
    """
    vlm, supervised = _of_kind(runs, "VLM"), _of_kind(runs, "supervised")
    if not vlm or not supervised:
        return None
    return mean_ece_bootstrap({"vlm": vlm, "sup": supervised}, evaluation_rows, lambda m: m["vlm"] - m["sup"],
                              n_bins=n_bins, n_resamples=n_resamples, seed=seed)


def ts_ece_ratio(
    runs: Sequence[Run], temperatures: dict[str, float], evaluation_rows, n_bins: int = 15, n_resamples: int = 200, seed: int = 0
) -> metrics.BootstrapResult:
    """The VLM runs' mean ECE after TS over their mean ECE before TS, with a paired bootstrap (C2).

    Before and after are measured on the same resampled images in each resample.

    Args:
        runs: runs (only those of kind ``"VLM"`` count).
        temperatures: model -> temperature fitted on clean calibration data.
        evaluation_rows: the evaluation images' indices.
        n_bins: ECE bins.
        n_resamples: bootstrap resamples.
        seed: resampling seed.

    Returns:
        A ``BootstrapResult`` of the ratio (0.5: TS halves the mean ECE).
    """
    vlm = _of_kind(runs, "VLM")
    if not vlm:
        raise ValueError("Expected at least one VLM run, but got none")
    rows = torch.as_tensor(evaluation_rows)
    before = _run_top_labels(vlm, rows)  # [R, n], [R, n]
    after = _run_top_labels(vlm, rows, temperatures)  # [R, n], [R, n]

    def ratio(weights: torch.Tensor) -> torch.Tensor:  # [S, n] -> [S]
        ece_before = metrics.ece_weighted(*before, weights, n_bins=n_bins).mean(dim=1)  # [S]
        ece_after = metrics.ece_weighted(*after, weights, n_bins=n_bins).mean(dim=1)  # [S]
        return ece_after / ece_before

    return metrics.bootstrap_weights(ratio, len(rows), n_resamples=n_resamples, seed=seed)


def shift_rise_after_ts(
    runs: Sequence[Run], temperatures: dict[str, float], evaluation_rows, n_bins: int = 15, n_resamples: int = 200, seed: int = 0
) -> metrics.BootstrapResult | None:
    """The VLMs' mean ECE after TS on shifted runs minus that on clean runs, with a paired bootstrap (C3).

    Args:
        runs: runs on the clean and shifted conditions (only VLMs count).
        temperatures: model -> temperature fitted on clean calibration data.
        evaluation_rows: the evaluation images' indices (the same in every run).
        n_bins: ECE bins.
        n_resamples: bootstrap resamples.
        seed: resampling seed.

    Returns:
        A ``BootstrapResult`` in ECE units (positive: calibration worsens under shift), or None
        when the runs hold no shifted (or no clean) VLM run.
    """
    vlm = _of_kind(runs, "VLM")
    shifted = [run for run in vlm if run.shift != "clean"]
    clean = [run for run in vlm if run.shift == "clean"]
    if not shifted or not clean:
        return None
    return mean_ece_bootstrap({"shifted": shifted, "clean": clean}, evaluation_rows, lambda m: m["shifted"] - m["clean"],
                              temperatures=temperatures, n_bins=n_bins, n_resamples=n_resamples, seed=seed)


def full_set_ece(
    runs: Sequence[Run], table: pd.DataFrame, evaluation_rows, n_bins: int = 15, n_resamples: int = 200, seed: int = 0
) -> dict[str, metrics.BootstrapResult]:
    """Each VLM's ECE after TS fitted on the whole calibration pool, with its bootstrap over images (C6).

    The interval's half-width is the sampling noise of the figure every calibration-set size
    is compared with: a tolerance below it cannot be tested.

    Args:
        runs: clean runs, one per model (only VLMs count).
        table: :func:`calibration_set_size` output for the seed whose ``evaluation_rows`` these are.
        evaluation_rows: the evaluation images' indices.
        n_bins: ECE bins.
        n_resamples: bootstrap resamples.
        seed: resampling seed.

    Returns:
        model -> ``BootstrapResult`` of its full-set ECE after TS.
    """
    if "seed" in table and table["seed"].nunique() > 1:
        raise ValueError(f"Expected the table of one seed, but got seeds {sorted(table['seed'].unique())}")
    full = table[table["size"] == "all"].groupby("model")["temperature"].first()
    return {
        run.model: mean_ece_bootstrap({run.model: [run]}, evaluation_rows, lambda m, name=run.model: m[name],
                                      temperatures={run.model: float(full[run.model])}, n_bins=n_bins,
                                      n_resamples=n_resamples, seed=seed)
        for run in _of_kind(runs, "VLM")
        if run.model in full.index
    }


def bootstrap_label_shift(
    runs: Sequence[Run],
    table: pd.DataFrame,
    target_classes: dict[str, Sequence[int]],
    evaluation_rows,
    n_bins: int = 15,
    n_resamples: int = 200,
    seed: int = 0,
) -> metrics.BootstrapResult:
    """Bootstrap the mean ``recovered`` share of :func:`label_shift`, with its temperatures held fixed.

    Each (model, target) evaluation set is resampled with replacement, independently of the
    others (one torch generator seeded with ``seed``, drawing cell by cell); the temperatures
    come from ``table`` (fitting is not repeated). A resample's share averages the cells
    where TS on the target labels lowers ECE at all.
    """
    evaluation_rows = torch.as_tensor(evaluation_rows)
    gen = torch.Generator().manual_seed(int(seed))
    ece_by_cell = []  # per cell: [S + 1, 3] ECE before TS, with the source T, with the target T; row 0 the full set
    for run in runs:
        ev_logits, ev_labels = run.subset(evaluation_rows)
        for name, classes in target_classes.items():
            row = table[(table["model"] == run.model) & (table["target"] == name)].iloc[0]
            logits, labels, _ = restrict_to_classes(ev_logits, ev_labels, classes)
            temperatures = [1.0, row["temperature_source"], row["temperature_target"]]
            conf, ok = _top_labels([(logits, labels)] * 3, temperatures)  # [3, n], [3, n]
            n = len(labels)
            draws = torch.randint(n, (n_resamples, n), generator=gen)  # [S, n] rows drawn with replacement
            weights = torch.cat([torch.ones(1, n, dtype=torch.float64), metrics.multiplicities(draws)])  # [S + 1, n]; row 0: the full set
            ece_by_cell.append(metrics.ece_weighted(conf, ok, weights, n_bins=n_bins))  # [S + 1, 3]
    ece = torch.stack(ece_by_cell)  # [cells, S + 1, 3]
    before, source, target = ece.unbind(dim=2)  # each [cells, S + 1]
    gain = before - target
    share = torch.where(gain > 0, (before - source) / gain, torch.nan)  # NaN where target TS does not help
    recovered = share.nanmean(dim=0).cpu().numpy()  # [S + 1]; NaN when no cell counts
    lower, upper = np.nanquantile(recovered[1:], [0.025, 0.975])
    return metrics.BootstrapResult(float(recovered[0]), float(lower), float(upper), 0.95, int(n_resamples), int(seed))


def confidence_accuracy_points(
    runs: Sequence[Run],
    temperatures: dict[str, float],
    evaluation_rows,
    class_sets: dict[str, Sequence[int]],
) -> pd.DataFrame:
    """Accuracy and mean confidence (before and after TS) per (model, condition, label set) (C5).

    Args:
        runs: runs on any conditions.
        temperatures: model -> temperature (fitted on clean, all-class calibration data).
        evaluation_rows: evaluation images.
        class_sets: name -> classes; each set restricts the logits and images to those classes.

    Returns:
        One row per (run, label set): model, kind, condition, labels, accuracy,
        confidence_before, confidence_after.
    """
    if not class_sets:
        raise ValueError("Expected at least one label set in `class_sets`, but got none")
    evaluation_rows = torch.as_tensor(evaluation_rows)
    evaluation = [run.subset(evaluation_rows) for run in runs]
    scale = [temperatures[run.model] for run in runs]
    frames = []
    for name, classes in class_sets.items():
        restricted = [restrict_to_classes(logits, labels, classes)[:2] for logits, labels in evaluation]
        conf_before, correct = _top_labels(restricted)  # [R, m], [R, m]
        conf_after, _ = _top_labels(restricted, scale)  # [R, m]
        frames.append(
            pd.DataFrame(
                {
                    "model": [run.model for run in runs],
                    "kind": [run.kind for run in runs],
                    "condition": [run.condition for run in runs],
                    "labels": name,
                    "accuracy": correct.double().mean(dim=1).cpu().numpy(),
                    "confidence_before": conf_before.double().mean(dim=1).cpu().numpy(),
                    "confidence_after": conf_after.double().mean(dim=1).cpu().numpy(),
                }
            )
        )
    # one row per (run, label set), in that order
    return pd.concat(frames).sort_index(kind="stable").reset_index(drop=True)


def bootstrap_confidence_vs_accuracy(points: pd.DataFrame, n_resamples: int = 200, seed: int = 0) -> dict[str, metrics.BootstrapResult]:
    """95% bootstraps over the VLM points of R^2 and Spearman's rho of calibrated confidence against accuracy (C5).

    Args:
        points: :func:`confidence_accuracy_points` output; only rows of kind ``"VLM"`` count.
        n_resamples: bootstrap resamples (both statistics see the same resamples).
        seed: resampling seed.

    Returns:
        ``{"r2": BootstrapResult, "spearman": BootstrapResult}``.
    """
    vlm = points[points["kind"] == "VLM"].reset_index(drop=True)

    def statistic(name: str):
        return lambda pick: confidence_vs_accuracy(vlm.iloc[pick.numpy()])[name]

    with warnings.catch_warnings():  # a resample whose points all share one accuracy has no correlation: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return {name: metrics.bootstrap_rows(statistic(name), len(vlm), n_resamples, seed=seed) for name in ("r2", "spearman")}
