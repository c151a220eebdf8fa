"""Settings of the ES pages, each checked once from the page's parameters cell: ``StudySettings`` (shared),
and the zero-shot chapter's, Calibration 101's and the calibration-set-size page's own."""

from __future__ import annotations

from dataclasses import dataclass

from vlmcal.papers.common.params import as_list
from vlmcal.papers.common.settings import SEVERITY_RANGE, PageSettings, known_shifts, shift_conditions, spec
from vlmcal.pipeline.runs import is_dataset_shift

__all__ = ["StudySettings", "ZeroShotSettings", "Calibration101Settings", "SetSizeSettings"]

TEMPLATES = ("ensemble", "hard", "dataset")


@dataclass(frozen=True)
class StudySettings(PageSettings):
    """The parameters every notebook of the empirical study takes, validated once.

    Attributes:
        backbones: VLM backbone names, e.g. ``["default", "default-wide"]`` or ``["openclip:ViT-B-32:openai"]``.
        supervised: the supervised baseline's name, or "" (None): the stand-in ``supervised`` joins runs on
            ``fashion-mnist``, a ``timm:<model>`` ImageNet classifier runs on the ImageNet family.
        dataset: a data-set spec (``fashion-mnist``, ``imagenet:/root``, ``cifar10:/path``, ``imagefolder:/path``).
        seeds: seeds of the calibration/evaluation split (and of the draws of C6).
        n_bins: ECE bins (the paper: 15).
        device, cache_dir: ``"cpu"`` or ``"cuda"``, and vlmcal's cache directory; "" (read as None): the default.
        shifts: synthetic shift names (``["all"]``: every shift in ``vlmcal.data.shifts``) or data sets' specs, such as
            ImageNet's natural shifts, ``imagenet-c:/root`` or ``domainnet:/root`` (``known_shifts``).
        templates: ``"ensemble"`` (CLIP's 80), ``"hard"`` or ``"dataset"``.
        max_samples: evaluate on a stratified subset of at most this many test images (0: all).
    """

    backbones: tuple[str, ...] = spec(nonempty=True)
    supervised: str | None
    dataset: str
    seeds: tuple[int, ...] = spec(nonempty=True)
    n_bins: int = spec(minimum=1)
    device: str | None
    cache_dir: str | None
    shifts: tuple[str, ...] = ("all",)
    severities: tuple[int, ...] = spec((1, 2, 3, 4, 5), nonempty=True, **SEVERITY_RANGE)
    templates: str = spec("ensemble", choices=TEMPLATES)
    max_samples: int = spec(0, minimum=0)
    n_resamples: int = spec(200, minimum=10)

    def check_rules(self) -> None:
        self._set(shifts=known_shifts(self.shifts, allow_all=True, dataset=self.dataset))

    @property
    def models(self) -> list[str]:
        """The backbones, plus the supervised baseline where it applies (``timm:`` on ImageNet's family, else the
        stand-in on Fashion-MNIST)."""
        if not self.supervised:
            return list(self.backbones)
        timm, imagenet = self.supervised.startswith("timm:"), self.dataset.startswith("imagenet")
        applies = imagenet if timm else self.dataset.startswith("fashion-mnist")
        return list(self.backbones) + ([self.supervised] if applies else [])

    @property
    def conditions(self) -> list[tuple[str, int]]:
        """``("clean", 0)`` then every (shift, severity) (``shift_conditions``)."""
        return shift_conditions(self.shifts, self.severities)

    def describe_models(self) -> str:
        """The models in words, for a page's Backbone note and its verdicts."""
        return ", ".join(f"`{m}`" for m in self.models)


@dataclass(frozen=True)
class ZeroShotSettings(PageSettings):
    """Parameters of the zero-shot chapter (see its parameters cell for each one's meaning)."""

    backbone: str
    dataset: str
    template: str
    templates: str = spec(choices=TEMPLATES)
    shifts: tuple[str, ...]
    severity: int = spec(**SEVERITY_RANGE)
    n_bins: int = spec(minimum=1)
    n_examples: int = spec(minimum=0)
    max_samples: int = spec(minimum=0)
    device: str | None = ""
    cache_dir: str | None = ""

    def check_rules(self) -> None:
        if "{}" not in self.template:
            raise ValueError(f"Expected parameter `template` to contain '{{}}' for the class name, but got {self.template!r}")
        if any(is_dataset_shift(name) for name in known_shifts(self.shifts)):
            raise ValueError(f"The zero-shot chapter shows synthetic shifts (names from vlmcal.data.shifts); the ES pages "
                             f"take other data sets as shifts. Got {list(self.shifts)}")


def _temperature_grid(value, name: str) -> tuple[float, float, int]:
    """``[smallest T > 0, largest T, number of points >= 2]``, as ``(float, float, int)``."""
    grid = as_list(value, name, float)
    if len(grid) != 3 or not (0 < grid[0] < grid[1]) or grid[2] < 2 or not float(grid[2]).is_integer():
        raise ValueError(f"Expected parameter `{name}` to be [smallest T > 0, largest T, number of points >= 2], but got {value!r}")
    return grid[0], grid[1], int(grid[2])


@dataclass(frozen=True)
class Calibration101Settings(PageSettings):
    """Parameters of the Calibration 101 chapter (see its parameters cell)."""

    n_bins: int = spec(minimum=1)
    n_resamples: int = spec(minimum=10)
    seed: int
    temperature_grid: tuple[float, float, int] = spec(read=_temperature_grid)
    backbone: str
    templates: str = spec(choices=TEMPLATES)
    device: str | None = ""
    cache_dir: str | None = ""


def _sizes(value, name: str) -> tuple[int | str, ...]:
    """Calibration-set sizes: each an integer >= 1 or ``"all"``."""
    sizes = as_list(value, name, str)
    if not all(size == "all" or (size.isdigit() and int(size) >= 1) for size in sizes):
        raise ValueError(f"Expected parameter `{name}` to hold integers >= 1 or 'all', but got {value!r}")
    return tuple(size if size == "all" else int(size) for size in sizes)


@dataclass(frozen=True)
class SetSizeSettings(PageSettings):
    """The calibration-set-size page's own parameters: ``sizes`` (calibration-set sizes, each an integer >= 1 or
    ``"all"``) and ``n_draws`` (stratified draws per size, at least 2 so that the draws have a spread)."""

    sizes: tuple[int | str, ...] = spec(read=_sizes)
    n_draws: int = spec(minimum=2)
