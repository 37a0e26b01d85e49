"""The value half of a ``-S`` override: YAML flow text read with Hydra's types.

Hydra (which DVC uses for ``-S``) reads ``key=`` as the empty string, ``1e-3``
as a float, and keeps ``yes``, ``on``, ``0755``, ``1:30`` and dates as strings,
where YAML 1.1 would turn them into bools, octal, sexagesimal ints and dates.
Comma-separated values, ``choice(a,b)`` and ``range(start, stop, step)`` are
Hydra sweeps: :func:`expand_sweeps` turns them into the grid of single-valued
overrides, and :func:`parse_value` refuses them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import yaml

from exq.engine.errors import ParamsError

_SWEEP_FUNCTION = re.compile(r"(?:choice|range|interval|glob|tag|shuffle|sort)\(")


def parse_value(raw: str, text: str = "") -> Any:
    """Read the value part of an override with Hydra's types (see module doc)."""
    stripped = raw.strip()
    if not stripped:
        return ""
    parts, comment = _scan(stripped)
    if _SWEEP_FUNCTION.match(stripped):
        raise bad_override(
            text or raw,
            "bad value",
            "of Hydra's sweep functions only choice() and range() are supported; "
            "or list the values: a,b,c",
        )
    if comment:
        raise bad_override(text or raw, "bad value", "'#' would start a comment; quote the value")
    if len(parts) > 1:
        raise bad_override(
            text or raw,
            "bad value",
            "comma-separated values are a sweep; quote the value to set a string with commas",
        )
    try:
        value = yaml.load(stripped, Loader=_ValueLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0]
        raise bad_override(text or raw, "bad value", reason) from exc
    _check_value(text or raw, value)
    return _normalise(value)


class _ValueLoader(yaml.SafeLoader):
    """YAML with Hydra's scalar types: no yes/no bools, no dates, no octal/sexagesimal."""


_ValueLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:null", r"(?i)^(?:null|)$", ["n", "N", ""]),  # "" is `{a: }` in a flow
    ("tag:yaml.org,2002:bool", r"(?i)^(?:true|false)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^[-+]?(?:0|[1-9](?:_?[0-9])*)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^[-+]?(?:(?:[0-9](?:_?[0-9])*)?\.[0-9](?:_?[0-9])*(?:[eE][-+]?[0-9]+)?"
        r"|[0-9](?:_?[0-9])*\.(?:[eE][-+]?[0-9]+)?|[0-9](?:_?[0-9])*[eE][-+]?[0-9]+"
        r"|(?i:inf|nan))$",
        "-+0123456789.iInN",
    ),
):
    _ValueLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def _scan(value: str) -> tuple[list[str], bool]:
    """Split at commas outside brackets and quotes; also say if an unquoted '#' comments."""
    parts: list[str] = []
    depth, quote, prev, begin, comment = 0, "", " ", 0, False
    i = 0
    while i < len(value):
        ch = value[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"" and prev in " \t[{(,:":
            quote = ch  # a quote only opens a scalar at its start: "it's" is plain
        elif ch == "#" and prev in " \t":
            comment = True
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(value[begin:i].strip())
            begin = i + 1
        prev = ch
        i += 1
    parts.append(value[begin:].strip())
    return parts, comment


def _check_value(text: str, value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and ":" in key and item is None:
                raise bad_override(
                    text,
                    "bad value",
                    f"write '{{{key.replace(':', ': ', 1)}}}' with a space after ':'",
                )
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise bad_override(text, "bad value", f"mapping key {key!r} must be a string")
            _check_value(text, item)
    elif isinstance(value, list):
        for item in value:
            _check_value(text, item)
    elif value is not None and not isinstance(value, (bool, int, float, str)):
        raise bad_override(text, "bad value", f"{type(value).__name__} values are not supported")


def _normalise(value: Any) -> Any:
    """Mapping keys become strings, as every params format stores them."""
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def bad_override(text: str, what: str, why: str | None = None) -> ParamsError:
    """The error for a malformed ``-S`` text: names the text, what is wrong and why."""
    message = f"-S '{text}': {what}"
    return ParamsError(f"{message}: {why}" if why else message)


def expand_sweeps(texts: Sequence[str]) -> list[list[str]]:
    """Expand Hydra-style sweeps (``lr=0.1,0.2``) into the grid of ``-S`` lists.

    ``["lr=0.1,0.2", "e=1,2"]`` gives four lists. Quoted commas and commas
    inside ``[...]``/``{...}`` do not split.
    """
    grid: list[list[str]] = [[]]
    for text in texts:
        head, eq, raw = text.partition("=")
        choices = [f"{head}={part}" for part in _sweep_parts(text, raw.strip())] if eq else [text]
        grid = [[*row, choice] for row in grid for choice in choices]
    return grid


_CHOICE = re.compile(r"^choice\((.*)\)$", re.DOTALL)
_RANGE = re.compile(r"^range\(([^()]*)\)$")


def _sweep_parts(text: str, raw: str) -> list[str]:
    """The values of one override: ``a,b``, Hydra's ``choice(a,b)`` or ``range(start, stop, step)``.

    ``range`` counts as Hydra's does: integers when every bound is one, else
    decimal steps from the floats given (``range(0.1, 0.4, 0.1)``: 0.1, 0.2, 0.3).
    """
    choice = _CHOICE.match(raw)
    if choice:
        parts = _scan(choice.group(1).strip())[0]
        if parts == [""]:
            raise bad_override(text, "bad value", "choice() needs at least one value")
        return parts
    found = _RANGE.match(raw)
    if found is None:
        return _scan(raw)[0]
    try:
        bounds = [yaml.load(part, Loader=_ValueLoader) for part in found.group(1).split(",")]
    except yaml.YAMLError:
        bounds = []
    numbers = [b for b in bounds if isinstance(b, (int, float)) and not isinstance(b, bool)]
    if not 1 <= len(bounds) <= 3 or len(numbers) != len(bounds):
        raise bad_override(text, "bad value", "range() takes one to three numbers")
    start, stop, step = (0, *numbers, 1) if len(numbers) == 1 else (*numbers, 1)[:3]
    if step == 0:
        raise bad_override(text, "bad value", "range() needs a step other than 0")
    if all(isinstance(n, int) for n in (start, stop, step)):
        return [str(n) for n in range(int(start), int(stop), int(step))]
    return [repr(value) for value in _float_range(start, stop, step)]


def _float_range(start: float, stop: float, step: float) -> list[float]:
    """Hydra's float range: decimal sums of the floats' exact values."""
    at, end, by = Decimal(start), Decimal(stop), Decimal(step)
    values = []
    while (at < end) if by > 0 else (at > end):
        values.append(float(at))
        at += by
    return values
