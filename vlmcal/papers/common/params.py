"""Reading a notebook's parameters as a reader types them (in the cell, as YAML, or as text from papermill's ``-p``:
``-p n_classes '[2, 1000]'`` arrives as ``"[2, 1000]"`` and is read as YAML), checking them once, and refusing a
misspelt name; an error names the parameter, what it received and what it accepts."""

from __future__ import annotations

import ast
import difflib
import math
import numbers
from typing import Any, Mapping, Sequence

__all__ = ["as_list", "as_bool", "as_number", "list_parameter", "yaml_text", "UnknownParameter",
           "refuse_unknown_parameters", "check_injected_parameters"]

INJECTED_HEADER = "# Parameters"  # the first line of the cell papermill injects after the parameters cell


class UnknownParameter(ValueError):
    """A parameter that the notebook's ``parameters`` cell does not define."""


def refuse_unknown_parameters(page: str, known: Sequence[str], parameters: Mapping[str, Any] | Sequence[str]) -> None:
    """Raise :class:`UnknownParameter` for the first name in ``parameters`` that is not in ``known``, the names the
    ``parameters`` cell of ``page`` defines."""
    known = list(known)
    for name in parameters:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
            hint = f"did you mean `{close[0]}`? " if close else ""
            raise UnknownParameter(f"{page} has no parameter `{name}`: {hint}Its parameters are: {', '.join(known) or '(none)'}.")


def _assigned_names(source: str) -> list[str]:
    """The names a cell of plain assignments assigns, in order."""
    names = []
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def check_injected_parameters(history: Sequence[str] | None = None, page: str = "This page") -> None:
    """Refuse a parameter that papermill injected but the page's ``parameters`` cell does not define.

    Plain papermill only warns about it. Reads back the executed cells' sources, oldest first (``history``; default:
    the running kernel's ``In``; outside IPython, does nothing): the injected one (starting ``# Parameters``) and the
    parameters cell before it. Its :class:`UnknownParameter` names the parameter, the closest defined one, and all.
    """
    if history is None:
        try:
            from IPython import get_ipython  # wherever a notebook runs; the library does not need it
        except ImportError:
            return
        shell = get_ipython()
        history = [] if shell is None else list(shell.user_ns.get("In", []))
    for i, source in enumerate(history):
        if i > 0 and source.startswith(INJECTED_HEADER + "\n"):
            refuse_unknown_parameters(page, _assigned_names(history[i - 1]), _assigned_names(source))


def yaml_text(text: str) -> Any:
    """``text`` read as YAML, or ``text`` itself when it is not valid YAML.

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

    ``value``: a list, one value, or the YAML text of a list (``'[2, 1000]'``), as papermill's ``-p`` passes it;
    ``kind``: the element type (``int``, ``float``, ``str``), ``int`` refusing fractions and bools. An element that
    cannot be read as ``kind`` raises a ValueError that names the parameter.

    >>> as_list("[2, 1000]", "n_classes", int), as_list(3, "seeds", int), as_list("default", "backbones", str)
    ((2, 1000), (3,), ('default',))
    """
    items = yaml_text(value) if isinstance(value, str) else value
    if not isinstance(items, list) and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        items = [value]  # one value (a string that is not a YAML list is one value)

    def convert(v: Any):
        if kind is int and (isinstance(v, bool) or (isinstance(v, float) and not v.is_integer())):
            raise ValueError
        if kind is str and not isinstance(v, (str, int, float)):
            raise ValueError  # e.g. YAML's {a: 1} inside a list of names
        return kind(v)

    try:
        return tuple(convert(v) for v in items)
    except (TypeError, ValueError):
        wanted = f"a list of {kind.__name__}s (e.g. -p {name} '[...]')"
        raise ValueError(f"Expected parameter `{name}` to be {wanted}, but got {value!r}") from None


def as_bool(value: Any, name: str) -> bool:
    """A bool parameter; the strings ``true``/``false``/``yes``/``no`` are read as YAML reads them.

    >>> as_bool("false", "verbose"), as_bool(True, "verbose")
    (False, True)
    """
    parsed = yaml_text(value) if isinstance(value, str) else value
    if not isinstance(parsed, bool):
        raise ValueError(f"Expected parameter `{name}` to be true or false, but got {value!r}")
    return parsed


def as_number(value: Any, name: str, kind: type = float, minimum: float | None = None,
              maximum: float | None = None) -> int | float:
    """A finite int or float parameter, from a number or the text of one; optionally in ``[minimum, maximum]``.

    >>> as_number("0.5", "alpha"), as_number(3, "n_bins", int, minimum=1), as_number("2", "severity", int, 1, 5)
    (0.5, 3, 2)
    """
    parsed = yaml_text(value) if isinstance(value, str) else value
    ok = isinstance(parsed, numbers.Real) and not isinstance(parsed, bool)  # numpy's numbers too
    ok = ok and (kind is not int or float(parsed).is_integer())  # is_integer: False for NaN and infinities
    if ok:
        parsed = kind(parsed)
        ok = math.isfinite(parsed) and (minimum is None or parsed >= minimum) and (maximum is None or parsed <= maximum)
    if not ok:
        wanted = "an integer" if kind is int else "a number"
        if minimum is not None:
            wanted += f" in {minimum:g}..{maximum:g}" if maximum is not None else f" >= {minimum:g}"
        elif maximum is not None:
            wanted += f" <= {maximum:g}"
        raise ValueError(f"Expected parameter `{name}` to be {wanted}, but got {value!r}")
    return parsed


def list_parameter(settings: Any, name: str, kind: type) -> tuple:
    """Set ``settings.<name>`` (a frozen dataclass field) to :func:`as_list` of it and return it.

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
