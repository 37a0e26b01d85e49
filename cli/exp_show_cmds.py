"""Comparing revisions: ``exp show``, ``exp diff``, ``metrics show``/``diff``, ``params diff``.

Values come from ``exq.engine.experiments.collect`` (read from git blobs), tables and
diffs from ``exq.engine.experiments.compare`` and ``exq.cli.render``; this module only
maps options onto them. Revisions are what ``experiments.refs.resolve_rev`` accepts:
an experiment name, a branch, a tag, a sha; ``workspace`` names the working tree.
The engine, pygit2 and rich are imported inside the commands: ``exq --help``
imports this module for its registrations only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from exq.cli.completion import complete_revisions
from exq.cli.exp_show import show_experiments
from exq.cli.main import exp_app, handle_errors, metrics_app, params_app
from exq.cli.metrics_show import DEFAULT_PRECISION, show_metrics
from exq.cli.metrics_show import one_format as _one_format
from exq.cli.metrics_show import only_targets as _only_targets
from exq.cli.metrics_show import open_collector as _open
from exq.cli.metrics_show import warn as _warn
from exq.engine.errors import GitError

if TYPE_CHECKING:
    from exq.engine.experiments.collect import Collector, RevData
    from exq.engine.experiments.compare import DiffRow
    from exq.engine.git import Git

# ---------------------------------------------------------------- exp show


@exp_app.command("show")
@handle_errors
def exp_show(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per row."),
    as_csv: bool = typer.Option(False, "--csv", help="Print comma-separated values."),
    as_md: bool = typer.Option(False, "--md", help="Print a markdown table."),
    include_params: list[str] = typer.Option(
        [],
        "--include-params",
        help="Params to show: comma lists of names or globs (NAME or FILE:NAME).",
    ),
    exclude_params: list[str] = typer.Option([], "--exclude-params", help="Params to hide."),
    include_metrics: list[str] = typer.Option(
        [],
        "--include-metrics",
        help="Metrics to show: comma lists of names or globs (NAME or FILE:NAME).",
    ),
    exclude_metrics: list[str] = typer.Option([], "--exclude-metrics", help="Metrics to hide."),
    sort_by: str = typer.Option(
        None, "--sort-by", help="Sort experiments by a metric or param (NAME or FILE:NAME)."
    ),
    sort_order: str = typer.Option("asc", "--sort-order", help="asc or desc."),
    only_changed: bool = typer.Option(
        False, "--only-changed", help="Only columns whose values differ between rows."
    ),
    all_branches: bool = typer.Option(False, "--all-branches", "-a", help="Every branch tip."),
    all_tags: bool = typer.Option(False, "--all-tags", "-T", help="Every tagged commit."),
    all_commits: bool = typer.Option(False, "--all-commits", "-A", help="Every commit."),
    revs: list[str] = typer.Option(
        [],
        "--rev",
        help="Experiments of this commit (a branch, tag, sha) as baseline instead of HEAD's; "
        "repeat it for more.",
        autocompletion=complete_revisions,
    ),
    num: int = typer.Option(
        1, "--num", "-n", help="The last N commits of HEAD's (or each --rev's) history."
    ),
    no_timestamp: bool = typer.Option(False, "--no-timestamp", help="No Created column."),
    no_pager: bool = typer.Option(False, "--no-pager", help="Accepted; exq never pages."),
    param_deps: bool = typer.Option(
        False, "--param-deps", help="Only params that stages depend on."
    ),
    precision: int = typer.Option(
        DEFAULT_PRECISION, "--precision", min=0, help="Significant digits of numbers."
    ),
    hide_queued: bool = typer.Option(False, "--hide-queued", help="No queued runs (DVC 3)."),
    hide_failed: bool = typer.Option(
        False, "--hide-failed", help="No failed or interrupted runs (DVC 3)."
    ),
    drop: list[str] = typer.Option(
        [], "--drop", help="Leave out the columns whose header matches this regex (DVC 3)."
    ),
    keep: list[str] = typer.Option(
        [],
        "--keep",
        help="Keep the columns matching this regex despite --drop and --only-changed (DVC 3).",
    ),
    sha: bool = typer.Option(
        False, "--sha", help="Name baseline commits by their sha, not a branch or tag."
    ),
) -> None:
    """Show the workspace, the baseline and its experiments with their metrics and params."""
    show_experiments(
        as_json=as_json,
        as_csv=as_csv,
        as_md=as_md,
        include_params=include_params,
        exclude_params=exclude_params,
        include_metrics=include_metrics,
        exclude_metrics=exclude_metrics,
        sort_by=sort_by,
        sort_order=sort_order,
        only_changed=only_changed,
        all_branches=all_branches,
        all_tags=all_tags,
        all_commits=all_commits,
        revs=revs,
        num=num,
        no_timestamp=no_timestamp,
        no_pager=no_pager,
        param_deps=param_deps,
        precision=precision,
        hide_queued=hide_queued,
        hide_failed=hide_failed,
        drop=drop,
        keep=keep,
        sha=sha,
    )


# ---------------------------------------------------------------- diffs


def _two_revs(a_rev: str | None, b_rev: str | None) -> tuple[str, str]:
    """DVC's defaults: HEAD against the workspace; one rev against the workspace."""
    from exq.engine.experiments.rows import WORKSPACE

    return a_rev or "HEAD", b_rev or WORKSPACE


def _collect_pair(
    git: Git | None, collector: Collector, a_rev: str, b_rev: str
) -> tuple[RevData, RevData]:
    from exq.engine.experiments.collect import RevData
    from exq.engine.experiments.rows import WORKSPACE, collect_rev

    pair = []
    for rev in (a_rev, b_rev):
        if rev == WORKSPACE:
            pair.append(collector.workspace())
        elif git is None:
            raise GitError(f"cannot read revision '{rev}': not a git repository")
        elif rev == "HEAD" and git.head_sha() is None:
            pair.append(RevData())  # nothing committed yet: everything is new
        else:
            pair.append(collect_rev(git, collector, rev))
    _warn([e for data in pair for e in data.errors])
    return pair[0], pair[1]


@exp_app.command("diff")
@handle_errors
def exp_diff(
    a_rev: str = typer.Argument(
        None, help="Old experiment or revision (default: HEAD).", autocompletion=complete_revisions
    ),
    b_rev: str = typer.Argument(
        None,
        help="New experiment or revision (default: the workspace).",
        autocompletion=complete_revisions,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    as_md: bool = typer.Option(False, "--md", help="Print markdown tables."),
    show_all: bool = typer.Option(False, "--all", help="Also unchanged metrics and params."),
    param_deps: bool = typer.Option(
        False, "--param-deps", help="Only params that stages depend on."
    ),
    precision: int = typer.Option(
        DEFAULT_PRECISION, "--precision", min=0, help="Significant digits of metrics."
    ),
) -> None:
    """Show how metrics and params changed between two experiments or revisions."""
    from exq.cli import render
    from exq.engine.experiments.compare import diff_values

    _one_format(**{"--json": as_json, "--md": as_md})
    git, collector = _open(param_deps)
    old_label, new_label = _two_revs(a_rev, b_rev)
    old, new = _collect_pair(git, collector, old_label, new_label)
    metrics = diff_values(old.metrics, new.metrics, all=show_all, precision=precision)
    params = diff_values(old.params, new.params, all=show_all, precision=None)
    if as_json:
        typer.echo(render.render_exp_diff_json(metrics, params))
        return
    text = render.render_exp_diff(
        metrics, params, old_label=old_label, new_label=new_label, markdown=as_md
    )
    if text:
        typer.echo(text, nl=False)


@metrics_app.command("diff")
@handle_errors
def metrics_diff(
    a_rev: str = typer.Argument(None, help="Old revision (default: HEAD)."),
    b_rev: str = typer.Argument(None, help="New revision (default: the workspace)."),
    targets: list[str] = typer.Option(
        [], "--targets", "--target", "-t", help="Only these metrics files or folders."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    as_md: bool = typer.Option(False, "--md", help="Print a markdown table."),
    show_all: bool = typer.Option(False, "--all", help="Also unchanged metrics."),
    precision: int = typer.Option(
        DEFAULT_PRECISION, "--precision", min=0, help="Digits after the decimal point."
    ),
) -> None:
    """Show how metrics changed between two revisions (default: HEAD and the workspace)."""
    from exq.engine.experiments.compare import diff_values

    _one_format(**{"--json": as_json, "--md": as_md})
    git, collector = _open(need_git=False)
    old_label, new_label = _two_revs(a_rev, b_rev)
    old, new = _collect_pair(git, collector, old_label, new_label)
    rows = diff_values(
        _only_targets(old.metrics, targets),
        _only_targets(new.metrics, targets),
        all=show_all,
        precision=precision,
        round_digits=True,
        unsupported="-",
    )
    _print_diff(rows, "Metric", old_label, new_label, as_json=as_json, as_md=as_md)


@params_app.command("diff")
@handle_errors
def params_diff(
    a_rev: str = typer.Argument(None, help="Old revision (default: HEAD)."),
    b_rev: str = typer.Argument(None, help="New revision (default: the workspace)."),
    targets: list[str] = typer.Option(
        [], "--targets", "--target", "-t", help="Only these params files."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    as_md: bool = typer.Option(False, "--md", help="Print a markdown table."),
    show_all: bool = typer.Option(False, "--all", help="Also unchanged params."),
    deps: bool = typer.Option(False, "--deps", help="Only params that stages depend on."),
) -> None:
    """Show how params changed between two revisions (default: HEAD and the workspace)."""
    from exq.engine.experiments.compare import diff_values

    _one_format(**{"--json": as_json, "--md": as_md})
    git, collector = _open(deps, need_git=False)
    old_label, new_label = _two_revs(a_rev, b_rev)
    old, new = _collect_pair(git, collector, old_label, new_label)
    rows = diff_values(
        _only_targets(old.params, targets),
        _only_targets(new.params, targets),
        all=show_all,
        precision=None,
    )
    _print_diff(
        rows, "Param", old_label, new_label, as_json=as_json, as_md=as_md, show_change=False
    )


def _print_diff(
    rows: list[DiffRow],
    title: str,
    old_label: str,
    new_label: str,
    *,
    as_json: bool,
    as_md: bool,
    show_change: bool = True,
) -> None:
    from exq.cli import render

    if as_json:
        typer.echo(render.render_diff_json(rows))
        return
    text = render.render_diff(
        rows,
        title=title,
        old_label=old_label,
        new_label=new_label,
        show_change=show_change,
        markdown=as_md,
    )
    if text:
        typer.echo(text, nl=False)


# ---------------------------------------------------------------- metrics show


@metrics_app.command("show")
@handle_errors
def metrics_show(
    targets: list[str] = typer.Argument(None, help="Only these metrics files or folders."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    as_md: bool = typer.Option(False, "--md", help="Print a markdown table."),
    all_branches: bool = typer.Option(False, "--all-branches", "-a", help="Every branch tip."),
    all_tags: bool = typer.Option(False, "--all-tags", "-T", help="Every tagged commit."),
    all_commits: bool = typer.Option(False, "--all-commits", "-A", help="Every commit."),
    precision: int = typer.Option(
        DEFAULT_PRECISION, "--precision", min=0, help="Digits after the decimal point."
    ),
) -> None:
    """Show the metrics of the workspace (and of branches, tags or commits)."""
    show_metrics(
        targets or [],
        as_json=as_json,
        as_md=as_md,
        all_branches=all_branches,
        all_tags=all_tags,
        all_commits=all_commits,
        precision=precision,
    )
