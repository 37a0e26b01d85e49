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
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if searched(folder, d))
        if DVCFILE in files:
            rel = os.path.relpath(os.path.join(folder, DVCFILE), root)
            found.append(Path(rel).as_posix())
    return sorted(found, key=lambda path: (path.count("/"), path))


def load_pipeline(root: Path, source: FileSource | None = None) -> Pipeline:
    """Resolve every dvc.yaml under ``root`` and check the graph they form; read
    from disk (no ``source``), also that every out really lies in ``root``."""
    on_disk = source is None
    source = source or DiskSource(root)
    dvcfiles = find_dvcfiles(root)
    stages: list[Stage] = []
    for dvcfile in dvcfiles:
        stages.extend(load_dvcfile(source, dvcfile))
    graph = build_graph(stages)
    if on_disk:
        check_outs_inside(root, stages)
    locks = {dvcfile: read_lock(root / lock_name(dvcfile)) for dvcfile in dvcfiles}
    return Pipeline(root=root, stages=stages, graph=graph, dvcfiles=dvcfiles, locks=locks)


def check_outs_inside(root: Path, stages: list[Stage]) -> None:
    """Refuse an out whose real location (symlinks resolved) leaves ``root``:
    running would write or delete it there."""
    for stage in stages:
        for out in stage.outs:
            what = f"stage '{stage.address}': out '{out.path}'"
            check_inside(root, repo_path(stage, out.path), what)
