"""``exq queue status``: read the queue and the daemon at one moment, and print it.

The typer command of :mod:`exq.cli.queue_cmds` calls :func:`show_queue_status`
(and ``--watch`` takes :func:`status_snapshot` again and again), and so does
:mod:`exq.cli.main` for a plain command line before typer is imported: one
body, one output either way. Works when no daemon runs.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exq.cli.queue_view import daemon_line, format_table, status_json, status_rows
from exq.cli.terminal import echo
from exq.daemon.alive import lock_holder
from exq.daemon.config import DaemonConfig
from exq.daemon.progress import RunProgress, progress_of, queue_eta
from exq.daemon.states import RunRecord, RunState

if TYPE_CHECKING:
    from exq.daemon.protocol import StatusReply
    from exq.daemon.study_service import StudyStatus


def show_queue_status(config: DaemonConfig | None = None, *, as_json: bool = False) -> None:
    """The runs of the queue and the daemon's state, as a table or JSON."""
    snapshot = status_snapshot(config or DaemonConfig.from_env())
    if as_json:
        echo(json.dumps(snapshot.to_json(), indent=2))
        return
    width = None
    if sys.stdout.isatty():
        import shutil  # only on a terminal

        width = shutil.get_terminal_size().columns
    echo(snapshot.text(width))


@dataclass(frozen=True)
class Snapshot:
    """What ``queue status`` read at one moment."""

    runs: list[RunRecord]
    daemon: StatusReply | None
    silent: int | None
    progress: dict[int, RunProgress]
    drains: float | None
    now: datetime
    sweeps: dict[int, str] = field(default_factory=dict)  # by run id: its sweep or study
    studies: list[StudyStatus] = field(default_factory=list)

    def json_args(self) -> tuple[Any, ...]:
        return (self.daemon, self.runs, self.silent, self.progress, self.drains)

    def to_json(self) -> dict[str, Any]:
        """``status_json``, each run with its sweep, and the studies under way."""
        from exq.cli.sweep_view import study_summary

        data = status_json(*self.json_args())
        for run in data["runs"]:
            run["sweep"] = self.sweeps.get(run["id"])
        data["studies"] = [study_summary(s) for s in self.studies]
        return data

    def text(self, width: int | None) -> str:
        alive = self.daemon is not None or self.silent is not None
        lines = ["No runs in the queue."]
        if self.runs:
            rows = status_rows(
                self.runs, self.now, Path.home(), daemon_alive=alive, progress=self.progress
            )
            lines = format_table(rows, width)
        if self.studies:
            from exq.cli.sweep_view import study_line

            lines += [study_line(s) for s in self.studies]
        return "\n".join([*lines, daemon_line(self.daemon, self.silent, self.drains)])

    @property
    def drained(self) -> bool:
        """Nothing running or queued is left, and no study has trials left to ask
        (between two of its trials, nothing runs or waits for a moment)."""
        if any(r.state in (RunState.RUNNING, RunState.QUEUED) for r in self.runs):
            return False
        return not any(
            s.study.state == "active" and s.study.budget > s.study.queued for s in self.studies
        )

    @property
    def settled(self) -> bool:
        """Nothing will change: the queue drained, no daemon is there to run it, or
        its daemon is paused with nothing running."""
        return self.drained or (self.daemon is None and self.silent is None) or self.held

    @property
    def held(self) -> bool:
        """A paused daemon runs nothing: its queued runs wait for 'queue resume'."""
        running = any(r.state is RunState.RUNNING for r in self.runs)
        return self.daemon is not None and self.daemon.paused and not running


def status_snapshot(config: DaemonConfig) -> Snapshot:
    from exq.daemon import service

    runs = service.list_runs(config)
    daemon, silent = daemon_status(config)
    now = datetime.now(UTC)
    alive = daemon is not None or silent is not None
    # A run left "running" by a dead daemon is shown interrupted: no progress.
    progress = progress_of(config, runs, now) if alive else {}
    drains = queue_eta(
        runs,
        progress,
        daemon.slots_total if daemon is not None else None,
        paused=daemon is not None and daemon.paused,
    )
    sweeps, studies = _sweeps(config, runs, alive)
    return Snapshot(runs, daemon, silent, progress, drains, now, sweeps, studies)


def _sweeps(
    config: DaemonConfig, runs: list[RunRecord], alive: bool
) -> tuple[dict[int, str], list[StudyStatus]]:
    """Each run's sweep, and the studies under way or with runs in the queue."""
    from exq.daemon.study_service import run_sweeps, study_status

    sweeps = {run_id: sweep for run_id, _, _, sweep in run_sweeps(config)}
    shown = {run.id for run in runs}
    studies = [
        s
        for s in study_status(config, daemon_alive=alive)
        if s.study.state == "active" or any(t.run_id in shown for t in s.trials)
    ]
    return sweeps, studies


def daemon_status(config: DaemonConfig) -> tuple[StatusReply | None, int | None]:
    """The daemon's status reply; else the pid of a live daemon that did not
    answer (stopped with SIGSTOP, say), or None when no daemon is alive."""
    if not config.socket_path.exists():  # no one to ask: no client, no socket protocol
        return None, lock_holder(config.lock_path)
    from exq.daemon.client import Client, DaemonError

    try:
        return Client(config.socket_path, timeout=3).status(), None
    except DaemonError:
        return None, lock_holder(config.lock_path)
