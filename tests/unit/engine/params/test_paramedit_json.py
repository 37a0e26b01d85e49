"""JSON params edits: the file's indentation, separators and key order are kept."""

from __future__ import annotations

import json

import pytest

from exq.engine.errors import ParamsError
from exq.engine.params.edit import edit_params_text, parse_set_params

PARAMS = """\
{
  "seed": 42,
  "train": {
    "lr": 0.001,
    "layers": [64, 32],
    "optimizer": {"name": "adam", "betas": [0.9, 0.999]},
    "schedule": {
      "warmup": 3,
      "steps": [
        100,
        200
      ]
    },
    "name": "base\\u00e9"
  },
  "extra": {}
}
"""


def edit(text: str, *sets: str) -> str:
    new, _ = edit_params_text(text, "params.json", parse_set_params(sets, "params.json"))
    return new


@pytest.mark.parametrize(
    ("override", "old", "new"),
    [
        ("seed=7", '"seed": 42', '"seed": 7'),
        ("train.lr=1e-5", '"lr": 0.001', '"lr": 1e-05'),
        ("train.layers.1=16", "[64, 32]", "[64, 16]"),
        ("train.optimizer.name=sgd", '"name": "adam"', '"name": "sgd"'),
        ("train.optimizer.betas=[0.5]", "[0.9, 0.999]", "[0.5]"),
        ("train.schedule.steps.1=300", "        200\n", "        300\n"),
        ("train.name=ünï", '"base\\u00e9"', '"ünï"'),
        ("seed=null", '"seed": 42', '"seed": null'),
        ("seed=yes", '"seed": 42', '"seed": "yes"'),
        ("seed={a: 1}", '"seed": 42', '"seed": {"a": 1}'),
    ],
)
def test_scalar_edit_changes_only_that_value(override: str, old: str, new: str) -> None:
    assert PARAMS.count(old) == 1
    assert edit(PARAMS, override) == PARAMS.replace(old, new)


def test_multiline_value_is_replaced_in_the_file_indent() -> None:
    old = '{\n      "warmup": 3,\n      "steps": [\n        100,\n        200\n      ]\n    }'
    new = '{\n      "kind": "cosine",\n      "steps": [\n        1\n      ]\n    }'
    assert edit(PARAMS, "train.schedule={kind: cosine, steps: [1]}") == PARAMS.replace(old, new)


def test_add_to_multiline_object_adds_a_line() -> None:
    out = edit(PARAMS, "+train.dropout=0.5", "+top=[1, 2]")
    expected = PARAMS.replace(
        '"base\\u00e9"\n  },', '"base\\u00e9",\n    "dropout": 0.5\n  },'
    ).replace('"extra": {}\n', '"extra": {},\n  "top": [\n    1,\n    2\n  ]\n')
    assert out == expected


def test_add_to_one_line_object_and_empty_object() -> None:
    out = edit(PARAMS, "+train.optimizer.eps=1e-8", "+extra.k=v")
    expected = PARAMS.replace(
        '"betas": [0.9, 0.999]}', '"betas": [0.9, 0.999], "eps": 1e-08}'
    ).replace('"extra": {}', '"extra": {\n    "k": "v"\n  }')
    assert out == expected


def test_nested_add_creates_objects() -> None:
    assert edit('{"a": {}}', "+a.b.c=1") == '{"a": {"b": {"c": 1}}}'


def test_delete_keeps_commas_right() -> None:
    assert edit(PARAMS, "~seed") == PARAMS.replace('  "seed": 42,\n', "")
    assert edit(PARAMS, "~extra") == PARAMS.replace('  },\n  "extra": {}\n', "  }\n")
    assert edit(PARAMS, "~train.layers.0") == PARAMS.replace("[64, 32]", "[32]")
    assert edit(PARAMS, "~train.optimizer.betas") == PARAMS.replace(', "betas": [0.9, 0.999]', "")
    assert edit(PARAMS, "~train.schedule.steps.0", "~train.schedule.steps.0") == PARAMS.replace(
        "[\n        100,\n        200\n      ]", "[]"
    )


def test_compact_file_stays_compact() -> None:
    assert edit('{"a":1,"b":{"c":2}}', "+d=4", "b.c=[1,2]", "~a") == '{"b":{"c":[1,2]},"d":4}'


def test_tabs_and_crlf_are_kept() -> None:
    text = '{\r\n\t"a": 1\r\n}\r\n'
    assert edit(text, "+b={x: 1}") == '{\r\n\t"a": 1,\r\n\t"b": {\r\n\t\t"x": 1\r\n\t}\r\n}\r\n'


def test_result_is_valid_json() -> None:
    out = edit(PARAMS, "+a.b=1", "~train.lr", "train.layers=[]", "++seed=[1, {x: null}]")
    assert json.loads(out)["seed"] == [1, {"x": None}]


def test_invalid_json_is_a_params_error() -> None:
    with pytest.raises(ParamsError, match=r"params.json: invalid JSON: .*line 1 column"):
        edit('{"a": 1,}', "a=2")
