"""``exq queue report``: what the queue did in a window of time, for the morning.

``gather`` reads (the runs of the queue, the metrics of the experiments the
successful ones made, the last lines of the failed ones' logs); the rest are
pure functions over what it read:

* ``build_report``: the ``--json`` shape (a pruned run's metrics are those of
  the last checkpoint it kept, its error says at which step and why)::

    {"since", "until", "counts": {state: n}, "total_seconds",
     "runs": [{"id", "name", "repo", "state", "attempts", "started", "finished",
               "duration_seconds", "exit_code", "error", "experiment_ref",
               "params", "metrics": {file: {name: number}}}],
     "failures": [{"id", "name", "exit_code", "error", "last_lines"}],
     "best": {"metric", "order", "runs": [{"id", "name", "value",
              "experiment_ref"}]} | null}

  A run is in the window when it started or ended in it, or is running.
  ``best`` ranks the successful runs by ``--sort-by`` (``NAME`` or
  ``FILE:NAME``, as ``exp show`` takes it); without it, null.
* ``render_markdown``: the same as a Markdown page, readable in a terminal;
* ``render_html``: the same as HTML, the top of ``write_html``'s offline page,
  which then draws the plots of the successful runs' experiments with the
  plots page's code (``exq.engine.plots``), one line per run.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from exq.daemon.service import tail_offset
from exq.daemon.states import RunRecord, RunState
from exq.engine.errors import ConfigError, ExqError
from exq.engine.experiments.collect import Collector
from exq.engine.git import Git
from exq.engine.plots.collect import PlotsCollector
from exq.engine.plots.model import RevPlots, build_charts
from exq.engine.run.project import open_project

LAST_LINES = 10
BEST = 5

# The runs the report lists as failures, with their last lines: those that failed
# or ran past their --timeout (a pruned run was stopped on purpose: no failure).
FAILURES = frozenset({RunState.FAILED, RunState.TIMEOUT})


@dataclass(frozen=True)
class ReportRun:
    """One run and what was read for it."""

    record: RunRecord
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # file -> name -> value
    last_lines: list[str] = field(default_factory=list)  # a failed run's last output


def in_window(run: RunRecord, since: datetime) -> bool:
    if run.state is RunState.RUNNING:
        return True
    return any(t is not None and t >= since for t in (run.started, run.finished))


def duration_seconds(run: RunRecord, until: datetime) -> float | None:
    if run.started is None:
        return None
    end = run.finished or (until if run.state is RunState.RUNNING else None)
    # Milliseconds, not tenths: a run that fails at once took 30 ms, not 0.
    return None if end is None else round(max((end - run.started).total_seconds(), 0.0), 3)


def build_report(
    runs: Sequence[ReportRun],
    since: datetime,
    until: datetime,
    sort_by: str | None = None,
    ascending: bool = False,
) -> dict[str, Any]:
    """The report of ``runs`` (already in the window), as plain data."""
    ordered = sorted(runs, key=lambda r: (r.record.started or r.record.created, r.record.id))
    rows = [_run_json(r, until) for r in ordered]
    failures = [
        {
            "id": r.record.id,
            "name": r.record.name,
            "exit_code": r.record.exit_code,
            "error": r.record.error,
            "last_lines": r.last_lines,
        }
        for r in ordered
        if r.record.state in FAILURES
    ]
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "counts": dict(sorted(Counter(r.record.state.value for r in ordered).items())),
        "total_seconds": round(sum(row["duration_seconds"] or 0.0 for row in rows), 3),
        "runs": rows,
        "failures": failures,
        "best": None if sort_by is None else best_runs(ordered, sort_by, ascending),
    }


def _run_json(run: ReportRun, until: datetime) -> dict[str, Any]:
    record = run.record
    return {
        "id": record.id,
        "name": record.name,
        "repo": record.repo,
        "state": record.state.value,
        "attempts": record.attempts,
        "started": None if record.started is None else record.started.isoformat(),
        "finished": None if record.finished is None else record.finished.isoformat(),
        "duration_seconds": duration_seconds(record, until),
        "exit_code": record.exit_code,
        "error": record.error,
        "experiment_ref": record.experiment_ref,
        "params": list(record.params),
        "metrics": run.metrics,
    }


def best_runs(runs: Sequence[ReportRun], sort_by: str, ascending: bool) -> dict[str, Any]:
    """The successful runs ranked by the metric ``sort_by`` (``NAME`` or ``FILE:NAME``);
    none when no run has metrics yet (a night of failures); ConfigError when runs
    have metrics but not this one, or when it names more than one file's metric."""
    path, _, name = sort_by.rpartition(":")
    files = {
        file
        for r in runs
        for file, values in r.metrics.items()
        if name in values and (not path or path == file)
    }
    if not files and not any(r.metrics for r in runs):  # nothing to rank, no misspelling
        return {"metric": sort_by, "order": "asc" if ascending else "desc", "runs": []}
    if not files:
        raise ConfigError(f"--sort-by: no run in the report has the metric '{sort_by}'")
    if len(files) > 1:
        options = ", ".join(f"{file}:{name}" for file in sorted(files))
        raise ConfigError(f"--sort-by: '{sort_by}' is ambiguous, it matches {options}")
    (file,) = files
    scored = [
        (r.metrics[file][name], r)
        for r in runs
        if r.record.state is RunState.SUCCESS and name in r.metrics.get(file, {})
    ]
    scored.sort(key=lambda pair: pair[0], reverse=not ascending)
    return {
        "metric": f"{file}:{name}",
        "order": "asc" if ascending else "desc",
        "runs": [
            {
                "id": r.record.id,
                "name": r.record.name,
                "value": value,
                "experiment_ref": r.record.experiment_ref,
            }
            for value, r in scored[:BEST]
        ],
    }


# -- Markdown -----------------------------------------------------------------


def render_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown page."""
    counts = ", ".join(f"{n} {state}" for state, n in report["counts"].items()) or "no runs"
    lines = [
        f"# Queue report: {_short(report['since'])} to {_short(report['until'])}",
        "",
        f"{len(report['runs'])} runs ({counts}), {_seconds(report['total_seconds'])} of runs.",
        "",
    ]
    if report["runs"]:
        lines += [
            "| ID | Name | State | Started | Duration | Attempts | Result |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for run in report["runs"]:
            result = _result(run)
            lines.append(
                f"| {run['id']} | {_cell(run['name'])} | {run['state']} "
                f"| {_short(run['started'])} | {_seconds(run['duration_seconds'])} "
                f"| {run['attempts']} | {_cell(result)} |"
            )
        lines.append("")
    best = report["best"]
    if best is not None:
        lines += [f"## Best runs by {best['metric']} ({best['order']})", ""]
        lines += [
            f"{i}. {run['name']} (run {run['id']}): {run['value']:.5g}"
            for i, run in enumerate(best["runs"], 1)
        ] or ["no successful run has it yet"]
        lines.append("")
    if report["failures"]:
        lines += ["## Failures", ""]
        for failure in report["failures"]:
            code = f", exit {failure['exit_code']}" if failure["exit_code"] is not None else ""
            lines += [f"### {failure['name']} (run {failure['id']}{code})", ""]
            lines += [f"{_first(failure['error'])}", ""]
            if failure["last_lines"]:
                lines += ["```", *failure["last_lines"], "```", ""]
    return "\n".join(lines)


def _result(run: dict[str, Any]) -> str:
    """The result cell: the experiment a successful run made; for a pruned run, the
    experiment its checkpoints kept and why it was stopped; else the error."""
    made = run["experiment_ref"].rsplit("/", 1)[-1] if run["experiment_ref"] else ""
    if run["state"] == RunState.SUCCESS.value and made:
        return made
    if run["state"] == RunState.PRUNED.value:
        return ": ".join(part for part in (made, _first(run["error"])) if part)
    return _first(run["error"])


def _first(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _short(iso: str | None) -> str:
    if iso is None:
        return ""
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    whole = int(value)
    if whole < 60:
        return f"{value:.0f}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


# -- reading --------------------------------------------------------------------


def gather(runs: Sequence[RunRecord], since: datetime) -> list[ReportRun]:
    """The runs of the window with their experiments' metrics and failures' last lines."""
    found = []
    for record in runs:
        if not in_window(record, since):
            continue
        # A pruned run's metrics are those of the last checkpoint it kept.
        kept = record.state in (RunState.SUCCESS, RunState.PRUNED)
        metrics = experiment_metrics(record) if kept else {}
        last = last_lines(record) if record.state in FAILURES else []
        found.append(ReportRun(record, metrics, last))
    return found


def experiment_metrics(record: RunRecord) -> dict[str, dict[str, float]]:
    """The numeric metrics of the experiment commit the run made; {} when it is gone."""
    if not record.experiment_sha:
        return {}
    try:
        project = open_project(Path(record.repo))
        collector = Collector(Git.open(project.root), project.root, project.cache_dir)
        data = collector.commit(record.experiment_sha)
    except ExqError:  # the repository or the experiment is gone: no metrics to show
        return {}
    return {
        file: numbers
        for file, values in data.metrics.items()
        if (numbers := {k: float(v) for k, v in values.items() if _number(v)})
    }


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def last_lines(record: RunRecord, count: int = LAST_LINES) -> list[str]:
    if record.log_path is None:
        return []
    path = Path(record.log_path)
    try:
        with open(path, "rb") as handle:
            handle.seek(tail_offset(path, count))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return text.splitlines()


# -- HTML -----------------------------------------------------------------------


def render_html(report: dict[str, Any]) -> str:
    """The report's tables as HTML (the top of the page; the charts follow)."""
    counts = ", ".join(f"{n} {state}" for state, n in report["counts"].items()) or "no runs"
    parts = [
        f'<p class="summary">{escape(_short(report["since"]))} to '
        f"{escape(_short(report['until']))}: {len(report['runs'])} runs ({escape(counts)}),"
        f" {escape(_seconds(report['total_seconds']))} of runs.</p>",
        '<table id="exq-report-runs"><tr><th>ID</th><th>Name</th><th>State</th>'
        "<th>Started</th><th>Duration</th><th>Attempts</th><th>Params</th><th>Result</th></tr>",
    ]
    for run in report["runs"]:
        result = _result(run)
        cells = [
            run["id"],
            run["name"],
            run["state"],
            _short(run["started"]),
            _seconds(run["duration_seconds"]),
            run["attempts"],
            " ".join(run["params"]),
            result,
        ]
        row = "".join(f"<td>{escape(str(cell))}</td>" for cell in cells)
        parts.append(f'<tr class="{escape(run["state"])}">{row}</tr>')
    parts.append("</table>")
    best = report["best"]
    if best is not None:
        parts.append(f"<h2>Best runs by {escape(best['metric'])} ({best['order']})</h2><ol>")
        parts += [
            f"<li>{escape(r['name'])} (run {r['id']}): {r['value']:.5g}</li>" for r in best["runs"]
        ]
        parts.append("</ol>")
    if report["failures"]:
        parts.append("<h2>Failures</h2>")
        for failure in report["failures"]:
            code = f", exit {failure['exit_code']}" if failure["exit_code"] is not None else ""
            parts.append(
                f"<h3>{escape(failure['name'])} (run {failure['id']}{code})</h3>"
                f"<p>{escape(_first(failure['error']))}</p>"
                f'<pre class="last-lines">{escape(chr(10).join(failure["last_lines"]))}</pre>'
            )
    return "\n".join(parts) + "\n"


def run_plots(runs: Sequence[ReportRun]) -> list[RevPlots]:
    """The plots of the experiments the successful runs made, labelled by run name."""
    found: list[RevPlots] = []
    for run in runs:
        record = run.record
        if record.state is not RunState.SUCCESS or not record.experiment_sha:
            continue
        try:
            project = open_project(Path(record.repo))
            collector = PlotsCollector(Git.open(project.root), project.root, project.cache_dir)
            found.append(collector.commit(record.experiment_sha, record.name))
        except ExqError:  # the repository or experiment is gone: no lines for it
            continue
    return found


def write_html(report: dict[str, Any], runs: Sequence[ReportRun], out_dir: Path) -> Path:
    """``out_dir/index.html``: the report and its runs' plots, one offline page."""
    from exq.engine.plots.page import write_images, write_page  # vl-convert: only here

    revs = run_plots(runs)
    return write_page(
        out_dir,
        build_charts(revs),
        [rev.rev for rev in revs],
        title="exq queue report",
        images=write_images(out_dir, revs),
        intro_html=render_html(report),
    )
