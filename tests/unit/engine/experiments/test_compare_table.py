"""exp show's table model: columns, headers, filters, sorting, only-changed, tree glyphs."""

from __future__ import annotations

from datetime import datetime

import pytest

from exq.engine.errors import ConfigError
from exq.engine.experiments.compare import Row, build_table, rows_to_json

NOW = datetime(2021, 2, 17, 18, 0)


def params(max_features: int, ngrams: int) -> dict[str, dict[str, object]]:
    return {"params.yaml": {"featurize.max_features": max_features, "featurize.ngrams": ngrams}}


def metrics(auc: float | None) -> dict[str, dict[str, object]]:
    return {"scores.json": {} if auc is None else {"auc": auc}}


def seed_rows() -> list[Row]:
    """The first exp show table of the DVC 2.0 announcement."""
    return [
        Row("workspace", kind="workspace", params=params(5000, 3), metrics=metrics(0.56359)),
        Row("master", "a" * 40, kind="baseline", params=params(1500, 2), metrics=metrics(0.5674)),
        Row("exp-80655", "b" * 40, "a" * 40, params=params(5000, 3), metrics=metrics(0.56359)),
        Row("exp-63ee0", "c" * 40, "a" * 40, params=params(5000, 2), metrics=metrics(0.5515)),
        Row("exp-9bf22", "d" * 40, "a" * 40, params=params(4000, 2), metrics=metrics(0.56448)),
        Row("exp-bb55c", "e" * 40, "a" * 40, params=params(3000, 2), metrics=metrics(0.574619)),
    ]


def headers(rows: list[Row], **kwargs: object) -> list[str]:
    return [col.header for col in build_table(rows, no_timestamp=True, **kwargs).columns]


def first_column(rows: list[Row], **kwargs: object) -> list[str]:
    return [line[0] for line in build_table(rows, no_timestamp=True, **kwargs).rows]


def test_seed_table_cells() -> None:
    table = build_table(seed_rows(), no_timestamp=True)
    assert [(c.header, c.kind, c.align) for c in table.columns] == [
        ("Experiment", "experiment", "left"),
        ("auc", "metric", "right"),
        ("featurize.max_features", "param", "left"),
        ("featurize.ngrams", "param", "left"),
    ]
    assert table.rows == [
        ["workspace", "0.56359", "5000", "3"],
        ["master", "0.5674", "1500", "2"],
        ["├── exp-80655", "0.56359", "5000", "3"],
        ["├── exp-63ee0", "0.5515", "5000", "2"],
        ["├── exp-9bf22", "0.56448", "4000", "2"],
        ["└── exp-bb55c", "0.57462", "3000", "2"],
    ]


def test_created_column_and_precision() -> None:
    rows = [
        Row("workspace", kind="workspace", metrics={"m.json": {"x": 0.123456}}),
        Row(
            "main",
            "a" * 40,
            kind="baseline",
            created=datetime(2021, 2, 16, 9, 0),
            metrics={"m.json": {"x": 0.5}},
        ),
        Row(
            "exp-1",
            "b" * 40,
            created=datetime(2021, 2, 17, 16, 6),
            metrics={"m.json": {"x": 2.1e-07}},
        ),
    ]
    table = build_table(rows, now=NOW, precision=3)
    assert [c.header for c in table.columns] == ["Experiment", "Created", "x"]
    assert table.rows == [
        ["workspace", "-", "0.123"],
        ["main", "Feb 16, 2021", "0.5"],
        ["└── exp-1", "04:06 PM", "2.1e-07"],
    ]


def test_columns_in_first_seen_order_metrics_before_params() -> None:
    rows = [
        Row(
            "workspace",
            kind="workspace",
            params={"p.yaml": {"b": 1, "a": 2}},
            metrics={"m.json": {"z": 1}},
        ),
        Row(
            "main",
            kind="baseline",
            params={"other.yaml": {"c": 1}, "p.yaml": {"d": 1}},
            metrics={"n.json": {"y": 1}, "m.json": {"w": 1}},
        ),
    ]
    assert headers(rows) == ["Experiment", "z", "w", "y", "b", "a", "d", "c"]


def test_clashing_keys_get_file_prefix_across_metrics_and_params() -> None:
    rows = [
        Row(
            "workspace",
            kind="workspace",
            metrics={"metrics.json": {"flag": True, "auc": 0.5}, "live.json": {"auc": 0.6}},
            params={"params.yaml": {"flag": False, "lr": 0.1}},
        )
    ]
    table = build_table(rows, no_timestamp=True)
    assert [c.header for c in table.columns] == [
        "Experiment",
        "metrics.json:flag",
        "metrics.json:auc",
        "live.json:auc",
        "params.yaml:flag",
        "lr",
    ]
    assert table.rows == [["workspace", "True", "0.5", "0.6", "False", "0.1"]]


def test_prefix_only_for_columns_still_shown() -> None:
    rows = [
        Row(
            "workspace",
            kind="workspace",
            metrics={"m.json": {"lr": 1}},
            params={"p.yaml": {"lr": 2}},
        )
    ]
    assert headers(rows, exclude_params=["lr"]) == ["Experiment", "lr"]


NESTED = [
    Row(
        "workspace",
        kind="workspace",
        params={
            "params.yaml": {"train.lr": 0.1, "train.epochs": 5, "prepare.split": 0.2},
            "cfg.json": {"train.lr": 1},
        },
        metrics={"scores.json": {"auc": 0.5, "loss": 0.1}, "live/metrics.json": {"step": 3}},
    )
]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {},
            [
                "auc",
                "loss",
                "step",
                "params.yaml:train.lr",
                "train.epochs",
                "prepare.split",
                "cfg.json:train.lr",
            ],
        ),
        (
            {"include_params": ["train"]},
            ["auc", "loss", "step", "params.yaml:train.lr", "train.epochs", "cfg.json:train.lr"],
        ),
        (
            {"include_params": ["params.yaml:train.*"]},
            ["auc", "loss", "step", "train.lr", "train.epochs"],
        ),
        (
            {"include_params": ["*.lr"]},
            ["auc", "loss", "step", "params.yaml:train.lr", "cfg.json:train.lr"],
        ),
        (
            {"exclude_params": ["cfg.json:*"]},
            ["auc", "loss", "step", "train.lr", "train.epochs", "prepare.split"],
        ),
        (
            {"include_params": ["train"], "exclude_params": ["train.epochs"]},
            ["auc", "loss", "step", "params.yaml:train.lr", "cfg.json:train.lr"],
        ),
        (
            {"include_metrics": ["auc"]},
            ["auc", "params.yaml:train.lr", "train.epochs", "prepare.split", "cfg.json:train.lr"],
        ),
        ({"exclude_metrics": ["live/*:*"], "exclude_params": ["*"]}, ["auc", "loss"]),
        ({"include_metrics": ["l*"], "include_params": ["prepare"]}, ["loss", "prepare.split"]),
    ],
)
def test_include_exclude_globs(kwargs: dict[str, object], expected: list[str]) -> None:
    assert headers(NESTED, **kwargs) == ["Experiment", *expected]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"include_params": ["nope"]}, "--include-params: 'nope' does not match any param"),
        (
            {"exclude_metrics": ["x.json:*"]},
            "--exclude-metrics: 'x.json:*' does not match any metric",
        ),
    ],
)
def test_filter_matching_nothing_is_an_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_table(NESTED, **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("sort_by", "order", "expected"),
    [
        ("auc", "asc", ["exp-63ee0", "exp-80655", "exp-9bf22", "exp-bb55c"]),
        ("auc", "desc", ["exp-bb55c", "exp-9bf22", "exp-80655", "exp-63ee0"]),
        ("scores.json:auc", "desc", ["exp-bb55c", "exp-9bf22", "exp-80655", "exp-63ee0"]),
        # equal values keep the caller's order, in both directions
        ("featurize.max_features", "asc", ["exp-bb55c", "exp-9bf22", "exp-80655", "exp-63ee0"]),
        ("featurize.max_features", "desc", ["exp-80655", "exp-63ee0", "exp-9bf22", "exp-bb55c"]),
    ],
)
def test_sort_within_group_keeps_top_rows(sort_by: str, order: str, expected: list[str]) -> None:
    names = [
        row[0]
        for row in build_table(
            seed_rows(), no_timestamp=True, sort_by=sort_by, sort_order=order
        ).rows
    ]
    assert names[:2] == ["workspace", "master"]
    assert [n.split(" ")[-1] for n in names[2:]] == expected
    assert names[-1].startswith("└── ") and all(n.startswith("├── ") for n in names[2:-1])


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_rows_missing_sort_key_go_last(order: str) -> None:
    rows = seed_rows()
    rows[3] = Row("exp-63ee0", "c" * 40, params=params(5000, 2), metrics=metrics(None))
    rows[4] = Row("q1", "f" * 40, kind="queued", state="queued", params=params(10, 1))
    names = first_column(rows, sort_by="auc", sort_order=order)
    assert [n.split(" ")[-1] for n in names[-2:]] == ["exp-63ee0", "q1"]


def test_sort_mixed_types_numbers_before_strings() -> None:
    rows = [Row("main", kind="baseline")] + [
        Row(name, metrics={"m.json": {"v": v}})
        for name, v in (("a", "x"), ("b", 2), ("c", True), ("d", 1.5), ("e", [1]))
    ]
    assert [n.split(" ")[-1] for n in first_column(rows, sort_by="v")[1:]] == [
        "c",
        "d",
        "b",
        "e",
        "a",
    ]


def test_sort_groups_separately() -> None:
    rows = [
        Row("workspace", kind="workspace", metrics=metrics(0.9)),
        Row("main", kind="baseline", metrics=metrics(0.5)),
        Row("e1", metrics=metrics(0.1)),
        Row("e2", metrics=metrics(0.3)),
        Row("dev", kind="baseline", metrics=metrics(0.0)),
        Row("e3", metrics=metrics(0.2)),
        Row("e4", metrics=metrics(0.4)),
    ]
    assert first_column(rows, sort_by="auc", sort_order="desc") == [
        "workspace",
        "main",
        "├── e2",
        "└── e1",
        "dev",
        "├── e4",
        "└── e3",
    ]


@pytest.mark.parametrize(
    ("sort_by", "message"),
    [
        ("nope", "--sort-by: unknown metric or param 'nope'"),
        ("other.json:auc", "--sort-by: unknown metric or param 'other.json:auc'"),
        ("lr", "--sort-by: 'lr' is ambiguous, it matches m.json:lr, p.yaml:lr"),
    ],
)
def test_sort_by_errors(sort_by: str, message: str) -> None:
    rows = [
        Row(
            "w",
            kind="workspace",
            metrics={"m.json": {"lr": 1, "auc": 1}},
            params={"p.yaml": {"lr": 2}},
        )
    ]
    with pytest.raises(ConfigError) as info:
        build_table(rows, sort_by=sort_by)
    assert str(info.value) == message


def test_only_changed_drops_constant_columns() -> None:
    rows = [
        Row(
            "workspace",
            kind="workspace",
            metrics={"m.json": {"same": 1, "diff": 1, "gone": 3}},
            params={"p.yaml": {"k": "a", "c": 0.1234567}},
        ),
        Row(
            "main",
            kind="baseline",
            metrics={"m.json": {"same": 1, "diff": 2}},
            params={"p.yaml": {"k": "a", "c": 0.1234568}},
        ),
    ]
    table = build_table(rows, no_timestamp=True, only_changed=True)
    # "gone" is "-" in one row; "c" differs only beyond the shown precision
    assert [c.header for c in table.columns] == ["Experiment", "diff", "gone"]
    assert table.rows == [["workspace", "1", "3"], ["main", "2", "-"]]


def test_state_column_only_when_some_row_is_not_a_success() -> None:
    rows = seed_rows()[:3]
    assert "State" not in headers(rows)
    rows += [
        Row("5f1c2aa", "f" * 40, kind="queued", state="queued", params=params(1, 1)),
        Row("exp-run", "9" * 40, state="running"),
        Row("exp-bad", "8" * 40, state="failed"),
    ]
    table = build_table(rows, now=NOW)
    assert [c.header for c in table.columns][:3] == ["Experiment", "Created", "State"]
    assert [line[:3] for line in table.rows] == [
        ["workspace", "-", "-"],
        ["master", "-", "-"],
        ["├── exp-80655", "-", "-"],
        ["├── 5f1c2aa", "-", "Queued"],
        ["├── exp-run", "-", "Running"],
        ["└── exp-bad", "-", "Failed"],
    ]
    assert table.rows[3][3:] == ["-", "1", "1"]


def test_checkpoint_chain_glyphs_like_seed() -> None:
    """Second checkpoint table of the announcement: one chain under master."""
    base = "a72c526" + "0" * 33
    chain = ["exp-e15bc", "5ea8327", "bc0cf02", "f8cf03f", "7575a44", "a72c526"]
    revs = [
        "e15bc" + "1" * 35,
        "5ea8327" + "0" * 33,
        "bc0cf02" + "0" * 33,
        "f8cf03f" + "0" * 33,
        "7575a44" + "0" * 33,
        base,
    ]
    rows = [Row("workspace", kind="workspace"), Row("master", "m" * 40, kind="baseline")]
    for i, (name, rev) in enumerate(zip(chain, revs, strict=False)):
        parent = revs[i + 1] if i + 1 < len(revs) else "m" * 40
        rows.append(
            Row(name, rev, "m" * 40, kind="experiment" if i == 0 else "checkpoint", parent=parent)
        )
    rows.append(Row("exp-bb55c", "e" * 40, "m" * 40))
    assert first_column(rows) == [
        "workspace",
        "master",
        "│ ╓ exp-e15bc",
        "│ ╟ 5ea8327",
        "│ ╟ bc0cf02",
        "│ ╟ f8cf03f",
        "│ ╟ 7575a44",
        "├─╨ a72c526",
        "└── exp-bb55c",
    ]


def test_resumed_checkpoint_chain_starts_a_new_chain_like_seed() -> None:
    """Third checkpoint table: exp-7ff06 resumed from 2b06de7 of the older chain."""
    new_tip, old_tip = "7ff06" + "0" * 35, "2b06de7" + "0" * 33
    spec = [
        ("exp-7ff06", new_tip, "6c62fec", new_tip),
        ("6c62fec", "6c62fec" + "0" * 33, "4baca3c", new_tip),
        ("4baca3c", "4baca3c" + "0" * 33, "b363267", new_tip),
        ("b363267", "b363267" + "0" * 33, old_tip, new_tip),
        ("2b06de7", old_tip, "205a8d3", old_tip),
        ("205a8d3", "205a8d3" + "0" * 33, "a72c526", old_tip),
        ("a72c526", "a72c526" + "0" * 33, "m" * 40, old_tip),
    ]
    rows = [Row("workspace", kind="workspace"), Row("master", "m" * 40, kind="baseline")]
    for i, (name, rev, parent, tip) in enumerate(spec):
        kind = "experiment" if i == 0 else "checkpoint"
        rows.append(
            Row(name, rev, "m" * 40, kind=kind, parent=parent.ljust(40, "0"), checkpoint_tip=tip)
        )
    assert first_column(rows)[2:] == [
        "│ ╓ exp-7ff06",
        "│ ╟ 6c62fec",
        "│ ╟ 4baca3c",
        "│ ╟ b363267 (2b06de7)",
        "│ ╓ 2b06de7",
        "│ ╟ 205a8d3",
        "├─╨ a72c526",
    ]


def test_sort_moves_checkpoint_chain_with_its_experiment() -> None:
    rows = [
        Row("main", "m" * 40, kind="baseline"),
        Row("exp-a", "a" * 40, metrics=metrics(0.9)),
        Row("1111111", "1" * 40, kind="checkpoint", metrics=metrics(0.1)),
        Row("2222222", "2" * 40, kind="checkpoint", metrics=metrics(0.05)),
        Row("exp-b", "b" * 40, metrics=metrics(0.5)),
    ]
    assert first_column(rows, sort_by="auc") == [
        "main",
        "├── exp-b",
        "│ ╓ exp-a",
        "│ ╟ 1111111",
        "├─╨ 2222222",
    ]


def test_groups_without_baseline_row_and_several_baselines() -> None:
    rows = [
        Row("e0"),
        Row("main", kind="baseline"),
        Row("dev", kind="baseline"),
        Row("e1"),
    ]
    assert first_column(rows) == ["└── e0", "main", "dev", "└── e1"]


def test_empty_rows() -> None:
    table = build_table([], no_timestamp=True)
    assert [c.header for c in table.columns] == ["Experiment"]
    assert table.rows == []


def test_source_rows_follow_display_order() -> None:
    table = build_table(seed_rows(), sort_by="auc", now=NOW)
    assert [row.name for row in table.source] == [
        "workspace",
        "master",
        "exp-63ee0",
        "exp-80655",
        "exp-9bf22",
        "exp-bb55c",
    ]


def test_rows_to_json() -> None:
    row = Row(
        "exp-1",
        "b" * 40,
        "a" * 40,
        created=datetime(2021, 2, 17, 16, 6, 1),
        parent="a" * 40,
        params={"params.yaml": {"train.lr": 0.1, "layers": [1, 2]}},
        metrics={"m.json": {"auc": 0.5}},
    )
    assert rows_to_json([Row("workspace", kind="workspace"), row]) == [
        {
            "name": "workspace",
            "rev": None,
            "baseline": None,
            "kind": "workspace",
            "state": "success",
            "created": None,
            "parent": None,
            "sweep": None,
            "params": {},
            "metrics": {},
        },
        {
            "name": "exp-1",
            "rev": "b" * 40,
            "baseline": "a" * 40,
            "kind": "experiment",
            "state": "success",
            "created": "2021-02-17T16:06:01",
            "parent": "a" * 40,
            "sweep": None,
            "params": {"params.yaml": {"train.lr": 0.1, "layers": [1, 2]}},
            "metrics": {"m.json": {"auc": 0.5}},
        },
    ]
