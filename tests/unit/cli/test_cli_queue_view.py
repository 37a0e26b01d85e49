"""Pure pieces of the queue CLI: the fast path's parser, sweeps, the status table and JSON."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exq.cli.exp_queue import parse_queue_args, parse_run_args
from exq.cli.queue_view import (
    HEADERS,
    daemon_json,
    daemon_line,
    duration,
    format_seconds,
    format_table,
    progress_line,
    result_text,
    run_json,
    short_repo,
    shown_state,
    status_rows,
    where,
)
from exq.daemon.protocol import StatusReply
from exq.daemon.service import EnqueueRequest
from exq.daemon.states import RunState
from exq.daemon.store import RunRecord
from exq.engine.experiments.queue_snapshot import QueuePoint, first_sweep, sweep_points

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

RECORD = RunRecord(
    id=7,
    seq=7,
    name="exp-a",
    repo="/home/u/proj",
    baseline="b" * 40,
    snapshot="s" * 40,
    snapshot_ref="refs/exq/queue/7",
    params=["lr=0.1"],
    targets=[],
    stage_jobs=None,
    state=RunState.QUEUED,
    attempts=0,
    created=T0,
    started=None,
    finished=None,
    exit_code=None,
    error=None,
    log_path=None,
    experiment_ref=None,
    experiment_sha=None,
    checkpoints=0,
    worker_slot=None,
    token=None,
)
DONE = replace(
    RECORD,
    state=RunState.SUCCESS,
    attempts=1,
    started=T0 + timedelta(seconds=1),
    finished=T0 + timedelta(seconds=75),
    exit_code=0,
    experiment_ref="refs/exps/bb/" + "b" * 38 + "/exp-a",
)
FAILED = replace(
    RECORD,
    state=RunState.FAILED,
    attempts=2,
    started=T0,
    finished=T0 + timedelta(seconds=3),
    exit_code=3,
    error="stage 'work': failed with exit code 3\nmore",
)
RUNNING = replace(RECORD, state=RunState.RUNNING, attempts=1, started=T0, worker_slot=1)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--queue"], EnqueueRequest()),
        (
            ["--queue", "-S", "a=1", "-Sb=2", "--set-param", "c=3", "--set-param=d=4"],
            EnqueueRequest(set_params=["a=1", "b=2", "c=3", "d=4"]),
        ),
        (
            ["-n", "x", "--queue", "train", "-f"],
            EnqueueRequest(targets=["train"], name="x", force=True),
        ),
        (
            ["--name=x", "--queue", "-j", "4", "--", "-weird-target"],
            EnqueueRequest(targets=["-weird-target"], name="x", stage_jobs=4),
        ),
        (["--queue", "--jobs=0"], EnqueueRequest(stage_jobs=None)),
        (
            ["--queue", "--executor", "ray", "--cpus=2", "--gpus", "1", "--mem", "16G"],
            EnqueueRequest(executor="ray", cpus="2", gpus="1", mem="16G"),
        ),
        (
            ["--queue", "--priority", "-1", "--after", "a", "--after=3,b", "--timeout", "2h"],
            EnqueueRequest(priority="-1", after=["a", "3,b"], timeout="2h"),
        ),
        (
            ["--queue", "--retries", "2", "--retry-delay=30s", "--gpus", "-1"],
            # checked by enqueue, which words the error in one line
            EnqueueRequest(retries="2", retry_delay="30s", gpus="-1"),
        ),
    ],
)
def test_fast_path_parses_plain_queue_calls(argv: list[str], expected: EnqueueRequest) -> None:
    call = parse_queue_args(argv)
    assert call is not None and call.request == expected and not call.as_json


def test_fast_path_takes_json() -> None:
    call = parse_queue_args(["--queue", "--json", "-S", "a=1"])
    assert call is not None and call.as_json
    assert call.request == EnqueueRequest(set_params=["a=1"])


@pytest.mark.parametrize(
    "argv",
    [
        [],  # no --queue
        ["-S", "a=1"],
        ["--queue", "--help"],
        ["--queue", "--run-all"],
        ["--queue", "--temp"],
        ["--queue", "-S"],  # missing value: typer words the error
        ["--queue", "-j", "many"],
        ["--queue=yes"],
    ],
)
def test_fast_path_leaves_the_rest_to_typer(argv: list[str]) -> None:
    assert parse_queue_args(argv) is None


@pytest.mark.parametrize(
    ("set_params", "name", "expected"),
    [
        ([], None, [QueuePoint(None, [])]),
        (["a=1"], "n", [QueuePoint("n", ["a=1"])]),
        (
            ["a=1,2", "b=x,y"],
            "n",
            [
                QueuePoint("n-1", ["a=1", "b=x"]),
                QueuePoint("n-2", ["a=1", "b=y"]),
                QueuePoint("n-3", ["a=2", "b=x"]),
                QueuePoint("n-4", ["a=2", "b=y"]),
            ],
        ),
        (
            ["a=1,2", "c=[3,4]"],
            None,
            [QueuePoint(None, ["a=1", "c=[3,4]"]), QueuePoint(None, ["a=2", "c=[3,4]"])],
        ),
    ],
)
def test_sweep_points(set_params: list[str], name: str | None, expected: list[QueuePoint]) -> None:
    assert sweep_points(set_params, name) == expected


@pytest.mark.parametrize(
    ("set_params", "sweep"),
    [([], None), (["a=1", "b='x,y'"], None), (["a=1", "b=2,3"], "b=2,3"), (["c=[1,2]"], None)],
)
def test_first_sweep(set_params: list[str], sweep: str | None) -> None:
    assert first_sweep(set_params) == sweep


def test_run_json_names_times_and_nulls() -> None:
    assert run_json(DONE) == {
        "id": 7,
        "name": "exp-a",
        "repo": "/home/u/proj",
        "state": "success",
        "attempt": 1,
        "created": "2026-01-02T03:04:05+00:00",
        "started": "2026-01-02T03:04:06+00:00",
        "finished": "2026-01-02T03:05:20+00:00",
        "exit_code": 0,
        "experiment_ref": DONE.experiment_ref,
        "error": None,
        "checkpoints": 0,
        "executor": None,
        "location": None,
        "cpus": None,
        "gpus": None,
        "mem": None,
        "gpus_assigned": [],
        "priority": 0,
        "after": [],
        "timeout": None,
        "retries": 0,
        "retries_left": 0,
        "retry_delay": None,
        "not_before": None,
        "progress": None,
    }


def test_daemon_json_and_line() -> None:
    reply = StatusReply(pid=42, slots_busy=1, slots_total=2, paused=True)
    assert daemon_json(reply) == {
        "running": True,
        "answering": True,
        "pid": 42,
        "slots_busy": 1,
        "slots_total": 2,
        "gpus_total": 0,
        "gpus_free": 0,
        "paused": True,
    }
    assert daemon_json(None) == {
        "running": False,
        "answering": False,
        "pid": None,
        "slots_busy": None,
        "slots_total": None,
        "gpus_total": None,
        "gpus_free": None,
        "paused": None,
    }
    assert daemon_json(None, silent_pid=9)["running"] is True
    assert daemon_line(reply) == "Daemon: running (pid 42), 1/2 slots busy, paused"
    gpus = StatusReply(pid=42, slots_busy=1, slots_total=2, gpus_total=2, gpus_free=1)
    assert daemon_line(gpus) == "Daemon: running (pid 42), 1/2 slots busy, 1/2 GPUs free"
    assert daemon_line(None).startswith("Daemon: not running")
    assert daemon_line(None, silent_pid=9).startswith("Daemon: running (pid 9) but not answering")


@pytest.mark.parametrize(
    ("state", "location", "alive", "shown"),
    [
        (RunState.RUNNING, "local", False, RunState.INTERRUPTED),
        (RunState.RUNNING, None, False, RunState.INTERRUPTED),
        (RunState.RUNNING, "local", True, RunState.RUNNING),
        (RunState.RUNNING, "ray http://h:8265", False, RunState.RUNNING),  # goes on there
        (RunState.QUEUED, None, False, RunState.QUEUED),
        (RunState.FAILED, "local", False, RunState.FAILED),
    ],
)
def test_a_dead_daemons_running_runs_show_interrupted(
    state: RunState, location: str | None, alive: bool, shown: RunState
) -> None:
    record = replace(RUNNING, state=state, location=location)
    assert shown_state(record, alive) is shown
    assert run_json(record, alive)["state"] == shown.value
    assert status_rows([record], T0, None, daemon_alive=alive)[0][3] == shown.value


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.42, "0.4s"), (12.9, "12s"), (185, "3m05s"), (7380, "2h03m"), (-1, "0.0s")],
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


@pytest.mark.parametrize(
    ("record", "time", "result"),
    [
        (RECORD, "", ""),
        (DONE, "1m14s", "exp-a"),
        (FAILED, "3.0s", "exit 3: stage 'work': failed with exit code 3"),
        (RUNNING, "10s", "slot 1"),
    ],
)
def test_duration_and_result(record: RunRecord, time: str, result: str) -> None:
    assert duration(record, T0 + timedelta(seconds=10)) == time
    assert result_text(record) == result


def test_status_rows_and_table() -> None:
    rows = status_rows([RECORD, FAILED], T0, Path("/home/u"))
    assert rows[0][:4] == ["7", "exp-a", "~/proj", "queued"]
    lines = format_table(rows)
    assert lines[0].split() == [
        "ID",
        "Name",
        "Repo",
        "State",
        "Where",
        "Created",
        "Duration",
        "Attempt",
        "Result",
    ]
    assert lines[0].index("Name") == lines[1].index("exp-a")  # aligned
    cut = format_table(rows, width=len(lines[2]) - 10)  # Created left out: it fits
    assert "Created" not in cut[0] and cut[2].endswith("failed with exit code 3")
    tiny = format_table(rows, width=40)  # every column that may go, then the result cut
    assert tiny[0].split() == ["ID", "Name", "State", "Duration", "Result"]
    assert tiny[2].endswith("…") and len(tiny[2]) == 40


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        ({}, ""),
        ({"executor": "ray"}, "ray"),
        (
            {"state": RunState.RUNNING, "location": "ray http://h:8265 node 1a2b3c4d"},
            "ray http://h:8265 node 1a2b3c4d",
        ),
        ({"state": RunState.SUCCESS, "location": "local", "executor": None}, "local"),
    ],
)
def test_where_a_run_goes_or_went(changes: dict[str, object], shown: str) -> None:
    assert where(replace(RECORD, **changes)) == shown


@pytest.mark.parametrize(
    ("repo", "home", "shown"),
    [
        ("/home/u/p", Path("/home/u"), "~/p"),
        ("/home/u", Path("/home/u"), "~"),
        ("/srv/p", Path("/home/u"), "/srv/p"),
        ("/home/user2/p", Path("/home/u"), "/home/user2/p"),
    ],
)
def test_short_repo(repo: str, home: Path, shown: str) -> None:
    assert short_repo(repo, home) == shown


@pytest.mark.parametrize(
    ("record", "line"),
    [
        (RECORD, "[7] exp-a: queued"),
        (RUNNING, "[7] exp-a: running (slot 1, attempt 1)"),
        (DONE, f"[7] exp-a: success -> {DONE.experiment_ref}"),
        (FAILED, "[7] exp-a: failed (exit 3: stage 'work': failed with exit code 3)"),
    ],
)
def test_progress_line(record: RunRecord, line: str) -> None:
    assert progress_line(record) == line


@pytest.mark.parametrize(
    ("argv", "temp", "reset"),
    [
        ([], False, False),
        (["-S", "a=1", "-n", "x", "-f", "-j", "2", "train"], False, False),
        (["--temp"], True, False),
        (["--reset", "-S", "a=1"], False, True),
    ],
)
def test_fast_path_parses_runs_in_the_workspace(argv: list[str], temp: bool, reset: bool) -> None:
    call = parse_run_args(argv)
    assert call is not None and not call.queue
    assert (call.temp, call.reset) == (temp, reset)
    assert parse_queue_args(argv) is None  # not a queue call


def test_fast_path_reads_a_workspace_run_as_exp_run_does() -> None:
    call = parse_run_args(["-S", "a=1", "-n", "x", "-f", "-j", "2", "train"])
    assert call is not None
    assert call.request == EnqueueRequest(
        targets=["train"], set_params=["a=1"], name="x", force=True, stage_jobs=2
    )


def test_a_narrow_terminal_drops_columns_before_it_cuts_the_progress() -> None:
    """Created, Repo, Where and Attempt give way, in that order, to the progress:
    at 80 columns it was cut to ``slot 0:…`` behind a long repo path and a date."""
    progress = "slot 0: step 40/100, 2m30s left, acc=0.91 loss=0.231"
    row = ["12", "sweep-12", "/tmp/night/b/proj", "running", "local"]
    rows = [[*row, "2026-12-06 08:36:04", "1m40s", "1", progress]]
    full = format_table(rows)
    assert format_table(rows, width=len(full[1])) == full  # room enough: all of it
    (head, line) = format_table(rows, width=len(full[1]) - 1)
    assert head.split() == [h for h in HEADERS if h != "Created"]
    assert line.endswith(progress) and len(line) < len(full[1])
    (head, line) = format_table(rows, width=80)
    assert head.split() == ["ID", "Name", "State", "Duration", "Result"]
    assert line.split()[:4] == ["12", "sweep-12", "running", "1m40s"]
    assert "step 40/100, 2m30s left" in line and line.endswith("…") and len(line) == 80
    assert head.index("Result") == line.index("slot 0")
