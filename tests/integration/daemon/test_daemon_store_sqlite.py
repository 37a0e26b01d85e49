"""The queue store on real SQLite files: schema, enqueue, CAS, concurrency."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from exq.daemon.states import RunState
from exq.daemon.store import SCHEMA_VERSION, NewRun, RunProcess, StoreError, SyncStore
from exq.daemon.store_async import AsyncStore


def new_run(name: str = "exp", repo: str = "/r") -> NewRun:
    return NewRun(
        repo=repo,
        baseline="a" * 40,
        snapshot="b" * 40,
        name=name,
        params=["lr=0.1"],
        targets=["train"],
        stage_jobs=2,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "queue.db"


def test_open_creates_the_schema_in_wal_mode(db: Path) -> None:
    SyncStore(db).close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [
        (version,) for version in range(1, SCHEMA_VERSION + 1)
    ]
    conn.close()
    SyncStore(db).close()  # reopening migrates nothing
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_a_newer_schema_is_refused(db: Path) -> None:
    SyncStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer than this exq"):
        SyncStore(db)


def test_enqueue_round_trips_every_field(db: Path) -> None:
    with SyncStore(db) as store:
        run_id = store.enqueue(new_run("first"))
        record = store.get_run(run_id)
    assert record is not None
    assert (record.name, record.repo, record.params, record.targets, record.stage_jobs) == (
        "first",
        "/r",
        ["lr=0.1"],
        ["train"],
        2,
    )
    assert record.state is RunState.QUEUED
    assert record.snapshot_ref == f"refs/exq/queue/{run_id}"
    assert (record.attempts, record.checkpoints, record.exit_code) == (0, 0, None)
    assert record.started is None and record.finished is None
    assert record.created.tzinfo is not None


def test_ids_are_never_reused(db: Path) -> None:
    with SyncStore(db) as store:
        first = store.enqueue(new_run())
        second = store.enqueue(new_run())
        assert [r.id for r in store.remove([second])] == [second]
        third = store.enqueue(new_run())
    assert first < second < third


def test_a_failing_on_id_inserts_nothing(db: Path) -> None:
    seen: list[int] = []

    def refuse(run_id: int) -> None:
        seen.append(run_id)
        raise RuntimeError("no ref")

    with SyncStore(db) as store:
        with pytest.raises(RuntimeError):
            store.enqueue_many([new_run("a"), new_run("b")], on_id=refuse)
        assert seen == [1]
        assert store.list_runs() == []


def test_get_run_by_id_name_or_digits(db: Path) -> None:
    with SyncStore(db) as store:
        one = store.enqueue(new_run("alpha"))
        store.enqueue(new_run("alpha"))
        numbered = store.enqueue(new_run("77"))
        assert store.get_run(one).name == "alpha"  # type: ignore[union-attr]
        assert store.get_run("alpha").id == 2  # type: ignore[union-attr]  # the newest
        assert store.get_run(str(one)).id == one  # type: ignore[union-attr]
        assert store.get_run("77").id == numbered  # type: ignore[union-attr]  # no run 77
        assert store.get_run("nope") is None
        assert store.get_run(999) is None


async def _end(db: Path, run_id: int, state: RunState) -> None:
    async with await AsyncStore.open(db) as store:
        assert await store.claim(run_id, slot=0, log_path="/l", token="t")
        if state is not RunState.RUNNING:
            assert await store.transition(run_id, RunState.RUNNING, state, exit_code=3, error="x")


@pytest.mark.anyio
async def test_remove_and_retry_respect_states(db: Path) -> None:
    with SyncStore(db) as store:
        ids = [store.enqueue(new_run(f"r{i}")) for i in range(4)]
    await _end(db, ids[0], RunState.FAILED)
    await _end(db, ids[1], RunState.SUCCESS)
    await _end(db, ids[2], RunState.RUNNING)
    with SyncStore(db) as store:
        assert store.retry(ids) == [ids[0]]  # success, running, queued are not retried
        again = store.get_run(ids[0])
        assert again is not None and again.state is RunState.QUEUED
        assert (again.attempts, again.exit_code, again.error) == (1, None, None)
        assert again.seq > store.get_run(ids[3]).seq  # type: ignore[union-attr]  # at the back
        with pytest.raises(StoreError):
            store.remove(states=[RunState.RUNNING])
        removed = store.remove([ids[2]], states=[RunState.SUCCESS])
        assert [r.id for r in removed] == [ids[1]]  # the running one stays
        assert {r.id for r in store.list_runs()} == {ids[0], ids[2], ids[3]}
        assert [r.id for r in store.list_runs([RunState.RUNNING])] == [ids[2]]


@pytest.mark.anyio
async def test_transitions_are_compare_and_set(db: Path) -> None:
    with SyncStore(db) as store:
        run_id = store.enqueue(new_run())
    async with await AsyncStore.open(db) as store:
        assert not await store.transition(run_id, RunState.RUNNING, RunState.SUCCESS)
        assert await store.claim(run_id, slot=1, log_path="/log", token="tok")
        assert not await store.claim(run_id, slot=0, log_path="/log", token="tok")
        await store.add_proc(RunProcess(run_id, 4242, 17, "tok"))
        assert [p.pid for p in await store.procs(run_id)] == [4242]
        with pytest.raises(ValueError):
            await store.transition(run_id, RunState.RUNNING, RunState.QUEUED)
        assert await store.transition(
            run_id, RunState.RUNNING, RunState.SUCCESS, experiment_ref="refs/exps/x", exit_code=0
        )
        assert not await store.transition(run_id, RunState.RUNNING, RunState.FAILED)
        record = await store.get_run(run_id)
        assert await store.procs(run_id) == []  # forgotten with the end state
    assert record is not None
    assert (record.state, record.attempts, record.worker_slot) == (RunState.SUCCESS, 1, 1)
    assert (record.experiment_ref, record.exit_code, record.token) == ("refs/exps/x", 0, "tok")
    assert record.finished is not None and record.started is not None


@pytest.mark.anyio
async def test_two_connections_racing_to_claim_one_row_one_wins(db: Path) -> None:
    with SyncStore(db) as store:
        ids = [store.enqueue(new_run(f"r{i}")) for i in range(20)]
    wins: dict[int, list[str]] = {i: [] for i in ids}
    stores = [await AsyncStore.open(db) for _ in range(2)]

    async def claim_all(who: int) -> None:
        for run_id in ids:
            if await stores[who].claim(run_id, slot=who, log_path="/l", token=str(who)):
                wins[run_id].append(str(who))

    async with anyio.create_task_group() as tg:
        tg.start_soon(claim_all, 0)
        tg.start_soon(claim_all, 1)
    for store in stores:
        await store.close()
    assert all(len(w) == 1 for w in wins.values()), wins
    with SyncStore(db) as check:
        assert all(r.state is RunState.RUNNING and r.attempts == 1 for r in check.list_runs())
        assert [r.token for r in check.list_runs()] == [w[0] for w in wins.values()]


ENQUEUER = textwrap.dedent("""\
    import sys
    from exq.daemon.store import NewRun, SyncStore
    db, who = sys.argv[1], sys.argv[2]
    with SyncStore(db) as store:
        for i in range(50):
            store.enqueue(NewRun(repo="/r", baseline="a" * 40, snapshot="b" * 40,
                                 name=f"p{who}-{i}"))
""")


def test_eight_processes_enqueueing_fifty_each_give_four_hundred_rows(db: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", ENQUEUER, str(db), str(who)], stderr=subprocess.PIPE, text=True
        )
        for who in range(8)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, errors
    with SyncStore(db) as store:
        runs = store.list_runs()
    assert len(runs) == 400
    assert len({r.id for r in runs}) == 400
    assert len({r.seq for r in runs}) == 400
    assert {r.name for r in runs} == {f"p{w}-{i}" for w in range(8) for i in range(50)}
