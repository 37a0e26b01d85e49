"""Reading the plots files of revisions: the workspace on disk, or commits from git blobs.

For one revision ``PlotsCollector`` resolves that revision's ``dvc.yaml``
files (as ``experiments.collect`` does: ``DvcfileFinder`` and ``GitSource`` for a
commit, ``find_dvcfiles`` on disk), takes each stage's ``plots`` outs and the
top-level ``plots:`` entries, and reads every file: a plots file or an
image, or each of them inside a plots folder (a live log folder of
``<metric>.tsv`` files, a folder of images). In a commit, a cached file is
read from the cache object that the commit's ``dvc.lock`` names for the stage
out holding it (a file, or the files of a ``.dir`` listing), whether the out
is a plots out or, say, an ``eval`` folder named by top-level plots.

Nothing is checked out. A broken file or ``dvc.yaml`` becomes an error line
of that revision, so one bad revision does not hide the others.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from exq.engine.data.cache import Cache
from exq.engine.errors import CacheError, DvcFileError, ExperimentError, ExqError, GitError
from exq.engine.experiments.refs import find_experiment, resolve_rev
from exq.engine.git import Git
from exq.engine.plots.defs import (
    TEMPLATES,
    PlotDef,
    attach_outs,
    is_image,
    merge_defs,
    select_defs,
    stage_plot_def,
    top_level_plot_defs,
)
from exq.engine.plots.model import (
    FileData,
    RevPlots,
    is_folder_plot_file,
    parse_records,
)
from exq.engine.spec.gitsource import DvcfileFinder, GitSource
from exq.engine.spec.graph import repo_path
from exq.engine.spec.loading import find_dvcfiles, lock_name
from exq.engine.spec.lockfile import parse_lock
from exq.engine.spec.paramfiles import DiskTree, parse_yaml
from exq.engine.spec.templating import resolve_dvcfile

WORKSPACE = "workspace"


class _Source(Protocol):
    def read_bytes(self, path: str) -> bytes | None: ...

    def list_files(self, folder: str) -> list[str]: ...


class PlotsCollector:
    """Reads the plots of the workspace and of commits of one repository.

    ``cache_dir`` is the project's cache, where cached plots outs of commits
    are found; without it only plots committed to git are read.
    """

    def __init__(self, git: Git | None, root: Path, cache_dir: Path | None = None) -> None:
        self.git = git
        self.root = Path(root)
        self._cache = Cache(cache_dir) if cache_dir is not None else None
        self._finder = DvcfileFinder(git) if git is not None else None

    def workspace(self, targets: Sequence[str] | None = None, label: str = WORKSPACE) -> RevPlots:
        """The plots files of the working tree (``targets``: repo-relative files or folders)."""
        source = DiskTree(self.root)
        return self._collect(label, source, find_dvcfiles(self.root), targets, in_git=False)

    def commit(self, sha: str, label: str, targets: Sequence[str] | None = None) -> RevPlots:
        """The plots files of commit ``sha`` (a full sha), read from git blobs and the cache."""
        if self.git is None or self._finder is None:
            raise ExqError("no git repository to read commits from")
        prefix = self.git.prefix_of(self.root)  # a project in a sub-folder reads its own files
        source = GitSource(self.git, sha, prefix)
        return self._collect(label, source, self._finder.find(sha, prefix), targets, in_git=True)

    def revisions(
        self, pairs: Sequence[tuple[str, str | None]], targets: Sequence[str] | None = None
    ) -> list[RevPlots]:
        """The plots of each (label, sha) pair; sha None reads the workspace."""
        return [
            self.workspace(targets, label) if sha is None else self.commit(sha, label, targets)
            for label, sha in pairs
        ]

    # -- one revision ----------------------------------------------------------

    def _collect(
        self,
        label: str,
        source: _Source,
        dvcfiles: list[str],
        targets: Sequence[str] | None,
        *,
        in_git: bool,
    ) -> RevPlots:
        result = RevPlots(label)
        # As DVC orders them: the top-level plots of every dvc.yaml, then the stages' outs.
        top: list[PlotDef] = []
        of_stages: list[PlotDef] = []
        outs: list[PlotDef] = []
        for dvcfile in dvcfiles:
            try:
                found, plots_outs, stage_outs = _dvcfile_defs(source, dvcfile)
            except ExqError as exc:
                result.errors.append(f"{label}: {exc}")
                continue
            top.extend(found)
            of_stages.extend(plots_outs)
            outs.extend(stage_outs)
        for plot in select_defs(attach_outs(merge_defs(top + of_stages), outs), targets):
            if plot.template and plot.template not in TEMPLATES:
                result.errors.append(
                    f"{label}: {plot.dvcfile or 'dvc.yaml'}: plot '{plot.id}': unknown template "
                    f"'{plot.template}', drawn as linear (one of: {', '.join(TEMPLATES)})"
                )
            for path, raw in self._files(source, plot, in_git=in_git, errors=result.errors):
                self._read(result, plot, path, raw)
        return result

    def _read(self, result: RevPlots, plot: PlotDef, path: str, raw: bytes) -> None:
        """Keep one file of ``plot``: an image as it is, else its records (parsed once)."""
        if is_image(path):
            result.images.setdefault(path, raw)
            return
        if path not in result.files:
            try:
                records = parse_records(path, raw)
            except ExqError as exc:
                result.errors.append(f"{result.rev}: {exc}")
                return
            result.files[path] = FileData(tuple(records), plot.x, plot.y)
        use = plot if path == plot.path else replace(plot, path=path)
        if use not in result.uses:
            result.uses.append(use)

    def _files(
        self, source: _Source, plot: PlotDef, *, in_git: bool, errors: list[str]
    ) -> list[tuple[str, bytes]]:
        """(path, content) of a plots def: a file, the plots files of a folder, or cache objects."""
        raw = source.read_bytes(plot.path)
        if raw is not None:
            return [(plot.path, raw)]
        found = [
            (path, data)
            for path in source.list_files(plot.path)
            if _drawable(path) and (data := source.read_bytes(path)) is not None
        ]
        if found or not (in_git and plot.cached):
            return found
        return self._from_cache(source, plot, errors)

    def _from_cache(
        self, source: _Source, plot: PlotDef, errors: list[str]
    ) -> list[tuple[str, bytes]]:
        """A cached out's files, found through the revision's ``dvc.lock``.

        ``plot.path`` may be a file inside the out (a target narrowed it).
        """
        if self._cache is None:
            return []
        raw_lock = source.read_bytes(lock_name(plot.dvcfile))
        if raw_lock is None:
            return []
        try:
            entries = parse_lock(raw_lock.decode("utf-8", "replace"), lock_name(plot.dvcfile))
        except ExqError as exc:
            errors.append(str(exc))
            return []
        entry = entries.get(plot.stage)
        recorded = entry.out(plot.out) if entry else None
        info = recorded.to_hash() if recorded else None
        if info is None:
            return []
        legacy = info.legacy  # an entry of DVC 2: its objects are in DVC 2's layout
        out_path = plot.out_path or plot.path
        try:
            if not info.isdir:
                if out_path != plot.path:
                    return []
                return [(out_path, self._cache.obj_path(info.md5, legacy).read_bytes())]
            found = []
            for rel, file_md5 in self._cache.load_listing(info):
                path = posixpath.join(out_path, rel)
                if _drawable(path) and (path == plot.path or _inside(path, plot.path)):
                    found.append((path, self._cache.obj_path(file_md5, legacy).read_bytes()))
            return found
        except (OSError, CacheError):
            return []  # not in this cache (never pulled): the revision shows no such plot


def _inside(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip("/") + "/")


def _drawable(path: str) -> bool:
    """A file of a plots folder that is drawn: a data file or an image, not a live
    logger's own params, summary or dvc.yaml (``LOGGER_FILES``) kept beside its history."""
    return is_folder_plot_file(path) or is_image(path)


def _dvcfile_defs(
    source: _Source, dvcfile: str
) -> tuple[list[PlotDef], list[PlotDef], list[PlotDef]]:
    """The plots defs of one ``dvc.yaml`` (top-level ``plots:``, stage ``plots`` outs), and
    every stage out as a def, for finding a top-level plot's file in the cache."""
    raw = source.read_bytes(dvcfile)
    if raw is None:
        raise DvcFileError(f"{dvcfile}: file not found")
    data = parse_yaml(raw, dvcfile, error_cls=DvcFileError)
    defs: list[PlotDef] = []
    outs: list[PlotDef] = []
    for stage in resolve_dvcfile(data, dvcfile=dvcfile, source=source):
        for out in stage.outs:
            path = repo_path(stage, out.path)
            where: dict[str, Any] = {
                "cached": out.cache,
                "dvcfile": dvcfile,
                "stage": stage.name,
                "out": out.path,
                "out_path": path,
            }
            outs.append(PlotDef(path, **where))
            if out.kind == "plots":
                defs.append(stage_plot_def(path, dict(out.plot), **where))
    top = data.get("plots") if isinstance(data, dict) else None
    return top_level_plot_defs(dvcfile, top), defs, outs


def resolve_revisions(
    git: Git | None, revs: Sequence[str], *, experiment: bool = False
) -> list[tuple[str, str | None]]:
    """(label, sha) of each revision ``plots diff`` draws; sha None is the workspace.

    As DVC: no revision is HEAD against the workspace, one is that revision
    against the workspace, more are just those. With ``experiment`` every
    name must be an experiment, and a single one is drawn against its baseline.
    """
    if git is None:
        if any(rev != WORKSPACE for rev in revs) or experiment:
            raise GitError("cannot read revisions: not a git repository")
        return [(WORKSPACE, None)]
    if experiment:
        if not revs:
            raise ExperimentError("--experiment: name one or more experiments")
        found = []
        for name in revs:
            exp = find_experiment(git, name)
            if exp is None:
                raise ExperimentError(
                    f"unknown experiment '{name}'", hint="'exq exp show' lists the experiments"
                )
            found.append((name, exp))
        pairs: list[tuple[str, str | None]] = [(name, exp.sha) for name, exp in found]
        if len(found) == 1:
            pairs.insert(0, (found[0][1].baseline[:7], found[0][1].baseline))
        return _unique(pairs)
    chosen = list(revs)
    if not chosen:
        chosen = ["HEAD", WORKSPACE] if git.head_sha() is not None else [WORKSPACE]
    elif len(chosen) == 1 and chosen[0] != WORKSPACE:
        chosen.append(WORKSPACE)
    return _unique([(rev, None if rev == WORKSPACE else resolve_rev(git, rev)) for rev in chosen])


def _unique(pairs: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    seen: dict[str, str | None] = {}
    for label, sha in pairs:
        seen.setdefault(label, sha)
    return list(seen.items())
