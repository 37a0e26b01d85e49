"""The pipeline commands as engine functions: what ``exq repro``, ``status``,
``dag``, ``add``, ``checkout`` and ``stage`` do, minus the printing.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exq.engine.errors import ExqError, PipelineError, StageNotFound, did_you_mean
from exq.engine.run.project import Project
from exq.engine.spec import graph as graph_mod
from exq.engine.spec.graph import repo_path
from exq.engine.spec.loading import find_dvcfiles, load_pipeline
from exq.engine.spec.paramfiles import DiskSource
from exq.engine.spec.stage import Stage
from exq.engine.spec.templating import load_dvcfile

if TYPE_CHECKING:
    from exq.engine.run.outdated import StatusItem
    from exq.engine.run.repro import ReproOptions, ReproResult
    from exq.engine.run.workspace import StageIO
    from exq.engine.spec.dvcyaml_edit import LiveOptions


def cwd_in(project: Project) -> str:
    """The current folder relative to the project root ("." outside it): bare
    target names refer to the dvc.yaml there, as in DVC."""
    try:
        return Path.cwd().resolve().relative_to(project.root.resolve()).as_posix()
    except ValueError:
        return "."


async def run_repro(project: Project, options: ReproOptions, *, quiet: bool = False) -> ReproResult:
    """Load the pipeline and run ``repro``, printing stage output to stdout
    (``quiet``: only the commands' own output)."""
    # The scheduler and the runner only here: status, dag and stage list need neither.
    from exq.engine.run.repro import repro
    from exq.engine.run.runner import stdout_sink
    from exq.engine.run.workspace import StageIO

    pipeline = load_pipeline(project.root)
    selected = pipeline.graph.select(
        options.targets, single_item=options.single_item, cwd=options.cwd
    )
    sink = stdout_sink(prefixed=options.stage_jobs > 1 and len(selected) > 1, quiet=quiet)
    with StageIO(project) as io:
        return await repro(pipeline, io, options, sink)


def status(project: Project, targets: list[str]) -> dict[str, list[StatusItem]]:
    """``status --json``: changed stages and .dvc files, up-to-date ones left out."""
    # The workspace's hashes and the cache only here and below: dag and stage list
    # read the pipeline alone.
    from exq.engine.run.workspace import StageIO

    pipeline = load_pipeline(project.root)
    stages = pipeline.graph.select(targets, cwd=cwd_in(project)) if targets else pipeline.stages
    report: dict[str, list[StatusItem]] = {}
    with StageIO(project) as io:
        for stage in stages:
            items = io.status(pipeline, stage)
            if items:
                report[stage.address] = items
        if not targets:
            report.update(_tracked_status(project, io, pipeline.tracked))
    return report


def _tracked_status(
    project: Project, io: StageIO, tracked: list[str]
) -> dict[str, list[StatusItem]]:
    report: dict[str, list[StatusItem]] = {}
    for dvcfile in (project.root / rel for rel in tracked):
        rel_file = dvcfile.relative_to(project.root).as_posix()
        changed: dict[str, str] = {}
        for rel, info, cached in _dvcfile_entries(project, dvcfile):
            # As DVC's: a missing object first, whatever the workspace holds.
            if cached and info is not None and not io.cache.exists(info, io.state):
                changed[rel] = "not in cache"
                continue
            now = io.hash_like(rel, info)
            if now is None:
                changed[rel] = "deleted"
            elif info is None or now.md5 != info.md5:
                changed[rel] = "modified"
        if changed:
            report[rel_file] = [{"changed outs": changed}]
    return report


def render_status(report: dict[str, list[StatusItem]]) -> str:
    """The text ``dvc status`` prints for a report."""
    if not report:
        return "Data and pipelines are up to date."
    lines: list[str] = []
    for name, items in report.items():
        lines.append(f"{name}:")
        for item in items:
            if isinstance(item, str):
                lines.append(f"\t{item}")
                continue
            for heading, changes in item.items():
                lines.append(f"\t{heading}:")
                for path, state in changes.items():
                    if isinstance(state, dict):
                        for key, key_state in state.items():
                            lines.append(f"\t\t{key_state + ':':<20}{path}: {key}")
                    else:
                        lines.append(f"\t\t{state + ':':<20}{path}")
    return "\n".join(lines)


def render_dag(project: Project, targets: list[str], fmt: str) -> str:
    """The graph of stages and ``.dvc``-tracked data as text, ``dot``, ``mermaid`` or ``json``."""
    import json

    from exq.engine.spec import dagview

    pipeline = load_pipeline(project.root)
    stages = pipeline.graph.select(targets, cwd=cwd_in(project)) if targets else None
    tracked = [
        dagview.TrackedNode(
            dvcfile, tuple(rel for rel, _, _ in _dvcfile_entries(project, project.root / dvcfile))
        )
        for dvcfile in pipeline.tracked
    ]
    cwd = cwd_in(project)
    names = {stage.address: address_from(stage, cwd) for stage in pipeline.stages}
    names.update({node.dvcfile: posixpath.relpath(node.dvcfile, cwd) for node in tracked})
    view = dagview.relabel(dagview.build_view(pipeline.graph, tracked, stages), names)
    if fmt == "json":
        return json.dumps(dagview.view_json(view), indent=2)
    if fmt == "dot":
        return dagview.render_dot(view)
    if fmt == "mermaid":
        return dagview.render_mermaid(view)
    return dagview.render_text(view)


def add(project: Project, path: Path) -> str:
    """Track a file or folder; returns the repo-relative .dvc path written.

    As DVC, refuses a path that is, holds or lies inside an out of a stage:
    dvc.lock tracks those already.
    """
    from exq.engine.run.tracked import add_path
    from exq.engine.run.workspace import StageIO

    _refuse_stage_outs(project, path)
    _refuse_tracked_overlap(project, path)
    with StageIO(project) as io:
        written = add_path(project.root, path, io.cache, io.state)
    return written.relative_to(project.root).as_posix()


def _refuse_stage_outs(project: Project, path: Path) -> None:
    try:
        rel = Path(os.path.normpath(path.absolute())).relative_to(project.root).as_posix()
    except ValueError:
        return  # add_path reports paths outside the project
    graph = load_pipeline(project.root).graph
    for stage in graph.stages:
        for out in graph.outs_of(stage):
            if out == rel or out.startswith(rel + "/") or rel.startswith(out + "/"):
                raise PipelineError(
                    f"cannot add '{rel}': it overlaps with output '{out}' of stage "
                    f"'{stage.address}'",
                    hint="run the pipeline instead: dvc.lock tracks stage outputs",
                )


def _refuse_tracked_overlap(project: Project, path: Path) -> None:
    """As DVC, no tracked data inside other tracked data: a .dvc file written in a
    tracked folder would change that folder, and a folder holding tracked data
    would track it twice."""
    try:
        rel = Path(os.path.normpath(path.absolute())).relative_to(project.root).as_posix()
    except ValueError:
        return  # add_path reports paths outside the project
    for dvcfile in load_pipeline(project.root).tracked:
        for out, _, _ in _dvcfile_entries(project, project.root / dvcfile):
            if rel.startswith(out + "/"):
                raise PipelineError(
                    f"cannot add '{rel}': it lies inside '{out}', which {dvcfile} tracks",
                    hint=f"'exq add {out}' records the folder's changes",
                )
            if out.startswith(rel + "/"):
                raise PipelineError(
                    f"cannot add '{rel}': it holds '{out}', which {dvcfile} tracks",
                    hint=f"remove {dvcfile} first to track '{out}' as part of '{rel}'",
                )


def checkout(
    project: Project,
    targets: list[str],
    *,
    state_db: Path | None = None,
    missing_ok: bool = False,
    keep_unsaved: bool = False,
) -> list[str]:
    """Restore outs of stages (and data of .dvc files) from the cache; paths restored.

    With ``missing_ok``, outs whose objects are not in the cache are left out
    (a run will make them) instead of stopping the checkout. With
    ``keep_unsaved``, nothing is restored if a workspace file the cache does
    not hold would be overwritten or deleted (what ``checkout`` without
    ``--force`` promises).
    """
    from exq.engine.run.within import Part, part_hash
    from exq.engine.run.workspace import StageIO

    pipeline = load_pipeline(project.root)
    restored: list[str] = []
    with StageIO(project, state_db=state_db) as io:
        tracked = _tracked_outs(project, pipeline.tracked)
        if not targets:
            outs = _stage_outs(pipeline, pipeline.stages) + list(tracked.items())
        else:
            outs = [
                out
                for target in targets
                for out in _target_outs(project, pipeline, tracked, target)
            ]
        outs = [
            (rel, part_hash(io.cache, io.state, info) if isinstance(info, Part) else info)
            for rel, info in outs
        ]
        if keep_unsaved:
            _refuse_unsaved(io, [(rel, info) for rel, info in outs if info is not None])
        for rel, info in outs:
            if info is not None and _restore(io, rel, info, missing_ok):
                restored.append(rel)
        io.state.flush()
    return restored


def _tracked_outs(project: Project, tracked: list[str]) -> dict[str, Any]:
    """Data of the ``tracked`` .dvc files: path from the root -> recorded hash."""
    return {
        rel: info
        for dvcfile in tracked
        for rel, info in _dvcfile_outs(project, project.root / dvcfile)
    }


def _dvcfile_outs(project: Project, dvcfile: Path) -> list[tuple[str, Any]]:
    """The cached data one .dvc file tracks: (path from the root, recorded hash)."""
    return [(rel, info) for rel, info, cache in _dvcfile_entries(project, dvcfile) if cache]


def _dvcfile_entries(project: Project, dvcfile: Path) -> list[tuple[str, Any, bool]]:
    """Every entry of a .dvc file: (path from the root, recorded hash, whether cached)."""
    from exq.engine.run.tracked import read_tracked  # only where there are .dvc files

    return [
        ((dvcfile.parent / out.path).relative_to(project.root).as_posix(), out.info, out.cache)
        for out in read_tracked(dvcfile, project.root)
    ]


def _stage_outs(pipeline: Any, stages: list[Stage]) -> list[tuple[str, Any]]:
    """The cached outs of ``stages`` with the hashes their lock entries record."""
    outs = []
    for stage in stages:
        entry = pipeline.lock_entry(stage)
        for out in stage.outs if entry is not None else []:
            recorded = entry.out(out.path)
            if out.cache and recorded is not None:
                outs.append((repo_path(stage, out.path), recorded.to_hash()))
    return outs


def _target_outs(
    project: Project, pipeline: Any, tracked: dict[str, Any], target: str
) -> list[tuple[str, Any]]:
    """What one ``checkout`` target names: a .dvc file, a data path (of a .dvc
    file or of a stage's outs), else stages or a dvc.yaml, else a path inside a
    folder output (a :class:`~exq.engine.run.within.Part` of it)."""
    path = Path(target).absolute()
    rel = os.path.relpath(path, project.root).replace(os.sep, "/")
    if target.endswith(".dvc") and path.is_file() and not rel.startswith("../"):
        return _dvcfile_outs(project, project.root / rel)
    if rel in tracked:
        return [(rel, tracked[rel])]
    named = [out for out in _stage_outs(pipeline, pipeline.stages) if out[0] == rel]
    if named:
        return named
    try:
        stages = pipeline.graph.select([target], single_item=True, cwd=cwd_in(project))
    except (PipelineError, StageNotFound):
        if ":" in target or target.endswith(("dvc.yaml", "dvc.yml")):
            raise  # it names a dvc.yaml: its own error says what is wrong
        from exq.engine.run.within import containing  # only for a path no output is

        every = _stage_outs(pipeline, pipeline.stages) + list(tracked.items())
        part = containing(every, rel)
        if part is not None:
            return [(rel, part)]
        known = [stage.address for stage in pipeline.stages] + [out for out, _ in every]
        raise PipelineError(
            f"'{target}' is not a stage, a .dvc file or an output of this project",
            hint=did_you_mean(target, known) or "'exq stage list' lists the stages and their outs",
        ) from None
    return _stage_outs(pipeline, stages)


def _refuse_unsaved(io: StageIO, outs: list[tuple[str, Any]]) -> None:
    from exq.engine.data.unsaved import unsaved

    # The hashes of unchanged outs are those _restore asks for next (remembered).
    changed = [(rel, info) for rel, info in outs if _now_md5(io, rel, info) != info.md5]
    lost = [f for rel, info in changed for f in unsaved(io.cache, io.root / rel, info, io.state)]
    if lost:
        first = Path(lost[0]).relative_to(io.root).as_posix()
        more = f" (and {len(lost) - 1} more file(s))" if len(lost) > 1 else ""
        raise ExqError(
            f"'{first}'{more}: not in the cache; the checkout would lose it",
            hint="keep a copy of it elsewhere, or use --force to discard it",
        )


def _now_md5(io: StageIO, rel: str, info: Any) -> str | None:
    now = io.hash_like(rel, info)
    return None if now is None else now.md5


def _restore(io: StageIO, rel: str, info: Any, missing_ok: bool = False) -> bool:
    if _now_md5(io, rel, info) == info.md5:
        return False
    if missing_ok and not io.cache.exists(info, io.state):
        return False
    io.cache.checkout(io.root / rel, info, io.state)
    io.forget([rel])
    return True


def listed_stages(project: Project, targets: list[str], *, every: bool = False) -> list[Stage]:
    """The stages ``stage list`` shows: every one, or those the targets name.

    As DVC, no target means the ``dvc.yaml`` of the current folder.
    """
    pipeline = load_pipeline(project.root)
    if every:
        return list(pipeline.stages)
    return pipeline.graph.resolve_targets(targets or ["dvc.yaml"], cwd=cwd_in(project))


def stage_list(
    project: Project, targets: list[str], *, every: bool = False
) -> list[dict[str, Any]]:
    """The listed stages as plain data, in file order."""
    return [stage_record(stage) for stage in listed_stages(project, targets, every=every)]


def stage_descriptions(
    project: Project, targets: list[str], *, every: bool = False
) -> list[tuple[str, str]]:
    """(address from the current folder, description) of the listed stages, as DVC words them.

    With ``every``, the ``.dvc`` files are listed too (``Outputs <data>``), all in
    the order DVC walks the project.
    """
    from exq.engine.spec.dagview import walk_key

    cwd = cwd_in(project)
    rows = [
        (walk_key(stage.dvcfile), address_from(stage, cwd), stage.description())
        for stage in listed_stages(project, targets, every=every)
    ]
    if every:
        rows += _tracked_descriptions(project, cwd)
    rows.sort(key=lambda row: row[0])  # stable: stages of one file keep their order
    return [(address, text) for _, address, text in rows]


def _tracked_descriptions(project: Project, cwd: str) -> list[tuple[Any, str, str]]:
    """(walk key, address, ``Outputs <data>``) of every .dvc file of the project."""
    from exq.engine.run.tracked import find_tracked, read_tracked  # only with --all
    from exq.engine.spec.dagview import walk_key

    rows = []
    for dvcfile in find_tracked(project.root):
        rel = dvcfile.relative_to(project.root).as_posix()
        outs = ", ".join(out.path for out in read_tracked(dvcfile, project.root))
        rows.append((walk_key(rel), posixpath.relpath(rel, cwd), f"Outputs {outs}"))
    return rows


def address_from(stage: Stage, cwd: str) -> str:
    """The stage's address as DVC prints it from ``cwd``: ``name`` in that folder's dvc.yaml."""
    rel = posixpath.relpath(stage.dvcfile, cwd)
    return stage.name if rel == "dvc.yaml" else f"{rel}:{stage.name}"


def stage_record(stage: Stage) -> dict[str, Any]:
    return {
        "name": stage.name,
        "file": stage.dvcfile,
        "cmd": stage.cmd,
        "wdir": stage.wdir,
        "deps": list(stage.deps),
        "outs": [out.path for out in stage.outs_of("outs")],
        "metrics": [out.path for out in stage.outs_of("metrics")],
        "plots": [out.path for out in stage.outs_of("plots")],
        "params": {file: list(keys) for file, keys in stage.params.items()},
        "frozen": stage.frozen,
    }


def stage_add(
    project: Project,
    *,
    name: str,
    cmd: str,
    deps: list[str],
    outs: list[str],
    outs_no_cache: list[str],
    params: list[str],
    metrics: list[str],
    metrics_no_cache: list[str],
    plots: list[str],
    wdir: str | None,
    force: bool,
    checkpoints: list[str] | None = None,
    live: LiveOptions | None = None,
) -> str:
    """Write a stage into the dvc.yaml of the current folder; its repo-relative path."""
    from exq.engine.spec.dvcyaml_edit import add_stage  # only this command edits dvc.yaml

    dvcfile = Path.cwd() / "dvc.yaml"
    add_stage(
        dvcfile,
        name,
        cmd=cmd,
        deps=deps,
        outs=outs,
        outs_no_cache=outs_no_cache,
        params=params,
        metrics=metrics,
        metrics_no_cache=metrics_no_cache,
        plots=plots,
        wdir=wdir,
        force=force,
        checkpoints=checkpoints or [],
        live=live,
        check=lambda text: _check_graph(project, dvcfile, text),
    )
    # As `dvc stage add`: cached outs belong to the cache, not to git.
    base = Path(os.path.normpath(Path.cwd() / (wdir or ".")))
    # The live folder is the section's one output; its summary stays in git.
    cached_live = [live.path] if live is not None and live.cache else []
    for out in [*outs, *metrics, *plots, *(checkpoints or []), *cached_live]:
        path = Path(os.path.normpath(base / out))
        if project.root in path.parents:
            from exq.engine.run.tracked import ignore_in_git

            ignore_in_git(path.parent / ".gitignore", "/" + path.name)
    return dvcfile.relative_to(project.root).as_posix()


class _EditedSource(DiskSource):
    """The working tree, with one dvc.yaml as it would be after ``stage add``."""

    def __init__(self, root: Path, rel: str, text: str) -> None:
        super().__init__(root)
        self.rel, self.data = rel, text.encode("utf-8")

    def read_bytes(self, path: str) -> bytes | None:
        return self.data if path == self.rel else super().read_bytes(path)


def _check_graph(project: Project, dvcfile: Path, text: str) -> None:
    """Refuse a ``stage add`` whose stage would clash with the pipeline (as DVC does).

    Only graph errors (an out produced twice, a cycle, a path escaping the
    repo) refuse the edit; a dvc.yaml elsewhere that does not load is for
    ``repro`` to report.
    """
    rel = dvcfile.relative_to(project.root).as_posix()
    source = _EditedSource(project.root, rel, text)
    dvcfiles = find_dvcfiles(project.root)
    if rel not in dvcfiles:
        dvcfiles.append(rel)
    try:
        stages = [stage for path in dvcfiles for stage in load_dvcfile(source, path)]
    except ExqError:
        return
    graph_mod.build_graph(stages)
