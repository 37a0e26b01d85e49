"""The queue database of schema 3 brought to 4 (resources, order, limits, the
environment, the 'timeout' state), on real SQLite files; the new columns read
back; the file stays owner-only."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from exq.daemon.states import RunState
from exq.daemon.store import MIGRATIONS, SCHEMA_VERSION, NewRun, SyncStore

RUN = NewRun(repo="/r", baseline="b" * 40, snapshot="s" * 40, name="n")


def schema_3(path: Path) -> None:
    """A database as exq wrote it before schema 4, with runs, a recorded process
    and a removed run whose id must not come back."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for step, statements in enumerate(MIGRATIONS[:3], start=1):
        for statement in statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (step,))
    for run_id, state in [(1, "success"), (2, "running"), (3, "queued")]:
        conn.execute(
            "INSERT INTO runs (id, seq, name, repo, baseline, snapshot, snapshot_ref, state,"
            " created, token, gpus) VALUES (?, ?, ?, '/r', 'b', 's', 'ref', ?, "
            "'2026-01-01T00:00:00+00:00', 'tok', 0.5)",
            (run_id, run_id, f"run{run_id}", state),
        )
    conn.execute("INSERT INTO run_procs VALUES (2, 4242, 99, 'tok')")
    conn.execute("DELETE FROM runs WHERE id = 3")
    conn.close()


def test_schema_3_is_brought_to_4_keeping_rows_processes_and_ids(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    schema_3(db)
    with SyncStore(db) as store:
        runs = store.list_runs()
        assert [(r.id, r.state, r.gpus) for r in runs] == [
            (1, RunState.SUCCESS, 0.5),
            (2, RunState.RUNNING, 0.5),
        ]
        assert runs[0].priority == 0 and runs[0].after == [] and runs[0].env is None
        assert [(p.pid, p.token) for p in store.procs(2)] == [(4242, "tok")]
        assert store.enqueue(RUN) == 4  # 3 was removed: never reused
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    with pytest.raises(sqlite3.IntegrityError):  # the process rows still point at runs
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("INSERT INTO run_procs VALUES (77, 1, 1, 't')")
    conn.execute("UPDATE runs SET state = 'timeout' WHERE id = 1")  # the new state is allowed
    conn.commit()
    conn.close()


def test_new_columns_read_back_and_the_file_is_owner_only(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    db.touch(mode=0o644)
    os.chmod(db, 0o644)
    run = NewRun(
        repo="/r",
        baseline="b" * 40,
        snapshot="s" * 40,
        name="full",
        gpus=2,
        cpus=1.5,
        mem=1 << 30,
        priority=-2,
        after=[1, 2],
        timeout=7200.0,
        retries=3,
        retry_delay=30.0,
        env={"PATH": "/venv/bin", "SECRET": "x"},
    )
    with SyncStore(db) as store:
        run_id = store.enqueue(run)
        record = store.get_run(run_id)
        assert record is not None
        assert (record.gpus, record.cpus, record.mem, record.priority, record.after) == (
            2,
            1.5,
            1 << 30,
            -2,
            [1, 2],
        )
        assert (record.timeout, record.retries, record.retries_left, record.retry_delay) == (
            7200.0,
            3,
            3,
            30.0,
        )
        assert record.env == {"PATH": "/venv/bin", "SECRET": "x"}
        assert "SECRET" not in repr(record)
        assert store.set_priority(run_id, 4) and store.get_run(run_id).priority == 4
        other = store.enqueue(RUN)
        assert store.run_next(other)
        first = store.list_runs(["queued"])
        assert sorted(first, key=lambda r: (-r.priority, r.seq))[0].id == other
        store.set_setting("jobs", "3")
        assert store.setting("jobs") == "3" and store.setting("paused") is None
    for path in (db, *tmp_path.glob("queue.db-*")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_schema_4_is_brought_to_5_keeping_rows_and_allowing_pruned(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for step, statements in enumerate(MIGRATIONS[:4], start=1):
        for statement in statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (step,))
    for run_id, state in [(1, "timeout"), (2, "running"), (3, "queued")]:
        conn.execute(
            "INSERT INTO runs (id, seq, name, repo, baseline, snapshot, snapshot_ref, state,"
            " created, token, priority) VALUES (?, ?, ?, '/r', 'b', 's', 'ref', ?, "
            "'2026-01-01T00:00:00+00:00', 'tok', 3)",
            (run_id, run_id, f"run{run_id}", state),
        )
    conn.execute("INSERT INTO run_procs VALUES (2, 4242, 99, 'tok')")
    conn.execute("DELETE FROM runs WHERE id = 3")
    with pytest.raises(sqlite3.IntegrityError):  # schema 4 knows no 'pruned'
        conn.execute("UPDATE runs SET state = 'pruned' WHERE id = 2")
    conn.close()
    with SyncStore(db) as store:
        assert [(r.id, r.state, r.priority) for r in store.list_runs()] == [
            (1, RunState.TIMEOUT, 3),
            (2, RunState.RUNNING, 3),
        ]
        assert [(p.pid, p.token) for p in store.procs(2)] == [(4242, "tok")]
        assert store.enqueue(RUN) == 4  # ids still never reused
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("UPDATE runs SET state = 'pruned' WHERE id = 2")  # allowed now
    conn.close()
    with SyncStore(db) as store:
        pruned = store.get_run(2)
        assert pruned is not None and pruned.state is RunState.PRUNED
        assert store.retry([2]) == [2]  # a pruned run can be queued again
