"""push, pull, fetch and ``status -c``: the objects a project's outputs name, and a remote.

The objects are those of the hashes ``dvc.lock`` and the ``.dvc`` files
record (the targets', or all of them), with the files of each folder's
``.dir`` listing. Pulling fetches the listings first, then what they list.
What the remote holds is asked object by object when they are few, else read
with one listing (:func:`exq.engine.data.remote.known_on_remote`); a folder's
``.dir`` on the remote means the whole folder is there, as DVC takes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from exq.engine.data import remote as storage_mod
from exq.engine.data.cache import Cache
from exq.engine.data.hashing import parse_dir_listing
from exq.engine.data.remote_config import get_remote
from exq.engine.run import commands as ops
from exq.engine.run.project import Project
from exq.engine.run.within import Part
from exq.engine.spec.loading import load_pipeline


@dataclass
class Transfer:
    """What a push or fetch did, and what it could not do."""

    done: int = 0
    present: int = 0
    missing: list[str] = field(default_factory=list)  # outputs whose objects neither side has


def outs(project: Project, targets: list[str]) -> list[tuple[str, Any]]:
    """(path, recorded hash) of the targets' cached outputs, or of every one."""
    pipeline = load_pipeline(project.root)
    tracked = ops._tracked_outs(project, pipeline.tracked)
    if not targets:
        found = ops._stage_outs(pipeline, pipeline.stages) + list(tracked.items())
    else:
        found = [o for t in targets for o in ops._target_outs(project, pipeline, tracked, t)]
    return [(rel, info) for rel, info in found if info is not None]


def _listed(cache: Cache, info: Any) -> list[str]:
    """The file objects a folder's ``.dir`` object lists (a part's: those under its
    path), if the cache holds it."""
    try:
        listing = parse_dir_listing(cache.obj_path(info.md5, info.legacy).read_bytes())
    except (OSError, ValueError):
        return []
    if isinstance(info, Part):
        listing = info.entries(listing)
    prefix = storage_mod.LEGACY if info.legacy else ""  # a DVC 2 folder lists DVC 2 objects
    return [prefix + md5 for _, md5 in listing]


def _objects(cache: Cache, found: list[tuple[str, Any]]) -> dict[str, list[str]]:
    """Each output's object names as far as the cache knows them (a folder: its listing
    too; a path inside a folder: the folder's .dir and the files under the path)."""
    return {
        rel: [storage_mod.object_name(info), *(_listed(cache, info) if info.isdir else [])]
        for rel, info in found
    }


def _in_cache(cache: Cache, name: str) -> bool:
    return storage_mod.cache_path(cache, name).is_file()


def push(project: Project, targets: list[str], remote: str | None, jobs: int) -> Transfer:
    return push_outs(project, outs(project, targets), remote, jobs)


def push_outs(
    project: Project, found: list[tuple[str, Any]], remote: str | None, jobs: int
) -> Transfer:
    """Send the objects of these outputs that the remote lacks."""
    cache = Cache(project.cache_dir, project.link_types)
    storage = storage_mod.open_storage(get_remote(project.dvc_dir, remote))
    jobs = storage.jobs(jobs)
    objects = _objects(cache, found)
    # An output whose own object (a file's, or a folder's .dir, which is pushed
    # last) is on the remote is whole there: asking for those few is enough.
    on_remote = storage_mod.known_on_remote(storage, {ns[0] for ns in objects.values()}, jobs)
    rest = {rel: names for rel, names in objects.items() if names[0] not in on_remote}
    whole = {n for rel, names in objects.items() if rel not in rest for n in names}
    asked = {n for names in rest.values() for n in names} - on_remote.keys()
    on_remote.update(storage_mod.known_on_remote(storage, asked, jobs))
    result = Transfer()
    wanted: set[str] = set()
    for rel, names in rest.items():
        absent = [n for n in names if not _in_cache(cache, n) and n not in on_remote]
        if absent:  # its .dir stays here: on the remote it would promise the missing files
            result.missing.append(rel)
        wanted.update(n for n in names if _in_cache(cache, n) and not (absent and n == names[0]))
    send = sorted(wanted - on_remote.keys())
    result.present = len(whole | (wanted - set(send)))
    result.done = storage_mod.push(storage, cache, send, jobs)
    return result


def fetch(project: Project, targets: list[str], remote: str | None, jobs: int) -> Transfer:
    return fetch_outs(project, outs(project, targets), remote, jobs)


def fetch_outs(
    project: Project, found: list[tuple[str, Any]], remote: str | None, jobs: int
) -> Transfer:
    """Download into the cache the objects of these outputs that it lacks."""
    cache = Cache(project.cache_dir, project.link_types)
    storage = storage_mod.open_storage(get_remote(project.dvc_dir, remote))
    jobs = storage.jobs(jobs)
    on_remote: dict[str, int] = {}  # what the remote is known to hold, asked as needed
    result = Transfer()
    # Listings first: what a folder holds is known only from its .dir object.
    tops = sorted({storage_mod.object_name(info) for _, info in found if info.isdir})
    result.done += _fetch_missing(storage, cache, tops, on_remote, jobs, result)
    files = sorted({n for names in _objects(cache, found).values() for n in names})
    result.done += _fetch_missing(storage, cache, files, on_remote, jobs, result)
    for rel, names in _objects(cache, found).items():
        incomplete = any(not _in_cache(cache, n) for n in names)
        if incomplete:
            result.missing.append(rel)
    return result


def _fetch_missing(
    storage: Any,
    cache: Cache,
    names: list[str],
    on_remote: dict[str, int],
    jobs: int,
    result: Transfer,
) -> int:
    absent = [n for n in names if not _in_cache(cache, n)]
    result.present += len(names) - len(absent)
    on_remote.update(storage_mod.known_on_remote(storage, set(absent) - on_remote.keys(), jobs))
    wanted = {n: on_remote[n] for n in absent if n in on_remote}
    return storage_mod.fetch(storage, cache, wanted, jobs)


def pull(
    project: Project, targets: list[str], remote: str | None, jobs: int, *, force: bool = False
) -> tuple[Transfer, list[str]]:
    """Fetch, then check out what arrived; the transfer and the paths restored.
    Without ``force``, files the cache does not hold are never overwritten."""
    result = fetch(project, targets, remote, jobs)
    complete = [rel for rel, _ in outs(project, targets) if rel not in result.missing]
    restored = ops.checkout(project, complete, keep_unsaved=not force) if complete else []
    return result, restored


def cloud_status(project: Project, targets: list[str], remote: str | None) -> dict[str, str]:
    """Per output not in sync: 'new' (only in the cache), 'deleted' (only on the
    remote) or 'missing' (in neither)."""
    cache = Cache(project.cache_dir, project.link_types)
    storage = storage_mod.open_storage(get_remote(project.dvc_dir, remote))
    objects = _objects(cache, outs(project, targets))
    wanted = {n for names in objects.values() for n in names}
    on_remote = storage_mod.known_on_remote(storage, wanted, storage.jobs(0))
    report = {}
    for rel, names in objects.items():
        local = all(_in_cache(cache, n) for n in names)
        remote_has = all(n in on_remote for n in names)
        if local and remote_has:
            continue
        if local:
            report[rel] = "new"
        elif remote_has:
            report[rel] = "deleted"
        else:
            report[rel] = "missing"
    return report
