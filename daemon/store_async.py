"""The daemon's door to the queue database (aiosqlite).

All SQL text lives in :mod:`exq.daemon.store`; this module only runs it, so
that the CLI, which uses :class:`~exq.daemon.store.SyncStore`, does not import
aiosqlite and anyio.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite
import anyio

from exq.daemon.states import ENDED, QueueItem, RunState
from exq.daemon.store import (
    BUSY_TIMEOUT_SECONDS,
    PRAGMAS,
    SQL_ADD_PROC,
    SQL_BEGIN,
    SQL_CHECKPOINT,
    SQL_CLAIM,
    SQL_CLEAR_PROCS,
    SQL_COMMIT,
    SQL_DISTINCT_REPOS,
    SQL_GET_SETTING,
    SQL_IN_STATE,
    SQL_LIST,
    SQL_PROCS,
    SQL_QUEUE_ITEMS,
    SQL_QUEUED,
    SQL_ROLLBACK,
    SQL_SET_LOCATION,
    SQL_SET_SETTING,
    SQL_STATES,
    RunProcess,
    RunRecord,
    SyncStore,
    lookups,
    now,
    record_of,
    store_failure,
    transition_params,
    transition_sql,
)
from exq.daemon.study_store import SQL_ANY_ACTIVE_STUDY, SQL_ANY_STUDY_TO_ASK


class AsyncStore:
    """The daemon's door to the queue (aiosqlite); open with :meth:`open`.

    One connection; a lock keeps the transactions of concurrent tasks apart.
    """

    def __init__(self, db_path: Path, conn: aiosqlite.Connection) -> None:
        self.db_path = db_path
        self._conn = conn
        self._lock = anyio.Lock()
        self._identity = _identity(db_path)
        self._reserve = db_path.with_name(RESERVE_NAME)
        _hold_reserve(self._reserve)

    def is_lost(self) -> bool:
        """Whether the database file was moved or deleted since it was opened: the
        connection goes on writing to the old file, which the CLI no longer reads
        (it would create a fresh database there and give out ids again)."""
        return self._identity is None or _identity(self.db_path) != self._identity

    @classmethod
    async def open(cls, db_path: Path | str) -> AsyncStore:
        """Create or migrate the database, then connect."""
        path = Path(db_path)
        await anyio.to_thread.run_sync(lambda: SyncStore(path).close())
        try:
            conn = await aiosqlite.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
            for pragma in PRAGMAS:
                await conn.execute(pragma)
        except sqlite3.Error as exc:
            raise store_failure(path, exc) from exc
        return cls(path, conn)

    async def close(self) -> None:
        await self._conn.close()

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        with anyio.CancelScope(shield=True):
            await self.close()

    # -- reads

    async def get_run(self, key: int | str) -> RunRecord | None:
        """Like :meth:`SyncStore.get_run`."""
        for sql, arg in lookups(key):
            rows = await self._read(sql, (arg,))
            if rows:
                return record_of(rows[0])
        return None

    async def list_runs(self) -> list[RunRecord]:
        """Every run, oldest first."""
        return [record_of(row) for row in await self._read(SQL_LIST, ())]

    async def in_state(self, state: RunState) -> list[RunRecord]:
        """The runs in ``state``, in queue order."""
        return [record_of(row) for row in await self._read(SQL_IN_STATE, (state.value,))]

    async def queued(self, limit: int = -1) -> list[RunRecord]:
        """The first ``limit`` queued runs (all by default), in queue order:
        priority, then age."""
        return [record_of(row) for row in await self._read(SQL_QUEUED, (limit,))]

    async def states(self) -> dict[int, RunState]:
        """The state of every run, by id."""
        return {run_id: RunState(state) for run_id, state in await self._read(SQL_STATES, ())}

    async def has_active_study(self) -> bool:
        """Whether a study still has trials to queue or to hear the end of."""
        return bool(await self._read(SQL_ANY_ACTIVE_STUDY, ()))

    async def has_study_to_ask(self) -> bool:
        """Whether a study still has trials to ask Optuna for (and then to queue)."""
        return bool(await self._read(SQL_ANY_STUDY_TO_ASK, ()))

    async def setting(self, key: str) -> str | None:
        rows = await self._read(SQL_GET_SETTING, (key,))
        return rows[0][0] if rows else None

    async def set_setting(self, key: str, value: str) -> None:
        await self._write([(SQL_SET_SETTING, (key, value))])

    async def queue_items(self) -> list[QueueItem]:
        return [QueueItem(run_id, seq) for run_id, seq in await self._read(SQL_QUEUE_ITEMS, ())]

    async def procs(self, run_id: int) -> list[RunProcess]:
        return [RunProcess(*row) for row in await self._read(SQL_PROCS, (run_id,))]

    async def repos(self) -> list[str]:
        """Every repository a run was ever queued from."""
        return [row[0] for row in await self._read(SQL_DISTINCT_REPOS, ())]

    # -- writes (the scheduler's)

    async def claim(
        self,
        run_id: int,
        *,
        slot: int,
        log_path: str,
        token: str,
        location: str = "local",
        gpus: Sequence[str] = (),
    ) -> bool:
        """queued -> running in ``slot`` holding ``gpus``, counting an attempt;
        False if not queued."""
        params = (now(), slot, log_path, token, location, json.dumps(list(gpus)), run_id)
        return await self._write([(SQL_CLAIM, params)])

    async def transition(self, run_id: int, old: RunState, new: RunState, **values: Any) -> bool:
        """Compare-and-set ``old`` -> ``new``, setting ``values`` too; False if the
        run was not in ``old``. Ending a run stamps ``finished`` and forgets its
        recorded processes."""
        if new in ENDED:
            values.setdefault("finished", now())
        steps = [(transition_sql(values), transition_params(run_id, old, new, values))]
        if old is RunState.RUNNING:
            steps.append((SQL_CLEAR_PROCS, (run_id,)))
        return await self._write(steps)

    async def fail_and_requeue(
        self, run_id: int, failed: dict[str, Any], queued: dict[str, Any]
    ) -> bool:
        """running -> failed (with ``failed``) -> queued (with ``queued``) in one
        transaction: an automatic retry, never seen as a failure by a run that
        waits for this one."""
        failed = {"finished": now(), **failed}
        steps = [
            (
                transition_sql(failed),
                transition_params(run_id, RunState.RUNNING, RunState.FAILED, failed),
            ),
            (SQL_CLEAR_PROCS, (run_id,)),
            (
                transition_sql(queued),
                transition_params(run_id, RunState.FAILED, RunState.QUEUED, queued),
            ),
        ]
        return await self._write(steps)

    async def record_checkpoint(self, run_id: int, token: str, *, ref: str, sha: str) -> bool:
        """Count a checkpoint of the running attempt holding ``token`` and record
        its commit as the run's experiment; False if that attempt is not running."""
        return await self._write([(SQL_CHECKPOINT, (ref, sha, run_id, token))])

    async def set_location(self, run_id: int, location: str) -> None:
        """Where the run's current attempt runs (shown by ``queue status``)."""
        await self._write([(SQL_SET_LOCATION, (location, run_id))])

    async def add_proc(self, proc: RunProcess) -> None:
        """Record a stage process group of a running run."""
        await self._write([(SQL_ADD_PROC, (proc.run_id, proc.pid, proc.start_ticks, proc.token))])

    async def _write(self, steps: list[tuple[str, tuple[Any, ...]]]) -> bool:
        """Run ``steps`` in one transaction; True if the first changed a row (else
        the rest are rolled back).

        On a full disk the reserve file is given up and the transaction tried
        once more, so that the end of the run that filled the disk is recorded.
        """
        async with self._lock:
            try:
                return await self._transaction(steps)
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_FULL or not _release(self._reserve):
                    raise store_failure(self.db_path, exc) from exc
            try:
                return await self._transaction(steps)
            except sqlite3.Error as exc:
                raise store_failure(self.db_path, exc) from exc

    async def _transaction(self, steps: list[tuple[str, tuple[Any, ...]]]) -> bool:
        await self._conn.execute(SQL_BEGIN)
        try:
            first = await self._conn.execute(*steps[0])
            applied = first.rowcount == 1
            if applied:
                for sql, params in steps[1:]:
                    await self._conn.execute(sql, params)
            await self._conn.execute(SQL_COMMIT if applied else SQL_ROLLBACK)
        except BaseException:
            # SQLite has rolled back itself after some errors (a full disk).
            if self._conn.in_transaction:
                with anyio.CancelScope(shield=True):
                    await self._conn.execute(SQL_ROLLBACK)
            raise
        return applied

    async def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        try:
            async with self._conn.execute(sql, params) as cursor:
                return list(await cursor.fetchall())
        except sqlite3.Error as exc:
            raise store_failure(self.db_path, exc) from exc


# Space the daemon holds beside the queue database and gives up when the disk is
# full, so that it can still record how runs ended (a run's log may fill the disk).
RESERVE_NAME = "queue.reserve"
RESERVE_BYTES = 256 * 1024


def _hold_reserve(path: Path) -> None:
    """Write the reserve file if it is missing; a full disk leaves it missing."""
    if path.exists():
        return
    try:
        # Owner-only, as everything in the state folder.
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
            handle.write(bytes(RESERVE_BYTES))  # written, not sparse: the space is taken
    except FileExistsError:
        return
    except OSError:
        path.unlink(missing_ok=True)


def _release(path: Path) -> bool:
    """Give up the reserve; whether there was one to give."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino
