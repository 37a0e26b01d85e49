"""What ``exq sweep status`` and ``queue status`` show of studies: plain text
from :class:`~exq.daemon.study_service.StudyStatus`, pure."""

from __future__ import annotations

from typing import Any

from exq.daemon.study_service import StudyStatus, TrialRow


def study_text(status: StudyStatus, width: int | None, *, trials: bool) -> str:
    """A study's summary lines, and its trials' table when ``trials``."""
    data = status.to_json()
    lines = [
        f"Study {data['name']} ({data['state']}): {data['direction']} {data['objective']},"
        f" {data['sampler']} sampler, seed {data['seed']}",
        f"  trials {data['budget']}: {data['done']} done, {data['running']} running,"
        f"{interrupted(data)} {data['queued']} queued, {data['pruned']} pruned,"
        f" {data['failed']} failed, {data['to_ask']} to ask",
    ]
    if data["error"]:  # why it failed, or that it was stopped
        label = "error" if data["state"] == "failed" else "note"
        lines.append(f"  {label}: {data['error']}")
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


def study_line(status: StudyStatus) -> str:
    """One line for ``queue status``: the counts and the best so far."""
    data = status.to_json()
    line = (
        f"Study {data['name']} ({data['state']}): {data['done']}/{data['budget']} done,"
        f" {data['running']} running,{interrupted(data)} {data['pruned']} pruned,"
        f" {data['failed']} failed"
    )
    best = status.best
    if best is not None:
        line += f"; best {data['objective']} {best.value:g} by {best.name}"
    return line


def interrupted(data: dict[str, Any]) -> str:
    """`` N interrupted,`` when trials wait for the next daemon to run again, else nothing."""
    return f" {data['interrupted']} interrupted," if data["interrupted"] else ""


def study_summary(status: StudyStatus) -> dict[str, Any]:
    """A study's JSON without its trials (``queue status --json``)."""
    return {k: v for k, v in status.to_json().items() if k != "trials"}
