"""Reading a notebook's parameters as a reader types them, and checking them once.

A value reaches a notebook's ``parameters`` cell in one of three forms:

- as written in the cell (the defaults), or given with papermill's ``-y``/``-f``: already a
  list, a number, a string;
- with papermill's ``-p NAME VALUE``: papermill turns ``True``/``False``/``None`` and numbers
  into Python values, and leaves everything else, lists included, as a *string*:
  ``-p n_classes '[2, 1000]'`` arrives as the text ``"[2, 1000]"``;
- with ``python -m vlmcal.bookrun ... -p NAME VALUE``: parsed as YAML before it is injected.

The functions here accept all three: a list, dict or bool parameter that arrives as a string
is read as YAML, then checked against the kind the notebook expects, and an error names the
parameter, what it received and what it accepts.
"""

from __future__ import annotations

from typing import Any

__all__ = ["as_list", "as_bool", "as_number", "list_parameter", "yaml_text"]


def yaml_text(text: str) -> Any:
    """``text`` read as YAML, or ``text`` itself when it is not valid YAML.

    Example:
        >>> yaml_text("[2, 1000]"), yaml_text("fashion-mnist"), yaml_text("a: [")
        ([2, 1000], 'fashion-mnist', 'a: [')
    """
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def as_list(value: Any, name: str, kind: type) -> tuple:
    """A list parameter as a tuple of ``kind``; one value is read as a list of one.

    Args:
        value: what the parameters cell holds: a list, one value, or the YAML text of a list
            (``'[2, 1000]'``, ``'["openclip:ViT-B-32:openai"]'``) as papermill's ``-p`` passes it.
        name: the parameter's name, for the error message.
        kind: the element type (``int``, ``float``, ``str``). ``int`` refuses fractions
            (``2.5``) and bools rather than rounding them.

    Raises:
        ValueError: an element cannot be read as ``kind``; the message names the parameter.

    Example:
        >>> as_list("[2, 1000]", "n_classes", int), as_list(3, "seeds", int), as_list("default", "backbones", str)
        ((2, 1000), (3,), ('default',))
    """
    received = value
    if isinstance(value, str):
        parsed = yaml_text(value)
        if isinstance(parsed, list):  # a string that is not a YAML list is one value
            value = parsed
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        value = [value]

    def convert(v: Any):
        if kind is int and (isinstance(v, bool) or (isinstance(v, float) and not v.is_integer())):
            raise ValueError
        if kind is str and not isinstance(v, (str, int, float)):
            raise ValueError  # e.g. YAML's {a: 1} inside a list of names
        return kind(v)

    try:
        return tuple(convert(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"Expected parameter `{name}` to be a list of {kind.__name__}s (e.g. -p {name} '[...]'), but got {received!r}"
        ) from None


def as_bool(value: Any, name: str) -> bool:
    """A bool parameter; the strings ``true``/``false``/``yes``/``no`` are read as YAML reads them.

    Example:
        >>> as_bool("false", "verbose"), as_bool(True, "verbose")
        (False, True)
    """
    parsed = yaml_text(value) if isinstance(value, str) else value
    if not isinstance(parsed, bool):
        raise ValueError(f"Expected parameter `{name}` to be true or false, but got {value!r}")
    return parsed


def as_number(value: Any, name: str, kind: type = float, minimum: float | None = None) -> int | float:
    """An int or float parameter, from a number or the text of one; optionally at least ``minimum``.

    Example:
        >>> as_number("0.5", "alpha"), as_number(3, "n_bins", int, minimum=1)
        (0.5, 3)
    """
    parsed = yaml_text(value) if isinstance(value, str) else value
    ok = isinstance(parsed, (int, float)) and not isinstance(parsed, bool)
    if ok and kind is int:
        ok = float(parsed).is_integer()
    if ok:
        parsed = kind(parsed)
        ok = parsed == parsed and (minimum is None or parsed >= minimum)  # NaN fails parsed == parsed
    if not ok:
        wanted = "an integer" if kind is int else "a number"
        bound = f" >= {minimum:g}" if minimum is not None else ""
        raise ValueError(f"Expected parameter `{name}` to be {wanted}{bound}, but got {value!r}")
    return parsed


def list_parameter(settings: Any, name: str, kind: type) -> tuple:
    """Set ``settings.<name>`` (a frozen dataclass field) to :func:`as_list` of it and return it.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class S:
        ...     seeds: tuple
        ...     def __post_init__(self):
        ...         list_parameter(self, "seeds", int)
        >>> S(seeds=3).seeds, S(seeds=[1, "2"]).seeds, S(seeds="[0, 1]").seeds
        ((3,), (1, 2), (0, 1))
    """
    out = as_list(getattr(settings, name), name, kind)
    object.__setattr__(settings, name, out)
    return out
