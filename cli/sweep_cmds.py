"""``exq sweep status``: how studies go, read from the queue database (no
daemon and no Optuna needed)."""

from __future__ import annotations

import json
import shutil
import sys

import typer

from exq.cli.app import app, handle_errors
from exq.daemon.config import DaemonConfig
from exq.daemon.study_service import StudyStatus, TrialRow, study_status

sweep_app = typer.Typer(help="Follow studies (exp run --queue --optimize).", no_args_is_help=True)
app.add_typer(sweep_app, name="sweep")


@sweep_app.command("status")
@handle_errors
def sweep_status(
    name: str = typer.Argument(None, help="The study (name or id; default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Trials done, running, pruned and failed, and the best so far, of each study."""
    studies = study_status(DaemonConfig.from_env(), name)
    if as_json:
        typer.echo(json.dumps([s.to_json() for s in studies], indent=2))
        return
    if not studies:
        typer.echo("No studies.")
        return
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    blocks = [study_text(s, width, trials=name is not None) for s in studies]
    typer.echo("\n\n".join(blocks))


def study_text(status: StudyStatus, width: int | None, *, trials: bool) -> str:
    """A study's summary lines, and its trials' table when ``trials``."""
    data = status.to_json()
    lines = [
        f"Study {data['name']} ({data['state']}): {data['direction']} {data['objective']},"
        f" {data['sampler']} sampler, seed {data['seed']}",
        f"  trials {data['budget']}: {data['done']} done, {data['running']} running,"
        f" {data['queued']} queued, {data['pruned']} pruned, {data['failed']} failed,"
        f" {data['to_ask']} to ask",
    ]
    if data["error"]:
        lines.append(f"  error: {data['error']}")
    best = status.best
    if best is not None:
        lines.append(
            f"  best: {best.value:g} by {best.name} ({' '.join(best.params)})"
            f"{'' if best.experiment is None else ' -> ' + short_ref(best.experiment)}"
        )
    if trials and status.trials:
        rows = [["Trial", "Run", "Name", "State", "Value", "Params"]]
        rows += [trial_cells(t) for t in status.trials]
        lines += ["", *aligned(rows, width)]
    return "\n".join(lines)


def trial_cells(t: TrialRow) -> list[str]:
    value = "" if t.value is None else f"{t.value:g}"
    return [str(t.trial), str(t.run_id), t.name or "", t.state, value, " ".join(t.params)]


def short_ref(ref: str) -> str:
    """``refs/exps/ab/cdef.../NAME`` as ``NAME``."""
    return ref.rsplit("/", 1)[-1]


def aligned(rows: list[list[str]], width: int | None) -> list[str]:
    """Rows as aligned columns, two spaces apart; the last cut with ``…`` to ``width``."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        line = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  "
        line += row[-1]
        if width is not None and len(line) > width:
            line = line[: max(width - 1, 0)] + "…"
        lines.append(line.rstrip())
    return lines
