"""The time-left estimates of running runs and of the queue, over plain records."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from exq.cli.queue_view import daemon_line, progress_text, result_text, run_json
from exq.daemon.progress import RunProgress, queue_eta, run_eta, sweep_durations
from exq.daemon.protocol import StatusReply
from exq.daemon.states import RunRecord, RunState

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
BASE = RunRecord(
    id=1,
    seq=1,
    name="a",
    repo="/r",
    baseline="b" * 40,
    snapshot="s" * 40,
    snapshot_ref="refs/exq/queue/1",
    params=[],
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


def done(run_id: int, seconds: float, **changes: object) -> RunRecord:
    fields: dict[str, object] = {"state": RunState.SUCCESS, **changes}
    return replace(BASE, id=run_id, started=T0, finished=T0 + timedelta(seconds=seconds), **fields)


@pytest.mark.parametrize(
    ("elapsed", "step", "total", "durations", "eta"),
    [
        (30.0, 2, 5, [], 20.0),  # 3 steps in 30 s, 2 to go
        (30.0, 4, 5, [100.0], 0.0),  # the last step is done
        (30.0, 9, 5, [], 0.0),  # past its declared total
        (30.0, None, 5, [100.0, 60.0, 80.0], 50.0),  # no step: the sweep's median
        (30.0, 2, None, [40.0, 20.0], 0.0),  # longer than the sweep's runs took
        (30.0, 2, None, [], None),  # nothing to go by
    ],
)
def test_run_eta(
    elapsed: float, step: int | None, total: int | None, durations: list[float], eta: float | None
) -> None:
    assert run_eta(elapsed, step, total, durations) == eta


def test_a_sweep_is_its_repository_and_baseline_and_only_successes_count() -> None:
    running = replace(BASE, id=9, state=RunState.RUNNING, started=T0)
    others = [
        done(2, 10),
        done(3, 20, baseline="c" * 40),
        done(4, 30, repo="/other"),
        done(5, 40, state=RunState.FAILED),
        running,
    ]
    assert sweep_durations(running, others) == [10.0]


def test_queue_eta_spreads_running_and_queued_work_over_the_slots() -> None:
    running = replace(BASE, id=9, state=RunState.RUNNING, started=T0)
    queued = [replace(BASE, id=i) for i in (10, 11)]
    runs = [done(2, 100), done(3, 60), running, *queued]
    progress = {9: RunProgress(eta_seconds=40.0)}
    assert queue_eta(runs, progress, 2) == (40 + 80 + 80) / 2
    assert queue_eta(runs, progress, None) is None  # no daemon: no slots
    assert queue_eta(runs, {9: RunProgress()}, 2) is None  # a running run without estimate
    assert queue_eta([done(2, 5)], {}, 1) == 0.0  # drained
    other_repo = replace(BASE, id=12, repo="/other")
    assert queue_eta([*runs, other_repo], progress, 2) is None  # nothing ran there yet
    # a paused queue starts none of its queued runs: it said 'drains in about 1m40s'
    assert queue_eta(runs, progress, 2, paused=True) is None
    assert queue_eta([done(2, 100), running], progress, 2, paused=True) == 40 / 2


def test_running_runs_show_their_progress_in_text_and_json() -> None:
    running = replace(BASE, state=RunState.RUNNING, started=T0, worker_slot=0, attempts=1)
    progress = RunProgress(
        step=41, total_steps=100, metrics={"loss": 0.2312345, "acc": 0.9}, eta_seconds=125.0
    )
    assert progress_text(progress) == "step 41/100, 2m05s left, loss=0.23123 acc=0.9"
    assert result_text(running, progress) == "slot 0: step 41/100, 2m05s left, loss=0.23123 acc=0.9"
    assert result_text(running, RunProgress()) == "slot 0"
    assert run_json(running, True, progress)["progress"] == {
        "step": 41,
        "total_steps": 100,
        "metrics": {"loss": 0.2312345, "acc": 0.9},
        "updated": None,
        "eta_seconds": 125.0,
    }
    assert run_json(running)["progress"] == {
        "step": None,
        "total_steps": None,
        "metrics": {},
        "updated": None,
        "eta_seconds": None,
    }
    assert run_json(running, daemon_alive=False)["progress"] is None  # shown interrupted
    assert run_json(BASE)["progress"] is None


def test_the_daemon_line_says_when_the_queue_drains() -> None:
    reply = StatusReply(pid=42, paused=False, stopping=False, slots_busy=1, slots_total=2)
    assert daemon_line(reply, None, 3725.0).endswith("; the queue drains in about 1h02m")
    assert daemon_line(reply, None, 0.0) == "Daemon: running (pid 42), 1/2 slots busy"
