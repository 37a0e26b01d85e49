"""``params_legend``: revisions named by the params that differ between them."""

from __future__ import annotations

from typing import Any

import pytest

from exq.engine.plots.legend import params_legend

P = "params.yaml"


@pytest.mark.parametrize(
    ("params", "labels"),
    [
        # only what differs; the same everywhere is left out
        (
            {"a": {P: {"lr": 0.1, "seed": 1}}, "b": {P: {"lr": 0.2, "seed": 1}}},
            {"a": "a (lr=0.1)", "b": "b (lr=0.2)"},
        ),
        # nothing differs: the revision alone
        ({"a": {P: {"lr": 0.1}}, "b": {P: {"lr": 0.1}}}, {"a": "a", "b": "b"}),
        # missing in one revision counts as differing; it shows where it is
        ({"a": {P: {"lr": 0.1, "new": 1}}, "b": {P: {"lr": 0.1}}}, {"a": "a (new=1)", "b": "b"}),
        # a key two files hold is named with its file
        (
            {
                "a": {P: {"seed": 1}, "m.toml": {"seed": 5}},
                "b": {P: {"seed": 2}, "m.toml": {"seed": 6}},
            },
            {
                "a": "a (params.yaml:seed=1, m.toml:seed=5)",
                "b": "b (params.yaml:seed=2, m.toml:seed=6)",
            },
        ),
        # more than four: the rest counted
        (
            {"a": {P: {k: 1 for k in "pqrstu"}}, "b": {P: {k: 2 for k in "pqrstu"}}},
            {"a": "a (p=1, q=1, r=1, s=1, +2)", "b": "b (p=2, q=2, r=2, s=2, +2)"},
        ),
        (
            {"w": {P: {"lr": 1 / 3, "l": [1, 2]}}, "x": {}},
            {"w": "w (lr=0.333333, l=[1,2])", "x": "x"},
        ),
    ],
)
def test_params_legend(params: dict[str, Any], labels: dict[str, str]) -> None:
    assert params_legend(params) == labels
