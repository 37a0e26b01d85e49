"""exp show's Sweep column: each experiment marked with the sweep or study it was a point of."""

from __future__ import annotations

from datetime import datetime

from exq.engine.experiments.compare import Row, build_table, mark_sweeps, rows_to_json

ROWS = [
    Row("workspace", kind="workspace"),
    Row("main", rev="b" * 40, kind="baseline"),
    Row("st-1", rev="1" * 40, baseline="b" * 40),
    Row("g-2", rev="2" * 40, baseline="b" * 40),
    Row("solo", rev="3" * 40, baseline="b" * 40),
    Row("st-1", rev="4" * 40, baseline="c" * 40),  # the same name under another baseline
]


def test_experiments_are_marked_by_baseline_and_name_and_nothing_else() -> None:
    marked = mark_sweeps(
        ROWS, {("b" * 40, "st-1"): "st", ("b" * 40, "g-2"): "g", ("", "main"): "x"}
    )
    assert [row.sweep for row in marked] == [None, None, "st", "g", None, None]
    assert [r["sweep"] for r in rows_to_json(marked)] == [None, None, "st", "g", None, None]


def test_the_sweep_column_shows_only_when_an_experiment_has_one() -> None:
    plain = build_table(ROWS, now=datetime(2026, 1, 1))
    assert [c.header for c in plain.columns] == ["Experiment", "Created"]
    marked = mark_sweeps(ROWS, {("b" * 40, "g-2"): "g"})
    table = build_table(marked, no_timestamp=True)
    assert [c.header for c in table.columns] == ["Experiment", "Sweep"]
    assert [line[1] for line in table.rows] == ["-", "-", "-", "g", "-", "-"]
