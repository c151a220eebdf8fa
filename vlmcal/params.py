"""Checking a notebook's parameters once, where its settings dataclass is built.

A papermill parameter arrives as whatever YAML made of the text after ``-p``: a list, a
single value, or a string typed by mistake. Settings dataclasses turn list parameters into
tuples of one type here, with an error that names the parameter and what it received.
"""

from __future__ import annotations

from typing import Any

__all__ = ["list_parameter"]


def list_parameter(settings: Any, name: str, kind: type) -> tuple:
    """Set ``settings.<name>`` (a frozen dataclass field) to a tuple of ``kind`` and return it.

    A single value is taken as a list of one.

    Args:
        settings: the dataclass instance, inside its ``__post_init__``.
        name: the field, named as the notebook parameter is.
        kind: the element type (``int``, ``float``, ``str``).

    Raises:
        ValueError: an element cannot be read as ``kind``; the message names the parameter.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class S:
        ...     seeds: tuple
        ...     def __post_init__(self):
        ...         list_parameter(self, "seeds", int)
        >>> S(seeds=3).seeds, S(seeds=[1, "2"]).seeds
        ((3,), (1, 2))
    """
    value = getattr(settings, name)
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        value = [value]
    try:
        out = tuple(kind(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"Expected parameter `{name}` to be a list of {kind.__name__}s, but got {getattr(settings, name)!r}") from None
    object.__setattr__(settings, name, out)
    return out
