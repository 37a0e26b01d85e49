"""``exq status``, ``dag`` and ``stage list``: what they print, without typer.

The typer commands of :mod:`exq.cli.pipeline_cmds` call these functions, and so
does :mod:`exq.cli.main` for a plain command line before typer is imported:
one body, one output either way. The engine is imported inside each.
"""

from __future__ import annotations

import json

from exq.cli.terminal import echo


def show_status(
    targets: list[str], *, as_json: bool = False, cloud: bool = False, remote: str | None = None
) -> None:
    """Stages and tracked data that changed; with ``cloud``, the cache against a remote."""
    from exq.engine.run import commands as ops
    from exq.engine.run.project import open_project

    project = open_project()
    if cloud or remote:
        from exq.engine.run.transfer import cloud_status

        differs = cloud_status(project, targets, remote)
        if as_json:
            echo(json.dumps(differs, indent=2))
        for rel, how in differs.items() if not as_json else ():
            echo(f"\t{how}:\t{rel}")
        if not differs and not as_json:
            echo("Cache and remote are in sync.")
        return
    report = ops.status(project, targets)
    if as_json:
        echo(json.dumps(report, indent=2))
        return
    echo(ops.render_status(report))


def show_dag(
    targets: list[str], *, as_json: bool = False, dot: bool = False, mermaid: bool = False
) -> None:
    """The stage graph, as text, JSON, Graphviz DOT or a Mermaid flowchart."""
    from exq.engine.run import commands as ops
    from exq.engine.run.project import open_project

    project = open_project()
    fmt = "json" if as_json else "dot" if dot else "mermaid" if mermaid else "text"
    echo(ops.render_dag(project, targets, fmt))


def show_stage_list(
    targets: list[str], *, every: bool = False, as_json: bool = False, name_only: bool = False
) -> None:
    """The resolved stages, each with what it outputs or depends on."""
    from exq.engine.run import commands as ops
    from exq.engine.run.project import open_project

    project = open_project()
    if as_json:
        echo(json.dumps(ops.stage_list(project, targets, every=every), indent=2))
        return
    rows = ops.stage_descriptions(project, targets, every=every)
    width = max((len(address) for address, _ in rows), default=0)
    for address, text in rows:
        echo(address if name_only else f"{address:<{width}}  {text}".rstrip())
