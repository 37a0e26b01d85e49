"""``exq queue show``, ``exq queue priority`` and ``exq queue run``: one run's
details, and the order the queue takes its runs in.

They go through the queue service (they work when no daemon runs), which rings
the daemon afterwards, so a change of order counts at once.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import typer

from exq.cli.main import handle_errors
from exq.cli.queue_cmds import _config, queue_app
from exq.cli.queue_view import run_json
from exq.daemon import service
from exq.daemon.resources import format_duration, format_size
from exq.daemon.states import RunRecord


@queue_app.command("show")
@handle_errors
def queue_show(
    run: str = typer.Argument(..., metavar="ID|NAME", help="Run id or experiment name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One run in full: what it asks for, its order, limits and retries, and the
    names of the environment variables it runs with (never their values)."""
    record = service.find_run(_config(), run)
    if as_json:
        typer.echo(json.dumps(show_json(record), indent=2))
        return
    for key, value in show_lines(record):
        typer.echo(f"{key + ':':<14}{value}")


def env_names(record: RunRecord) -> list[str] | None:
    """The names of the variables a run was queued with; None: it runs with the daemon's."""
    return None if record.env is None else sorted(record.env)


def show_json(record: RunRecord) -> dict[str, Any]:
    return {**run_json(record), "env": env_names(record)}


def show_lines(record: RunRecord) -> list[tuple[str, str]]:
    """(label, value) lines of ``queue show``; pure."""
    names = env_names(record)
    lines = [
        ("Run", f"{record.id} '{record.name}'"),
        ("State", record.state.value + (f" ({record.error})" if record.error else "")),
        ("Repo", record.repo),
        ("Params", " ".join(record.params) or "-"),
        ("Attempt", str(record.attempts)),
        ("Priority", str(record.priority)),
        ("After", ", ".join(map(str, record.after)) or "-"),
        ("GPUs", _gpus(record)),
        ("CPUs", f"{record.cpus:g}" if record.cpus else "-"),
        ("Memory", format_size(record.mem) if record.mem else "-"),
        ("Timeout", format_duration(record.timeout) if record.timeout else "-"),
        ("Retries", f"{record.retries_left} of {record.retries} left"),
        ("Next start", _time(record.not_before)),
        ("Created", _time(record.created)),
        ("Started", _time(record.started)),
        ("Finished", _time(record.finished)),
        ("Experiment", record.experiment_ref or "-"),
        ("Checkpoints", str(record.checkpoints)),
    ]
    if names is None:
        lines.append(("Environment", "the daemon's"))
    else:
        lines.append(("Environment", f"{len(names)} variables: {' '.join(names)}"))
    return lines


def _gpus(record: RunRecord) -> str:
    asked = int(record.gpus or 0)
    if record.gpus_assigned:
        return f"{asked} (holds {','.join(record.gpus_assigned)})"
    return str(asked) if asked else "-"


def _time(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


@queue_app.command("priority")
@handle_errors
def queue_priority(
    run: str = typer.Argument(..., metavar="ID|NAME", help="A queued run."),
    priority: str = typer.Argument(..., metavar="N", help="Higher starts first."),
) -> None:
    """Change a queued run's priority."""
    record = service.set_priority(_config(), run, priority)
    typer.echo(f"Run {record.id} '{record.name}' now has priority {int(priority)}.")


@queue_app.command("run")
@handle_errors
def queue_run(
    run: str = typer.Argument(..., metavar="ID|NAME", help="A queued run."),
) -> None:
    """Start this queued run next, whatever its place (once a slot and what it asks are free)."""
    record = service.run_next(_config(), run)
    typer.echo(f"Run {record.id} '{record.name}' starts next.")
