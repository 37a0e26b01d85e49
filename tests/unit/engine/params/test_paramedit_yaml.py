"""YAML params edits: only the edited value's text changes, byte for byte."""

from __future__ import annotations

import io
import math
from typing import Any

import pytest
import yaml
from ruamel.yaml import YAML

from exq.engine.errors import ParamsError
from exq.engine.params.edit import edit_params_text, parse_set_params
from exq.engine.params.yaml_edit import render_scalar

PARAMS = """\
# Training parameters for the baseline model.
# Edit with care: stages depend on these.

seed: 42

prepare:
  split: 0.20      # fraction held out
  source: "data/raw.csv"
  labels: ['cat', 'dog']

train:
    lr: 0.001   # learning rate
    epochs: 10

    optimizer:
        name: adam
        betas: [0.9, 0.999]
    layers:
    - 64
    - 32   # bottleneck
    tags:
      - baseline
      - 'v2'
    note: >
      folded text
      on two lines

evaluate:
  metric: f1
  thresholds: {low: 0.1, high: 0.9}
  empty:
"""


def edit(text: str, *sets: str, name: str = "params.yaml") -> str:
    new, _ = edit_params_text(text, name, parse_set_params(sets, name))
    return new


def replace_line(text: str, old: str, new: str) -> str:
    assert text.count(old + "\n") == 1, old
    return text.replace(old + "\n", new + "\n")


@pytest.mark.parametrize(
    ("override", "old_line", "new_line"),
    [
        ("seed=7", "seed: 42", "seed: 7"),
        (
            "prepare.split=0.3",
            "  split: 0.20      # fraction held out",
            "  split: 0.3      # fraction held out",
        ),
        ("prepare.source=data/new.csv", '  source: "data/raw.csv"', '  source: "data/new.csv"'),
        ("prepare.labels.1=bird", "  labels: ['cat', 'dog']", "  labels: ['cat', 'bird']"),
        ("train.lr=1e-4", "    lr: 0.001   # learning rate", "    lr: 0.0001   # learning rate"),
        ("train.lr=1e-5", "    lr: 0.001   # learning rate", "    lr: 1.0e-05   # learning rate"),
        ("train.epochs=yes", "    epochs: 10", "    epochs: 'yes'"),
        ("train.epochs=null", "    epochs: 10", "    epochs: null"),
        ("train.epochs='20'", "    epochs: 10", "    epochs: '20'"),
        ("train.optimizer.name=sgd", "        name: adam", "        name: sgd"),
        (
            "train.optimizer.betas.1=0.99",
            "        betas: [0.9, 0.999]",
            "        betas: [0.9, 0.99]",
        ),
        (
            "train.optimizer.betas=[0.5, 0.5]",
            "        betas: [0.9, 0.999]",
            "        betas: [0.5, 0.5]",
        ),
        ("train.layers.1=16", "    - 32   # bottleneck", "    - 16   # bottleneck"),
        ("train.tags.1=v3", "      - 'v2'", "      - 'v3'"),
        ("train.tags.0=new tag", "      - baseline", "      - new tag"),
        ("evaluate.metric=2020-01-01", "  metric: f1", "  metric: '2020-01-01'"),
        (
            "evaluate.thresholds.high=0.8",
            "  thresholds: {low: 0.1, high: 0.9}",
            "  thresholds: {low: 0.1, high: 0.8}",
        ),
        ("evaluate.empty=3", "  empty:", "  empty: 3"),
        ("evaluate.empty={a: 1}", "  empty:", "  empty: {a: 1}"),
        ("++seed=8", "seed: 42", "seed: 8"),
    ],
)
def test_scalar_edit_changes_one_line(override: str, old_line: str, new_line: str) -> None:
    assert edit(PARAMS, override) == replace_line(PARAMS, old_line, new_line)


def test_block_scalar_is_replaced_whole() -> None:
    expected = PARAMS.replace(
        "    note: >\n      folded text\n      on two lines\n", "    note: short\n"
    )
    assert edit(PARAMS, "train.note=short") == expected


def test_block_list_replaced_by_block_list_keeps_its_indentation() -> None:
    expected = PARAMS.replace("    - 64\n    - 32   # bottleneck\n", "    - 1\n    - 2\n    - 3\n")
    assert edit(PARAMS, "train.layers=[1, 2, 3]") == expected


def test_block_mapping_replaced_by_scalar_keeps_key_line() -> None:
    text = "a:   # the a\n  b: 1\n  c: 2\nd: 3\n"
    assert edit(text, "a=5") == "a: 5   # the a\nd: 3\n"


def test_block_mapping_replaced_by_mapping_uses_the_file_indent() -> None:
    expected = PARAMS.replace(
        "        name: adam\n        betas: [0.9, 0.999]\n",
        "        name: sgd\n        momentum:\n        - 0.9\n",  # like 'layers:' beside it
    )
    assert edit(PARAMS, "train.optimizer={name: sgd, momentum: [0.9]}") == expected


def test_add_nested_key_goes_after_last_line_of_its_mapping() -> None:
    expected = PARAMS.replace(
        "      on two lines\n",
        "      on two lines\n    dropout: 0.5\n    schedule:\n        warmup: 3\n",
    )
    assert edit(PARAMS, "+train.dropout=0.5", "+train.schedule.warmup=3") == expected


def test_add_list_uses_file_sequence_style() -> None:
    text = "a:\n  b:\n  - 1\n"
    assert edit(text, "+a.c=[x, {k: v}]") == "a:\n  b:\n  - 1\n  c:\n  - x\n  - k: v\n"
    text = "a:\n  b:\n    - 1\n"
    assert edit(text, "+a.c=[x]") == "a:\n  b:\n    - 1\n  c:\n    - x\n"


def test_add_top_level_key_at_end() -> None:
    assert edit(PARAMS, "+version=2") == PARAMS + "version: 2\n"


def test_add_into_flow_mapping() -> None:
    old = "  thresholds: {low: 0.1, high: 0.9}\n"
    assert edit(PARAMS, "+evaluate.thresholds.mid=0.5") == PARAMS.replace(
        old, "  thresholds: {low: 0.1, high: 0.9, mid: 0.5}\n"
    )


def test_delete_removes_only_that_key() -> None:
    assert edit(PARAMS, "~train.epochs") == PARAMS.replace("    epochs: 10\n", "")
    assert edit(PARAMS, "~train.lr=0.001") == PARAMS.replace(
        "    lr: 0.001   # learning rate\n", ""
    )
    assert edit(PARAMS, "~train.optimizer") == PARAMS.replace(
        "    optimizer:\n        name: adam\n        betas: [0.9, 0.999]\n", ""
    )
    assert edit(PARAMS, "~train.layers.0") == PARAMS.replace("    - 64\n", "")
    assert edit(PARAMS, "~prepare.labels.0") == PARAMS.replace("['cat', 'dog']", "['dog']")
    assert edit(PARAMS, "~evaluate.thresholds.low") == PARAMS.replace(
        "{low: 0.1, high: 0.9}", "{high: 0.9}"
    )


def test_delete_last_item_leaves_empty_collection() -> None:
    text = "a:\n  b:\n    c: 1\nd: [1]\n"
    assert edit(text, "~a.b.c", "~d.0") == "a:\n  b: {}\nd: []\n"


def test_delete_first_key_of_mapping_in_sequence() -> None:
    text = "runs:\n- name: a\n  lr: 1\n- name: b\n"
    assert edit(text, "~runs.0.name") == "runs:\n- lr: 1\n- name: b\n"


def test_delete_last_line_without_newline() -> None:
    assert edit("a: 1\nb: 2", "~b") == "a: 1"


def test_crlf_file_keeps_crlf() -> None:
    text = "a: 1\r\nb:\r\n  c: 2\r\n"
    expected = "a: 3\r\nb:\r\n  c: 2\r\n  d:\r\n    - 1\r\n    - 2\r\ne: x\r\n"
    assert edit(text, "a=3", "+b.d=[1, 2]", "+e=x") == expected


def test_empty_and_comment_only_files() -> None:
    assert edit("", "+a.b=1") == "a:\n  b: 1\n"
    assert edit("# nothing yet", "+a=1") == "# nothing yet\na: 1\n"


def test_document_markers_are_kept() -> None:
    assert edit("---\na: 1\n...\n", "a=2", "+b=3") == "---\na: 2\nb: 3\n...\n"


def test_several_edits_in_one_file_apply_in_order() -> None:
    out = edit(PARAMS, "seed=1", "seed=2", "+extra=1", "~extra")
    assert out == replace_line(PARAMS, "seed: 42", "seed: 2")


def test_changes_are_reported() -> None:
    _, changes = edit_params_text(
        PARAMS, "params.yaml", parse_set_params(["train.lr=0.1", "+x=1", "~seed"])
    )
    assert [(c.key, c.action, c.old, c.new) for c in changes] == [
        ("train.lr", "modified", 0.001, 0.1),
        ("x", "added", None, 1),
        ("seed", "deleted", 42, None),
    ]
    assert str(changes[0]) == "params.yaml: train.lr 0.001 -> 0.1"


def test_values_are_read_as_yaml_1_2_like_dvc() -> None:
    text = "flag: yes\nlr: 1e-3\n"
    _, changes = edit_params_text(text, "params.yaml", parse_set_params(["lr=0.1", "~flag=yes"]))
    assert [(c.key, c.old) for c in changes] == [("lr", 0.001), ("flag", "yes")]


def test_anchor_used_elsewhere_is_refused() -> None:
    text = "base: &b\n  x: 1\nother:\n  <<: *b\n  y: 2\n"
    with pytest.raises(ParamsError, match="anchor"):
        edit(text, "base.x=2")
    with pytest.raises(ParamsError, match="merge key"):
        edit(text, "other.x=2")
    assert edit(text, "other.y=3") == text.replace("y: 2", "y: 3")


def test_invalid_yaml_is_a_params_error() -> None:
    with pytest.raises(ParamsError, match=r"params.yaml: invalid YAML: .*line 2"):
        edit("a: 1\n b: [\n", "a=2")


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "two words",
        "yes",
        "No",
        "on",
        "y",
        "null",
        "~",
        "true",
        "1e-3",
        "1.5",
        "0o17",
        "0x1F",
        "012",
        "1:30",
        "2020-01-01",
        ".inf",
        "-.nan",
        "nan",
        "",
        " lead",
        "trail ",
        "a: b",
        "a #b",
        "#x",
        "- x",
        "[x]",
        "{x}",
        "x,y",
        "it's",
        'say "hi"',
        "multi\nline",
        "tab\there",
        "*alias",
        "&anchor",
        "!tag",
        "%dir",
        "@at",
        "`tick",
        "|",
        ">",
        "?",
        "=",
        "/abs/path",
        "ünïcode",
        "emoji 🙂",
        "a=b",
        "${x.y}",
        "3d_model",
    ],
)
def test_rendered_strings_read_back_as_strings_in_yaml_1_1_and_1_2(value: str) -> None:
    for quote in ("", "'", '"'):
        rendered = render_scalar(value, quote)
        assert yaml.safe_load(f"k: {rendered}") == {"k": value}, rendered
        assert YAML(typ="safe", pure=True).load(io.StringIO(f"k: {rendered}")) == {"k": value}, (
            rendered
        )


@pytest.mark.parametrize(
    "value", [0.1, 1e-5, 1e16, -2.5e-300, 3.0, 1e100, math.inf, -math.inf, 0, -7, True, None]
)
def test_rendered_numbers_read_back_in_yaml_1_1_and_1_2(value: Any) -> None:
    rendered = render_scalar(value)
    for loaded in (yaml.safe_load(rendered), YAML(typ="safe", pure=True).load(rendered)):
        assert loaded == value and type(loaded) is type(value), rendered


def test_rendered_nan() -> None:
    assert math.isnan(yaml.safe_load(render_scalar(math.nan)))
