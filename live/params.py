"""The params file of exq.live (``<dir>/params.yaml``), without a YAML library.

Mappings are written in block style, one key per line; every other value
(scalars and lists) is written inline as JSON, which is valid YAML 1.1 and 1.2
as long as floats carry a dot and a signed exponent (``1.0e-05``: PyYAML reads
``1e-05`` as a string).  ``load_params`` reads back exactly this subset, which
is all resume needs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
# Plain words YAML 1.1 reads as booleans or null: quote them as keys.
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def normalize_param(value: Any, where: str = "param") -> Any:
    """A JSON-like copy of ``value``; TypeError/ValueError when not a param."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value!r} is not a finite number")
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: key {key!r} is not a string")
            out[key] = normalize_param(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [normalize_param(item, f"{where}[{i}]") for i, item in enumerate(value)]
    item = getattr(value, "item", None)  # numpy scalars, 0-d tensors
    if callable(item):
        return normalize_param(item(), where)
    raise TypeError(f"{where}: {type(value).__name__} is not a supported param type")


def _scalar(value: Any) -> str:
    if isinstance(value, float) and not isinstance(value, bool):
        text = repr(value)
        if "e" in text:
            mantissa, exponent = text.split("e")
            if "." not in mantissa:
                mantissa += ".0"
            if exponent[0] not in "+-":
                exponent = "+" + exponent
            text = f"{mantissa}e{exponent}"
        elif "." not in text:
            text += ".0"
        return text
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(item) for item in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(k)}: {_scalar(v)}" for k, v in value.items())
        return "{" + inner + "}"
    return json.dumps(value, ensure_ascii=False)


def _key(key: str) -> str:
    if _PLAIN_KEY.match(key) and key.lower() not in _RESERVED:
        return key
    return json.dumps(key, ensure_ascii=False)


def dump_params(params: Mapping[str, Any], indent: int = 0) -> str:
    """The YAML text of a normalized params mapping."""
    if not params and indent == 0:
        return "{}\n"
    lines: list[str] = []
    pad = " " * indent
    for key, value in params.items():
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{_key(key)}:\n")
            lines.append(dump_params(value, indent + 2))
        else:
            lines.append(f"{pad}{_key(key)}: {_scalar(value)}\n")
    return "".join(lines)


def load_params(text: str) -> dict[str, Any]:
    """Read back what ``dump_params`` wrote; ValueError on anything else."""
    root: dict[str, Any] = {}
    # (indent of the mapping's keys, mapping), innermost last
    stack: list[tuple[int, dict[str, Any]]] = [(0, root)]
    pending: tuple[int, dict[str, Any], str] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.strip() == "{}":
            continue
        indent = len(line) - len(line.lstrip(" "))
        key, rest = _split(line.strip(), number)
        if pending is not None:
            parent_indent, parent, parent_key = pending
            if indent <= parent_indent:
                raise ValueError(f"line {number}: empty mapping for {parent_key!r}")
            child: dict[str, Any] = {}
            parent[parent_key] = child
            stack.append((indent, child))
            pending = None
        while len(stack) > 1 and stack[-1][0] > indent:
            stack.pop()
        if stack[-1][0] != indent:
            raise ValueError(f"line {number}: unexpected indentation")
        mapping = stack[-1][1]
        if rest == "":
            pending = (indent, mapping, key)
        else:
            mapping[key] = json.loads(rest)
    if pending is not None:
        raise ValueError(f"empty mapping for {pending[2]!r}")
    return root


def _split(line: str, number: int) -> tuple[str, str]:
    if line.startswith('"'):
        decoder = json.JSONDecoder()
        key, end = decoder.raw_decode(line)
        rest = line[end:]
    else:
        key, sep, rest = line.partition(":")
        if not sep:
            raise ValueError(f"line {number}: no key")
        rest = ":" + rest
    if not rest.startswith(":"):
        raise ValueError(f"line {number}: no ':' after the key")
    return str(key), rest[1:].strip()
