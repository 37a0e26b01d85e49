"""Checkpoint runs in the daemon, in-process: each checkpoint recorded at once,
a stopped run keeps its last checkpoint and resumes from it at the next start,
and no signal reaches a run while one of its snapshots is under way.

The training script (``HOLD_TRAIN``) takes a checkpoint at every step, notes
each step it computes in ``$RDV/computed`` (so a step computed twice shows),
and after the step ``$HOLD_AT`` waits for the file ``$RDV/go``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import anyio
import pytest
import structlog

from exq.daemon.config import DaemonConfig
from exq.daemon.scheduler import Active, Scheduler
from exq.daemon.states import RunState
from exq.daemon.store import RunRecord
from exq.daemon.store_async import AsyncStore
from exq.engine.experiments.refs import exp_ref
from exq.engine.git import Git
from tests.support import (
    alive,
    call,
    chain_steps,
    computed,
    daemon,
    enqueue,
    get,
    git,
    make_training_project,
    rdv,
    step_of,
    tsv_steps,
    wait_for,
    wait_state,
)

pytestmark = pytest.mark.anyio


def holding(config: DaemonConfig, hold_at: int) -> DaemonConfig:
    return replace(config, extra_env={**config.extra_env, "HOLD_AT": str(hold_at)})


async def test_each_checkpoint_is_recorded_while_the_run_goes_on(
    config: DaemonConfig,
    tmp_path: Path,  # noqa: F811
) -> None:
    repo, baseline = make_training_project(tmp_path / "train")
    config = holding(config, 2)
    run_id = enqueue(config, repo, "ck")
    ref = exp_ref(baseline, "ck")
    async with daemon(config):
        await wait_for(lambda: list(rdv(config).glob("held-*")), "the script to hold at step 2")
        held = get(config, run_id)
        assert (held.state, held.checkpoints, held.experiment_ref) == (RunState.RUNNING, 3, ref)
        assert Git.open(repo).get_ref(ref) == held.experiment_sha
        assert step_of(repo, held.experiment_sha or "") == 2
        (rdv(config) / "go").write_text("")
        done = await wait_state(config, run_id, RunState.SUCCESS, RunState.FAILED)
    assert done.state is RunState.SUCCESS, done.error
    assert (done.checkpoints, done.experiment_ref) == (5, ref)
    assert Git.open(repo).get_ref(ref) == done.experiment_sha
    assert [s for s in chain_steps(repo, done.experiment_sha or "", baseline) if s is not None] == [
        0,
        1,
        2,
        3,
        4,
    ]


async def stopped_at_step_2(config: DaemonConfig, repo: Path) -> tuple[int, RunRecord]:
    """Queue a run, stop the daemon with --kill once it holds after step 2."""
    run_id = enqueue(config, repo, "ck")
    async with daemon(holding(config, 2)):
        await wait_for(lambda: list(rdv(config).glob("held-*")), "the script to hold at step 2")
        await call(config, "stop", True)
        stopped = await wait_state(
            config, run_id, RunState.INTERRUPTED, RunState.FAILED, RunState.SUCCESS
        )
    return run_id, stopped


async def test_a_stopped_checkpoint_run_resumes_from_its_last_checkpoint(
    config: DaemonConfig,
    tmp_path: Path,  # noqa: F811
) -> None:
    repo, baseline = make_training_project(tmp_path / "train")
    run_id, stopped = await stopped_at_step_2(config, repo)
    assert stopped.state is RunState.INTERRUPTED, stopped.error
    assert stopped.checkpoints == 3 and step_of(repo, stopped.experiment_sha or "") == 2
    (held,) = rdv(config).glob("held-*")
    assert not alive(int(held.name.split("-")[1]))
    async with daemon(config):  # no HOLD_AT: it runs through
        done = await wait_state(config, run_id, RunState.SUCCESS, RunState.FAILED)
    assert done.state is RunState.SUCCESS, done.error
    assert (done.attempts, done.checkpoints, done.resume_sha) == (2, 5, stopped.experiment_sha)
    assert computed(rdv(config)) == [0, 1, 2, 3, 4]  # no step computed twice
    steps = chain_steps(repo, done.experiment_sha or "", baseline)
    assert [s for s in steps if s is not None] == [0, 1, 2, 3, 4]
    assert tsv_steps(repo, done.experiment_sha or "") == [0, 1, 2, 3, 4]
    assert "resuming from checkpoint" in Path(done.log_path or "").read_text()


async def test_with_resume_off_an_interrupted_run_starts_over(
    config: DaemonConfig,
    tmp_path: Path,  # noqa: F811
) -> None:
    repo, baseline = make_training_project(tmp_path / "train")
    run_id, stopped = await stopped_at_step_2(config, repo)
    assert stopped.state is RunState.INTERRUPTED
    async with daemon(replace(config, resume_checkpoints=False)):
        done = await wait_state(config, run_id, RunState.SUCCESS, RunState.FAILED)
    assert done.state is RunState.SUCCESS, done.error
    assert (done.checkpoints, done.resume_sha) == (5, None)
    assert computed(rdv(config)) == [0, 1, 2, 0, 1, 2, 3, 4]
    steps = chain_steps(repo, done.experiment_sha or "", baseline)
    assert [s for s in steps if s is not None] == [0, 1, 2, 3, 4]  # a new chain


async def test_no_signal_reaches_a_run_during_a_snapshot(
    config: DaemonConfig,
    tmp_path: Path,  # noqa: F811
) -> None:
    token = "t0k3n"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**os.environ, "EXQ_RUN_TOKEN": token},
        start_new_session=True,
    )
    try:
        async with await AsyncStore.open(config.db_path) as store:
            scheduler = Scheduler(store, config, structlog.get_logger("test"))
            record = RunRecord(
                id=1,
                seq=1,
                name="x",
                repo="",
                baseline="",
                snapshot="",
                snapshot_ref="",
                params=[],
                targets=[],
                stage_jobs=1,
                state=RunState.RUNNING,
                attempts=1,
                created=None,
                started=None,
                finished=None,
                exit_code=None,  # type: ignore[arg-type]
                error=None,
                log_path=None,
                experiment_ref=None,
                experiment_sha=None,
                checkpoints=0,
                worker_slot=0,
                token=token,
            )
            active = Active(record=record, slot=0, pgids=[proc.pid])
            async with anyio.create_task_group() as tg:
                tg.start_soon(scheduler.run)
                await wait_for(lambda: scheduler._tg is not None, "the scheduler loop")
                async with active.snapshot_lock:  # the engine taking a snapshot
                    scheduler._signal(active, signal.SIGKILL)
                    assert active.deferred
                    for _ in range(20):  # the deferred signal must not go out meanwhile
                        await anyio.sleep(0.01)
                    assert proc.poll() is None
                await wait_for(lambda: proc.poll() is not None, "the signal after the snapshot")
                assert proc.returncode == -signal.SIGKILL
                tg.cancel_scope.cancel()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_version_1_database_gains_resume_sha_and_keeps_its_runs(tmp_path: Path) -> None:
    import sqlite3

    from exq.daemon.store import MIGRATIONS, SCHEMA_VERSION, SyncStore

    db = tmp_path / "queue.db"
    conn = sqlite3.connect(db)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (1)")
    conn.execute(
        "INSERT INTO runs (seq, name, repo, baseline, snapshot, snapshot_ref, state, created, "
        "experiment_sha, checkpoints) VALUES (1, 'old', '/r', 'b', 's', 'q', 'interrupted', "
        "'2024-01-01T00:00:00+00:00', 'abc', 2)"
    )
    conn.commit()
    conn.close()
    with SyncStore(db) as store:
        (record,) = store.list_runs()
    assert (record.name, record.experiment_sha, record.checkpoints, record.resume_sha) == (
        "old",
        "abc",
        2,
        None,
    )
    assert SCHEMA_VERSION >= 2


async def test_a_row_one_checkpoint_behind_its_ref_resumes_from_the_ref(
    config: DaemonConfig,
    tmp_path: Path,  # noqa: F811
) -> None:
    # A daemon killed between moving the ref and writing the row leaves the row
    # one checkpoint behind: the resume must start from the ref's tip.
    import sqlite3

    repo, baseline = make_training_project(tmp_path / "train")
    run_id, stopped = await stopped_at_step_2(config, repo)
    tip = stopped.experiment_sha or ""
    behind = git(repo, "rev-parse", f"{tip}^").strip()
    assert step_of(repo, behind) == 1
    with sqlite3.connect(config.db_path) as db:
        db.execute("UPDATE runs SET experiment_sha = ? WHERE id = ?", (behind, run_id))
    async with daemon(config):
        done = await wait_state(config, run_id, RunState.SUCCESS, RunState.FAILED)
    assert done.state is RunState.SUCCESS, done.error
    assert computed(rdv(config)) == [0, 1, 2, 3, 4]  # step 2 is not computed again
    steps = chain_steps(repo, done.experiment_sha or "", baseline)
    assert [s for s in steps if s is not None] == [0, 1, 2, 3, 4]
