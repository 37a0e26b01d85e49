"""render_json writes exactly what json.dumps(indent=2) writes, whatever the data, but
NaN and the infinities, which are no JSON: null."""

from __future__ import annotations

import enum
import json
import math
from typing import Any

import pytest

from exq.cli.render import finite, render_json


class Level(enum.IntEnum):
    LOW = 1


ROW = {
    "name": "exp-1",
    "rev": "a" * 40,
    "kind": "experiment",
    "state": None,
    "created": "2024-01-02T03:04:05+00:00",
    "params": {"params.yaml": {"train.lr": 0.001, "epochs": 10, "flag": True, "tags": [1, "x"]}},
    "metrics": {},
}


@pytest.mark.parametrize(
    "data",
    [
        [],
        {},
        [ROW, ROW],
        {"metrics": {"a.json": {"acc": 0.5}}, "params": {}},
        "plain",
        None,
        12,
        -0.0,
        1e-05,
        1.5e300,
        2**70,
        [math.nan, math.inf, -math.inf, {"loss": math.nan}],
        {'quote"and\\slash': "tab\tnew\nline\x1b", "é": "日本", "": ""},
        [[], {}, [[]], {"a": {}}],
        (1, (2, 3)),
        {1: "int key", None: "null key", 2: math.inf},  # keys json turns into strings
        {"level": Level.LOW},  # a type of its own
        [True, False, None, 0, 1.0],
    ],
)
def test_render_json_is_json_dumps_indent_2(data: Any) -> None:
    assert render_json(data) == json.dumps(finite(data), indent=2)
    assert "NaN" not in render_json(data) and "Infinity" not in render_json(data)
