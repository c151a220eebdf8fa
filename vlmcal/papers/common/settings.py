"""What every page's settings share: a frozen dataclass subclassing :class:`~vlmcal.papers.common.settings.PageSettings`, each field's annotation
giving its type and :func:`~vlmcal.papers.common.settings.spec` its default and what it accepts, every field read (also from papermill's ``-p`` text,
:mod:`vlmcal.papers.common.params`) and checked once:

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Example(PageSettings):
    ...     backbones: tuple[str, ...] = spec(nonempty=True)  # at least one name
    ...     n_bins: int = spec(15, minimum=1)  # ECE bins
    ...     templates: str = spec("ensemble", choices=("ensemble", "hard"))
    ...     device: str | None = ""  # "" (or None): automatic
    >>> Example(backbones="[default, default-wide]", n_bins="20")
    Example(backbones=('default', 'default-wide'), n_bins=20, templates='ensemble', device=None)

How each annotation is read: ``int``, ``float``: a finite number or its text, in ``[minimum, maximum]``;
``bool``: true or false, or their text; ``str``: a non-empty string, one of ``choices`` if given;
``tuple[X, ...]``: a list, its YAML text, or one value, each read as ``X`` (``nonempty``: at least one);
``X | None``: ``""`` and None become None, anything else is read as ``X``; ``spec(read=f)``: ``f(value, name)``.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import MISSING, field, fields
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from vlmcal.data.published import shift_specs
from vlmcal.data.shifts import SEVERITIES, list_shifts
from vlmcal.papers.common.params import as_bool, as_list, as_number
from vlmcal.pipeline.runs import is_dataset_shift

__all__ = ["PageSettings", "Check", "spec", "OneBackbone", "known_shifts", "shift_conditions", "SEVERITY_RANGE"]

SEVERITY_RANGE = {"minimum": min(SEVERITIES), "maximum": max(SEVERITIES)}  # a shift's severity: spec(**SEVERITY_RANGE)


class Check(NamedTuple):
    """What a field accepts beyond its annotation's type; :func:`spec` declares it."""

    minimum: float | None = None  # a number's bounds, inclusive (each number's, in a list)
    maximum: float | None = None
    choices: tuple | None = None  # the values a text field accepts
    nonempty: bool = False  # a list needs at least one element
    read: Callable[[Any, str], Any] | None = None  # (value, name) -> checked value, instead of the annotation's reading


def spec(default: Any = MISSING, **check: Any) -> Any:
    """A settings field: its default (none: required) and its :class:`Check`, e.g. ``spec(15, minimum=1)``."""
    return field(default=default, metadata={"check": Check(**check)})


def _read_one(value: Any, name: str, kind: type, check: Check, optional: bool = False) -> Any:
    """One value, or one element of a list, read as ``kind``: a bool, a number, or a non-empty string."""
    if kind is bool:
        return as_bool(value, name)
    if kind in (int, float):
        return as_number(value, name, kind, check.minimum, check.maximum)
    if kind is not str:
        raise TypeError(f"A settings field of type {kind} needs spec(read=...) to be read (field `{name}`)")
    if check.choices is not None and value not in check.choices:
        raise ValueError(f"Expected parameter `{name}` to be one of {', '.join(map(repr, check.choices))}, but got {value!r}")
    if not isinstance(value, str) or not value:
        wanted = 'a string ("" for none)' if optional else "a non-empty string"
        raise ValueError(f"Expected parameter `{name}` to be {wanted}, but got {value!r}")
    return value


def _read(value: Any, name: str, kind: Any, check: Check) -> Any:
    """The field ``name``'s ``value``, read as its annotation ``kind`` and ``check`` say."""
    if check.read is not None:
        return check.read(value, name)
    optional = type(None) in typing.get_args(kind)  # X | None
    if optional:
        if value is None or (isinstance(value, str) and not value):
            return None
        (kind,) = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) is tuple and typing.get_args(kind)[1:] == (Ellipsis,):  # tuple[X, ...]
        element = typing.get_args(kind)[0]
        items = as_list(value, name, element)
        if check.nonempty and not items:
            raise ValueError(f"Expected parameter `{name}` to be a non-empty list, but got {value!r}")
        return tuple(_read_one(item, name, element, check) for item in items)
    return _read_one(value, name, kind, check, optional)


class PageSettings:
    """The base of a page's settings (a frozen dataclass): every field read and checked once, as declared."""

    def __post_init__(self) -> None:
        kinds = typing.get_type_hints(type(self))
        for f in fields(self):
            self._set(**{f.name: _read(getattr(self, f.name), f.name, kinds[f.name], f.metadata.get("check", Check()))})
        self.check_rules()

    def check_rules(self) -> None:
        """Check what no field's declaration says, once every field is read; a class with such rules overrides this."""

    def _set(self, **values: Any) -> None:
        """Keep checked values on the frozen instance (while it is being checked)."""
        for name, value in values.items():
            object.__setattr__(self, name, value)


def known_shifts(names: tuple[str, ...], allow_all: bool = False, dataset: str = "") -> tuple[str, ...]:
    """The ``shifts`` parameter's ``names``, each a shift of :mod:`vlmcal.data.shifts` or a data set's spec (a set of its
    own: ``imagenet-sketch:/root``; ``imagenet-c:/root``: each corruption and severity under it; ``domainnet:/root``:
    each domain but that of ``dataset``); ``("all",)``: every synthetic shift, where allowed."""
    if allow_all and names == ("all",):
        return tuple(list_shifts())
    expanded = []
    for name in names:
        kind, _, root = name.partition(":")
        if kind == "domainnet" and ":" not in root:
            if not dataset.startswith("domainnet:"):
                raise ValueError(f"Shift {name!r}: DomainNet's domains shift a DomainNet domain; set `dataset` to "
                                 f"'domainnet:<domain>:/root', not {dataset!r}")
            name = f"domainnet:{dataset.split(':')[1]}:{root}"
        expanded += list(shift_specs(name).values()) if kind in ("imagenet-c", "domainnet") and ":" not in root else [name]
    unknown = sorted({name for name in expanded if not is_dataset_shift(name)} - set(list_shifts()))
    if unknown:
        also = " (or ['all'])" if allow_all else ""
        raise ValueError(f"Unknown shifts {unknown} in parameter `shifts`; known: {list_shifts()}{also}, or a data set's "
                         f"spec such as 'imagenet-sketch:/root'")
    for name in expanded:
        if is_dataset_shift(name) and not Path(name.rsplit(":", 1)[1]).expanduser().is_dir():
            raise FileNotFoundError(f"Shift {name!r} in parameter `shifts`: the folder {name.rsplit(':', 1)[1]} does not exist")
    return tuple(expanded)


def shift_conditions(shifts: Sequence[str], severities: Sequence[int]) -> list[tuple[str, int]]:
    """``("clean", 0)``, then each synthetic shift at each severity and each data-set shift once (ImageNet-C's at
    its own severity, if in ``severities``)."""
    conditions = [("clean", 0)]
    for shift in shifts:
        if not is_dataset_shift(shift):
            conditions += [(shift, v) for v in severities]
        elif not shift.startswith("imagenet-c:"):
            conditions.append((shift, 0))
        elif int(shift.split(":")[2]) in severities:
            conditions.append((shift, int(shift.split(":")[2])))
    return conditions


class OneBackbone(PageSettings):
    """The settings of a page that runs one VLM, ``backbone``, as the Backbone box reads them; it must be a VLM."""

    backbone: str
    supervised = None

    @property
    def backbones(self) -> tuple[str, ...]:
        return (self.backbone,)

    @property
    def models(self) -> list[str]:
        return [self.backbone]

    def refuse_supervised(self, method: str) -> None:
        """Refuse a ``backbone`` that is no vision-language model: ``method`` tunes a prompt."""
        if self.backbone == "supervised" or self.backbone.startswith("supervised-"):
            raise ValueError(f"Expected parameter `backbone` to name a vision-language backbone ({method} tunes a prompt), "
                             f"but got {self.backbone!r}")
