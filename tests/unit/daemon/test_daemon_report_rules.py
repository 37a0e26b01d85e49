"""The queue report over plain records: the window, the ranking, the Markdown."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exq.daemon.report import (
    ReportRun,
    best_runs,
    build_report,
    gather,
    in_window,
    render_markdown,
)
from exq.daemon.states import RunRecord, RunState
from exq.engine.errors import ConfigError

T0 = datetime(2026, 1, 2, 3, 0, 0, tzinfo=UTC)
BASE = RunRecord(
    id=1,
    seq=1,
    name="a",
    repo="/r",
    baseline="b" * 40,
    snapshot="s" * 40,
    snapshot_ref="refs/exq/queue/1",
    params=["lr=0.1"],
    targets=[],
    stage_jobs=None,
    state=RunState.SUCCESS,
    attempts=1,
    created=T0,
    started=T0,
    finished=T0 + timedelta(seconds=90),
    exit_code=0,
    error=None,
    log_path=None,
    experiment_ref="refs/exps/bb/x/a",
    experiment_sha=None,
    checkpoints=0,
    worker_slot=None,
    token=None,
)


@pytest.mark.parametrize(
    ("changes", "inside"),
    [
        ({}, True),
        ({"started": T0 - timedelta(hours=2)}, True),  # ended in the window
        ({"started": T0 - timedelta(hours=3), "finished": T0 - timedelta(hours=2)}, False),
        ({"state": RunState.QUEUED, "started": None, "finished": None}, False),
        ({"state": RunState.RUNNING, "started": T0 - timedelta(days=2), "finished": None}, True),
    ],
)
def test_the_window(changes: dict[str, object], inside: bool) -> None:
    assert in_window(replace(BASE, **changes), T0 - timedelta(hours=1)) is inside


def test_ranking_and_its_errors() -> None:
    runs = [
        ReportRun(replace(BASE, id=1, name="a"), {"m.json": {"acc": 0.5}}),
        ReportRun(replace(BASE, id=2, name="b"), {"m.json": {"acc": 0.9}}),
        ReportRun(replace(BASE, id=3, name="c", state=RunState.FAILED), {"m.json": {"acc": 1.0}}),
        ReportRun(replace(BASE, id=4, name="d"), {"other.json": {"loss": 0.1}}),
    ]
    best = best_runs(runs, "acc", ascending=False)
    assert [(r["name"], r["value"]) for r in best["runs"]] == [("b", 0.9), ("a", 0.5)]
    assert best_runs(runs, "m.json:acc", ascending=True)["runs"][0]["name"] == "a"
    with pytest.raises(ConfigError, match="no run in the report has the metric 'f1'"):
        best_runs(runs, "f1", ascending=False)
    twice = [*runs, ReportRun(replace(BASE, id=5), {"other.json": {"acc": 0.2}})]
    with pytest.raises(ConfigError, match="ambiguous, it matches m.json:acc, other.json:acc"):
        best_runs(twice, "acc", ascending=False)


def test_markdown_of_an_empty_and_a_full_report() -> None:
    empty = build_report([], T0, T0 + timedelta(hours=12))
    assert render_markdown(empty).splitlines()[2] == "0 runs (no runs), 0s of runs."
    failed = replace(BASE, id=2, name="x|y", state=RunState.FAILED, exit_code=3, error="boom\nmore")
    report = build_report(
        [ReportRun(BASE), ReportRun(failed, last_lines=["l1", "l2"])],
        T0,
        T0 + timedelta(hours=1),
    )
    assert report["counts"] == {"failed": 1, "success": 1}
    assert report["total_seconds"] == 180.0
    page = render_markdown(report)
    assert "| 2 | x\\|y | failed |" in page and "| 1m30s | 1 | boom |" in page
    assert "### x|y (run 2, exit 3)\n\nboom\n\n```\nl1\nl2\n```" in page


def test_a_pruned_run_counts_apart_and_names_what_it_kept_and_why() -> None:
    pruned = replace(
        BASE,
        id=3,
        name="slow",
        state=RunState.PRUNED,
        exit_code=-2,
        experiment_ref="refs/exps/bb/x/slow",
        error="pruned at step 2: loss 0.9 (median)",
    )
    report = build_report(
        [ReportRun(BASE), ReportRun(pruned, {"m.json": {"acc": 0.1}})], T0, T0 + timedelta(hours=1)
    )
    assert report["counts"] == {"pruned": 1, "success": 1}
    assert report["failures"] == []  # stopped on purpose: not a failure
    (row,) = [run for run in report["runs"] if run["id"] == 3]
    assert (row["state"], row["metrics"]) == ("pruned", {"m.json": {"acc": 0.1}})
    page = render_markdown(report)
    assert "| 3 | slow | pruned |" in page
    assert "| slow: pruned at step 2: loss 0.9 (median) |" in page
    # Its metrics are those of a checkpoint, not of a whole run: never ranked as best.
    ranked = [
        ReportRun(pruned, {"m.json": {"acc": 0.9}}),
        ReportRun(BASE, {"m.json": {"acc": 0.5}}),
    ]
    assert [r["name"] for r in best_runs(ranked, "acc", ascending=False)["runs"]] == ["a"]


def test_a_run_past_its_time_limit_is_a_failure_with_its_last_lines(tmp_path: Path) -> None:
    # it was counted 'timeout' and left out of the failures: no error, no output
    log = tmp_path / "9.log"
    log.write_text("epoch 1\nepoch 2\n")
    late = replace(
        BASE,
        id=9,
        name="long",
        state=RunState.TIMEOUT,
        exit_code=-2,
        error="stopped: it ran past its time limit",
        log_path=str(log),
    )
    runs = gather([BASE, late], T0 - timedelta(hours=1))
    report = build_report(runs, T0, T0 + timedelta(hours=1))
    assert report["counts"] == {"success": 1, "timeout": 1}
    assert report["failures"] == [
        {
            "id": 9,
            "name": "long",
            "exit_code": -2,
            "error": "stopped: it ran past its time limit",
            "last_lines": ["epoch 1", "epoch 2"],
        }
    ]
    assert "### long (run 9, exit -2)" in render_markdown(report)


def test_a_night_without_results_ranks_nothing_rather_than_fail() -> None:
    # '--sort-by loss' in a cron job: a night of failures (or of no runs) exited 1,
    # as if the metric were misspelled, and printed no report
    failed = replace(BASE, id=2, name="x", state=RunState.FAILED, exit_code=3, error="boom")
    for runs in ([], [ReportRun(failed)]):
        report = build_report(runs, T0, T0 + timedelta(hours=1), sort_by="loss")
        assert report["best"] == {"metric": "loss", "order": "desc", "runs": []}
        assert "## Best runs by loss (desc)\n\nno successful run has it yet" in (
            render_markdown(report)
        )
    with pytest.raises(ConfigError, match="no run in the report has the metric 'los'"):
        build_report([ReportRun(BASE, {"m.json": {"loss": 1.0}})], T0, T0, sort_by="los")
