"""Settings of the pages that are not part of the ES study, each checked once from its parameters cell.

The ES pages use :class:`vlmcal.empirical.StudySettings` and the Proposition 3.1 page
:class:`vlmcal.theory.PropositionSettings`; the zero-shot chapter, Calibration 101 and the
calibration-set-size page's own extra parameters are checked here. Every field accepts what
papermill's ``-p`` passes (a list as the text ``'[...]'``), see :mod:`vlmcal.params`.
"""

from __future__ import annotations

from dataclasses import dataclass

from vlmcal.params import as_list, as_number

__all__ = ["ZeroShotSettings", "Calibration101Settings", "SetSizeSettings"]

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
        from vlmcal.shifts import SEVERITIES, list_shifts

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
