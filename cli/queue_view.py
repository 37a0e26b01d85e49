"""What ``exq queue status`` shows, as plain data: pure functions over run records.

``status_json`` is the ``--json`` shape of the issue::

    {"daemon": {"running", "answering", "pid", "slots_busy", "slots_total", "gpus_total",
                "gpus_free", "paused"},
     "runs": [{"id", "name", "repo", "state", "attempt", "created", "started",
               "finished", "exit_code", "experiment_ref", "error", "checkpoints",
               "executor", "location", "cpus", "gpus", "mem", "gpus_assigned",
               "priority", "after", "timeout", "retries", "retries_left",
               "retry_delay", "not_before",
               "progress": {"step", "total_steps", "metrics", "updated", "eta_seconds"}}],
     "queue": {"eta_seconds"}}

(``queue status --json`` adds each run's ``sweep``, the sweep or study it is a
point of, and the ``studies`` under way: see ``cli/sweep_view.py``)
with times in ISO 8601, durations in seconds, memory in bytes and absent values
null (``progress`` is null for a run that is not running). The environment a run was queued with is never shown, only its variable
names by ``exq queue show``. ``status_rows`` gives the
table's cells; drawing them is the command's business.

What is shown is true when the daemon is gone: with no daemon alive, a row
still ``running`` on this machine is shown ``interrupted`` (the daemon died
under it; the next start queues it again). A daemon that is alive but does
not answer (stopped, or too busy) is shown as such (``silent_pid``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exq.cli.messages import format_seconds
from exq.daemon.progress import RunProgress
from exq.daemon.states import DIED, RunRecord, RunState, seen_state

if TYPE_CHECKING:
    from exq.daemon.protocol import StatusReply

HEADERS = ("ID", "Name", "Repo", "State", "Where", "Created", "Duration", "Attempt", "Result")


def daemon_json(daemon: StatusReply | None, silent_pid: int | None = None) -> dict[str, Any]:
    if daemon is None:
        return {
            "running": silent_pid is not None,
            "answering": False,
            "pid": silent_pid,
            "slots_busy": None,
            "slots_total": None,
            "gpus_total": None,
            "gpus_free": None,
            "paused": None,
        }
    return {
        "running": True,
        "answering": True,
        "pid": daemon.pid,
        "slots_busy": daemon.slots_busy,
        "slots_total": daemon.slots_total,
        "gpus_total": daemon.gpus_total,
        "gpus_free": daemon.gpus_free,
        "paused": daemon.paused,
    }


def shown_state(run: RunRecord, daemon_alive: bool) -> RunState:
    """The state to show (see :func:`exq.daemon.states.seen_state`)."""
    return seen_state(run, daemon_alive)


def run_json(
    run: RunRecord, daemon_alive: bool = True, progress: RunProgress | None = None
) -> dict[str, Any]:
    state = shown_state(run, daemon_alive)
    if state is RunState.RUNNING and progress is None:
        progress = RunProgress()
    return {
        "id": run.id,
        "name": run.name,
        "repo": run.repo,
        "state": state.value,
        "attempt": run.attempts,
        "created": _iso(run.created),
        "started": _iso(run.started),
        "finished": _iso(run.finished),
        "exit_code": run.exit_code,
        "experiment_ref": run.experiment_ref,
        "error": run.error if state is run.state else DIED,
        "checkpoints": run.checkpoints,
        "executor": run.executor,
        "location": run.location,
        "cpus": run.cpus,
        "gpus": None if run.gpus is None else int(run.gpus),
        "mem": run.mem,
        "gpus_assigned": list(run.gpus_assigned),
        "priority": run.priority,
        "after": list(run.after),
        "timeout": run.timeout,
        "retries": run.retries,
        "retries_left": run.retries_left,
        "retry_delay": run.retry_delay,
        "not_before": _iso(run.not_before),
        "progress": progress.to_json() if state is RunState.RUNNING and progress else None,
    }


def status_json(
    daemon: StatusReply | None,
    runs: Sequence[RunRecord],
    silent_pid: int | None = None,
    progress: Mapping[int, RunProgress] | None = None,
    queue_eta: float | None = None,
) -> dict[str, Any]:
    alive = daemon is not None or silent_pid is not None
    found = progress or {}
    return {
        "daemon": daemon_json(daemon, silent_pid),
        "runs": [run_json(run, alive, found.get(run.id)) for run in runs],
        "queue": {"eta_seconds": None if queue_eta is None else round(queue_eta, 1)},
    }


def daemon_line(
    daemon: StatusReply | None, silent_pid: int | None = None, queue_eta: float | None = None
) -> str:
    """One line on the daemon: running or not, slots busy/total, when the queue drains."""
    if daemon is None and silent_pid is not None:
        return (
            f"Daemon: running (pid {silent_pid}) but not answering (stopped or busy);"
            " the runs above are read from the queue database"
        )
    if daemon is None:
        return "Daemon: not running (start it with 'exq queue start')"
    extra = f", {daemon.gpus_free}/{daemon.gpus_total} GPUs free" if daemon.gpus_total else ""
    extra += ", paused" if daemon.paused else ""
    extra += ", stopping" if daemon.stopping else ""
    if queue_eta is not None and queue_eta > 0:
        extra += f"; the queue drains in about {format_seconds(queue_eta)}"
    return (
        f"Daemon: running (pid {daemon.pid}), {daemon.slots_busy}/{daemon.slots_total}"
        f" slots busy{extra}"
    )


def status_rows(
    runs: Sequence[RunRecord],
    now: datetime,
    home: Path | None = None,
    daemon_alive: bool = True,
    progress: Mapping[int, RunProgress] | None = None,
) -> list[list[str]]:
    """The table's cells, one row per run; a running run's result is its progress."""
    found = progress or {}
    rows = []
    for run in runs:
        state = shown_state(run, daemon_alive)
        if state is not run.state:  # its clock stopped when the daemon died; no slot held
            run = replace(run, state=state, finished=None, worker_slot=None, error=DIED)
        rows.append(
            [
                str(run.id),
                run.name,
                short_repo(run.repo, home),
                state.value,
                where(run),
                run.created.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                duration(run, now),
                str(run.attempts),
                result_text(run, found.get(run.id)),
            ]
        )
    return rows


def where(run: RunRecord) -> str:
    """Where the run runs or ran (``local``, ``ray ADDRESS node ID``); for a
    queued run, the executor it asked for, if any."""
    if run.state is RunState.QUEUED or not run.location:
        return run.executor or ""
    return run.location


def short_repo(repo: str, home: Path | None) -> str:
    """``~/...`` for folders under the home folder."""
    if home is not None:
        path = Path(repo)
        if path == home or home in path.parents:
            return "~/" + path.relative_to(home).as_posix() if path != home else "~"
    return repo


def duration(run: RunRecord, now: datetime) -> str:
    """Running time so far, or of the last attempt; empty before it starts."""
    if run.started is None:
        return ""
    end = run.finished if run.finished is not None else now
    if run.state is not RunState.RUNNING and run.finished is None:
        return ""
    return format_seconds((end - run.started).total_seconds())


def result_text(run: RunRecord, progress: RunProgress | None = None) -> str:
    """The outcome in a few words: the experiment, the exit code, the error; for a
    running run its slot and progress."""
    if run.state is RunState.SUCCESS:
        return run.experiment_ref.rsplit("/", 1)[-1] if run.experiment_ref else "done"
    if run.state is RunState.RUNNING:
        held = f", GPU {','.join(run.gpus_assigned)}" if run.gpus_assigned else ""
        slot = f"slot {run.worker_slot}{held}" if run.worker_slot is not None else ""
        told = progress_text(progress) if progress is not None else ""
        return ": ".join(part for part in (slot, told) if part)
    if run.state is RunState.PRUNED:  # its chain is kept: name it with why it stopped
        kept = run.experiment_ref.rsplit("/", 1)[-1] if run.experiment_ref else ""
        return ": ".join(part for part in (kept, (run.error or "").strip()) if part)
    parts = []
    if run.state is RunState.QUEUED:
        if run.not_before is not None:
            when = run.not_before.astimezone().strftime("%H:%M:%S")
            parts.append(f"retry {run.retries - run.retries_left} at {when}")
        if run.after:
            parts.append("after " + ",".join(map(str, run.after)))
    if run.exit_code is not None:
        parts.append(f"exit {run.exit_code}")
    if run.error:
        parts.append(run.error.splitlines()[0] if run.error.strip() else "")
    return ": ".join(p for p in parts if p)


def progress_text(progress: RunProgress) -> str:
    """``step 41/100, 2m05s left, acc=0.91 loss=0.231``: what is known of a running run."""
    parts = []
    if progress.step is not None:
        total = f"/{progress.total_steps}" if progress.total_steps else ""
        parts.append(f"step {progress.step}{total}")
    if progress.eta_seconds is not None:
        parts.append(f"{format_seconds(progress.eta_seconds)} left")
    if progress.metrics:
        parts.append(" ".join(f"{k}={format_metric(v)}" for k, v in progress.metrics.items()))
    return ", ".join(parts)


def format_metric(value: float) -> str:
    """Five significant digits, as ``exp show`` rounds."""
    return f"{value:.5g}"


def progress_line(run: RunRecord) -> str:
    """One line for ``exp run --run-all`` when a run changes state."""
    head = f"[{run.id}] {run.name}: {run.state.value}"
    if run.state is RunState.RUNNING and run.worker_slot is not None:
        return f"{head} (slot {run.worker_slot}, attempt {run.attempts})"
    if run.state is RunState.SUCCESS and run.experiment_ref:
        return f"{head} -> {run.experiment_ref}"
    detail = result_text(run)
    return f"{head} ({detail})" if detail and run.state is not RunState.QUEUED else head


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# Columns a narrow terminal leaves out, first to last, so that the Result column
# (a running run's step, time left and metrics) shows as much as it can.
NARROW_DROPS = ("Created", "Repo", "Where", "Attempt")


def format_table(rows: Sequence[Sequence[str]], width: int | None = None) -> list[str]:
    """Rows under ``HEADERS`` as aligned text lines, two spaces between columns.

    With ``width`` (a terminal's), the columns of ``NARROW_DROPS`` are left out
    one by one while the table is wider, then the last column is cut with ``…``.
    """
    columns = list(range(len(HEADERS)))
    table = [list(HEADERS), *[list(row) for row in rows]]
    if width is not None:
        for name in NARROW_DROPS:
            if _table_width(table, columns) <= width:
                break
            columns.remove(HEADERS.index(name))
    table = [[row[i] for i in columns] for row in table]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    lines = []
    for row in table:
        head = "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths[:-1], strict=True))
        last = row[-1]
        if width is not None:
            room = max(width - len(head) - 2, 8)
            if len(last) > room:
                last = last[: room - 1] + "…"
        lines.append(f"{head}  {last}".rstrip())
    return lines


def _table_width(table: Sequence[Sequence[str]], columns: Sequence[int]) -> int:
    """The width of the widest line of ``table`` showing ``columns`` whole."""
    return sum(max(len(row[i]) for row in table) for i in columns) + 2 * (len(columns) - 1)
