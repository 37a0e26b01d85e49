"""``exq plots show`` and ``exq plots diff``: plots files of revisions drawn into one HTML page.

Reading is ``exq.engine.plots.collect``'s, the charts ``exq.engine.plots.model``'s,
the page ``exq.engine.plots.page``'s; this module maps options onto them, as
DVC names them: targets, ``-o/--out`` (default ``dvc_plots``), ``--open``,
``--json``, and for ``diff`` revisions, ``-e/--experiment`` and ``--targets``.
The engine is imported inside the commands: ``exq --help`` imports this module
for its registrations only.
"""

from __future__ import annotations

import os
import webbrowser
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from exq.cli.app import handle_errors, plots_app
from exq.engine.errors import ConfigError, GitError, PlotsError

if TYPE_CHECKING:
    from exq.engine.git import Git
    from exq.engine.plots.collect import PlotsCollector
    from exq.engine.plots.model import RevPlots

DEFAULT_OUT = "dvc_plots"


def _collector() -> tuple[Git | None, PlotsCollector]:
    from exq.engine.git import Git
    from exq.engine.plots.collect import PlotsCollector
    from exq.engine.run.project import open_project

    project = open_project()
    try:
        git: Git | None = Git.open(project.root)
    except GitError:
        git = None  # a project without git still has a workspace to plot
    return git, PlotsCollector(git, project.root, project.cache_dir)


def _repo_targets(root: Path, targets: Sequence[str]) -> list[str]:
    """Targets as typed (relative to the current folder) made repo-relative."""
    found = []
    for target in targets:
        rel = os.path.relpath(os.path.abspath(target), root).replace(os.sep, "/")
        if rel == ".." or rel.startswith("../"):
            raise PlotsError(f"plots target '{target}' is outside the project")
        found.append(rel)
    return found


def _output(
    revs: list[RevPlots],
    targets: Sequence[str],
    typed: Sequence[str],
    *,
    out: str | None,
    open_page: bool,
    as_json: bool,
) -> None:
    """Warn about read errors, check the targets, then print JSON or write the page.

    Images are written beside the page (``static/``) in both cases, as DVC does.
    """
    from exq.cli import render
    from exq.engine.plots.defs import target_found
    from exq.engine.plots.model import build_charts, charts_to_json

    errors = [e for rev in revs for e in rev.errors]
    labels = [rev.rev for rev in revs]
    for target, shown in zip(targets, typed, strict=True):
        paths = [path for rev in revs for path in (*rev.files, *rev.images)]
        if not target_found(target, paths, [use.plot_id for rev in revs for use in rev.uses]):
            # The target's own read error says more than "not there".
            why = [e for e in errors if f" {target}:" in e or f" {target}/" in e]
            raise PlotsError(
                why[0]
                if why
                else f"plots target '{shown}': no plots file there in {', '.join(labels)}"
            )
    for message in dict.fromkeys(errors):
        typer.echo(f"WARNING: {message}", err=True)
    charts = build_charts(revs)
    if not charts and not any(rev.images for rev in revs):
        if as_json:
            typer.echo(render.render_json(charts_to_json(charts, labels, errors)))
        # As DVC: nothing to draw is no failure.
        typer.echo("No plots were loaded, visualization file will not be created.", err=True)
        return
    from exq.engine.plots.page import write_images, write_page  # loaded only to write a page

    out_dir = Path(out or DEFAULT_OUT)
    images = write_images(out_dir, revs)
    if as_json:
        listed = [
            {"file": i.path, "rev": i.rev, "url": str((out_dir / i.src).absolute())} for i in images
        ]
        typer.echo(render.render_json(charts_to_json(charts, labels, errors, listed)))
        return
    path = write_page(out_dir, charts, labels, images=images)
    url = path.as_uri()
    typer.echo(url)
    if open_page and not webbrowser.open(url):
        raise PlotsError("failed to open the plots page in a browser", hint="open the file above")


@plots_app.command("show")
@handle_errors
def plots_show(
    targets: list[str] = typer.Argument(
        None, help="Plots files or folders (default: every plot of every dvc.yaml)."
    ),
    out: str = typer.Option(
        None, "--out", "-o", help=f"Folder for index.html (default: {DEFAULT_OUT})."
    ),
    open_page: bool = typer.Option(False, "--open", help="Open the page in a web browser."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the plots' data as JSON; write no page."
    ),
) -> None:
    """Draw the workspace's plots (tsv, csv, json, yaml; images; folders of them) into one page."""
    from exq.engine.plots.collect import WORKSPACE

    _, collector = _collector()
    typed = list(targets or [])
    repo_targets = _repo_targets(collector.root, typed)
    revs = [collector.workspace(repo_targets or None, WORKSPACE)]
    _output(revs, repo_targets, typed, out=out, open_page=open_page, as_json=as_json)


@plots_app.command("diff")
@handle_errors
def plots_diff(
    revisions: list[str] = typer.Argument(
        None,
        help="Revisions or experiments (default: HEAD and the workspace; one: it and the workspace).",
    ),
    experiment: bool = typer.Option(
        False,
        "--experiment",
        "-e",
        help="The revisions are experiments; a single one is drawn against its baseline.",
    ),
    targets: list[str] = typer.Option(
        [], "--targets", "--target", help="Plots files or folders (repeat for more)."
    ),
    out: str = typer.Option(
        None, "--out", "-o", help=f"Folder for index.html (default: {DEFAULT_OUT})."
    ),
    open_page: bool = typer.Option(False, "--open", help="Open the page in a web browser."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the plots' data as JSON; write no page."
    ),
    legend: str = typer.Option(
        "rev",
        "--legend",
        help="Name each line by its revision (rev), or also by the params that differ "
        "between the revisions drawn (params).",
    ),
) -> None:
    """Draw plots of several revisions or experiments, a line per revision in each chart."""
    from exq.engine.plots.collect import resolve_revisions

    if legend not in ("rev", "params"):
        raise ConfigError(f"--legend: expected rev or params, got '{legend}'")
    git, collector = _collector()
    pairs = resolve_revisions(git, list(revisions or []), experiment=experiment)
    if not pairs:
        raise ConfigError("no revision to draw")
    if legend == "params":
        pairs = _params_labels(git, collector.root, pairs)
    repo_targets = _repo_targets(collector.root, targets)
    revs = collector.revisions(pairs, repo_targets or None)
    _output(revs, repo_targets, targets, out=out, open_page=open_page, as_json=as_json)


def _params_labels(
    git: Git | None, root: Path, pairs: list[tuple[str, str | None]]
) -> list[tuple[str, str | None]]:
    """The (label, sha) pairs relabelled with the params that differ between them."""
    from exq.engine.experiments.collect import Collector
    from exq.engine.plots.legend import params_legend
    from exq.engine.run.project import open_project

    collector = Collector(git, root, open_project().cache_dir)
    params = {
        label: (collector.workspace() if sha is None else collector.commit(sha)).params
        for label, sha in pairs
    }
    labels = params_legend(params)
    return [(labels[label], sha) for label, sha in pairs]
