"""The daemon's side of a run on another machine: what goes out, what comes in.

:func:`write_payload` puts what a run needs into a folder that the cluster
carries to the worker: ``job.json`` (what to run) and ``pack.bin``, a
:class:`~exq.daemon.executors.ray.shipment.Pack` of the commit it starts from (the snapshot,
with its ``-S`` edits, or the checkpoint it resumes), the baseline commit
(without history), and the cache objects named in that commit's ``dvc.lock``
and ``.dvc`` files. Never the user's folder.

With a data remote (:func:`run_remote`: ``[ray] remote``, else the project's
default DVC remote) the cache objects travel through the remote instead: the
daemon pushes the inputs the remote lacks, the pack holds git objects only,
and the job names the objects the worker pulls (``inputs``) and the remote it
pulls them from and pushes its outputs to. A job's size no longer grows with
its data, so Ray's limit on a job's files (:data:`RAY_PACKAGE_LIMIT`) no
longer bounds it.

:class:`Importer` takes the packs the worker sends back: it writes their git
objects and cache files into the repository and its cache, then moves the
experiment ref with a compare-and-set, exactly as a local run would have. It
is idempotent: a pack applied twice (a restarted daemon replays the run's
output from the start) changes nothing the second time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from exq.daemon.config import DaemonConfig
from exq.daemon.executors.base import latest_checkpoint, run_env
from exq.daemon.executors.ray.shipment import (
    DIR_SUFFIX,
    ShipmentError,
    hashes_in,
    listed_names,
    object_path,
    read_pack,
    store_cache_object,
    write_pack,
)
from exq.daemon.store import RunRecord
from exq.engine import yaml12
from exq.engine.data import remote as storage_mod
from exq.engine.data.cache import Cache
from exq.engine.data.remote_config import Remote, default_name, get_remote
from exq.engine.errors import ExperimentError, ExqError
from exq.engine.experiments.queue_snapshot import replaces_experiment
from exq.engine.experiments.refs import exp_ref, expected_tip
from exq.engine.git import Git
from exq.engine.run.project import Project
from exq.engine.spec.lockfile import plain
from exq.engine.spec.paramfiles import get_dotted, parse_params

JOB_FILE = "job.json"
# Ray refuses a job package (the zipped ``working_dir``) over 100 MiB; the job
# file and the zip's own bytes take a little of that.
RAY_PACKAGE_LIMIT = 100 * 1024 * 1024
PAYLOAD_LIMIT = RAY_PACKAGE_LIMIT - 512 * 1024
PACK_FILE = "pack.bin"
JOB_VERSION = 2  # 2: a job may name a data remote and its inputs there
WORKER_MODULE = "exq.daemon.executors.ray.worker"


def write_payload(
    project: Project, run: RunRecord, config: DaemonConfig, slot: int, folder: Path
) -> int:
    """Fill ``folder`` with the run's job and pack; the pack's size in bytes.
    Raises :class:`PayloadTooBig` past :data:`PAYLOAD_LIMIT`."""
    git = Git.open(project.root)
    start = latest_checkpoint(project, run) if run.resume_sha else run.snapshot
    ref = exp_ref(run.baseline, run.name)
    # As on this machine: the run moves its experiment ref only from nothing or
    # from its own commits, unless queued to replace what is there.
    current = expected_tip(
        git,
        ref,
        own=run.resume_sha or run.experiment_sha,
        replace=replaces_experiment(git, run.snapshot),
    )
    shas = [start, run.baseline, *([current] if current else [])]
    objects = git.export_objects(dict.fromkeys(shas), set())
    objects_dir = _objects_dir(project)
    wanted = needed_cache(git, start, objects_dir)
    remote = run_remote(project, config)
    cache = [
        (name, path)
        for name in sorted(wanted)
        if remote is None and (path := object_path(objects_dir, name)).is_file()
    ]  # what neither the cache nor the remote holds: its stage runs again
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
    if remote is not None:
        send_inputs(project, remote, wanted)
        job["remote"] = {"name": remote.name, "url": remote.url, "options": remote.options}
        job["inputs"] = sorted(wanted)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / JOB_FILE).write_text(json.dumps(job, indent=1))
    try:
        with open(folder / PACK_FILE, "wb") as out:
            return write_pack(_Capped(out, PAYLOAD_LIMIT), {"kind": "inputs"}, objects, list(cache))
    except _OverLimit:
        raise PayloadTooBig(_largest(objects, cache, wanted.paths)) from None


def run_remote(project: Project, config: DaemonConfig) -> Remote | None:
    """The DVC remote a Ray run's data goes through: ``[ray] remote``, else the
    project's default remote; None: it goes inside the job."""
    name = config.ray_remote or default_name(project.dvc_dir)
    return get_remote(project.dvc_dir, name) if name else None


def send_inputs(project: Project, remote: Remote, names: set[str]) -> list[str]:
    """Push those of a run's inputs the remote lacks; the names pushed. A remote
    that cannot be used fails the run here, before anything is sent."""
    storage = storage_mod.open_storage(remote)
    storage_mod.reachable(storage)
    cache = Cache(project.cache_dir, project.link_types)
    return storage_mod.send_missing(storage, cache, names, {}, storage_mod.default_jobs())


class PayloadTooBig(ExqError):
    """What a run needs does not fit in one job package of the cluster."""

    def __init__(self, largest: list[tuple[str, int]]) -> None:
        named = ", ".join(f"{path} ({_mb(size)})" for path, size in largest)
        super().__init__(
            f"the run needs more than Ray's limit of {RAY_PACKAGE_LIMIT >> 20} MiB for a job's"
            f" files; the largest: {named}",
            hint="a remote for the cache lifts the limit; or run it with --executor local",
        )


class _OverLimit(Exception):
    pass


class _Capped:
    """A binary stream that refuses to grow past ``limit`` bytes."""

    def __init__(self, out: Any, limit: int) -> None:
        self._out, self._limit, self._size = out, limit, 0

    def write(self, data: bytes) -> int:
        self._size += len(data)
        if self._size > self._limit:
            raise _OverLimit()
        return int(self._out.write(data))


def _largest(
    objects: list[Any], cache: list[tuple[str, Path]], paths: dict[str, str], count: int = 3
) -> list[tuple[str, int]]:
    """The biggest things a payload would carry: (what, bytes)."""
    sizes = [(paths.get(name, name), path.stat().st_size) for name, path in cache]
    sizes += [(f"git object {sha[:7]}", len(data)) for sha, _, data in objects]
    ordered = sorted(sizes, key=lambda item: -item[1])
    # The few that matter: the biggest, and those of a tenth of it or more.
    return [item for item in ordered[:count] if item[1] * 10 >= ordered[0][1]]


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


class Needed(set[str]):
    """Cache object names, with the path each stands for (for messages)."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: dict[str, str] = {}

    def add_named(self, name: str, path: str) -> None:
        self.add(name)
        self.paths.setdefault(name, path)


def needed_cache(git: Git, sha: str, objects_dir: Path) -> Needed:
    """The cache objects a run from commit ``sha`` needs: what its ``.dvc`` files
    track, and of each ``dvc.lock``, the deps (that no stage rebuilds) and the
    outs of the stages that will not run again (:func:`stages_to_rerun`: a
    checkpoint commit records its stage's params, so the checkpoint outs it
    resumes from go). The files of folders among them too."""
    names = Needed()
    for path in git.list_files(sha):
        folder, _, base = path.rpartition("/")
        if base != "dvc.lock" and not base.endswith(".dvc"):
            continue
        document = _yaml_of(git, sha, path)
        if base.endswith(".dvc"):
            for name in hashes_in(document):
                names.add_named(name, path.removesuffix(".dvc"))
            continue
        stages = document.get("stages") if isinstance(document, dict) else None
        if isinstance(stages, dict):
            _lock_needs(git, sha, folder, stages, names)
    for name in [n for n in names if n.endswith(DIR_SUFFIX)]:
        try:
            listing = object_path(objects_dir, name).read_bytes()
        except FileNotFoundError:
            continue
        for inner in listed_names(listing):
            names.add_named(inner, names.paths.get(name, name))
    return names


def _lock_needs(git: Git, sha: str, folder: str, stages: dict[str, Any], names: Needed) -> None:
    rerun = stages_to_rerun(stages, lambda file: _params_of(git, sha, _join(folder, file)))
    rebuilt = {
        _join(folder, str(out.get("path")))
        for name in rerun
        for out in _entries(stages[name], "outs")
    }
    for name, entry in stages.items():
        for dep in _entries(entry, "deps"):
            where = _join(folder, str(dep.get("path")))
            if where not in rebuilt and isinstance(dep.get("md5"), str):
                names.add_named(dep["md5"], where)
        if name not in rerun:
            for out in _entries(entry, "outs"):
                if isinstance(out.get("md5"), str):
                    names.add_named(out["md5"], _join(folder, str(out.get("path"))))


def stages_to_rerun(
    stages: dict[str, Any], params_of: Callable[[str], dict[str, Any] | None]
) -> set[str]:
    """The stages of a ``dvc.lock`` (name -> entry as parsed) that a run will
    surely run again: those whose recorded params differ from the params files
    now (``params_of(file)``, None if missing), and those downstream of them.
    A guess on the safe side: a stage it misses runs again all the same."""
    rerun: set[str] = set()
    for name, entry in stages.items():
        recorded = entry.get("params") if isinstance(entry, dict) else None
        for file, values in (recorded or {}).items():
            now = params_of(file)
            if now is None or any(
                plain(get_dotted(now, key, None)) != plain(value)
                for key, value in (values or {}).items()
            ):
                rerun.add(name)
    while True:
        rebuilt = {str(o.get("path")) for n in rerun for o in _entries(stages[n], "outs")}
        more = {
            name
            for name, entry in stages.items()
            if name not in rerun
            and any(str(d.get("path")) in rebuilt for d in _entries(entry, "deps"))
        }
        if not more:
            return rerun
        rerun |= more


def _entries(entry: Any, key: str) -> list[dict[str, Any]]:
    items = entry.get(key) if isinstance(entry, dict) else None
    return [item for item in items or [] if isinstance(item, dict)]


def _join(folder: str, path: str) -> str:
    return f"{folder}/{path}" if folder else path


def _yaml_of(git: Git, sha: str, path: str) -> Any:
    blob = git.read_blob(sha, path)
    try:
        return yaml12.load(blob.decode()) if blob else None
    except (yaml.YAMLError, UnicodeDecodeError):
        return None  # a damaged file names nothing: its stages run again


def _params_of(git: Git, sha: str, path: str) -> dict[str, Any] | None:
    try:
        blob = git.read_blob(sha, path)
        return parse_params(path, blob) if blob is not None else None
    except ExqError:
        return None


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

    def apply(self, stream: BinaryIO) -> Applied:
        """Apply the pack read from ``stream``: its cache objects go to the cache
        as they are read, so a pack of any size takes little memory."""
        objects_dir = _objects_dir(self.project)
        pack = read_pack(stream, partial(store_cache_object, objects_dir))
        git = Git.open(self.project.root)
        git.import_objects(pack.objects)
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
