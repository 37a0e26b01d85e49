"""The scheduler's decisions with a fake executor: which runs start, in which
slots, how many at once, and the end state each attempt's result gives. The
queue is a real SQLite file; no process, git repository or worktree is made."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
import structlog
import structlog.testing

from exq.daemon.config import DaemonConfig
from exq.daemon.executors.base import LOCAL, ExecResult, RunHooks
from exq.daemon.scheduler import Scheduler
from exq.daemon.states import MAX_ATTEMPTS, Outcome, RunRecord, RunState
from exq.daemon.store import NewRun, SyncStore
from exq.daemon.store_async import AsyncStore
from exq.engine.run.callbacks import CheckpointEvent
from tests.support import FakeExecutor, Handler

pytestmark = pytest.mark.anyio

# Under a running daemon an interrupted attempt is queued again: not an end.
FINAL = (RunState.SUCCESS, RunState.FAILED, RunState.CANCELLED)


def queue(config: DaemonConfig, names: Iterable[str]) -> list[int]:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with SyncStore(config.db_path) as store:
        return [
            store.enqueue(NewRun(repo="/nowhere", baseline="b" * 40, snapshot="s" * 40, name=n))
            for n in names
        ]


def rows(config: DaemonConfig) -> dict[str, RunRecord]:
    with SyncStore(config.db_path) as store:
        return {record.name: record for record in store.list_runs()}


@asynccontextmanager
async def scheduling(config: DaemonConfig, handler: Handler) -> AsyncIterator[FakeExecutor]:
    """The scheduler running with a fake executor, stopped at the end."""
    executor = FakeExecutor(handler)
    async with await AsyncStore.open(config.db_path) as store:
        # Events are kept, not printed: a crash's traceback is not rendered.
        log = structlog.wrap_logger(structlog.testing.CapturingLogger(), processors=[])
        scheduler = Scheduler(store, config, log, executors={LOCAL: executor})
        async with anyio.create_task_group() as tg:
            await tg.start(scheduler.run)
            yield executor
            await scheduler.stop(False)


async def until_ended(config: DaemonConfig, count: int) -> dict[str, RunRecord]:
    with anyio.fail_after(10):
        while sum(r.state in FINAL for r in rows(config).values()) < count:
            await anyio.sleep(0.005)
    return rows(config)


@pytest.fixture
def config(tmp_path: Path) -> DaemonConfig:
    return DaemonConfig(state_dir=tmp_path / "state", runtime_dir=tmp_path / "run", jobs=2)


async def test_each_result_gives_its_end_state(config: DaemonConfig) -> None:
    results = {
        "ok": ExecResult(Outcome.SUCCESS, 0, experiment_ref="refs/exps/x", experiment_sha="e" * 40),
        "bad": ExecResult(Outcome.FAILED, 3, error="stage 'train' failed"),
    }
    queue(config, results)

    async def answer(run: RunRecord, slot: int, hooks: RunHooks) -> ExecResult:
        return results[run.name]

    async with scheduling(config, answer):
        done = await until_ended(config, 2)
    assert (done["ok"].state, done["ok"].experiment_ref) == (RunState.SUCCESS, "refs/exps/x")
    assert (done["bad"].state, done["bad"].exit_code) == (RunState.FAILED, 3)
    assert done["bad"].error == "stage 'train' failed"


async def test_an_interrupted_attempt_runs_again_until_its_attempts_are_used(
    config: DaemonConfig,
) -> None:
    (run_id,) = queue(config, ["node-died"])

    async def interrupted(run: RunRecord, slot: int, hooks: RunHooks) -> ExecResult:
        return ExecResult(Outcome.INTERRUPTED)

    async with scheduling(config, interrupted) as executor:
        done = await until_ended(config, 1)
        assert done["node-died"].state is RunState.FAILED
    assert [call for call, _ in executor.calls] == [run_id] * MAX_ATTEMPTS
    assert done["node-died"].attempts == MAX_ATTEMPTS


async def test_runs_start_in_queue_order_at_most_jobs_at_once(config: DaemonConfig) -> None:
    ids = queue(config, [f"r{i}" for i in range(5)])
    running = 0
    most = 0
    release = anyio.Event()

    async def hold(run: RunRecord, slot: int, hooks: RunHooks) -> ExecResult:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1
        return ExecResult(Outcome.SUCCESS, 0)

    async with scheduling(config, hold) as executor:
        with anyio.fail_after(10):
            while len(executor.calls) < 2:
                await anyio.sleep(0.005)
        assert [run_id for run_id, _ in executor.calls] == ids[:2]
        assert {slot for _, slot in executor.calls} == {0, 1}
        release.set()
        done = await until_ended(config, 5)
    assert most == 2
    assert [run_id for run_id, _ in executor.calls] == ids
    assert all(record.state is RunState.SUCCESS for record in done.values())


async def test_a_crashing_executor_fails_the_run_and_the_next_goes_on(config: DaemonConfig) -> None:
    queue(config, ["boom", "after"])

    async def crash_once(run: RunRecord, slot: int, hooks: RunHooks) -> ExecResult:
        if run.name == "boom":
            raise RuntimeError("a bug")
        return ExecResult(Outcome.SUCCESS, 0)

    async with scheduling(config, crash_once):
        done = await until_ended(config, 2)
    assert done["boom"].state is RunState.FAILED
    assert done["boom"].error == "internal error: RuntimeError('a bug')"
    assert done["after"].state is RunState.SUCCESS


async def test_each_checkpoint_is_recorded_while_the_run_goes_on(config: DaemonConfig) -> None:
    queue(config, ["ck"])
    seen: list[int] = []

    async def checkpoints(run: RunRecord, slot: int, hooks: RunHooks) -> ExecResult:
        assert hooks.callbacks.on_checkpoint is not None
        for count in (1, 2, 3):
            sha = f"{count}" * 40
            event = CheckpointEvent(sha=sha, ref="refs/exps/ck", name="ck", count=count, step=count)
            await hooks.callbacks.on_checkpoint(event)
            seen.append(rows(config)["ck"].checkpoints)
        return ExecResult(Outcome.SUCCESS, 0, experiment_ref="refs/exps/ck", experiment_sha=sha)

    async with scheduling(config, checkpoints):
        done = await until_ended(config, 1)
    assert seen == [1, 2, 3]
    assert (done["ck"].checkpoints, done["ck"].experiment_sha) == (3, "3" * 40)
