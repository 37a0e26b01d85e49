"""diff_values for exp diff / metrics diff / params diff, checked against DVC 3's output."""

from __future__ import annotations

import pytest

from exq.engine.experiments.compare import DiffRow, diff_to_dict, diff_values

OLD = {
    "metrics.json": {
        "auc": 0.51,
        "n": 1500,
        "flag": False,
        "s": "x5",
        "tiny": 1e-08,
        "same": 3,
        "gone": 2,
    }
}
NEW = {
    "metrics.json": {
        "auc": 0.7,
        "n": 3000,
        "flag": True,
        "s": "x10",
        "tiny": 2.0000000000000002e-07,
        "same": 3,
        "extra": 1,
    }
}


def table(rows: list[DiffRow]) -> list[tuple[str, str, str, str, str]]:
    return [(r.path, r.key, r.old, r.new, r.change) for r in rows]


def test_exp_diff_metrics_like_dvc() -> None:
    assert table(diff_values(OLD, NEW)) == [
        ("metrics.json", "auc", "0.51", "0.7", "0.19"),
        ("metrics.json", "extra", "-", "1", "diff not supported"),
        ("metrics.json", "flag", "False", "True", "1"),
        ("metrics.json", "gone", "2", "-", "diff not supported"),
        ("metrics.json", "n", "1500", "3000", "1500"),
        ("metrics.json", "s", "x5", "x10", "diff not supported"),
        ("metrics.json", "tiny", "1e-08", "2e-07", "1.9e-07"),
    ]


def test_all_keeps_unchanged_rows() -> None:
    rows = diff_values(OLD, NEW, all=True)
    assert ("metrics.json", "same", "3", "3", "0") in table(rows)
    assert len(rows) == 8


def test_metrics_diff_rounds_decimals_and_says_dash() -> None:
    rows = diff_values(OLD, NEW, round_digits=True, unsupported="-")
    assert table(rows)[0] == ("metrics.json", "auc", "0.51", "0.7", "0.19")
    assert table(rows)[-1] == ("metrics.json", "tiny", "0.0", "0.0", "0.0")
    assert table(rows)[1] == ("metrics.json", "extra", "-", "1", "-")


def test_params_without_precision_print_raw_values() -> None:
    old = {
        "params.yaml": {
            "big": 123456789.123,
            "lr": 0.001,
            "lst": [1, 2],
            "nested.x": 0.123456789,
            "y": None,
        }
    }
    new = {
        "params.yaml": {
            "big": 123456789.123,
            "lr": 0.02,
            "lst": [1, 2],
            "nested.x": 0.123456789,
            "y": None,
        }
    }
    assert table(diff_values(old, new, all=True, precision=None)) == [
        ("params.yaml", "big", "123456789.123", "123456789.123", "0.0"),
        ("params.yaml", "lr", "0.001", "0.02", "0.019"),
        ("params.yaml", "lst", "[1, 2]", "[1, 2]", "diff not supported"),
        ("params.yaml", "nested.x", "0.123456789", "0.123456789", "0.0"),
        ("params.yaml", "y", "-", "-", "diff not supported"),
    ]


@pytest.mark.parametrize("precision", [2, 3])
def test_precision_applies_to_values_and_change(precision: int) -> None:
    rows = diff_values({"m": {"v": 1.23456}}, {"m": {"v": 2.34567}}, precision=precision)
    expected = {2: ("1.2", "2.3", "1.1"), 3: ("1.23", "2.35", "1.11")}[precision]
    assert (rows[0].old, rows[0].new, rows[0].change) == expected


def test_files_in_first_seen_order_and_whole_file_added() -> None:
    rows = diff_values({"b.json": {"x": 1}}, {"a.json": {"y": 2}, "b.json": {"x": 2}})
    assert table(rows) == [
        ("b.json", "x", "1", "2", "1"),
        ("a.json", "y", "-", "2", "diff not supported"),
    ]


def test_no_changes_gives_no_rows() -> None:
    assert diff_values(OLD, OLD) == []
    assert diff_values({}, {}) == []


def test_diff_to_dict_like_dvc_json() -> None:
    rows = diff_values(OLD, NEW)
    assert diff_to_dict(rows) == {
        "metrics.json": {
            "auc": {"old": 0.51, "new": 0.7, "diff": 0.7 - 0.51},
            "extra": {"old": None, "new": 1},
            "flag": {"old": False, "new": True, "diff": 1},
            "gone": {"old": 2, "new": None},
            "n": {"old": 1500, "new": 3000, "diff": 1500},
            "s": {"old": "x5", "new": "x10"},
            "tiny": {
                "old": 1e-08,
                "new": 2.0000000000000002e-07,
                "diff": 2.0000000000000002e-07 - 1e-08,
            },
        }
    }
