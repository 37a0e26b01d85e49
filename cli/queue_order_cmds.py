"""``exq queue show``, ``exq queue priority`` and ``exq queue run``: one run's
details, and the order the queue takes its runs in.

They go through the queue service (they work when no daemon runs), which rings
the daemon afterwards, so a change of order counts at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from exq.cli.main import handle_errors
from exq.cli.messages import format_seconds
from exq.cli.queue_cmds import _config, complete_runs, queue_app
from exq.cli.queue_view import format_metric, progress_text, run_json
from exq.daemon.config import DaemonConfig
from exq.daemon.progress import RunProgress, run_progress
from exq.daemon.resources import format_duration, format_size
from exq.daemon.states import AttemptRecord, RunRecord, RunState

if TYPE_CHECKING:
    from exq.engine.experiments.history import CheckpointPoint, StepHistory


@queue_app.command("show")
@handle_errors
def queue_show(
    run: str = typer.Argument(
        ...,
        metavar="ID|NAME",
        help="Run id or experiment name.",
        autocompletion=complete_runs,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One run in full: what it asks for, its order, limits and retries, and the
    names of the environment variables it runs with (never their values)."""
    from exq.daemon import service

    config = _config()
    record = service.find_run(config, run)
    extra = run_details(config, record)
    if as_json:
        typer.echo(json.dumps({**show_json(record), **extra.to_json()}, indent=2))
        return
    for key, value in [*show_lines(record), *extra.lines()]:
        typer.echo(f"{key + ':':<14}{value}")
    for line in extra.history_lines():
        typer.echo(line)
    if extra.last_lines:
        typer.echo(f"Last {len(extra.last_lines)} lines of output:")
        for line in extra.last_lines:
            typer.echo(f"  {line}")


@dataclass(frozen=True)
class RunDetails:
    """What ``queue show`` reads beyond the row: files, progress, metrics, output."""

    record: RunRecord
    worktree: Path | None  # a running local run's
    live_reports: list[Path]
    progress: RunProgress | None
    metrics: dict[str, dict[str, float]]  # of the experiment a successful run made
    last_lines: list[str]
    attempts: list[AttemptRecord] = field(default_factory=list)  # the ended ones
    checkpoints: list[CheckpointPoint] = field(default_factory=list)  # oldest first
    steps: StepHistory = field(default_factory=dict)  # of a running run's live loggers

    def to_json(self) -> dict[str, Any]:
        record = self.record
        return {
            "attempts": [attempt.to_json() for attempt in self.attempts],
            "history": {
                "checkpoints": [point.to_json() for point in self.checkpoints],
                "steps": {name: [list(p) for p in points] for name, points in self.steps.items()},
            },
            "baseline": record.baseline,
            "snapshot": record.snapshot,
            "targets": list(record.targets),
            "worktree": None if self.worktree is None else str(self.worktree),
            "log": record.log_path,
            "live_reports": [str(p) for p in self.live_reports],
            "progress": None if self.progress is None else self.progress.to_json(),
            "metrics": self.metrics,
            "last_lines": self.last_lines,
        }

    def lines(self) -> list[tuple[str, str]]:
        record = self.record
        lines = [
            ("Baseline", record.baseline[:7]),
            ("Snapshot", f"{record.snapshot[:7]} ({record.snapshot_ref})"),
            ("Targets", " ".join(record.targets) or "all stages"),
            ("Executor", record.executor or "the daemon's"),
            ("Where", record.location or "-"),
            ("Worktree", str(self.worktree) if self.worktree else "-"),
            ("Log", record.log_path or "-"),
            ("Live report", " ".join(str(p) for p in self.live_reports) or "-"),
        ]
        if self.progress is not None:
            lines.append(("Progress", progress_text(self.progress) or "-"))
        for file, values in self.metrics.items():
            lines.append(("Metrics", f"{file}: {_metrics_text(values)}"))
        for attempt in self.attempts:
            lines.append((f"Attempt {attempt.attempt}", attempt_text(attempt)))
        return lines

    def history_lines(self) -> list[str]:
        """The metrics at each checkpoint, then the last steps the loggers wrote."""
        lines = []
        if self.checkpoints:
            lines.append(f"Metrics at each of {_checkpoints(len(self.checkpoints))}:")
            for point in self.checkpoints:
                step = "" if point.step is None else f" step {point.step}"
                values = "; ".join(
                    f"{file}: {_metrics_text(values)}" for file, values in point.metrics.items()
                )
                lines.append(f"  {point.sha[:7]}{step}  {values or '-'}")
        if self.steps:
            lines.append(f"Metrics per step (the last {STEPS_SHOWN}):")
            lines += [f"  {line}" for line in steps_table(self.steps, STEPS_SHOWN)]
        return lines


STEPS_SHOWN = 10


def _checkpoints(count: int) -> str:
    return "1 checkpoint" if count == 1 else f"{count} checkpoints"


def _metrics_text(values: dict[str, float]) -> str:
    return " ".join(f"{k}={format_metric(v)}" for k, v in values.items())


def attempt_text(attempt: AttemptRecord) -> str:
    """``failed after 3.2s (exit 3): stage 'train': ...``; pure."""
    text = attempt.state.value
    if attempt.started is not None and attempt.finished is not None:
        text += f" after {format_seconds((attempt.finished - attempt.started).total_seconds())}"
    if attempt.exit_code is not None:
        text += f" (exit {attempt.exit_code})"
    if attempt.checkpoints:
        text += f", {_checkpoints(attempt.checkpoints)}"
    if attempt.error:
        text += f": {attempt.error.splitlines()[0]}"
    return text


def steps_table(steps: StepHistory, last: int) -> list[str]:
    """The last ``last`` steps as aligned columns: step, then each metric; pure."""
    names = list(steps)
    by_step: dict[int, dict[str, float]] = {}
    for name, points in steps.items():
        for step, value in points:
            by_step.setdefault(step, {})[name] = value
    rows = [
        [
            str(step),
            *(format_metric(by_step[step][n]) if n in by_step[step] else "-" for n in names),
        ]
        for step in sorted(by_step)[-last:]
    ]
    header = ["step", *names]
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [header, *rows]
    ]


def run_details(config: DaemonConfig, record: RunRecord) -> RunDetails:
    """Read what the row does not hold: the worktree's files, the log, the experiment."""
    from exq.daemon import service
    from exq.daemon.report import experiment_metrics, last_lines
    from exq.engine.experiments.history import step_history
    from exq.engine.experiments.progress import live_reports

    running = record.state is RunState.RUNNING and record.location in (None, "local")
    worktree = config.worktree_path(record.id, record.attempts) if running else None
    if worktree is not None and not worktree.is_dir():
        worktree = None
    progress = None
    if running:
        progress = run_progress(config, record, service.list_runs(config), datetime.now(UTC))
    success = record.state is RunState.SUCCESS
    checkpoints = _checkpoint_history(record) if record.checkpoints else []
    return RunDetails(
        record=record,
        worktree=worktree,
        live_reports=live_reports(worktree) if worktree is not None else [],
        progress=progress,
        metrics=experiment_metrics(record) if success else {},
        # What a run is doing or why it stopped; a success's output is 'queue logs' business.
        last_lines=last_lines(record) if record.state in TELLING else [],
        attempts=service.attempts_of(config, record.id),
        checkpoints=checkpoints,
        steps=step_history(worktree) if worktree is not None else _committed_steps(record),
    )


def _committed_steps(record: RunRecord) -> StepHistory:
    """The steps the loggers of an ended run's experiment commit hold; {} when none."""
    from exq.engine.errors import ExqError
    from exq.engine.git import Git
    from exq.engine.plots.collect import PlotsCollector
    from exq.engine.plots.steps import logged_steps
    from exq.engine.run.project import open_project

    if record.state is RunState.RUNNING or not record.experiment_sha:
        return {}
    try:
        project = open_project(Path(record.repo))
        collector = PlotsCollector(Git.open(project.root), project.root, project.cache_dir)
        return logged_steps(collector.commit(record.experiment_sha, record.name))
    except ExqError:
        return {}


def _checkpoint_history(record: RunRecord) -> list[CheckpointPoint]:
    """The metrics of each checkpoint the run committed; [] when its repository is gone."""
    from exq.engine.errors import ExqError
    from exq.engine.experiments.collect import Collector
    from exq.engine.experiments.history import checkpoint_history
    from exq.engine.git import Git
    from exq.engine.run.project import open_project

    if not record.experiment_sha:
        return []
    try:
        project = open_project(Path(record.repo))
        git = Git.open(project.root)
        collector = Collector(git, project.root, project.cache_dir)
        return checkpoint_history(git, collector, record.experiment_sha, record.baseline)
    except ExqError:
        return []


TELLING = frozenset({RunState.RUNNING, RunState.FAILED, RunState.INTERRUPTED})


def env_names(record: RunRecord) -> list[str] | None:
    """The names of the variables a run was queued with; None: it runs with the daemon's."""
    return None if record.env is None else sorted(record.env)


def show_json(record: RunRecord) -> dict[str, Any]:
    return {**run_json(record), "params": list(record.params), "env": env_names(record)}


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
    run: str = typer.Argument(
        ..., metavar="ID|NAME", help="A queued run.", autocompletion=complete_runs
    ),
    priority: str = typer.Argument(..., metavar="N", help="Higher starts first."),
) -> None:
    """Change a queued run's priority."""
    from exq.daemon import service

    record = service.set_priority(_config(), run, priority)
    typer.echo(f"Run {record.id} '{record.name}' now has priority {int(priority)}.")


@queue_app.command("run")
@handle_errors
def queue_run(
    run: str = typer.Argument(
        ..., metavar="ID|NAME", help="A queued run.", autocompletion=complete_runs
    ),
) -> None:
    """Start this queued run next, whatever its place (once a slot and what it asks are free)."""
    from exq.daemon import service

    record = service.run_next(_config(), run)
    typer.echo(f"Run {record.id} '{record.name}' starts next.")
