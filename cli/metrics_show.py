"""``exq metrics show``: what it prints, without typer; and the pieces the
other comparing commands of :mod:`exq.cli.exp_show_cmds` share with it.

The typer command calls :func:`show_metrics`, and so does :mod:`exq.cli.main`
for a plain command line before typer is imported: one body, one output
either way. The engine, pygit2 and rich are imported inside the functions.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from exq.cli.terminal import echo
from exq.engine.errors import ConfigError, GitError

if TYPE_CHECKING:
    from exq.engine.experiments.collect import Collector
    from exq.engine.experiments.compare import Values
    from exq.engine.git import Git

# The engine's compare.DEFAULT_PRECISION, here so that help pages need no engine
# (a test checks that the two agree).
DEFAULT_PRECISION = 5


def open_collector(
    param_deps: bool = False, *, need_git: bool = True, keep_revs: bool = False
) -> tuple[Git | None, Collector]:
    """The project's git repository and a Collector over it; with ``keep_revs``, one
    that keeps what it reads of commits for the next run (see ``RevStore``)."""
    from exq.engine.experiments.collect import Collector
    from exq.engine.experiments.revstore import RevStore
    from exq.engine.git import Git
    from exq.engine.run.project import open_project

    project = open_project()
    try:
        git: Git | None = Git.open(project.root)
    except GitError:
        if need_git:
            raise
        git = None
    store = None
    if keep_revs and git is not None:
        prefix = git.prefix_of(project.root)
        store = RevStore.open(git, prefix=prefix, param_deps=param_deps)
    return git, Collector(git, project.root, project.cache_dir, param_deps=param_deps, store=store)


def open_workspace() -> tuple[None, Collector]:
    """A Collector of the working tree only: no git repository is opened."""
    from exq.engine.experiments.collect import Collector
    from exq.engine.run.project import open_project

    project = open_project()
    return None, Collector(None, project.root, project.cache_dir)


def warn(errors: list[str]) -> None:
    for message in dict.fromkeys(errors):
        print(f"WARNING: {message}", file=sys.stderr)


def one_format(**flags: bool) -> None:
    chosen = [name for name, on in flags.items() if on]
    if len(chosen) > 1:
        raise ConfigError(f"options {' and '.join(chosen)} cannot be used together")


def only_targets(values: Values, targets: list[str]) -> Values:
    """The files named by ``--targets`` (a file, or a folder holding files)."""
    if not targets:
        return values
    wanted = [t.strip("/").removeprefix("./") for t in targets]
    return {
        file: keys
        for file, keys in values.items()
        if any(file == t or file.startswith(t + "/") for t in wanted)
    }


def show_metrics(
    targets: list[str],
    *,
    as_json: bool = False,
    as_md: bool = False,
    all_branches: bool = False,
    all_tags: bool = False,
    all_commits: bool = False,
    precision: int = DEFAULT_PRECISION,
) -> None:
    """The metrics of the workspace (and of branches, tags or commits)."""
    from exq.cli import render
    from exq.engine.experiments.collect import WORKSPACE

    one_format(**{"--json": as_json, "--md": as_md})
    many = all_branches or all_tags or all_commits
    # the workspace alone is read from disk: git (pygit2) only for other revisions
    git, collector = open_collector(need_git=True) if many else open_workspace()
    revisions: list[tuple[str, Values]] = []
    errors: list[str] = []
    workspace = collector.workspace()
    errors += workspace.errors
    revisions.append((WORKSPACE, only_targets(workspace.metrics, targets)))
    if git is not None:
        from exq.engine.experiments.rows import RevisionSet, select_revisions

        for rev in select_revisions(git, RevisionSet(all_branches, all_tags, all_commits)):
            data = collector.commit(rev.sha)
            errors += [f"{rev.name}: {message}" for message in data.errors]
            revisions.append((rev.name, only_targets(data.metrics, targets)))
    warn(errors)
    if as_json:
        echo(render.render_json(dict(revisions)))
        return
    text = metrics_grid(revisions, with_revision=many, precision=precision, markdown=as_md)
    if text:
        echo(text, nl=False)


def metrics_grid(
    revisions: list[tuple[str, Values]], *, with_revision: bool, precision: int, markdown: bool
) -> str:
    """DVC's ``metrics show`` table: a row per (revision, file), a column per metric."""
    from exq.cli import render
    from exq.engine.experiments.compare import format_value

    files: dict[str, None] = {}
    keys: dict[str, None] = {}
    for _, values in revisions:
        for file, names in values.items():
            files.setdefault(file)
            keys.update(dict.fromkeys(names))
    if not files:
        return ""
    header = (["Revision"] if with_revision else []) + ["Path", *keys]
    lines: list[list[str]] = []
    for name, values in revisions:
        for file in files:
            if file not in values and not with_revision:
                continue
            flat: dict[str, Any] = values.get(file, {})
            cells = [format_value(flat.get(k), precision, round_digits=True) for k in keys]
            lines.append(([name] if with_revision else []) + [file, *cells])
    grid = render.markdown_grid if markdown else render.plain_grid
    return grid(header, lines)
