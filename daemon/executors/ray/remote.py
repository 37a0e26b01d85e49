"""The daemon's side of a run on another machine: what goes out, what comes in.

:func:`write_payload` puts what a run needs into a folder that the cluster
carries to the worker: ``job.json`` (what to run) and ``pack.bin``, a
:class:`~exq.daemon.executors.ray.shipment.Pack` of the commit it starts from (the snapshot,
with its ``-S`` edits, or the checkpoint it resumes), the baseline commit
(without history), and the cache objects named in that commit's ``dvc.lock``
and ``.dvc`` files. Never the user's folder.

:class:`Importer` takes the packs the worker sends back: it writes their git
objects and cache files into the repository and its cache, then moves the
experiment ref with a compare-and-set, exactly as a local run would have. It
is idempotent: a pack applied twice (a restarted daemon replays the run's
output from the start) changes nothing the second time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from exq.daemon.config import DaemonConfig
from exq.daemon.executors.base import latest_checkpoint, run_env
from exq.daemon.executors.ray.shipment import (
    DIR_SUFFIX,
    Pack,
    ShipmentError,
    encode_pack,
    hashes_in,
    listed_names,
    object_path,
    read_cache,
    write_cache,
)
from exq.daemon.store import RunRecord
from exq.engine import yaml12
from exq.engine.errors import ExperimentError
from exq.engine.experiments.refs import exp_ref
from exq.engine.git import Git
from exq.engine.run.project import Project

JOB_FILE = "job.json"
PACK_FILE = "pack.bin"
JOB_VERSION = 1
WORKER_MODULE = "exq.daemon.executors.ray.worker"


def write_payload(
    project: Project, run: RunRecord, config: DaemonConfig, slot: int, folder: Path
) -> int:
    """Fill ``folder`` with the run's job and pack; the pack's size in bytes."""
    git = Git.open(project.root)
    start = latest_checkpoint(project, run) if run.resume_sha else run.snapshot
    ref = exp_ref(run.baseline, run.name)
    current = git.get_ref(ref)
    shas = [start, run.baseline, *([current] if current else [])]
    objects = git.export_objects(dict.fromkeys(shas), set())
    cache = read_cache(_objects_dir(project), needed_cache(git, start, _objects_dir(project)))
    job = {
        "version": JOB_VERSION,
        "run_id": run.id,
        "attempt": run.attempts,
        "name": run.name,
        "baseline": run.baseline,
        "start": start,
        "resume": bool(run.resume_sha),
        "targets": list(run.targets),
        "jobs": run.stage_jobs,
        "env": run_env(run, config, slot),
        "refs": {ref: current} if current else {},
        "identity": list(git.signature()),
        "prefix": git.prefix_of(project.root),
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / JOB_FILE).write_text(json.dumps(job, indent=1))
    blob = encode_pack(Pack(meta={"kind": "inputs"}, objects=objects, cache=cache))
    (folder / PACK_FILE).write_bytes(blob)
    return len(blob)


def needed_cache(git: Git, sha: str, objects_dir: Path) -> set[str]:
    """Cache objects named in commit ``sha``'s ``dvc.lock`` and ``.dvc`` files,
    with the files of the folders among them."""
    names: set[str] = set()
    for path in git.list_files(sha):
        base = path.rsplit("/", 1)[-1]
        if base != "dvc.lock" and not base.endswith(".dvc"):
            continue
        blob = git.read_blob(sha, path)
        try:
            document = yaml12.load(blob.decode()) if blob else None
        except (yaml.YAMLError, UnicodeDecodeError):
            continue  # a damaged file names nothing: its stages run again
        names.update(hashes_in(document))
    for name in [n for n in names if n.endswith(DIR_SUFFIX)]:
        try:
            names.update(listed_names(object_path(objects_dir, name).read_bytes()))
        except FileNotFoundError:
            continue
    return names


def _objects_dir(project: Project) -> Path:
    return project.cache_dir / "files" / "md5"


@dataclass(frozen=True)
class Applied:
    """What one pack from a worker did here."""

    kind: str  # "checkpoint" or "result"
    meta: dict[str, Any]
    moved: bool  # the experiment ref moved (False: this pack was applied before)


class Importer:
    """Applies a run's packs to the repository at ``project``; they may move the
    run's experiment ref ``ref`` and nothing else."""

    def __init__(self, project: Project, ref: str) -> None:
        self.project = project
        self.ref = ref

    def apply(self, pack: Pack) -> Applied:
        git = Git.open(self.project.root)
        git.import_objects(pack.objects)
        write_cache(_objects_dir(self.project), pack.cache)
        meta = pack.meta
        kind = str(meta.get("kind"))
        moves = kind == "checkpoint" or (kind == "result" and meta.get("outcome") == "success")
        return Applied(kind=kind, meta=meta, moved=moves and self._move(git, meta))

    def _move(self, git: Git, meta: dict[str, Any]) -> bool:
        ref, sha, expected = meta.get("ref"), str(meta.get("sha")), meta.get("expected")
        if ref != self.ref:  # the worker is not trusted with the other refs
            raise ShipmentError(f"a pack of the run tried to move {ref}, not {self.ref}")
        current = git.get_ref(ref)
        if current == sha:
            return False  # applied before this restart
        if current is not None and current != expected and git.is_ancestor(sha, current):
            return False  # an older checkpoint, replayed: the ref is past it
        if current != expected:
            raise ExperimentError(
                f"experiment ref {ref} moved while the run went on",
                hint="another run or 'exp remove' changed it; the run's commits stay in git",
            )
        label = "checkpoint" if meta.get("kind") == "checkpoint" else "experiment"
        git.set_ref(ref, sha, expected_old=expected, message=f"exq: {label} {meta.get('name')}")
        return True


def worker_entrypoint(python: str) -> str:
    """The shell command a cluster runs in the payload folder."""
    return f"{python} -m {WORKER_MODULE} ."
