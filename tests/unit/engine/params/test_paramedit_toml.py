"""TOML params edits through tomlkit: comments, quoting and layout kept."""

from __future__ import annotations

import tomllib

import pytest

from exq.engine.errors import ParamsError
from exq.engine.params.edit import edit_params_text, parse_set_params

PARAMS = """\
# Model parameters
title = "baseline"   # shown in reports

[train]
lr = 0.001  # learning rate
layers = [64, 32]
optimizer = { name = "adam", eps = 1e-8 }
kind = 'literal'

# one table per run
[[runs]]
name = "a"

[[runs]]
name = "b"

[eval.thresholds]
low = 0.1
"""


def edit(text: str, *sets: str) -> str:
    new, _ = edit_params_text(text, "params.toml", parse_set_params(sets, "params.toml"))
    return new


@pytest.mark.parametrize(
    ("override", "old", "new"),
    [
        ("title=new", 'title = "baseline"   #', 'title = "new"   #'),
        ("train.lr=1e-4", "lr = 0.001  # learning rate", "lr = 0.0001  # learning rate"),
        ("train.layers.1=16", "layers = [64, 32]", "layers = [64, 16]"),
        ("train.optimizer.name=sgd", 'name = "adam"', 'name = "sgd"'),
        ("train.kind=other", "kind = 'literal'", "kind = 'other'"),
        ("runs.1.name=c", 'name = "b"', 'name = "c"'),
        ("eval.thresholds.low=0.2", "low = 0.1", "low = 0.2"),
        ("train.layers=[1, 2, 3]", "layers = [64, 32]", "layers = [1, 2, 3]"),
    ],
)
def test_edit_changes_only_that_value(override: str, old: str, new: str) -> None:
    assert PARAMS.count(old) == 1
    assert edit(PARAMS, override) == PARAMS.replace(old, new)


def test_added_keys_go_after_the_tables_last_value_not_after_its_comments() -> None:
    out = edit(PARAMS, "+train.dropout=0.5", "+train.schedule.warmup=3", "+version=2")
    expected = PARAMS.replace(
        "kind = 'literal'\n", "kind = 'literal'\ndropout = 0.5\nschedule = {warmup = 3}\n"
    ).replace("   # shown in reports\n", "   # shown in reports\nversion = 2\n")
    assert out == expected


def test_delete() -> None:
    assert edit(PARAMS, "~train.layers") == PARAMS.replace("layers = [64, 32]\n", "")
    assert edit(PARAMS, "~runs.0") == PARAMS.replace('[[runs]]\nname = "a"\n\n', "")


def test_delete_from_inline_table_changes_only_its_line() -> None:
    out = edit(PARAMS, "~train.optimizer.eps")
    changed = [(a, b) for a, b in zip(PARAMS.splitlines(), out.splitlines(), strict=True) if a != b]
    assert len(changed) == 1  # tomlkit may leave a space before '}': only this line differs
    assert tomllib.loads(changed[0][1])["optimizer"] == {"name": "adam"}


def test_null_is_refused() -> None:
    with pytest.raises(ParamsError, match="TOML has no null"):
        edit(PARAMS, "train.lr=null")
    with pytest.raises(ParamsError, match="TOML has no null"):
        edit(PARAMS, "+train.x=[1, null]")


def test_result_reads_back() -> None:
    out = edit(PARAMS, "+eval.thresholds.high=0.9", "~title", "runs.0={name: z, n: 1}")
    data = tomllib.loads(out)
    assert data["eval"]["thresholds"] == {"low": 0.1, "high": 0.9}
    assert data["runs"][0] == {"name": "z", "n": 1}
    assert "title" not in data


def test_invalid_toml_is_a_params_error() -> None:
    with pytest.raises(ParamsError, match=r"params\.toml: invalid TOML"):
        edit("a = \n", "a=1")
