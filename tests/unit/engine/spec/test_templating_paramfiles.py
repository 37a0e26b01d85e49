"""Parsing params/vars files from bytes, dotted keys, in-memory sources."""

from __future__ import annotations

import datetime

import pytest

from exq.engine.errors import DvcFileError, ParamsError
from exq.engine.spec.paramfiles import (
    CachingSource,
    flatten,
    get_dotted,
    load_params,
    parse_params,
    parse_yaml,
)
from tests.support import MemorySource

PY_PARAMS = b"""
import os

LR = 0.01
EPOCHS: int = 10
NAME = "model"
LAYERS = [64, 32]
SHAPE = (1, 2)
TAGS = {"b", "a"}
OPTS = {"dropout": 0.5, "act": "relu"}
NOT_LITERAL = os.path.join("a", "b")
A = B = 3
WITHOUT_VALUE: int
FLAG = True
NOTHING = None


class Train:
    seed = 42
    batch: int = 8

    class Inner:
        depth = 3

    def __init__(self):
        self.momentum = 0.9
        local = 5

    def other(self):
        self.ignored = 1
"""


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        ("params.yaml", b"a: 1\nb: {c: [1, 2]}\n", {"a": 1, "b": {"c": [1, 2]}}),
        ("p.yml", b"a: x\n", {"a": "x"}),
        ("p.YAML", b"a: x\n", {"a": "x"}),
        ("params.yaml", b"", {}),
        ("params.yaml", b"# only a comment\n", {}),
        ("p.json", b'{"a": {"b": true}}', {"a": {"b": True}}),
        ("p.json", b"", {}),
        ("p.json", b"null", {}),
        ("p.toml", b"a = 1\n[t]\nx = 'y'\n", {"a": 1, "t": {"x": "y"}}),
        ("p.toml", b"", {}),
        ("p.txt", b"a: 5\n", {"a": 5}),  # unknown suffixes are YAML, as in DVC
        ("noext", b"a: [1]\n", {"a": [1]}),
    ],
)
def test_parse_params_by_extension(path: str, text: bytes, expected: dict) -> None:
    assert parse_params(path, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"a: on", "on"),  # YAML 1.2: on/off/yes/no are strings
        (b"a: yes", "yes"),
        (b"a: 1e-5", 1e-05),  # YAML 1.2: a float without a dot
        (b"a: 010", 10),
        (b"a: 0o10", 8),
        (b"a: true", True),
        (b"a: null", None),
        (b"a: ~", None),
        (b"a: 2021-02-03", datetime.date(2021, 2, 3)),
        (b"a: '1'", "1"),
    ],
)
def test_yaml_is_read_as_yaml_1_2(text: bytes, expected: object) -> None:
    assert parse_params("params.yaml", text)["a"] == expected


def test_python_params_file_follows_dvc() -> None:
    parsed = parse_params("params.py", PY_PARAMS)
    assert parsed == {
        "LR": 0.01,
        "EPOCHS": 10,
        "NAME": "model",
        "LAYERS": [64, 32],
        "SHAPE": [1, 2],
        "TAGS": ["a", "b"],
        "OPTS": {"dropout": 0.5, "act": "relu"},
        "FLAG": True,
        "NOTHING": None,
        "Train": {"seed": 42, "batch": 8, "Inner": {"depth": 3}, "momentum": 0.9},
    }


@pytest.mark.parametrize(
    ("path", "text", "fragment"),
    [
        ("params.yaml", b"a: [1\nb: 2\n", "params.yaml: invalid YAML at line 2"),
        ("params.yaml", b"a: 1\na: 2\n", "duplicate key"),
        ("p.json", b'{"a": }', "p.json: invalid JSON at line 1"),
        ("p.toml", b"a = = 1", "p.toml: invalid TOML"),
        ("p.py", b"def (:\n", "p.py: invalid Python at line 1"),
        (
            "params.yaml",
            b"- 1\n- 2\n",
            "params.yaml: expected a mapping at the top level, got list",
        ),
        ("p.json", b'"text"', "p.json: expected a mapping at the top level, got str"),
        ("params.yaml", b"a: \xff\xfe", "params.yaml: not valid UTF-8"),
    ],
)
def test_parse_errors_name_the_file_on_one_line(path: str, text: bytes, fragment: str) -> None:
    with pytest.raises(ParamsError) as info:
        parse_params(path, text)
    message = str(info.value)
    assert fragment in message
    assert message.startswith(path)
    assert "\n" not in message


def test_parse_yaml_error_class_is_selectable() -> None:
    with pytest.raises(DvcFileError, match=r"^dvc.yaml: invalid YAML at line 3"):
        parse_yaml(b"stages:\n  a: [1\n  b: 2\n", "dvc.yaml", error_cls=DvcFileError)


def test_load_params_reads_through_source_and_reports_missing_file() -> None:
    source = MemorySource({"conf/p.json": '{"a": 1}'})
    assert load_params(source, "conf/p.json") == {"a": 1}
    assert load_params(source, "conf/./p.json") == {"a": 1}
    with pytest.raises(ParamsError, match=r"^conf/q.json: file not found$"):
        load_params(source, "conf/q.json")


def test_memory_source_returns_bytes_or_none() -> None:
    source = MemorySource({"a.txt": "é", "b.bin": b"\x00"})
    assert source.read_bytes("a.txt") == "é".encode()
    assert source.read_bytes("b.bin") == b"\x00"
    assert source.read_bytes("missing") is None


class _CountingSource:
    def __init__(self) -> None:
        self.reads: list[str] = []

    def read_bytes(self, path: str) -> bytes | None:
        self.reads.append(path)
        return b"x" if path == "here" else None


def test_caching_source_reads_each_path_once() -> None:
    inner = _CountingSource()
    source = CachingSource(inner)
    assert [source.read_bytes(p) for p in ["here", "here", "gone", "gone"]] == [
        b"x",
        b"x",
        None,
        None,
    ]
    assert inner.reads == ["here", "gone"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"a": 1}, {"a": 1}),
        ({"a": {"b": {"c": 1}, "d": [1, {"e": 2}]}}, {"a.b.c": 1, "a.d": [1, {"e": 2}]}),
        ({"a": {}, "b": None}, {"b": None}),  # empty mappings vanish, like DVC's flatten
        ({1: {"x": True}}, {"1.x": True}),
        ({}, {}),
    ],
)
def test_flatten(data: dict, expected: dict) -> None:
    assert flatten(data) == expected


def test_flatten_with_prefix() -> None:
    assert flatten({"b": {"c": 1}}, prefix="a") == {"a.b.c": 1}


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("a", {"b": [10, {"c": 3}]}),
        ("a.b", [10, {"c": 3}]),
        ("a.b.0", 10),
        ("a.b.1.c", 3),
        ("a.b.-1.c", 3),
        ("dotted.key", 7),
        ("x.dotted.key", 8),
        ("x.dotted.key.deep", 9),
    ],
)
def test_get_dotted_finds(key: str, expected: object) -> None:
    data = {
        "a": {"b": [10, {"c": 3}]},
        "dotted.key": 7,
        "x": {"dotted.key": 8, "dotted": {"key": {"deep": 9}}},
    }
    assert get_dotted(data, key) == expected


@pytest.mark.parametrize("key", ["nope", "a.nope", "a.b.5", "a.b.x", "a.b.0.c", "a.b.1.c.d"])
def test_get_dotted_missing(key: str) -> None:
    data = {"a": {"b": [10, {"c": 3}]}}
    with pytest.raises(KeyError):
        get_dotted(data, key)
    assert get_dotted(data, key, default="dflt") == "dflt"
    assert get_dotted(data, key, None) is None
