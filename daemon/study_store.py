"""The studies' rows in the queue database: their SQL, beside the runs' in :mod:`store`.

Two tables (schema in :data:`exq.daemon.store.MIGRATIONS`, version 6):

- ``studies``: one row per ``exp run --queue --optimize``: the base snapshot
  its trials start from, its ``-S`` space, its objective and sampler (JSON),
  the options every trial's run gets, its budget of trials, how many are
  queued so far and the Optuna number of the last one queued.
- ``trials``: one row per trial queued, ``(study_id, trial)`` -> ``run_id``,
  with Optuna's own trial id and, once Optuna heard the run's end, the
  outcome told (``complete``, ``fail``, ``pruned``) and the value.

A trial is queued by :meth:`StudyStore.enqueue_trial` in one transaction: the
study's count goes up (a compare-and-set on its budget and last trial
number), the run's row and its queue ref are written, the trial's row links
them. So a trial Optuna gave out whose number is above the study's
``last_trial`` was never queued (the daemon died in between), and one at or
below it was, exactly once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from exq.daemon.states import RunRecord
from exq.daemon.store import (
    COLUMNS,
    SQL_INSERT,
    SQL_SET_SNAPSHOT_REF,
    NewRun,
    SyncStore,
    insert_params,
    now,
    queue_ref,
    record_of,
    store_failure,
)
from exq.engine.errors import ExperimentError

STUDY_ACTIVE = "active"
STUDY_DONE = "done"
STUDY_FAILED = "failed"
# What Optuna was told of a trial's run.
TOLD_COMPLETE = "complete"
TOLD_FAIL = "fail"
TOLD_PRUNED = "pruned"


@dataclass(frozen=True)
class NewStudy:
    """A study to queue: what ``exp run --queue --optimize`` snapshotted."""

    name: str | None  # None: ``study-<id>``
    repo: str
    baseline: str
    snapshot: str  # the workspace at enqueue, no edit applied: every trial starts from it
    space: list[str]  # the -S texts
    spec: dict[str, Any]  # StudySpec.to_json()
    template: dict[str, Any]  # NewRun fields every trial's run gets (targets, resources...)
    budget: int  # trials to run


@dataclass(frozen=True)
class StudyRecord:
    """One row of ``studies``."""

    id: int
    name: str
    repo: str
    baseline: str
    snapshot: str
    space: list[str]
    spec: dict[str, Any]
    template: dict[str, Any] = field(repr=False)  # holds the enqueuer's environment
    budget: int
    state: str
    queued: int
    last_trial: int
    error: str | None
    created: str


@dataclass(frozen=True)
class TrialRecord:
    """One queued trial: its study, Optuna's number and id, its run (None once removed)."""

    study_id: int
    trial: int
    optuna_id: int
    run_id: int
    outcome: str | None  # None: Optuna has not heard the end yet
    value: float | None
    run: RunRecord | None


def study_ref(study_id: int) -> str:
    """The ref that keeps a study's base snapshot alive."""
    return f"refs/exq/study/{study_id}"


STUDY_COLUMNS = (
    "id, name, repo, baseline, snapshot, space, spec, template, budget, state, queued, "
    "last_trial, error, created"
)
RUN_COLUMNS = ", ".join(f"r.{c.strip()}" for c in COLUMNS.split(","))
SQL_STUDY_INSERT = (
    "INSERT INTO studies (name, repo, baseline, snapshot, space, spec, template, budget, "
    "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SQL_STUDY_NAME = "UPDATE studies SET name = ? WHERE id = ?"
SQL_STUDY_NAME_TAKEN = (
    "SELECT id FROM studies WHERE repo = ? AND name = ? AND state = 'active' LIMIT 1"
)
SQL_STUDY_BY_ID = f"SELECT {STUDY_COLUMNS} FROM studies WHERE id = ?"
SQL_STUDY_BY_NAME = f"SELECT {STUDY_COLUMNS} FROM studies WHERE name = ? ORDER BY id DESC LIMIT 1"
SQL_STUDIES = f"SELECT {STUDY_COLUMNS} FROM studies ORDER BY id"
SQL_ACTIVE_STUDIES = f"SELECT {STUDY_COLUMNS} FROM studies WHERE state = 'active' ORDER BY id"
# Queued runs that can start as soon as a slot frees (a study asks only for
# the slots they leave).
SQL_WAITING_RUNS = "SELECT COUNT(*) FROM runs WHERE state = 'queued' AND after_ids = '[]'"
SQL_ANY_ACTIVE_STUDY = "SELECT 1 FROM studies WHERE state = 'active' LIMIT 1"
# A study with trials still to ask: the queue has not drained while one is left.
SQL_ANY_STUDY_TO_ASK = "SELECT 1 FROM studies WHERE state = 'active' AND budget > queued LIMIT 1"
# The study's count goes up only while it has budget left and for a trial
# newer than the last one queued: the same trial can never be queued twice.
SQL_STUDY_TAKE = (
    "UPDATE studies SET queued = queued + 1, last_trial = ? "
    "WHERE id = ? AND state = 'active' AND queued < budget AND last_trial < ?"
)
SQL_TRIAL_INSERT = "INSERT INTO trials (study_id, trial, optuna_id, run_id) VALUES (?, ?, ?, ?)"
SQL_TRIALS = (
    f"SELECT t.study_id, t.trial, t.optuna_id, t.run_id, t.outcome, t.value, {RUN_COLUMNS} "
    "FROM trials t LEFT JOIN runs r ON r.id = t.run_id WHERE t.study_id = ? ORDER BY t.trial"
)
SQL_TRIAL_OF_RUN = (
    f"SELECT t.study_id, t.trial, t.optuna_id, t.run_id, t.outcome, t.value, {RUN_COLUMNS} "
    "FROM trials t LEFT JOIN runs r ON r.id = t.run_id WHERE t.run_id = ?"
)
SQL_TRIAL_TOLD = (
    "UPDATE trials SET outcome = ?, value = ? WHERE study_id = ? AND trial = ? AND outcome IS NULL"
)
# The name of the queue database's file of Optuna studies, made once: a queue
# database moved away to start afresh leaves its studies behind with it.
SQL_STUDIES_TOKEN_MAKE = (
    "INSERT OR IGNORE INTO settings (key, value) VALUES ('studies_file', "
    "'studies-' || lower(hex(randomblob(6))) || '.db')"
)
SQL_STUDIES_TOKEN = "SELECT value FROM settings WHERE key = 'studies_file'"
# Stopping a study: no more trials are asked (its budget is what it queued).
# only once: the note an active study carries is its stop's, which a second stop keeps
SQL_STUDY_STOP = (
    "UPDATE studies SET budget = queued, error = ? "
    "WHERE id = ? AND state = 'active' AND error IS NULL"
)
SQL_STUDY_END = (
    "UPDATE studies SET state = ?, error = COALESCE(?, error) WHERE id = ? AND state = 'active'"
)
# The sweep of each run of a repository (a study's trial, a grid's or a random
# search's point) by its baseline and name, as exp show finds its experiments.
SQL_RUN_SWEEPS = (
    "SELECT r.id, r.baseline, r.name, s.name FROM trials t JOIN studies s ON s.id = t.study_id "
    "JOIN runs r ON r.id = t.run_id WHERE ?1 IS NULL OR r.repo = ?1 "
    "UNION ALL SELECT r.id, r.baseline, r.name, w.sweep FROM sweep_runs w "
    "JOIN runs r ON r.id = w.run_id WHERE ?1 IS NULL OR r.repo = ?1 ORDER BY 1"
)


def study_of(row: Sequence[Any]) -> StudyRecord:
    (id_, name, repo, baseline, snapshot, space, spec, template, budget, state, queued) = row[:11]
    last_trial, error, created = row[11:]
    return StudyRecord(
        id=id_,
        name=name,
        repo=repo,
        baseline=baseline,
        snapshot=snapshot,
        space=json.loads(space),
        spec=json.loads(spec),
        template=json.loads(template),
        budget=budget,
        state=state,
        queued=queued,
        last_trial=last_trial,
        error=error,
        created=created,
    )


def trial_of(row: Sequence[Any]) -> TrialRecord:
    study_id, trial, optuna_id, run_id, outcome, value = row[:6]
    run = record_of(row[6:]) if row[6] is not None else None
    return TrialRecord(study_id, trial, optuna_id, run_id, outcome, value, run)


class StudyStore(SyncStore):
    """The queue database's door for studies (the CLI's and the daemon's study
    module's, in a worker thread); plain ``sqlite3`` as :class:`SyncStore`."""

    def create_study(self, study: NewStudy, *, on_id: Callable[[int], None]) -> StudyRecord:
        """Insert an active study; ``on_id(id)`` runs before the commit (the
        caller points :func:`study_ref` at the base snapshot there). A name an
        active study of the same project has is refused."""
        try:
            with self._transaction():
                study_id = self._insert_study(study)
                on_id(study_id)
                row = self._conn.execute(SQL_STUDY_BY_ID, (study_id,)).fetchone()
        except sqlite3.Error as exc:
            raise store_failure(self.db_path, exc) from exc
        return study_of(row)

    def enqueue_trial(
        self,
        study_id: int,
        trial: int,
        optuna_id: int,
        run: NewRun,
        *,
        on_id: Callable[[int], None],
    ) -> int | None:
        """Queue trial number ``trial`` of a study as ``run``, in one transaction
        (see the module's docstring); its run id, or None if the study has no
        budget left, is no longer active, or queued this trial already."""
        try:
            with self._transaction():
                took = self._conn.execute(SQL_STUDY_TAKE, (trial, study_id, trial))
                if took.rowcount != 1:
                    return None
                cursor = self._conn.execute(SQL_INSERT, insert_params(run))
                run_id = int(cursor.lastrowid or 0)
                self._conn.execute(SQL_SET_SNAPSHOT_REF, (queue_ref(run_id), run_id))
                on_id(run_id)
                self._conn.execute(SQL_TRIAL_INSERT, (study_id, trial, optuna_id, run_id))
        except sqlite3.Error as exc:
            raise store_failure(self.db_path, exc) from exc
        return run_id

    def _insert_study(self, study: NewStudy) -> int:
        """Insert an active study's row (named ``study-<id>`` without a name),
        in the caller's transaction; its id. A taken name is refused."""
        self._refuse_taken_study(study)
        cursor = self._conn.execute(
            SQL_STUDY_INSERT,
            (
                study.name or "",
                study.repo,
                study.baseline,
                study.snapshot,
                json.dumps(study.space),
                json.dumps(study.spec),
                json.dumps(study.template),
                study.budget,
                now(),
            ),
        )
        study_id = int(cursor.lastrowid or 0)
        if study.name is None:
            self._conn.execute(SQL_STUDY_NAME, (f"study-{study_id}", study_id))
        return study_id

    def _refuse_taken_study(self, study: NewStudy) -> None:
        """A name an active study of the same project has is refused."""
        if study.name is None:
            return
        taken = self._conn.execute(SQL_STUDY_NAME_TAKEN, (study.repo, study.name)).fetchone()
        if taken is not None:
            raise ExperimentError(
                f"study '{study.name}' is already under way",
                hint="choose another --name, or see 'exq sweep status'",
            )

    def create_fixed_study(
        self,
        study: NewStudy,
        runs: Sequence[NewRun],
        *,
        on_id: Callable[[int], None],
        ask: Callable[[int], list[tuple[int, int]]],
        on_run_id: Callable[[int], None],
    ) -> list[int]:
        """A study and its runs, all queued at once (a grid or random sweep with
        ``--prune``), in one transaction: the study's row (``on_id(id)`` points
        its ref), ``ask(id)`` gives (trial number, Optuna id) for each run, then
        each run with its trial (``on_run_id`` points its queue ref). Nothing is
        written if any step fails. The run ids, in order."""
        try:
            with self._transaction():
                study_id = self._insert_study(study)
                on_id(study_id)
                ids = []
                for (trial, optuna_id), run in zip(ask(study_id), runs, strict=True):
                    self._conn.execute(SQL_STUDY_TAKE, (trial, study_id, trial))
                    run_id = int(self._conn.execute(SQL_INSERT, insert_params(run)).lastrowid or 0)
                    self._conn.execute(SQL_SET_SNAPSHOT_REF, (queue_ref(run_id), run_id))
                    on_run_id(run_id)
                    self._conn.execute(SQL_TRIAL_INSERT, (study_id, trial, optuna_id, run_id))
                    ids.append(run_id)
        except sqlite3.Error as exc:
            raise store_failure(self.db_path, exc) from exc
        return ids

    def studies_file(self) -> str:
        """The name of the file (in the state folder) of this queue's Optuna
        studies; made at the first call."""
        self._write(SQL_STUDIES_TOKEN_MAKE, ())
        return str(self._read(SQL_STUDIES_TOKEN, ())[0][0])

    def waiting_runs(self) -> int:
        """How many queued runs wait for nothing but a slot."""
        return int(self._read(SQL_WAITING_RUNS, ())[0][0])

    def told(self, study_id: int, trial: int, outcome: str, value: float | None) -> bool:
        """Record what Optuna was told of a trial; False if it was recorded before."""
        return self._write(SQL_TRIAL_TOLD, (outcome, value, study_id, trial))

    def stop_study(self, study_id: int, note: str) -> bool:
        """Ask no more trials of an active study; False if it is not active or was
        stopped already."""
        return self._write(SQL_STUDY_STOP, (note, study_id))

    def end_study(self, study_id: int, state: str, error: str | None = None) -> bool:
        return self._write(SQL_STUDY_END, (state, error, study_id))

    def study(self, key: int | str) -> StudyRecord | None:
        """The study with id ``key``, else the newest one named ``key``."""
        if isinstance(key, int) or key.isdigit():
            rows = self._read(SQL_STUDY_BY_ID, (int(key),))
            if rows:
                return study_of(rows[0])
        rows = self._read(SQL_STUDY_BY_NAME, (str(key),))
        return study_of(rows[0]) if rows else None

    def studies(self, *, active: bool = False) -> list[StudyRecord]:
        return [study_of(r) for r in self._read(SQL_ACTIVE_STUDIES if active else SQL_STUDIES, ())]

    def trials(self, study_id: int) -> list[TrialRecord]:
        """The study's queued trials, oldest first, each with its run's row."""
        return [trial_of(r) for r in self._read(SQL_TRIALS, (study_id,))]

    def trial_of_run(self, run_id: int) -> TrialRecord | None:
        """The trial a run is, if it is one (the door for pruning at checkpoints)."""
        rows = self._read(SQL_TRIAL_OF_RUN, (run_id,))
        return trial_of(rows[0]) if rows else None

    def run_sweeps(self, repo: str | None = None) -> list[tuple[int, str, str, str]]:
        """(run id, baseline, run name, sweep) of each run (of ``repo``) that is a
        study's trial or a sweep's point, oldest first."""
        rows = self._read(SQL_RUN_SWEEPS, (repo,))
        return [(int(i), str(b), str(n), str(w)) for i, b, n, w in rows]
