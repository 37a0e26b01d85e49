"""The fast loader reads scalars as ruamel's YAML 1.2 safe loader does (as DVC reads them)."""

from __future__ import annotations

import math

import pytest
from ruamel.yaml import YAML

from exq.engine import yaml12

SCALARS = [
    "1e-05",
    "1E5",
    "1.5e+3",
    "0.1",
    "-0.5",
    ".5",
    "1.",
    "+1",
    "-7",
    "10",
    "010",
    "0o17",
    "0x1F",
    "1_000",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "true",
    "False",
    "TRUE",
    "null",
    "~",
    "Null",
    "",
    ".inf",
    "-.inf",
    "2021-02-17",
    "12:30",
    "3.14abc",
    "0b101",
    "'1'",
    '"true"',
    "1e5x",
    "2021-02-17 10:00:00",
    "0b2",
    "-.5",
    ".5e3",
    "+.5e-3",
    "-0x1F",
    "+0b11",
    "-0o17",
    "+12",
    "nan",
    ".NaN",
    "0.0",
    "-0",
    "[1, 2]",
    "{a: 1}",
]


@pytest.mark.parametrize("text", SCALARS)
def test_scalar_matches_ruamel(text: str) -> None:
    doc = f"v: {text}\n"
    expected = YAML(typ="safe", pure=True).load(doc)["v"]
    got = yaml12.load(doc)["v"]
    if isinstance(expected, float) and math.isnan(expected):
        assert isinstance(got, float) and math.isnan(got)
        return
    assert got == expected
    assert type(got) is type(expected)


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(yaml12.YAMLError, match="duplicate key 'a'"):
        yaml12.load("a: 1\nb: 2\na: 3\n")


def test_nested_documents() -> None:
    text = "stages:\n  train:\n    cmd: python t.py\n    deps: [a, b]\n    frozen: no\n"
    assert yaml12.load(text) == {
        "stages": {"train": {"cmd": "python t.py", "deps": ["a", "b"], "frozen": "no"}}
    }


def test_merge_keys_merge() -> None:
    text = "base: &b {lr: 0.1, seed: 1}\ntrain:\n  <<: *b\n  seed: 2\n"
    assert yaml12.load(text)["train"] == {"lr": 0.1, "seed": 2}


def test_bare_equals_is_refused_as_ruamel_does() -> None:
    with pytest.raises(yaml12.YAMLError):
        yaml12.load("v: =\n")
