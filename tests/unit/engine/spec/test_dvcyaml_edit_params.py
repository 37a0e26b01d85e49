"""``-p`` values to the ``params:`` list that ``dvc stage add`` writes."""

from __future__ import annotations

from typing import Any

import pytest

from exq.engine.spec.dvcyaml_edit import params_entry, parse_params, stage_data


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["lr"], ["lr"]),
        (["lr,epochs"], ["epochs", "lr"]),
        (["params.yaml:b", "a"], ["a", "b"]),
        (["f.yaml:x,y"], [{"f.yaml": ["x", "y"]}]),
        (["f.yaml:"], [{"f.yaml": None}]),
        (["z.json:k", "lr", "a.toml:"], ["lr", {"a.toml": None}, {"z.json": ["k"]}]),
        (["params.yaml:"], [{"params.yaml": None}]),
        (["lr", "lr,lr"], ["lr"]),
        (["sub/p.yaml:a.b,c"], [{"sub/p.yaml": ["a.b", "c"]}]),
    ],
)
def test_params_entry(values: list[str], expected: list[Any]) -> None:
    assert params_entry(parse_params(values)) == expected


def test_stage_data_key_order_and_flags() -> None:
    data = stage_data(
        cmd="c",
        plots=["p"],
        metrics=["m"],
        outs=["o"],
        params=["k"],
        deps=["d"],
        wdir="w",
        desc="x",
        always_changed=True,
        outs_persist_no_cache=["q"],
    )
    assert list(data) == [
        "desc",
        "cmd",
        "wdir",
        "deps",
        "params",
        "outs",
        "metrics",
        "plots",
        "always_changed",
    ]
    assert data["outs"] == ["o", {"q": {"cache": False, "persist": True}}]
    assert stage_data(cmd=["a", "b"], wdir=".") == {"cmd": ["a", "b"]}
