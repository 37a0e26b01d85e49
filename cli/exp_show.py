"""``exq exp show``: what it prints, without typer.

The typer command of :mod:`exq.cli.exp_show_cmds` calls :func:`show_experiments`,
and so does :mod:`exq.cli.main` for a plain command line before typer is
imported: one body, one output either way. The engine, pygit2 and rich are
imported inside.
"""

from __future__ import annotations

import gc
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, cast

from exq.cli.metrics_show import DEFAULT_PRECISION, one_format, open_collector, warn
from exq.cli.terminal import echo
from exq.engine.errors import ConfigError

if TYPE_CHECKING:
    from exq.engine.experiments.compare import RowState, Values
    from exq.engine.experiments.rows import PendingRun

# With no terminal (output piped to a file or a test) nothing is elided.
_UNLIMITED_WIDTH = 1 << 40


def _pending_runs(root: Path) -> list[PendingRun]:
    """Queued, running and failed runs of this repository, read from the queue's database."""
    from exq.daemon.config import DaemonConfig
    from exq.daemon.service import list_runs
    from exq.daemon.states import RunState
    from exq.engine.experiments.rows import PendingRun

    config = DaemonConfig.from_env()
    states = [RunState(state) for state in PENDING_STATES]
    records = list_runs(config, states, repo=str(root))
    return [
        PendingRun(
            name=r.name,
            snapshot=r.snapshot,
            baseline=r.baseline,
            state=cast("RowState", r.state.value),  # one of PENDING_STATES
            created=r.created,
            live_metrics=_live_metrics(config.worktree_path(r.id, r.attempts))
            if r.state is RunState.RUNNING
            else None,
        )
        for r in records
    ]


def _sweeps(root: Path) -> dict[tuple[str, str], str]:
    """The sweep or study of each experiment of this repository that the queue
    ran as a point of one, by (baseline, name); the newest run of a name wins."""
    from exq.daemon.config import DaemonConfig
    from exq.daemon.study_service import run_sweeps

    return {
        (baseline, name): sweep
        for _, baseline, name, sweep in run_sweeps(DaemonConfig.from_env(), str(root))
    }


def _live_metrics(worktree: Path) -> Values | None:
    """The metrics files of a running run's worktree as they are now; None when it
    runs elsewhere (a cluster) or its worktree is gone."""
    if not worktree.is_dir():
        return None
    from exq.engine.experiments.collect import Collector

    return Collector(None, worktree).workspace().metrics


PENDING_STATES: tuple[RowState, ...] = ("queued", "running", "failed", "interrupted", "pruned")


def _width() -> int:
    """COLUMNS if set, else the terminal's width, else unlimited (piped output)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return _UNLIMITED_WIDTH


def _color() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def show_experiments(
    *,
    as_json: bool = False,
    as_csv: bool = False,
    as_md: bool = False,
    include_params: Sequence[str] = (),
    exclude_params: Sequence[str] = (),
    include_metrics: Sequence[str] = (),
    exclude_metrics: Sequence[str] = (),
    sort_by: str | None = None,
    sort_order: str = "asc",
    only_changed: bool = False,
    all_branches: bool = False,
    all_tags: bool = False,
    all_commits: bool = False,
    revs: Sequence[str] = (),
    num: int = 1,
    no_timestamp: bool = False,
    no_pager: bool = False,
    param_deps: bool = False,
    precision: int = DEFAULT_PRECISION,
    hide_queued: bool = False,
    hide_failed: bool = False,
    drop: Sequence[str] = (),
    keep: Sequence[str] = (),
    sha: bool = False,
) -> None:
    """The workspace, the baseline and its experiments with their metrics and params."""
    from exq.cli import render
    from exq.engine.experiments.compare import (
        ColumnPicks,
        build_table,
        mark_sweeps,
        pick_values,
        rows_to_json,
        split_filter_list,
    )
    from exq.engine.experiments.rows import RevisionSet, add_pending, exp_show_rows

    del no_pager  # nothing to page: tables are printed whole
    one_format(**{"--json": as_json, "--csv": as_csv, "--md": as_md})
    if sort_order not in ("asc", "desc"):
        raise ConfigError(f"--sort-order: expected asc or desc, got '{sort_order}'")
    if num < 1:
        raise ConfigError(f"--num: expected a number of commits of 1 or more, got {num}")
    picks = ColumnPicks.of(list(drop), list(keep))
    # Thousands of rows make no reference cycles: the collector would only scan them again.
    gc.disable()
    git, collector = open_collector(param_deps, keep_revs=True)
    assert git is not None and collector.store is not None
    errors: list[str] = []
    selection = RevisionSet(all_branches, all_tags, all_commits, num, tuple(revs))
    rows = exp_show_rows(git, collector, selection, errors=errors)
    collector.store.save()
    pending = _pending_runs(collector.root)
    hidden = {"queued"} if hide_queued else set()
    hidden |= {"failed", "interrupted"} if hide_failed else set()
    rows = add_pending(rows, [p for p in pending if p.state not in hidden], collector, errors)
    rows = mark_sweeps(rows, _sweeps(collector.root))
    if sha:  # DVC's --sha: baseline commits by their sha, not a branch or tag
        rows = [
            replace(row, name=row.rev[:7]) if row.kind == "baseline" and row.rev else row
            for row in rows
        ]
    warn(errors)
    if as_json:
        echo(render.render_json(rows_to_json(pick_values(rows, picks))))
        return
    table = build_table(
        rows,
        include_params=split_filter_list(list(include_params)) or None,
        exclude_params=split_filter_list(list(exclude_params)) or None,
        include_metrics=split_filter_list(list(include_metrics)) or None,
        exclude_metrics=split_filter_list(list(exclude_metrics)) or None,
        sort_by=sort_by,
        sort_order="desc" if sort_order == "desc" else "asc",
        only_changed=only_changed,
        precision=precision,
        no_timestamp=no_timestamp,
        picks=picks,
    )
    if as_csv:
        echo(render.render_csv(table), nl=False)
    elif as_md:
        echo(render.render_markdown(table), nl=False)
    else:
        echo(render.render_table(table, width=_width(), color=_color()), nl=False)
