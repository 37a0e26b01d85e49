"""Diff tables (plain, markdown, json), compared with what DVC 3 prints for the same data."""

from __future__ import annotations

import json

from exq.cli.render import (
    markdown_grid,
    plain_grid,
    render_diff,
    render_diff_json,
    render_exp_diff,
    render_exp_diff_json,
)
from exq.engine.experiments.compare import diff_values

OLD_M = {"metrics.json": {"auc": 0.51, "n": 1500, "flag": False, "s": "x5", "tiny": 1e-08}}
NEW_M = {
    "metrics.json": {
        "auc": 0.7,
        "n": 3000,
        "flag": True,
        "s": "x10",
        "tiny": 2.0000000000000002e-07,
        "extra": 1,
    }
}
OLD_P = {"params.yaml": {"epochs": 5, "lr": 0.001, "name": "foo"}}
NEW_P = {"params.yaml": {"epochs": 10, "lr": 0.02, "name": "foo"}}

# `dvc exp diff` in a repo holding the values above (trailing blanks are stripped by DVC too)
DVC_EXP_DIFF = """\
Path          Metric    HEAD    workspace    Change
metrics.json  auc       0.51    0.7          0.19
metrics.json  extra     -       1            diff not supported
metrics.json  flag      False   True         1
metrics.json  n         1500    3000         1500
metrics.json  s         x5      x10          diff not supported
metrics.json  tiny      1e-08   2e-07        1.9e-07

Path         Param    HEAD    workspace    Change
params.yaml  epochs   5       10           5
params.yaml  lr       0.001   0.02         0.019
"""

DVC_EXP_DIFF_MD = """\
| Path         | Metric   | HEAD   | workspace   | Change             |
|--------------|----------|--------|-------------|--------------------|
| metrics.json | auc      | 0.51   | 0.7         | 0.19               |
| metrics.json | extra    | -      | 1           | diff not supported |
| metrics.json | flag     | False  | True        | 1                  |
| metrics.json | n        | 1500   | 3000        | 1500               |
| metrics.json | s        | x5     | x10         | diff not supported |
| metrics.json | tiny     | 1e-08  | 2e-07       | 1.9e-07            |

| Path        | Param   | HEAD   | workspace   | Change   |
|-------------|---------|--------|-------------|----------|
| params.yaml | epochs  | 5      | 10          | 5        |
| params.yaml | lr      | 0.001  | 0.02        | 0.019    |
"""


def exp_rows() -> tuple[list, list]:
    return diff_values(OLD_M, NEW_M), diff_values(OLD_P, NEW_P, precision=None)


def test_exp_diff_plain_like_dvc() -> None:
    assert render_exp_diff(*exp_rows()) == DVC_EXP_DIFF


def test_exp_diff_markdown_like_dvc() -> None:
    assert render_exp_diff(*exp_rows(), markdown=True) == DVC_EXP_DIFF_MD


def test_exp_diff_leaves_out_empty_tables() -> None:
    params = diff_values(
        {"params.yaml": {"name": "foo"}}, {"params.yaml": {"name": "bar"}}, precision=None
    )
    assert render_exp_diff([], params) == (
        "Path         Param    HEAD    workspace    Change\n"
        "params.yaml  name     foo     bar          diff not supported\n"
    )
    assert render_exp_diff([], []) == ""


def test_metrics_diff_with_rev_labels_like_dvc() -> None:
    rows = diff_values(OLD_M, NEW_M, round_digits=True, unsupported="-")
    assert render_diff(rows, title="Metric", old_label="master", new_label="messy-salp") == (
        "Path          Metric    master    messy-salp    Change\n"
        "metrics.json  auc       0.51      0.7           0.19\n"
        "metrics.json  extra     -         1             -\n"
        "metrics.json  flag      False     True          1\n"
        "metrics.json  n         1500      3000          1500\n"
        "metrics.json  s         x5        x10           -\n"
        "metrics.json  tiny      0.0       0.0           0.0\n"
    )


def test_params_diff_has_no_change_column_like_dvc() -> None:
    rows = diff_values(OLD_P, NEW_P, precision=None)
    kwargs = {
        "title": "Param",
        "old_label": "master",
        "new_label": "messy-salp",
        "show_change": False,
    }
    assert render_diff(rows, **kwargs) == (
        "Path         Param    master    messy-salp\n"
        "params.yaml  epochs   5         10\n"
        "params.yaml  lr       0.001     0.02\n"
    )
    assert render_diff(rows, markdown=True, **kwargs) == (
        "| Path        | Param   | master   | messy-salp   |\n"
        "|-------------|---------|----------|--------------|\n"
        "| params.yaml | epochs  | 5        | 10           |\n"
        "| params.yaml | lr      | 0.001    | 0.02         |\n"
    )


def test_diff_json_like_dvc() -> None:
    metrics, params = exp_rows()
    assert json.loads(render_exp_diff_json(metrics, params)) == {
        "metrics": {
            "metrics.json": {
                "auc": {"old": 0.51, "new": 0.7, "diff": 0.18999999999999995},
                "extra": {"old": None, "new": 1},
                "flag": {"old": False, "new": True, "diff": 1},
                "n": {"old": 1500, "new": 3000, "diff": 1500},
                "s": {"old": "x5", "new": "x10"},
                "tiny": {"old": 1e-08, "new": 2.0000000000000002e-07, "diff": 1.9e-07},
            }
        },
        "params": {
            "params.yaml": {
                "epochs": {"old": 5, "new": 10, "diff": 5},
                "lr": {"old": 0.001, "new": 0.02, "diff": 0.019},
            }
        },
    }
    assert render_exp_diff_json([], []) == '{"metrics": {}, "params": {}}'
    assert json.loads(render_diff_json(params)) == {
        "params.yaml": {
            "epochs": {"old": 5, "new": 10, "diff": 5},
            "lr": {"old": 0.001, "new": 0.02, "diff": 0.019},
        }
    }


def test_grids_pad_headers_by_two_like_tabulate() -> None:
    assert plain_grid(["a", "bb"], [["xxxxx", "y"]]) == "a      bb\nxxxxx  y\n"
    assert markdown_grid(["a"], [["├── x"]]) == "| a     |\n|-------|\n| ├── x |\n"
