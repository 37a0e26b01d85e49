"""Loading a project's whole pipeline: every dvc.yaml, resolved, as one graph."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from exq.engine.confine import check_inside
from exq.engine.spec.graph import Graph, build_graph, repo_path
from exq.engine.spec.lockfile import LockEntry, read_lock
from exq.engine.spec.paramfiles import DiskSource, FileSource
from exq.engine.spec.stage import Stage
from exq.engine.spec.templating import load_dvcfile

DVCFILE = "dvc.yaml"
LOCKFILE = "dvc.lock"
TRACKED_SUFFIX = ".dvc"  # data tracked by ``exq add`` / ``dvc add``
# Folders never searched for dvc.yaml or .dvc files: hidden ones (git's and
# DVC's own among them), and homes of packages that can hold many thousand files.
_SKIP_DIRS = {"node_modules", "__pycache__"}
VENV_MARKER = "pyvenv.cfg"  # a folder holding it is a virtualenv, skipped too
# A sub-folder holding a ``.dvc`` folder is another project (``dvc init --subdir``):
# as DVC does, a project never reads the pipelines of the projects inside it.
PROJECT_MARKER = ".dvc"


def skipped_dir(name: str) -> bool:
    """True for a folder name that project searches never enter."""
    return name.startswith(".") or name in _SKIP_DIRS


def searched(folder: str, name: str) -> bool:
    """Whether a search of the project's files enters the sub-folder ``name`` of
    ``folder`` on disk: not a skipped name, a virtualenv or another project."""
    path = os.path.join(folder, name)
    return (
        not skipped_dir(name)
        and not os.path.exists(os.path.join(path, VENV_MARKER))
        and not os.path.isdir(os.path.join(path, PROJECT_MARKER))
    )


@dataclass
class Pipeline:
    """Every stage of a project, the graph between them, and their lock entries."""

    root: Path
    stages: list[Stage]
    graph: Graph
    dvcfiles: list[str]
    locks: dict[str, dict[str, LockEntry]] = field(default_factory=dict)
    # project-relative ``.dvc`` files, found by the same walk as ``dvcfiles``
    tracked: list[str] = field(default_factory=list)

    def lock_path(self, stage: Stage) -> Path:
        return self.root / lock_name(stage.dvcfile)

    def lock_entry(self, stage: Stage) -> LockEntry | None:
        return self.locks.get(stage.dvcfile, {}).get(stage.name)

    def stage_order(self, dvcfile: str) -> list[str]:
        return [stage.name for stage in self.stages if stage.dvcfile == dvcfile]


def lock_name(dvcfile: str) -> str:
    return posixpath.join(posixpath.dirname(dvcfile), LOCKFILE)


def find_dvcfiles(root: Path) -> list[str]:
    """Project-relative paths of every dvc.yaml, the root one first, then sorted;
    the folders of other projects inside this one are not searched."""
    return find_project_files(root)[0]


def find_project_files(root: Path) -> tuple[list[str], list[str]]:
    """Every dvc.yaml (as ``find_dvcfiles`` orders them) and every ``.dvc`` file
    (folder by folder, names sorted), project-relative, from one walk.

    A walk with ``os.scandir`` that keeps only these names: a tracked folder
    of 100,000 files is passed over without a list of its names.
    """
    dvcfiles: list[str] = []
    tracked: list[str] = []

    def walk(folder: str, rel: str) -> None:
        try:
            with os.scandir(folder) as entries:
                found = [(e.name, e.is_dir(), e.is_symlink()) for e in entries if _wanted(e)]
        except OSError:
            return  # an unreadable folder holds nothing we can load
        prefix = f"{rel}/" if rel else ""
        subdirs = []
        for name, isdir, islink in sorted(found):
            if isdir:
                if not islink and searched(folder, name):
                    subdirs.append(name)
            elif name == DVCFILE:
                dvcfiles.append(prefix + name)
            else:
                tracked.append(prefix + name)
        for name in subdirs:
            walk(os.path.join(folder, name), prefix + name)

    walk(os.fspath(root), "")
    dvcfiles.sort(key=lambda path: (path.count("/"), path))
    return dvcfiles, tracked


def _wanted(entry: os.DirEntry[str]) -> bool:
    """A folder to look into, a dvc.yaml or a ``.dvc`` file (what ``os.walk`` would show)."""
    name = entry.name
    if name == DVCFILE or name.endswith(TRACKED_SUFFIX):
        return True
    try:
        return entry.is_dir()
    except OSError:
        return False


def load_pipeline(root: Path, source: FileSource | None = None) -> Pipeline:
    """Resolve every dvc.yaml under ``root`` and check the graph they form; read
    from disk (no ``source``), also that every out really lies in ``root``."""
    on_disk = source is None
    source = source or DiskSource(root)
    dvcfiles, tracked = find_project_files(root)
    stages: list[Stage] = []
    for dvcfile in dvcfiles:
        stages.extend(load_dvcfile(source, dvcfile))
    graph = build_graph(stages)
    if on_disk:
        check_outs_inside(root, stages)
    locks = {dvcfile: read_lock(root / lock_name(dvcfile)) for dvcfile in dvcfiles}
    return Pipeline(
        root=root, stages=stages, graph=graph, dvcfiles=dvcfiles, locks=locks, tracked=tracked
    )


def check_outs_inside(root: Path, stages: list[Stage]) -> None:
    """Refuse an out whose real location (symlinks resolved) leaves ``root``:
    running would write or delete it there."""
    for stage in stages:
        for out in stage.outs:
            what = f"stage '{stage.address}': out '{out.path}'"
            check_inside(root, repo_path(stage, out.path), what)
