"""The value half of a ``-S`` override: YAML flow text read with Hydra's types.

Hydra (which DVC uses for ``-S``) reads ``key=`` as the empty string, ``1e-3``
as a float, and keeps ``yes``, ``on``, ``0755``, ``1:30`` and dates as strings,
where YAML 1.1 would turn them into bools, octal, sexagesimal ints and dates.
Comma-separated values and Hydra's sweep functions (``choice(a,b)``,
``range(start, stop, step)``, ``glob(...)``) are sweeps: :func:`expand_sweeps`
turns them into the grid of single-valued overrides, and :func:`parse_value`
refuses them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml

from exq.engine.errors import ParamsError

SWEEP_FUNCTIONS = ("choice", "range", "interval", "glob", "tag", "shuffle", "sort")
_SWEEP_FUNCTION = re.compile(rf"(?:{'|'.join(SWEEP_FUNCTIONS)})\s*\(")
# Hydra's grammar reads an unquoted NAME( as a call; a name it does not know is an error
_FUNCTION_CALL = re.compile(r"([A-Za-z_]\w*)\s*\(")
_CASTS = ("int", "float", "str", "bool")
# The most runs one enqueue makes: a bigger grid (range(0, 1e9)) is refused before
# it is listed, not held in memory for ever
MAX_SWEEP_RUNS = 10_000


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
            "a sweep function: queue it with 'exq exp run --queue'",
        )
    check_function_name(text or raw, stripped)
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


def check_function_name(text: str, value: str) -> None:
    """Refuse an unquoted call of a function that is none of Hydra's sweep functions,
    as Hydra does, rather than set the string (a typo: ``choise(1,2)``). Pure."""
    call = _FUNCTION_CALL.match(value)
    if call is None or call.group(1) in SWEEP_FUNCTIONS:
        return
    name = call.group(1)
    if name in _CASTS:
        raise bad_override(
            text, f"Hydra's cast {name}() is not supported", "write the value itself"
        )
    import difflib  # only for an unknown function

    close = difflib.get_close_matches(name.lower(), SWEEP_FUNCTIONS, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else f"use {', '.join(SWEEP_FUNCTIONS)}"
    raise bad_override(
        text, f"unknown function '{name}'", f"{hint} (quote the value to set a string)"
    )


def comma_parts(text: str, raw: str) -> list[str]:
    """The items of a comma list (one item without commas); an empty item, which Hydra
    refuses, is an error rather than an empty string. Pure."""
    parts = _scan(raw.strip())[0]
    for part in parts:
        if not part and len(parts) > 1:
            raise bad_override(text, "bad value", "an empty value in a comma list")
        check_function_name(text, part)
    return parts


def calls_function(text: str) -> bool:
    """Whether the value of ``-S`` ``text`` calls one of Hydra's sweep functions. Pure."""
    _, eq, raw = text.partition("=")
    return bool(eq) and bool(_SWEEP_FUNCTION.match(raw.strip()))


def expand_sweeps(texts: Sequence[str], groups: Any = None) -> list[list[str]]:
    """Expand Hydra sweeps (``lr=0.1,0.2``, ``choice()``, ``range()``, ``glob()``) into
    the grid of ``-S`` lists, as Hydra's basic sweeper orders it.

    ``["lr=0.1,0.2", "e=1,2"]`` gives four lists. Quoted commas and commas
    inside ``[...]``/``{...}`` do not split. Sweep functions are read by
    hydra-core (:mod:`exq.engine.params.hydra_sweeps`), imported only for them;
    ``groups`` gives the options of a params group for ``glob()``.
    """
    grid: list[list[str]] = [[]]
    for text in texts:
        head, eq, raw = text.partition("=")
        if _SWEEP_FUNCTION.match(raw.strip()):
            from exq.engine.params.hydra_sweeps import expand_function

            choices = expand_function(text, groups)
        else:
            choices = [f"{head}={part}" for part in comma_parts(text, raw)] if eq else [text]
        if len(grid) * len(choices) > MAX_SWEEP_RUNS:
            raise bad_override(
                text,
                f"a grid of {len(grid) * len(choices)} runs",
                f"more than {MAX_SWEEP_RUNS} at once; narrow it, or draw --samples N from it",
            )
        grid = [[*row, choice] for row in grid for choice in choices]
    return grid
