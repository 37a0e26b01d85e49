"""The queue database: the only module that holds SQL (with its studies' part,
:mod:`exq.daemon.study_store`, whose tables are in the migrations below).

One SQLite file per user (``DaemonConfig.db_path``), in WAL mode with a busy
timeout and ``synchronous=FULL``, so that an enqueue is on disk when the CLI
returns. Three doors share the statements below:

- :class:`SyncStore` (plain ``sqlite3``) for the CLI: enqueue, list, get,
  remove, retry, and cancel queued runs when no daemon runs. It never moves a
  run to ``running`` nor ends a running one.
- :class:`exq.daemon.store_async.AsyncStore` (``aiosqlite``) for the daemon's
  scheduler, which alone claims runs and ends them. It lives in its own module
  so that the CLI does not import aiosqlite and anyio, but all its SQL is here.
- :class:`exq.daemon.study_store.StudyStore`, a :class:`SyncStore` that also
  reads and writes studies: the CLI's, and the daemon's study module's in a
  worker thread (queueing a trial sets its queue ref inside the insert
  transaction, as an enqueue does; Optuna's calls block anyway).

Every state change is a compare-and-set, ``UPDATE ... WHERE id=? AND
state=?``, that reports whether it applied. Writes run in ``BEGIN IMMEDIATE``
transactions so that concurrent writers queue on the busy timeout instead of
failing on a lock upgrade. Run ids are ``AUTOINCREMENT``: never reused, even
after the rows are removed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from exq.daemon.states import (
    ENDED,
    RETRYABLE,
    AttemptRecord,
    QueueItem,
    RunRecord,
    RunState,
    can_transition,
)
from exq.engine.errors import ExperimentError, ExqError

BUSY_TIMEOUT_SECONDS = 30.0
QUEUE_REF_PREFIX = "refs/exq/queue/"


class StoreError(ExqError):
    """The queue database cannot be opened, read or written."""


# -- records ----------------------------------------------------------------


@dataclass(frozen=True)
class NewRun:
    """A run to enqueue: what ``exq exp run --queue`` snapshotted."""

    repo: str  # project root, absolute
    baseline: str  # full sha of HEAD at enqueue time
    snapshot: str  # full sha of the workspace snapshot commit, -S edits applied
    name: str
    params: list[str] = field(default_factory=list)  # the -S edits as typed, for display
    targets: list[str] = field(default_factory=list)
    stage_jobs: int | None = None  # stages at once inside the run (None: cores)
    executor: str | None = None  # "local" or "ray"; None: the daemon's default
    cpus: float | None = None  # resources the run holds (here, or on a cluster)
    gpus: float | None = None  # whole GPUs (stored as a number for older rows)
    mem: int | None = None  # bytes
    priority: int = 0  # higher first
    after: list[int] = field(default_factory=list)  # runs that must succeed first
    timeout: float | None = None  # seconds an attempt may run
    retries: int = 0  # automatic retries of a failed run
    retry_delay: float | None = None  # seconds before the first retry (None: the default)
    env: dict[str, str] | None = None  # the enqueuer's environment (None: the daemon's)

    # Refuse the name if a queued or running run of the same baseline has it
    # (a name the user gave, without -f); not stored.
    unique_name: bool = False
    # The sweep (grid or random search) it is a point of, kept in sweep_runs;
    # "" for one without a name: it is named after its first run, sweep-<id>.
    sweep: str | None = None


@dataclass(frozen=True)
class RunProcess:
    """A stage process group a run started, to reap after a daemon crash."""

    run_id: int
    pid: int  # also the process group id (stages start their own session)
    start_ticks: int  # /proc/<pid>/stat start time, to tell a reused pid apart
    token: str


def queue_ref(run_id: int) -> str:
    """The ref that holds a queued run's snapshot commit."""
    return f"{QUEUE_REF_PREFIX}{run_id}"


def now() -> str:
    return datetime.now(UTC).isoformat()


# -- schema -----------------------------------------------------------------

# Migration N brings the schema from version N-1 to N. Never edit a released
# one: append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            seq INTEGER NOT NULL,
            name TEXT NOT NULL,
            repo TEXT NOT NULL,
            baseline TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            snapshot_ref TEXT NOT NULL,
            params TEXT NOT NULL DEFAULT '[]',
            targets TEXT NOT NULL DEFAULT '[]',
            stage_jobs INTEGER,
            state TEXT NOT NULL CHECK (state IN
                ('queued', 'running', 'success', 'failed', 'interrupted', 'cancelled')),
            attempts INTEGER NOT NULL DEFAULT 0,
            created TEXT NOT NULL,
            started TEXT,
            finished TEXT,
            exit_code INTEGER,
            error TEXT,
            log_path TEXT,
            experiment_ref TEXT,
            experiment_sha TEXT,
            checkpoints INTEGER NOT NULL DEFAULT 0,
            worker_slot INTEGER,
            token TEXT
        )""",
        "CREATE INDEX runs_state_seq ON runs (state, seq, id)",
        "CREATE INDEX runs_name ON runs (name)",
        """CREATE TABLE run_procs (
            run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            pid INTEGER NOT NULL,
            start_ticks INTEGER NOT NULL,
            token TEXT NOT NULL,
            PRIMARY KEY (run_id, pid)
        )""",
    ),
    # 2: checkpoint runs resume from their last checkpoint after an interruption.
    ("ALTER TABLE runs ADD COLUMN resume_sha TEXT",),
    # 3: runs may go to another executor (a Ray cluster), with resources.
    (
        "ALTER TABLE runs ADD COLUMN executor TEXT",
        "ALTER TABLE runs ADD COLUMN cpus REAL",
        "ALTER TABLE runs ADD COLUMN gpus REAL",
        "ALTER TABLE runs ADD COLUMN location TEXT",
    ),
    # 4: the machine's resources, order, dependencies, time limits, retries and
    # the enqueuer's environment; the end state 'timeout'. SQLite cannot change
    # a CHECK in place: the table is rebuilt, keeping ids, the id counter and
    # the recorded processes (set aside while the table they point to is swapped).
    (
        "CREATE TABLE run_procs_keep AS SELECT * FROM run_procs",
        "DROP TABLE run_procs",
        """CREATE TABLE runs_new (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            seq INTEGER NOT NULL,
            name TEXT NOT NULL,
            repo TEXT NOT NULL,
            baseline TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            snapshot_ref TEXT NOT NULL,
            params TEXT NOT NULL DEFAULT '[]',
            targets TEXT NOT NULL DEFAULT '[]',
            stage_jobs INTEGER,
            state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'success', 'failed',
                'interrupted', 'cancelled', 'timeout')),
            attempts INTEGER NOT NULL DEFAULT 0,
            created TEXT NOT NULL,
            started TEXT,
            finished TEXT,
            exit_code INTEGER,
            error TEXT,
            log_path TEXT,
            experiment_ref TEXT,
            experiment_sha TEXT,
            checkpoints INTEGER NOT NULL DEFAULT 0,
            worker_slot INTEGER,
            token TEXT,
            resume_sha TEXT,
            executor TEXT,
            cpus REAL,
            gpus REAL,
            location TEXT,
            mem INTEGER,
            priority INTEGER NOT NULL DEFAULT 0,
            after_ids TEXT NOT NULL DEFAULT '[]',
            timeout REAL,
            retries INTEGER NOT NULL DEFAULT 0,
            retries_left INTEGER NOT NULL DEFAULT 0,
            retry_delay REAL,
            not_before TEXT,
            gpus_assigned TEXT NOT NULL DEFAULT '[]',
            env TEXT
        )""",
        "INSERT INTO runs_new (id, seq, name, repo, baseline, snapshot, snapshot_ref, params,"
        " targets, stage_jobs, state, attempts, created, started, finished, exit_code, error,"
        " log_path, experiment_ref, experiment_sha, checkpoints, worker_slot, token,"
        " resume_sha, executor, cpus, gpus, location) SELECT id, seq, name, repo, baseline,"
        " snapshot, snapshot_ref, params, targets, stage_jobs, state, attempts, created,"
        " started, finished, exit_code, error, log_path, experiment_ref, experiment_sha,"
        " checkpoints, worker_slot, token, resume_sha, executor, cpus, gpus, location"
        " FROM runs",
        # Ids are never reused: the new table's counter goes on from the old one's.
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'runs_new', seq FROM sqlite_sequence"
        " WHERE name = 'runs' AND NOT EXISTS"
        " (SELECT 1 FROM sqlite_sequence WHERE name = 'runs_new')",
        "UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT seq FROM sqlite_sequence"
        " WHERE name = 'runs')) WHERE name = 'runs_new'",
        "DROP TABLE runs",
        "ALTER TABLE runs_new RENAME TO runs",
        "CREATE INDEX runs_state_seq ON runs (state, seq, id)",
        "CREATE INDEX runs_name ON runs (name)",
        """CREATE TABLE run_procs (
            run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            pid INTEGER NOT NULL,
            start_ticks INTEGER NOT NULL,
            token TEXT NOT NULL,
            PRIMARY KEY (run_id, pid)
        )""",
        "INSERT INTO run_procs SELECT * FROM run_procs_keep",
        "DROP TABLE run_procs_keep",
        # The daemon's own settings (slots, paused) survive its restarts.
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    # 5: the end state 'pruned' (a sweep's pruner stopped the run at a checkpoint).
    # The table is rebuilt as in 4, its columns in the same order.
    (
        "CREATE TABLE run_procs_keep AS SELECT * FROM run_procs",
        "DROP TABLE run_procs",
        """CREATE TABLE runs_new (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            seq INTEGER NOT NULL,
            name TEXT NOT NULL,
            repo TEXT NOT NULL,
            baseline TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            snapshot_ref TEXT NOT NULL,
            params TEXT NOT NULL DEFAULT '[]',
            targets TEXT NOT NULL DEFAULT '[]',
            stage_jobs INTEGER,
            state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'success', 'failed',
                'interrupted', 'cancelled', 'timeout', 'pruned')),
            attempts INTEGER NOT NULL DEFAULT 0,
            created TEXT NOT NULL,
            started TEXT,
            finished TEXT,
            exit_code INTEGER,
            error TEXT,
            log_path TEXT,
            experiment_ref TEXT,
            experiment_sha TEXT,
            checkpoints INTEGER NOT NULL DEFAULT 0,
            worker_slot INTEGER,
            token TEXT,
            resume_sha TEXT,
            executor TEXT,
            cpus REAL,
            gpus REAL,
            location TEXT,
            mem INTEGER,
            priority INTEGER NOT NULL DEFAULT 0,
            after_ids TEXT NOT NULL DEFAULT '[]',
            timeout REAL,
            retries INTEGER NOT NULL DEFAULT 0,
            retries_left INTEGER NOT NULL DEFAULT 0,
            retry_delay REAL,
            not_before TEXT,
            gpus_assigned TEXT NOT NULL DEFAULT '[]',
            env TEXT
        )""",
        "INSERT INTO runs_new SELECT * FROM runs",
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'runs_new', seq FROM sqlite_sequence"
        " WHERE name = 'runs' AND NOT EXISTS"
        " (SELECT 1 FROM sqlite_sequence WHERE name = 'runs_new')",
        "UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT seq FROM sqlite_sequence"
        " WHERE name = 'runs')) WHERE name = 'runs_new'",
        "DROP TABLE runs",
        "ALTER TABLE runs_new RENAME TO runs",
        "CREATE INDEX runs_state_seq ON runs (state, seq, id)",
        "CREATE INDEX runs_name ON runs (name)",
        """CREATE TABLE run_procs (
            run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            pid INTEGER NOT NULL,
            start_ticks INTEGER NOT NULL,
            token TEXT NOT NULL,
            PRIMARY KEY (run_id, pid)
        )""",
        "INSERT INTO run_procs SELECT * FROM run_procs_keep",
        "DROP TABLE run_procs_keep",
    ),
    # 6: studies (exp run --queue --optimize): the daemon queues their trials one
    # by one. ``trials`` outlives the rows of removed runs: it is the ledger of
    # what was asked of Optuna and queued.
    (
        """CREATE TABLE studies (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            repo TEXT NOT NULL,
            baseline TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            space TEXT NOT NULL,
            spec TEXT NOT NULL,
            template TEXT NOT NULL,
            budget INTEGER NOT NULL,
            state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'done', 'failed')),
            queued INTEGER NOT NULL DEFAULT 0,
            last_trial INTEGER NOT NULL DEFAULT -1,
            error TEXT,
            created TEXT NOT NULL
        )""",
        "CREATE INDEX studies_name ON studies (name)",
        """CREATE TABLE trials (
            study_id INTEGER NOT NULL REFERENCES studies (id) ON DELETE CASCADE,
            trial INTEGER NOT NULL,
            optuna_id INTEGER NOT NULL,
            run_id INTEGER NOT NULL UNIQUE,
            outcome TEXT,
            value REAL,
            PRIMARY KEY (study_id, trial)
        )""",
    ),
    # 7: the end of every attempt, for `queue show`. A trigger writes it as a
    # run leaves `running` (every end of an attempt is such a move), so the one
    # place that changes run states needs to know nothing of it.
    (
        """CREATE TABLE attempts (
            run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            attempt INTEGER NOT NULL,
            state TEXT NOT NULL,
            started TEXT,
            finished TEXT,
            exit_code INTEGER,
            error TEXT,
            checkpoints INTEGER NOT NULL DEFAULT 0,
            location TEXT,
            PRIMARY KEY (run_id, attempt)
        )""",
        """CREATE TRIGGER attempt_ended AFTER UPDATE OF state ON runs
        WHEN OLD.state = 'running' AND NEW.state != 'running'
        BEGIN
            INSERT OR REPLACE INTO attempts (run_id, attempt, state, started, finished,
                exit_code, error, checkpoints, location)
            VALUES (NEW.id, NEW.attempts, NEW.state, OLD.started,
                COALESCE(NEW.finished, OLD.finished), NEW.exit_code, NEW.error,
                NEW.checkpoints, OLD.location);
        END""",
    ),
    # 8: the sweep a queued run belongs to (a grid or random search), for exp show.
    ("CREATE TABLE sweep_runs (run_id INTEGER PRIMARY KEY, sweep TEXT NOT NULL)",),
)
SCHEMA_VERSION = len(MIGRATIONS)

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",  # durable at commit, also across a power loss
    "PRAGMA foreign_keys=ON",
)
SQL_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
SQL_VERSION = "SELECT MAX(version) FROM schema_version"
SQL_HAS_VERSION_TABLE = "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'"
SQL_SET_VERSION = "INSERT INTO schema_version (version) VALUES (?)"

# -- statements -------------------------------------------------------------

COLUMNS = (
    "id, seq, name, repo, baseline, snapshot, snapshot_ref, params, targets, stage_jobs, "
    "state, attempts, created, started, finished, exit_code, error, log_path, "
    "experiment_ref, experiment_sha, checkpoints, worker_slot, token, resume_sha, "
    "executor, cpus, gpus, location, mem, priority, after_ids, timeout, retries, retries_left, "
    "retry_delay, not_before, gpus_assigned, env"
)
SQL_INSERT = (
    "INSERT INTO runs (seq, name, repo, baseline, snapshot, snapshot_ref, params, targets, "
    "stage_jobs, executor, cpus, gpus, mem, priority, after_ids, timeout, retries, "
    "retries_left, retry_delay, env, state, created) VALUES "
    "((SELECT COALESCE(MAX(seq), 0) + 1 FROM runs), ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?, "
    "?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?)"
)
SQL_NAME_TAKEN = (
    "SELECT id, state FROM runs WHERE repo = ? AND baseline = ? AND name = ? "
    "AND state IN ('queued', 'running') ORDER BY id LIMIT 1"
)
SQL_SET_SNAPSHOT_REF = "UPDATE runs SET snapshot_ref = ? WHERE id = ?"
SQL_SWEEP_RUN = "INSERT INTO sweep_runs (run_id, sweep) VALUES (?, ?)"
SQL_GET_BY_ID = f"SELECT {COLUMNS} FROM runs WHERE id = ?"
SQL_GET_BY_NAME = f"SELECT {COLUMNS} FROM runs WHERE name = ? ORDER BY id DESC LIMIT 1"
SQL_LIST = f"SELECT {COLUMNS} FROM runs ORDER BY id"
SQL_IN_STATE = f"SELECT {COLUMNS} FROM runs WHERE state = ? ORDER BY seq, id"
SQL_QUEUED = (
    f"SELECT {COLUMNS} FROM runs WHERE state = 'queued' ORDER BY priority DESC, seq, id LIMIT ?"
)
SQL_STATES = "SELECT id, state FROM runs"
SQL_QUEUE_ITEMS = "SELECT id, seq FROM runs WHERE state = 'queued' ORDER BY seq, id"
SQL_DELETE = "DELETE FROM runs WHERE id = ? AND state != 'running'"
# A retried checkpoint run resumes from its last checkpoint (its recorded
# experiment), unless asked to start over (the first parameter false).
SQL_RETRY = (
    "UPDATE runs SET state = 'queued', seq = (SELECT MAX(seq) + 1 FROM runs), "
    "exit_code = NULL, error = NULL, finished = NULL, started = NULL, worker_slot = NULL, "
    "token = NULL, not_before = NULL, gpus_assigned = '[]', "
    "resume_sha = CASE WHEN ? AND checkpoints > 0 THEN experiment_sha END "
    "WHERE id = ? AND state = ?"
)
SQL_SET_PRIORITY = "UPDATE runs SET priority = ? WHERE id = ? AND state = 'queued'"
# Start this one next: the highest priority among the queued, ahead of them all,
# and no more waiting for a retry's delay.
SQL_RUN_NEXT = (
    "UPDATE runs SET priority = MAX(priority, (SELECT MAX(priority) FROM runs WHERE state = "
    "'queued')), seq = (SELECT MIN(seq) FROM runs WHERE state = 'queued') - 1, not_before = NULL "
    "WHERE id = ? AND state = 'queued'"
)
SQL_GET_SETTING = "SELECT value FROM settings WHERE key = ?"
SQL_SET_SETTING = "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)"
# The daemon's settings kept across restarts: its slots and whether it is paused.
SETTING_JOBS = "jobs"
SETTING_PAUSED = "paused"
# An attempt that resumes a checkpoint counts on from it; one that starts from
# the snapshot starts a new chain, so its checkpoint count starts at zero.
SQL_CLAIM = (
    "UPDATE runs SET state = 'running', attempts = attempts + 1, started = ?, finished = NULL, "
    "worker_slot = ?, log_path = ?, token = ?, exit_code = NULL, error = NULL, location = ?, "
    "gpus_assigned = ?, not_before = NULL, "
    "checkpoints = CASE WHEN resume_sha IS NULL THEN 0 ELSE checkpoints END "
    "WHERE id = ? AND state = 'queued'"
)
# A checkpoint committed by the attempt holding ``token``: counted at once, so
# `queue status` shows it while the run goes on.
SQL_CHECKPOINT = (
    "UPDATE runs SET checkpoints = checkpoints + 1, experiment_ref = ?, experiment_sha = ? "
    "WHERE id = ? AND state = 'running' AND token = ?"
)
SQL_SET_LOCATION = "UPDATE runs SET location = ? WHERE id = ? AND state = 'running'"
SQL_DISTINCT_REPOS = "SELECT DISTINCT repo FROM runs ORDER BY repo"
SQL_ADD_PROC = (
    "INSERT OR REPLACE INTO run_procs (run_id, pid, start_ticks, token) VALUES (?, ?, ?, ?)"
)
SQL_PROCS = "SELECT run_id, pid, start_ticks, token FROM run_procs WHERE run_id = ? ORDER BY pid"
SQL_CLEAR_PROCS = "DELETE FROM run_procs WHERE run_id = ?"
SQL_ATTEMPTS = (
    "SELECT attempt, state, started, finished, exit_code, error, checkpoints, location "
    "FROM attempts WHERE run_id = ? ORDER BY attempt"
)
SQL_BEGIN = "BEGIN IMMEDIATE"
SQL_COMMIT = "COMMIT"
SQL_ROLLBACK = "ROLLBACK"

# Fields an end-state or recovery transition may set along with the state.
_TRANSITION_FIELDS = frozenset(
    {
        "attempts",
        "finished",
        "exit_code",
        "error",
        "experiment_ref",
        "experiment_sha",
        "seq",
        "worker_slot",
        "checkpoints",
        "resume_sha",
        "retries_left",
        "not_before",
        "gpus_assigned",
    }
)


def transition_sql(fields: Iterable[str]) -> str:
    """``UPDATE runs SET state=?, <fields>=? WHERE id=? AND state=?`` for a CAS."""
    names = sorted(fields)
    bad = set(names) - _TRANSITION_FIELDS
    if bad:
        raise ValueError(f"not a transition field: {', '.join(sorted(bad))}")
    sets = "".join(f", {name} = ?" for name in names)
    return f"UPDATE runs SET state = ?{sets} WHERE id = ? AND state = ?"


def transition_params(
    run_id: int, old: RunState, new: RunState, values: dict[str, Any]
) -> tuple[Any, ...]:
    if not can_transition(old, new):
        raise ValueError(f"a run cannot go from {old} to {new}")
    return (new.value, *(_column(values[name]) for name in sorted(values)), run_id, old.value)


def _column(value: Any) -> Any:
    """A value as stored: lists as JSON, times as ISO 8601."""
    if isinstance(value, list):
        return json.dumps(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def insert_params(run: NewRun) -> tuple[Any, ...]:
    return (
        run.name,
        run.repo,
        run.baseline,
        run.snapshot,
        json.dumps(run.params),
        json.dumps(run.targets),
        run.stage_jobs,
        run.executor,
        run.cpus,
        run.gpus,
        run.mem,
        run.priority,
        json.dumps(run.after),
        run.timeout,
        run.retries,
        run.retries,
        run.retry_delay,
        None if run.env is None else json.dumps(run.env),
        now(),
    )


def record_of(row: Sequence[Any]) -> RunRecord:
    (
        id_,
        seq,
        name,
        repo,
        baseline,
        snapshot,
        snapshot_ref,
        params,
        targets,
        stage_jobs,
        state,
        attempts,
        created,
        started,
        finished,
        exit_code,
        error,
        log_path,
        experiment_ref,
        experiment_sha,
        checkpoints,
        worker_slot,
        token,
        resume_sha,
        executor,
        cpus,
        gpus,
        location,
        mem,
        priority,
        after_ids,
        timeout,
        retries,
        retries_left,
        retry_delay,
        not_before,
        gpus_assigned,
        env,
    ) = row
    return RunRecord(
        id=id_,
        seq=seq,
        name=name,
        repo=repo,
        baseline=baseline,
        snapshot=snapshot,
        snapshot_ref=snapshot_ref,
        params=json.loads(params),
        targets=json.loads(targets),
        stage_jobs=stage_jobs,
        state=RunState(state),
        attempts=attempts,
        created=_time(created),
        started=_opt_time(started),
        finished=_opt_time(finished),
        exit_code=exit_code,
        error=error,
        log_path=log_path,
        experiment_ref=experiment_ref,
        experiment_sha=experiment_sha,
        checkpoints=checkpoints,
        worker_slot=worker_slot,
        token=token,
        resume_sha=resume_sha,
        executor=executor,
        cpus=cpus,
        gpus=gpus,
        location=location,
        mem=mem,
        priority=priority,
        after=json.loads(after_ids),
        timeout=timeout,
        retries=retries,
        retries_left=retries_left,
        retry_delay=retry_delay,
        not_before=_opt_time(not_before),
        gpus_assigned=json.loads(gpus_assigned),
        env=None if env is None else json.loads(env),
    )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _opt_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


# Run ids are SQLite integers: a larger number is no id (binding it would raise).
MAX_RUN_ID = (1 << 63) - 1


def lookups(key: int | str) -> list[tuple[str, Any]]:
    if isinstance(key, int):
        return [(SQL_GET_BY_ID, key)] if 0 <= key <= MAX_RUN_ID else []
    if key.isascii() and key.isdigit() and int(key) <= MAX_RUN_ID:
        return [(SQL_GET_BY_ID, int(key)), (SQL_GET_BY_NAME, key)]
    return [(SQL_GET_BY_NAME, key)]


def store_failure(db_path: Path, exc: sqlite3.Error) -> StoreError:
    return StoreError(
        f"queue database {db_path}: {exc}",
        hint="check the file's permissions, or move it away to start an empty queue",
    )


# -- sync facade (CLI) ------------------------------------------------------


class SyncStore:
    """The CLI's door to the queue (plain ``sqlite3``); use as a context manager.

    Opening creates the database and brings its schema up to date.
    """

    def __init__(self, db_path: Path | str) -> None:
        self.db_path = Path(db_path)
        try:
            self.db_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            owner_only(self.db_path)
            self._conn = sqlite3.connect(
                self.db_path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the queue database {self.db_path}: {exc}") from exc
        try:
            self._setup()
        except BaseException:
            self._conn.close()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def _setup(self) -> None:
        try:
            for pragma in PRAGMAS:
                self._conn.execute(pragma)
            if _current_version(self._conn.execute) == SCHEMA_VERSION:
                return
            with self._transaction():
                self._conn.execute(SQL_VERSION_TABLE)
                version = self._conn.execute(SQL_VERSION).fetchone()[0] or 0
                for step, statements in _pending(version, self.db_path):
                    for statement in statements:
                        self._conn.execute(statement)
                    self._conn.execute(SQL_SET_VERSION, (step,))
        except sqlite3.Error as exc:
            raise store_failure(self.db_path, exc) from exc

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)

    def enqueue(self, run: NewRun, *, on_id: Callable[[int], None] | None = None) -> int:
        """Insert one queued run and return its id; see :meth:`enqueue_many`."""
        return self.enqueue_many([run], on_id=on_id)[0]

    def enqueue_many(
        self, runs: Sequence[NewRun], *, on_id: Callable[[int], None] | None = None
    ) -> list[int]:
        """Insert queued runs in one transaction, durable on return; their ids.

        ``on_id(id)`` runs for each new id before the commit (the CLI points
        ``refs/exq/queue/<id>`` at the snapshot there): the daemon never sees a
        row whose ref is missing, and if ``on_id`` raises nothing is inserted.
        """
        ids: list[int] = []
        try:
            with self._transaction():
                for run in runs:
                    if run.unique_name:
                        self._refuse_taken(run)
                    cursor = self._conn.execute(SQL_INSERT, insert_params(run))
                    run_id = int(cursor.lastrowid or 0)
                    self._conn.execute(SQL_SET_SNAPSHOT_REF, (queue_ref(run_id), run_id))
                    if run.sweep is not None:
                        sweep = run.sweep or f"sweep-{ids[0] if ids else run_id}"
                        self._conn.execute(SQL_SWEEP_RUN, (run_id, sweep))
                    if on_id is not None:
                        on_id(run_id)
                    ids.append(run_id)
        except sqlite3.Error as exc:
            raise store_failure(self.db_path, exc) from exc
        return ids

    def _refuse_taken(self, run: NewRun) -> None:
        """Refuse a name that a queued or running run of the same baseline has
        (checked inside the insert transaction: two enqueues cannot both pass)."""
        taken = self._conn.execute(SQL_NAME_TAKEN, (run.repo, run.baseline, run.name)).fetchone()
        if taken is not None:
            raise ExperimentError(
                f"experiment '{run.name}' is already {taken[1]} as run {taken[0]}"
                f" for baseline {run.baseline[:7]}",
                hint="choose another --name, or pass -f to replace it",
            )

    def write_lock(self) -> _Transaction:
        """Hold the database's write lock (``with store.write_lock(): ...``): no
        enqueue is under way meanwhile, so a queue ref lock found then is stale."""
        return self._transaction()

    def list_runs(
        self, states: Iterable[RunState] | None = None, *, repo: str | None = None
    ) -> list[RunRecord]:
        """All runs (or those in ``states`` / of ``repo``), oldest first."""
        wanted = None if states is None else {RunState(s) for s in states}
        rows = self._read(SQL_LIST, ())
        records = [record_of(row) for row in rows]
        return [
            r
            for r in records
            if (wanted is None or r.state in wanted) and (repo is None or r.repo == repo)
        ]

    def get_run(self, key: int | str) -> RunRecord | None:
        """The run with id ``key``, else the newest run named ``key`` (a string of
        digits is tried as an id first), else None."""
        for sql, arg in lookups(key):
            rows = self._read(sql, (arg,))
            if rows:
                return record_of(rows[0])
        return None

    def procs(self, run_id: int) -> list[RunProcess]:
        """The stage process groups recorded for a run's current attempt."""
        return [RunProcess(*row) for row in self._read(SQL_PROCS, (run_id,))]

    def attempts(self, run_id: int) -> list[AttemptRecord]:
        """How each ended attempt of a run ended, first first (none before schema 7)."""
        return [
            AttemptRecord(attempt, RunState(state), _opt_time(started), _opt_time(finished), *rest)
            for attempt, state, started, finished, *rest in self._read(SQL_ATTEMPTS, (run_id,))
        ]

    def remove(
        self, ids: Iterable[int] = (), *, states: Iterable[RunState] = ()
    ) -> list[RunRecord]:
        """Delete the runs ``ids`` and every run in ``states``; never a running one.

        Returns the rows deleted (the caller deletes their queue refs and logs);
        ids missing from the result were unknown or running.
        """
        wanted = {RunState(s) for s in states}
        if RunState.RUNNING in wanted:
            raise StoreError("running runs cannot be removed", hint="kill them first")
        removed: list[RunRecord] = []
        try:
            with self._transaction():
                targets = {int(i) for i in ids}
                for row in self._conn.execute(SQL_LIST).fetchall():
                    record = record_of(row)
                    if record.id not in targets and record.state not in wanted:
                        continue
                    if self._conn.execute(SQL_DELETE, (record.id,)).rowcount == 1:
                        removed.append(record)
        except sqlite3.Error as exc:
            raise store_failure(self.db_path, exc) from exc
        return removed

    def retry(self, ids: Iterable[int], *, resume: bool = True) -> list[int]:
        """Queue again (at the back) the failed, interrupted or cancelled runs among
        ``ids``; returns those requeued. Their attempts count on; a checkpoint run
        resumes from its last checkpoint unless not ``resume``."""
        done: list[int] = []
        try:
            with self._transaction():
                for run_id in ids:
                    for state in sorted(RETRYABLE):
                        step = (resume, run_id, state.value)
                        if self._conn.execute(SQL_RETRY, step).rowcount == 1:
                            done.append(run_id)
                            break
        except sqlite3.Error as exc:
            raise store_failure(self.db_path, exc) from exc
        return done

    def cancel_queued(self, ids: Iterable[int]) -> list[int]:
        """Cancel the queued runs among ``ids`` (compare-and-set on ``queued``, as the
        daemon's scheduler does); those cancelled. For when no daemon runs: a
        daemon claiming one meanwhile wins, and that run is not cancelled."""
        values = {"error": "killed before it started", "finished": now()}
        sql = transition_sql(values)
        done: list[int] = []
        try:
            with self._transaction():
                for run_id in ids:
                    params = transition_params(run_id, RunState.QUEUED, RunState.CANCELLED, values)
                    if self._conn.execute(sql, params).rowcount == 1:
                        done.append(run_id)
        except sqlite3.Error as exc:
            raise store_failure(self.db_path, exc) from exc
        return done

    def set_priority(self, run_id: int, priority: int) -> bool:
        """Change a queued run's priority; False if it is not queued."""
        return self._write(SQL_SET_PRIORITY, (priority, run_id))

    def run_next(self, run_id: int) -> bool:
        """Put a queued run first in the queue; False if it is not queued."""
        return self._write(SQL_RUN_NEXT, (run_id,))

    def setting(self, key: str) -> str | None:
        """A daemon setting kept in the database (see :data:`SETTINGS`)."""
        rows = self._read(SQL_GET_SETTING, (key,))
        return rows[0][0] if rows else None

    def set_setting(self, key: str, value: str) -> None:
        self._write(SQL_SET_SETTING, (key, value))

    def _write(self, sql: str, params: tuple[Any, ...]) -> bool:
        try:
            with self._transaction():
                return self._conn.execute(sql, params).rowcount == 1
        except sqlite3.Error as exc:
            raise store_failure(self.db_path, exc) from exc

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise store_failure(self.db_path, exc) from exc


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute(SQL_BEGIN)

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._conn.execute(SQL_ROLLBACK if exc_type is not None else SQL_COMMIT)


def owner_only(db_path: Path) -> None:
    """Make the database file (and its WAL files, which SQLite creates with the
    database's mode) readable by its owner only: rows hold the environment of
    the enqueuer, secrets included.

    An existing file is never opened here, only chmod-ed: closing a descriptor
    of it would drop the POSIX locks SQLite holds on it for another connection
    of this process (the daemon's), and readers would then take it for gone.
    """
    try:
        os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    for path in (db_path, *(db_path.with_name(db_path.name + s) for s in ("-wal", "-shm"))):
        try:
            if stat.S_IMODE(path.stat().st_mode) != 0o600:
                path.chmod(0o600)
        except FileNotFoundError:
            continue


def _current_version(execute: Callable[..., Any]) -> int | None:
    if execute(SQL_HAS_VERSION_TABLE).fetchone() is None:
        return None
    version = execute(SQL_VERSION).fetchone()[0]
    return None if version is None else int(version)


def _pending(version: int, db_path: Path) -> list[tuple[int, tuple[str, ...]]]:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"queue database {db_path} has schema version {version}, newer than this exq's"
            f" {SCHEMA_VERSION}",
            hint="upgrade exq",
        )
    return [(step, MIGRATIONS[step - 1]) for step in range(version + 1, SCHEMA_VERSION + 1)]


__all__ = [
    "ENDED",
    "MIGRATIONS",
    "NewRun",
    "QueueItem",
    "RunProcess",
    "RunRecord",
    "RunState",
    "SCHEMA_VERSION",
    "StoreError",
    "SyncStore",
    "queue_ref",
]
