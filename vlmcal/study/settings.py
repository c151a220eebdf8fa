"""Settings of every page, each checked once from the page's parameters cell.

``StudySettings``: the parameters the ES pages share. ``ZeroShotSettings``,
``Calibration101Settings`` and ``SetSizeSettings``: the zero-shot chapter, Calibration 101 and
the calibration-set-size page's own extra parameters. Every field accepts what papermill's
``-p`` passes (a list as the text ``'[...]'``), see :mod:`vlmcal.params`.
"""

from __future__ import annotations

from dataclasses import dataclass

from vlmcal.params import as_list, as_number, list_parameter


__all__ = ["StudySettings", "ZeroShotSettings", "Calibration101Settings", "SetSizeSettings"]


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
        shifts: shift names, or ``["all"]`` for every shift in ``vlmcal.data.shifts``.
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
        from vlmcal.data.shifts import SEVERITIES, list_shifts

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

_TEMPLATES = ("ensemble", "hard", "dataset")


def _check_choice(value: str, name: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"Expected parameter `{name}` to be one of {', '.join(map(repr, allowed))}, but got {value!r}")


def _check_text(value, name: str, example: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"Expected parameter `{name}` to be a non-empty string such as {example!r}, but got {value!r}")


def _set(settings, **values) -> None:
    for name, value in values.items():
        object.__setattr__(settings, name, value)


@dataclass(frozen=True)
class ZeroShotSettings:
    """Parameters of the zero-shot chapter (see its parameters cell for each one's meaning)."""

    backbone: str
    dataset: str
    template: str
    templates: str
    shifts: tuple[str, ...]
    severity: int
    n_bins: int
    n_examples: int
    max_samples: int
    device: str = ""
    cache_dir: str = ""

    def __post_init__(self) -> None:
        from vlmcal.data.shifts import SEVERITIES, list_shifts

        _check_text(self.backbone, "backbone", "default")
        _check_text(self.dataset, "dataset", "fashion-mnist")
        if not isinstance(self.template, str) or "{}" not in self.template:
            raise ValueError(f"Expected parameter `template` to contain '{{}}' for the class name, but got {self.template!r}")
        _check_choice(self.templates, "templates", _TEMPLATES)
        shifts = as_list(self.shifts, "shifts", str)
        unknown = sorted(set(shifts) - set(list_shifts()))
        if unknown:
            raise ValueError(f"Unknown shifts {unknown} in parameter `shifts`; known: {list_shifts()}")
        severity = as_number(self.severity, "severity", int)
        if severity not in SEVERITIES:
            raise ValueError(f"Expected parameter `severity` to be an integer in 1..5, but got {self.severity!r}")
        _set(
            self,
            shifts=shifts,
            severity=severity,
            n_bins=as_number(self.n_bins, "n_bins", int, minimum=1),
            n_examples=as_number(self.n_examples, "n_examples", int, minimum=0),
            max_samples=as_number(self.max_samples, "max_samples", int, minimum=0),
        )


@dataclass(frozen=True)
class Calibration101Settings:
    """Parameters of the Calibration 101 chapter (see its parameters cell)."""

    n_bins: int
    n_resamples: int
    seed: int
    temperature_grid: tuple[float, float, int]
    backbone: str
    templates: str
    device: str = ""
    cache_dir: str = ""

    def __post_init__(self) -> None:
        grid = as_list(self.temperature_grid, "temperature_grid", float)
        if len(grid) != 3 or not (0 < grid[0] < grid[1]) or grid[2] < 2 or not float(grid[2]).is_integer():
            raise ValueError(
                "Expected parameter `temperature_grid` to be [smallest T > 0, largest T, number of points >= 2], "
                f"but got {self.temperature_grid!r}"
            )
        _check_text(self.backbone, "backbone", "default")
        _check_choice(self.templates, "templates", _TEMPLATES)
        _set(
            self,
            temperature_grid=(grid[0], grid[1], int(grid[2])),
            n_bins=as_number(self.n_bins, "n_bins", int, minimum=1),
            n_resamples=as_number(self.n_resamples, "n_resamples", int, minimum=10),
            seed=as_number(self.seed, "seed", int),
        )


@dataclass(frozen=True)
class SetSizeSettings:
    """The calibration-set-size page's own parameters: the sizes n, and draws per size.

    Attributes:
        sizes: calibration-set sizes, each an integer >= 1 or ``"all"``.
        n_draws: stratified draws per size (at least 2, so that the draws have a spread).
    """

    sizes: tuple[int | str, ...]
    n_draws: int

    def __post_init__(self) -> None:
        sizes = []
        for size in as_list(self.sizes, "sizes", str):
            if size == "all":
                sizes.append(size)
            elif size.isdigit() and int(size) >= 1:
                sizes.append(int(size))
            else:
                raise ValueError(f"Expected parameter `sizes` to hold integers >= 1 or 'all', but got {self.sizes!r}")
        _set(self, sizes=tuple(sizes), n_draws=as_number(self.n_draws, "n_draws", int, minimum=2))
