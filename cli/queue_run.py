"""Starting the daemon in the background, and following queued runs to their end.

``exq queue start`` and ``exq exp run --run-all`` share these: the daemon is
``exq daemon`` spawned in a new session (so a Ctrl-C in the terminal does not
reach it), with stdin and stdout on /dev/null and stderr appended to the
daemon log; the CLI waits until its socket answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import typer

from exq.cli.queue_view import progress_line
from exq.daemon.client import Client, DaemonError
from exq.daemon.config import DaemonConfig
from exq.daemon.protocol import Code, check_jobs
from exq.daemon.states import RunState
from exq.engine.errors import ConfigError

# How long `queue start` waits for a new daemon's socket to answer.
START_TIMEOUT = 30.0
POLL = 0.05


def ensure_daemon(
    config: DaemonConfig, jobs: int | None, placement: list[str] | None = None
) -> tuple[int, bool]:
    """Start ``exq daemon`` detached unless one answers; set ``jobs`` on a running one.
    ``placement`` (``--executor X --address A``) goes to a daemon started now.

    Returns (pid, whether it was started now).
    """
    if jobs is not None:
        try:
            check_jobs(jobs)
        except ValueError as exc:
            raise ConfigError(f"-j: {exc}") from None
    client = Client(config.socket_path)
    running = client.running()
    if running is not None:
        if jobs is not None:
            client.set_jobs(jobs)
        return running.pid, False
    proc = _spawn_daemon(config, jobs, placement or [])
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        pong = client.running()
        if pong is not None:  # ours, or one started at the same time by someone else
            if jobs is not None and pong.pid != proc.pid:
                client.set_jobs(jobs)
            return pong.pid, True
        code = proc.poll()
        if code is not None:
            raise DaemonError(
                Code.FAILED,
                f"the exq daemon exited at start (status {code}): "
                f"{_last_line(config.daemon_log) or 'no output'}",
                hint=f"see {config.daemon_log}",
            )
        if time.monotonic() > deadline:
            raise DaemonError(
                Code.TIMEOUT,
                f"the exq daemon (pid {proc.pid}) did not answer within {START_TIMEOUT:g} s",
                hint=f"see {config.daemon_log}",
            )
        time.sleep(POLL)


def _spawn_daemon(
    config: DaemonConfig, jobs: int | None, placement: list[str]
) -> subprocess.Popen[bytes]:
    """``exq daemon [-j N]`` in a new session, stdin and stdout on /dev/null, stderr
    appended to the daemon log (tracebacks of a crash at start land there). Without
    ``jobs`` the daemon takes the slots it had last time (or ``[queue] jobs``)."""
    config.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(config.daemon_log, "ab") as log:
        return subprocess.Popen(
            [*exq_command(), "daemon", *(["--jobs", str(jobs)] if jobs else []), *placement],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )


def exq_command() -> list[str]:
    """How to run this exq again: the console script beside the interpreter, if any."""
    script = Path(sys.executable).parent / "exq"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "import sys; from exq.cli.main import main; sys.exit(main())"]


def _last_line(path: Path) -> str:
    try:
        lines = path.read_bytes()[-4096:].decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _say_if_paused(config: DaemonConfig) -> None:
    """A paused daemon starts none of the queued runs being followed: say so, once
    (they start if the queue is resumed meanwhile, from another shell)."""
    from exq.cli.queue_status import daemon_status

    status, _ = daemon_status(config)
    if status is not None and status.paused:
        typer.echo("exq: the queue is paused: its runs start after 'exq queue resume'.", err=True)


def run_all_queued(jobs: int | None) -> None:
    """``exp run --run-all``: start the daemon if needed, follow the queued runs.

    Ctrl-C stops following, not the runs. Exits 1 if any run did not succeed.
    """
    from exq.daemon import service
    from exq.daemon.study_service import study_status

    config = DaemonConfig.from_env()
    ids = [r.id for r in service.list_runs(config, [RunState.QUEUED, RunState.RUNNING])]
    # A study queues its trials one by one, as slots free: follow them as they come.
    studies = [s.study.id for s in study_status(config) if s.study.state == "active"]
    try:
        # Ctrl-C may come while the daemon starts: it is detached, so it and
        # the runs go on either way.
        pid, started = ensure_daemon(config, jobs)
        how = "Started" if started else "Using"
        watching = f" and {len(studies)} {'study' if len(studies) == 1 else 'studies'}"
        typer.echo(
            f"{how} the exq daemon (pid {pid}); following {len(ids)} run(s)"
            f"{watching if studies else ''}. Ctrl-C stops following, not the runs."
        )
        _say_if_paused(config)
        records = service.follow_runs(
            config, ids, lambda record: typer.echo(progress_line(record)), studies
        )
    except KeyboardInterrupt:
        typer.echo("Stopped following; the runs go on (see 'exq queue status').", err=True)
        raise typer.Exit(130) from None
    counts: dict[str, int] = {}
    for record in records:
        counts[record.state.value] = counts.get(record.state.value, 0) + 1
    if records:
        typer.echo(
            "Done: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) + "."
        )
    if any(record.state is not RunState.SUCCESS for record in records):
        raise typer.Exit(1)
