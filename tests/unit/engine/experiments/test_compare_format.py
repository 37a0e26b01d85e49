"""Number and date formatting of exp show / diff cells, checked against DVC's output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from exq.engine.experiments.compare import format_created, format_value, split_filter_list


@pytest.mark.parametrize(
    ("value", "precision", "expected"),
    [
        (0.574619, 5, "0.57462"),
        (0.5674, 5, "0.5674"),
        (2.1e-07, 5, "2.1e-07"),
        (2.0000000000000002e-07, 5, "2e-07"),
        (1500, 5, "1500"),
        (12345678901, 5, "12345678901"),
        (123456789.123, 5, "1.2346e+08"),
        (-0.000123456, 5, "-0.00012346"),
        (0.0, 5, "0"),
        (1.0, 5, "1"),
        (1e20, 5, "1e+20"),
        (0.123456789, 3, "0.123"),
        (0.123456789, None, "0.123456789"),
        (0.123456789, 0, "0.123456789"),
        (True, 5, "True"),
        (False, 5, "False"),
        (None, 5, "-"),
        ("logs", 5, "logs"),
        ([1, 2], 5, "[1, 2]"),
        (float("nan"), 5, "nan"),
    ],
)
def test_format_value_like_dvc(value: object, precision: int | None, expected: str) -> None:
    assert format_value(value, precision) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1e-08, "0.0"),
        (0.574619, "0.57462"),
        (123456789.123, "123456789.123"),
        (5, "5"),
        (-10.415631, "-10.41563"),
    ],
)
def test_format_value_round_digits_like_metrics_diff(value: object, expected: str) -> None:
    assert format_value(value, 5, round_digits=True) == expected


NOW = datetime(2021, 2, 17, 18, 30)


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        (datetime(2021, 2, 17, 16, 6), "04:06 PM"),
        (datetime(2021, 2, 17, 0, 5), "12:05 AM"),
        (datetime(2021, 2, 17, 12, 0), "12:00 PM"),
        (datetime(2021, 2, 16, 23, 59), "Feb 16, 2021"),
        (datetime(2020, 12, 3, 9, 0), "Dec 03, 2020"),
        (None, "-"),
    ],
)
def test_format_created(created: datetime | None, expected: str) -> None:
    assert format_created(created, NOW) == expected


def test_format_created_compares_days_in_now_timezone() -> None:
    plus2 = timezone(timedelta(hours=2))
    now = datetime(2021, 2, 17, 1, 0, tzinfo=plus2)
    created = datetime(2021, 2, 16, 23, 30, tzinfo=UTC)  # 01:30 on the 17th at +02:00
    assert format_created(created, now) == "01:30 AM"


def test_split_filter_list() -> None:
    assert split_filter_list(["a,b", "p.yaml:c,d", "e"]) == ["a", "b", "p.yaml:c", "p.yaml:d", "e"]
