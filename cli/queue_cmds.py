"""``exq daemon`` and ``exq queue ...``: start, inspect and control the queue daemon.

Commands that only read or edit rows (``status``, ``logs``, ``remove``,
``retry``) are the queue service's use cases (:mod:`exq.daemon.service`), which
work when no daemon runs; commands that act on running runs or on the daemon
(``kill``, ``pause``, ``resume``, ``stop``, ``start``) go through the client,
whose method names mirror the daemon's handlers. Every failure is one line on
stderr; :data:`EXIT_STATUS` maps the protocol's error codes to exit statuses.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import typer

from exq.cli.main import app, fail, handle_errors
from exq.cli.queue_run import ensure_daemon
from exq.cli.queue_status import Snapshot, daemon_status, show_queue_status, status_snapshot
from exq.daemon.client import Client, DaemonError, DaemonNotRunning
from exq.daemon.config import DaemonConfig
from exq.daemon.protocol import MAX_JOBS, Code
from exq.daemon.resources import parse_duration
from exq.daemon.states import RunRecord, RunState

F = TypeVar("F", bound=Callable[..., Any])

queue_app = typer.Typer(help="Inspect and control the queue of experiments.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")

# The one table from the protocol's error codes to exit statuses.
EXIT_STATUS: dict[str, int] = {
    Code.FAILED: 1,
    Code.NOT_FOUND: 1,
    Code.INVALID_STATE: 1,
    Code.BAD_REQUEST: 2,
    Code.NOT_RUNNING: 3,
    Code.TIMEOUT: 4,
    Code.PERMISSION_DENIED: 5,
    Code.VERSION_MISMATCH: 6,
    Code.UNKNOWN_REQUEST: 6,
    Code.PROTOCOL: 6,
    Code.INTERNAL: 70,  # EX_SOFTWARE: a bug in the daemon
}


def complete_runs(incomplete: str) -> list[tuple[str, str]]:
    """Shell completion of ``ID|NAME`` arguments: the queue's run ids and names."""
    from exq.daemon import service

    try:
        runs = service.list_runs(_config())
    except Exception:  # completion never prints an error in the middle of a line
        return []
    found = []
    for run in runs:
        for word in (str(run.id), run.name):
            if word.startswith(incomplete):
                found.append((word, f"{run.name} ({run.state.value})"))
    return found


def daemon_errors(func: F) -> F:
    """Daemon errors as one line, with the exit status of their code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DaemonError as exc:
            fail(str(exc), EXIT_STATUS.get(exc.code, 1))

    return wrapper  # type: ignore[return-value]


def _config() -> DaemonConfig:
    return DaemonConfig.from_env()


def _client(config: DaemonConfig, timeout: float = 10.0) -> Client:
    return Client(config.socket_path, timeout=timeout)


# -- the daemon ---------------------------------------------------------------


@app.command("daemon")
@handle_errors
def daemon(
    jobs: int = typer.Option(
        None,
        "--jobs",
        "-j",
        min=1,
        max=MAX_JOBS,
        help="Runs at once (default: as last time, else [queue] jobs, else 1).",
    ),
    executor: str = typer.Option(
        None, "--executor", help="Where runs that did not choose go: local or ray."
    ),
    address: str = typer.Option(None, "--address", help="The Ray cluster's Jobs API address."),
) -> None:
    """Run the queue daemon in the foreground (what systemd and 'queue start' run)."""
    from exq.daemon.main import main  # anyio, aiosqlite, structlog: only here

    config = _config().with_executor(executor, address)
    running = _client(config, timeout=2).running()
    if running is not None:  # also one with another state dir but this socket
        fail(f"an exq daemon is already running (pid {running.pid})", EXIT_STATUS[Code.FAILED])
    # main() prints its own one-line error (a second daemon on the lock) and
    # returns the exit status.
    raise typer.Exit(main(config.with_jobs(jobs)))


@queue_app.command("start")
@handle_errors
@daemon_errors
def queue_start(
    jobs: int = typer.Option(
        None,
        "--jobs",
        "-j",
        min=1,
        max=MAX_JOBS,
        help="Runs at once (default: as last time, else [queue] jobs, else 1).",
    ),
    executor: str = typer.Option(
        None, "--executor", help="Where runs that did not choose go: local or ray."
    ),
    address: str = typer.Option(
        None, "--address", help="The Ray cluster's Jobs API address (http://HOST:8265)."
    ),
) -> None:
    """Start the daemon in the background if it is not running; set how many runs go at once."""
    config = _config().with_executor(executor, address)  # checks the executor's name
    placement = [
        *(["--executor", executor] if executor else []),
        *(["--address", address] if address else []),
    ]
    pid, started = ensure_daemon(config, jobs, placement)
    slots = jobs or _slots(config)
    if started and config.executor != "local":
        typer.echo(
            f"Started the exq daemon (pid {pid}), {slots} run(s) at a time,"
            f" sending runs to Ray at {config.ray_address}."
        )
    elif started:
        typer.echo(f"Started the exq daemon (pid {pid}), {slots} run(s) at a time.")
    elif placement:
        fail(
            f"the exq daemon is already running (pid {pid}) with its own executor:"
            " stop it with 'exq queue stop' to start it with another",
            1,
        )
    elif jobs is not None:
        typer.echo(f"The exq daemon is running (pid {pid}); now {jobs} run(s) at a time.")
    else:
        typer.echo(f"The exq daemon is already running (pid {pid}).")


# -- reading the queue ----------------------------------------------------------


@queue_app.command("status")
@handle_errors
def queue_status(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    watch: bool = typer.Option(
        False, "--watch", "-w", help="Refresh until the queue drains (or Ctrl-C)."
    ),
    interval: float = typer.Option(
        2.0, "--interval", min=0.1, max=3600, help="Seconds between refreshes, with --watch."
    ),
) -> None:
    """The runs of the queue and the daemon's state (works when the daemon is down)."""
    if interval != interval:  # nan passes any range check
        fail("Invalid value for '--interval': nan is not a number of seconds.", 2)
    config = _config()
    if watch and as_json:
        fail("--watch and --json do not go together: pick one", 2)
    if watch:
        _watch(config, interval)
        return
    show_queue_status(config, as_json=as_json)


def _watch(config: DaemonConfig, interval: float) -> None:
    """Redraw the status in place on a terminal (rich), else print it when it
    changes; return once the queue has drained or no daemon runs it, or at Ctrl-C."""
    try:
        if sys.stdout.isatty():
            snapshot = _watch_live(config, interval)
        else:
            snapshot = _watch_plain(config, interval)
    except KeyboardInterrupt:
        return
    if snapshot.drained:
        return
    if snapshot.held:  # paused: the queued runs wait for a resume
        typer.echo("The queue is paused: its runs start after 'exq queue resume'.", err=True)
    else:  # no daemon: the queued runs would wait for ever
        typer.echo("No daemon runs the queue: start it with 'exq queue start'.", err=True)


def _watch_live(config: DaemonConfig, interval: float) -> Snapshot:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console()
    snapshot = status_snapshot(config)
    with Live(Text(snapshot.text(console.width)), console=console, auto_refresh=False) as live:
        while not snapshot.settled:
            time.sleep(interval)
            snapshot = status_snapshot(config)
            live.update(Text(snapshot.text(console.width)), refresh=True)
    return snapshot


def _watch_plain(config: DaemonConfig, interval: float) -> Snapshot:
    shown: list[tuple[object, ...]] | None = None
    while True:
        snapshot = status_snapshot(config)
        # Durations and times left move every second: a new block only when
        # a state or a step changes, not at every tick.
        key: list[tuple[object, ...]] = [
            (r.id, r.state, r.attempts, r.checkpoints) for r in snapshot.runs
        ]
        key += [(i, p.step) for i, p in sorted(snapshot.progress.items())]
        if key != shown:
            typer.echo(snapshot.text(None) + "\n", nl=True)
            sys.stdout.flush()
            shown = key
        if snapshot.settled:
            return snapshot
        time.sleep(interval)


def _slots(config: DaemonConfig) -> int | str:
    status, _ = daemon_status(config)
    return status.slots_total if status is not None else "?"


@queue_app.command("logs")
@handle_errors
def queue_logs(
    run: str = typer.Argument(
        ...,
        metavar="ID|NAME",
        help="Run id or experiment name.",
        autocompletion=complete_runs,
    ),
    follow: bool = typer.Option(
        False,
        "--follow",
        "-f",
        help="Keep printing until the run ends; exit 1 unless it succeeded.",
    ),
    lines: int = typer.Option(
        None, "--lines", "-n", min=0, help="Only the last N lines (then follow, with -f)."
    ),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="The run and its output lines as JSON; with -f, JSON lines as they come.",
    ),
) -> None:
    """Print a run's output."""
    from exq.daemon import service

    config = _config()
    record = service.find_run(config, run)
    if as_json:
        _logs_json(config, record, follow=follow, lines=lines)
        return
    if follow:
        last = service.follow_log(
            config, record.id, sys.stdout.buffer, on_wait=_say_why, lines=lines
        )
        if last is None:
            fail(f"run {record.id} was removed from the queue", 1)
        elif last.state is not RunState.SUCCESS:
            detail = f": {last.error.splitlines()[0]}" if last.error else ""
            fail(f"run {last.id} '{last.name}' ended {last.state.value}{detail}", 1)
        return
    if record.log_path is None or not Path(record.log_path).exists():
        typer.echo(
            f"Run {record.id} '{record.name}' has no output yet ({record.state.value}).", err=True
        )
        return
    path = Path(record.log_path)
    start = 0 if lines is None else service.tail_offset(path, lines)
    service.copy_log(path, start, sys.stdout.buffer)


def _logs_json(config: DaemonConfig, record: RunRecord, *, follow: bool, lines: int | None) -> None:
    """``queue logs --json`` (see :mod:`exq.cli.log_json`); with ``follow``, exits
    1 unless the run succeeded, as the plain ``--follow`` does."""
    import io

    from exq.cli.log_json import JsonLines, run_fields, split_lines
    from exq.daemon import service

    if not follow:
        path = Path(record.log_path) if record.log_path else None
        output = io.BytesIO()
        if path is not None:
            start = 0 if lines is None else service.tail_offset(path, lines)
            service.copy_log(path, start, output)
        typer.echo(json.dumps({**run_fields(record), "lines": split_lines(output.getvalue())}))
        return
    stream = JsonLines(sys.stdout)
    last = service.follow_log(config, record.id, stream, lines=lines)  # type: ignore[arg-type]
    stream.finish()
    if last is None:
        fail(f"run {record.id} was removed from the queue", 1)
    else:
        typer.echo(json.dumps(run_fields(last)))
        if last.state is not RunState.SUCCESS:
            raise typer.Exit(1)


@queue_app.command("report")
@handle_errors
def queue_report(
    since: str = typer.Option(
        "12h", "--since", help="The window: runs of the last 12h, 30m, 2d..."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    as_md: bool = typer.Option(False, "--md", help="Print Markdown (the default)."),
    as_html: bool = typer.Option(
        False, "--html", help="Write one offline page with the runs' plots (see -o)."
    ),
    out: str = typer.Option("queue_report", "--out", "-o", help="The folder of the --html page."),
    sort_by: str = typer.Option(
        None, "--sort-by", help="Rank the successful runs by this metric (NAME or FILE:NAME)."
    ),
    sort_order: str = typer.Option("desc", "--sort-order", help="asc or desc (the default)."),
) -> None:
    """What the queue did in the window: runs, durations, states, failures, best runs."""
    from exq.daemon import report, service

    if as_json + as_md + as_html > 1:
        fail("--json, --md and --html do not go together: pick one", 2)
    if sort_order not in ("asc", "desc"):
        fail(f"--sort-order '{sort_order}': use asc or desc", 2)
    config = _config()
    now = datetime.now(UTC)
    window = now - timedelta(seconds=parse_duration(since, "--since"))
    runs = report.gather(service.list_runs(config), window)
    data = report.build_report(runs, window, now, sort_by, ascending=sort_order == "asc")
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    elif as_html:
        typer.echo(report.write_html(data, runs, Path(out)).as_uri())
    else:
        typer.echo(report.render_markdown(data), nl=False)


def _say_why(record: RunRecord, reason: str) -> None:
    typer.echo(f"exq: run {record.id} '{record.name}' is queued: {reason}.", err=True)


# -- editing the queue -------------------------------------------------------


@queue_app.command("remove")
@handle_errors
def queue_remove(
    runs: list[str] = typer.Argument(
        None, metavar="[ID|NAME]...", help="Runs to remove.", autocompletion=complete_runs
    ),
    queued: bool = typer.Option(False, "--queued", help="Every queued run."),
    failed: bool = typer.Option(False, "--failed", help="Every failed run."),
    success: bool = typer.Option(False, "--success", help="Every successful run."),
    all_: bool = typer.Option(False, "--all", help="Every run that is not running."),
) -> None:
    """Remove runs from the queue (never running ones: kill them first)."""
    from exq.daemon import service

    states = _states(queued=queued, failed=failed, success=success, all_=all_)
    if not runs and not states:
        fail("name the runs to remove, or pass --queued, --failed, --success or --all", 2)
    result = service.remove(_config(), runs or [], states)
    for record in result.removed:
        typer.echo(f"Removed run {record.id} '{record.name}' ({record.state.value}).")
    if result.running:
        fail(f"not removed (running): {', '.join(map(str, result.running))}", 1)
    if not result.removed:
        typer.echo("Nothing to remove.")


def _states(*, queued: bool, failed: bool, success: bool, all_: bool) -> list[RunState]:
    if all_:
        return [state for state in RunState if state is not RunState.RUNNING]
    states = [RunState.QUEUED] if queued else []
    states += [RunState.FAILED] if failed else []
    states += [RunState.SUCCESS] if success else []
    return states


@queue_app.command("retry")
@handle_errors
def queue_retry(
    runs: list[str] = typer.Argument(
        ..., metavar="ID|NAME...", help="Runs to queue again.", autocompletion=complete_runs
    ),
    reset: bool = typer.Option(
        False, "--reset", help="Checkpoint runs start over instead of resuming."
    ),
) -> None:
    """Queue failed, interrupted, cancelled, timed out or pruned runs again (at the back
    of the queue); a checkpoint run resumes from its last checkpoint."""
    from exq.daemon import service

    result = service.retry(_config(), runs, reset=reset)
    for record in result.records:
        if record.id in result.requeued:
            typer.echo(f"Queued run {record.id} '{record.name}' again.")
    refused = [f"{r.id} ({r.state.value})" for r in result.records if r.id not in result.requeued]
    if refused:
        fail(
            "only failed, interrupted, cancelled, timed out or pruned runs can be retried: "
            + ", ".join(refused),
            1,
        )


# -- controlling the daemon --------------------------------------------------


@queue_app.command("kill")
@handle_errors
@daemon_errors
def queue_kill(
    runs: list[str] = typer.Argument(
        ..., metavar="ID|NAME...", help="Runs to stop.", autocompletion=complete_runs
    ),
    force: bool = typer.Option(False, "--force", "-f", help="SIGKILL instead of SIGINT."),
) -> None:
    """Stop running runs (SIGINT to their process groups; SIGKILL with --force); cancel queued ones."""
    from exq.daemon import service

    done = service.kill(_config(), runs, force)
    signal = "SIGKILL" if force else "SIGINT"
    for run_id in done.signalled:
        typer.echo(f"Sent {signal} to run {run_id} (a queued run is cancelled).")
    for run_id in done.cancelled:
        typer.echo(f"Cancelled run {run_id} (it was queued).")
    if done.not_running:
        fail(f"not running or queued: {', '.join(map(str, done.not_running))}", 1)


@queue_app.command("pause")
@handle_errors
@daemon_errors
def queue_pause() -> None:
    """Start no new runs; running ones go on."""
    _client(_config()).pause()
    typer.echo("Paused: no new runs start until 'exq queue resume'.")


@queue_app.command("resume")
@handle_errors
@daemon_errors
def queue_resume() -> None:
    """Start new runs again."""
    _client(_config()).resume()
    typer.echo("Resumed.")


@queue_app.command("stop")
@handle_errors
@daemon_errors
def queue_stop(
    kill: bool = typer.Option(
        False, "--kill", help="Interrupt running runs (requeued at next start)."
    ),
) -> None:
    """Stop the daemon once running runs finish (or, with --kill, interrupt them)."""
    try:
        _client(_config()).stop(kill)
    except DaemonNotRunning:
        typer.echo("The exq daemon is not running.")
        return
    if kill:
        typer.echo("Stopping the exq daemon: running runs are interrupted and will run again.")
    else:
        typer.echo("Stopping the exq daemon once the running runs finish.")
