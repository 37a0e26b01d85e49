"""exq.live's params.yaml writer and reader (a YAML subset without a YAML library)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from exq.live.params import dump_params, load_params, normalize_param

CASES: list[dict[str, Any]] = [
    {},
    {"lr": 0.001, "epochs": 5, "name": "adam", "on": True, "none": None},
    {"tiny": 1e-05, "big": 1e20, "neg": -2.5e-300, "whole": 3.0},
    {"opt": {"name": "adam", "betas": [0.9, 0.999], "inner": {"deep": {"x": 1}}}, "after": 2},
    {"list of maps": [{"a": 1}, {"b": [1, 2]}], "empty": {}, "nothing": []},
    {"yes": "no", "null": "~", "a: b": "c # d", "ünï": "çödé", "quote": 'say "hi"\n'},
]


@pytest.mark.parametrize("params", CASES)
def test_round_trip_and_pyyaml_agree(params: dict[str, Any]) -> None:
    text = dump_params(params)
    assert load_params(text) == params
    assert (yaml.safe_load(text) or {}) == params


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-05, "x: 1.0e-05\n"),
        (1e20, "x: 1.0e+20\n"),
        (3.0, "x: 3.0\n"),
        (0.1, "x: 0.1\n"),
        (7, "x: 7\n"),
    ],
)
def test_floats_keep_a_dot_and_a_signed_exponent(value: float, text: str) -> None:
    assert dump_params({"x": value}) == text


def test_block_style_for_mappings() -> None:
    assert dump_params({"model": {"layers": [8, 4], "act": "relu"}}) == (
        'model:\n  layers: [8, 4]\n  act: "relu"\n'
    )


def test_normalize_converts_and_rejects() -> None:
    class Scalar:
        def item(self) -> int:
            return 3

    assert normalize_param({"t": (1, 2), "s": Scalar()}) == {"t": [1, 2], "s": 3}
    with pytest.raises(ValueError, match="params.x"):
        normalize_param({"x": float("inf")}, "params")
    with pytest.raises(TypeError, match="key 1"):
        normalize_param({1: 2})
    with pytest.raises(TypeError, match="set"):
        normalize_param({1, 2})


@pytest.mark.parametrize("text", ["a:\nb: 1\n", "a: 1\n   b: 2\n", "just text\n"])
def test_load_rejects_other_yaml(text: str) -> None:
    with pytest.raises(ValueError):
        load_params(text)
