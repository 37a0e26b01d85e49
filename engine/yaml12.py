"""Fast YAML 1.2 reading: libyaml's parser with the YAML 1.2 core schema.

DVC reads its files with ruamel in YAML 1.2 mode, where ``1e-05`` is a float
and ``yes``/``on`` are strings; PyYAML's default YAML 1.1 rules disagree on
both, and ruamel without its C extension is slow (a 50-stage dvc.lock takes
a quarter of a second). So: PyYAML's C parser, the 1.2 core-schema resolvers,
and duplicate keys refused as ruamel refuses them.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_INT = re.compile(r"^[-+]?(?:[0-9_]+|0b[01_]+|0o[0-7_]+|0x[0-9a-fA-F_]+)$")
_TIMESTAMP = re.compile(
    r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
    r"|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?"
    r"(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?"
    r"(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$"
)
_FLOAT = re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)"
    r"|[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


class Yaml12Loader(_Base):  # type: ignore[misc, valid-type]
    """A safe loader with YAML 1.2 core-schema scalars and no duplicate keys."""

    yaml_implicit_resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # unhashable keys are refused by the base class
            if duplicate:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key '{key}'",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def _int(loader: Yaml12Loader, node: Any) -> int:
    text = loader.construct_scalar(node).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("-+")
    for prefix, base in (("0b", 2), ("0o", 8), ("0x", 16)):
        if digits.startswith(prefix):
            return sign * int(digits[2:], base)
    return sign * int(digits, 10)


def _float(loader: Yaml12Loader, node: Any) -> float:
    text = loader.construct_scalar(node).replace("_", "").lower()
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    if text == ".nan":
        return float("nan")
    return float(text)


def _bool(loader: Yaml12Loader, node: Any) -> bool:
    return loader.construct_scalar(node).lower() == "true"


for _tag, _regex, _first in (
    ("tag:yaml.org,2002:bool", _BOOL, "tTfF"),
    ("tag:yaml.org,2002:null", _NULL, ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", _INT, "-+0123456789"),
    ("tag:yaml.org,2002:float", _FLOAT, "-+0123456789."),
    # ruamel keeps YAML 1.1's timestamps in 1.2 mode, and so does DVC.
    ("tag:yaml.org,2002:timestamp", _TIMESTAMP, "0123456789"),
    ("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), "<"),
    # A bare "=" is YAML's value key, which safe loaders refuse (ruamel too).
    ("tag:yaml.org,2002:value", re.compile(r"^(?:=)$"), "="),
):
    Yaml12Loader.add_implicit_resolver(_tag, _regex, list(_first))
Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _int)
Yaml12Loader.add_constructor("tag:yaml.org,2002:float", _float)
Yaml12Loader.add_constructor("tag:yaml.org,2002:bool", _bool)


def load(text: str) -> Any:
    """Parse one YAML document; raises ``yaml.YAMLError`` (with marks) on bad input."""
    return yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 - a safe loader subclass


YAMLError = yaml.YAMLError
MarkedYAMLError = yaml.MarkedYAMLError
