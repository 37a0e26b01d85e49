"""Params and metrics of revisions, read straight from git blobs, for ``exp show`` and the diffs.

For one revision (a commit, or the workspace on disk) ``Collector`` resolves
that revision's ``dvc.yaml`` files and reads:

* params: every params file a stage depends on (explicitly or through
  ``${...}``), the files of the top-level ``params:`` list and the root
  ``params.yaml`` when it exists, each whole, as DVC shows them; with
  ``param_deps`` only the keys stages depend on (a whole-file dependency
  still gives every key);
* metrics: each stage's ``metrics`` outs, the summary of its live section,
  and the top-level ``metrics:`` list,
  read from the commit (``cache: false``) or, for cached ones, from the cache
  object that the commit's ``dvc.lock`` names.

Values come back as ``{file: {dotted key: value}}``. Nothing is checked out.
Reading a thousand experiments of one baseline must take well under a
second, so everything is memoised across revisions: parsed files by content,
``dvc.yaml`` resolution by (content, and what the resolution read from params
and vars files, see ``_Resolution``), and the ``dvc.yaml`` search by tree id.
A revision whose files are broken yields what could be read and an error
line per broken file, so one bad experiment does not hide the others.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exq.engine.data.hashing import HashInfo
from exq.engine.errors import CacheError, DvcFileError, ExqError, ParamsError
from exq.engine.spec.gitsource import DvcfileFinder, GitSource
from exq.engine.spec.graph import repo_path
from exq.engine.spec.loading import find_dvcfiles, lock_name
from exq.engine.spec.lockfile import parse_lock
from exq.engine.spec.paramfiles import (
    DiskTree,
    FileSource,
    flatten,
    get_dotted,
    parse_params,
    parse_yaml,
)
from exq.engine.spec.templating import resolve_dvcfile

if TYPE_CHECKING:  # the workspace's values need no pygit2: only a Git passed in does
    from exq.engine.data.cache import Cache
    from exq.engine.experiments.revstore import RevStore
    from exq.engine.git import Git

Values = dict[str, dict[str, Any]]
DEFAULT_PARAMS = "params.yaml"
# Dotted names used in ``${...}``: ``${models.us.thresh}``, ``${items[0]}``.
_INTERPOLATION = re.compile(rb"\$\{\s*([^}]*?)\s*\}")
_NAME = re.compile(r"[A-Za-z0-9_@.\-]+")
_MISSING = object()


@dataclass
class RevData:
    """What one revision holds: params and metrics by file, and any read errors."""

    params: Values = field(default_factory=dict)
    metrics: Values = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    # Some values live in the DVC cache, which lacks their objects: a pull can bring
    # them, so these values are not the revision's for good (and are not kept).
    missing_objects: bool = False


@dataclass(frozen=True)
class _OutRef:
    """A metrics file, or a cached out, of a resolved ``dvc.yaml``."""

    path: str  # repo-relative
    cached: bool
    dvcfile: str
    stage: str
    out: str  # the out's path as the lock records it


@dataclass(frozen=True)
class _Plan:
    """What one ``dvc.yaml`` names: params files (keys, None = whole), metrics files
    and cached outs (a metrics or params file of a commit may sit inside one)."""

    params: dict[str, list[str] | None]  # what stages depend on, as dvc.yaml names it
    metrics: list[_OutRef]
    cached_outs: list[_OutRef] = field(default_factory=list)  # where git has no copy
    top_params: list[str] = field(default_factory=list)  # the top-level params: list
    tracked: dict[str, list[str] | None] = field(default_factory=dict)  # used via ${...} only


@dataclass(frozen=True)
class _Resolution:
    """A memoised resolution and what it depended on.

    ``reads`` holds, for every file the templating read, its fingerprint:
    the values at the dotted names the ``dvc.yaml`` interpolates plus the
    file's key layout (or its raw bytes when that cannot be worked out).
    A new revision whose files give the same fingerprints resolves the same
    way, whatever else changed in them: an ``exp run -S train.lr=...`` does
    not make the pipeline resolve again.
    """

    reads: tuple[tuple[str, Any], ...]
    plan: _Plan


class _RecordingSource:
    """Passes reads through and remembers which paths were read."""

    def __init__(self, source: FileSource) -> None:
        self.source = source
        self.paths: list[str] = []

    def read_bytes(self, path: str) -> bytes | None:
        if path not in self.paths:
            self.paths.append(path)
        return self.source.read_bytes(path)


WORKSPACE = "workspace"  # the working tree's name among revisions


class Collector:
    """Reads params and metrics of commits and of the workspace, memoising across them.

    ``cache_dir`` is the project's DVC cache, where cached metrics files of
    commits are found; without it only metrics committed to git are read.
    One Collector serves one repository and one thread.
    """

    def __init__(
        self,
        git: Git | None,
        root: Path,
        cache_dir: Path | None = None,
        *,
        param_deps: bool = False,
        store: RevStore | None = None,
    ) -> None:
        self.git = git
        self.store = store  # commits read by earlier runs, and where new ones are kept
        self.root = Path(root)
        self.cache_dir = cache_dir
        self.param_deps = param_deps
        self._parsed: dict[tuple[str, bytes], dict[str, Any] | ExqError] = {}
        self._flat: dict[tuple[str, bytes], dict[str, Any]] = {}
        self._locks: dict[tuple[str, bytes], dict[str, dict[str, str]] | ExqError] = {}
        self._resolved: dict[tuple[str, bytes], list[_Resolution]] = {}
        self._finder = DvcfileFinder(git) if git is not None else None
        # a project in a sub-folder of its repository reads its own files only,
        # keyed by paths relative to it, in commits as in the workspace
        self.prefix = git.prefix_of(self.root) if git is not None else ""
        self._cache_made: Cache | None = None
        self._listings: dict[str, list[tuple[str, str]]] = {}

    @property
    def _cache(self) -> Cache | None:
        """The cache, made when a cached out is first read: a workspace whose
        metrics are all in git (``metrics show``) needs no cache module."""
        if self._cache_made is None and self.cache_dir is not None:
            from exq.engine.data.cache import Cache

            self._cache_made = Cache(self.cache_dir)
        return self._cache_made

    # -- entry points ------------------------------------------------------

    def commit(self, sha: str) -> RevData:
        """Params and metrics of commit ``sha`` (full sha), read from git blobs."""
        if self.git is None or self._finder is None:
            raise ExqError("no git repository to read commits from")
        if self.store is not None and (kept := self.store.data(sha)) is not None:
            return kept
        source = GitSource(self.git, sha, self.prefix)
        data = self._collect(source, self._finder.find(sha, self.prefix), in_git=True)
        if self.store is not None and not data.errors and not data.missing_objects:
            self.store.put(self.git.commit_info(sha), data)
        return data

    def workspace(self) -> RevData:
        """Params and metrics of the working tree as it is on disk."""
        return self._collect(DiskTree(self.root), find_dvcfiles(self.root), in_git=False)

    # -- one revision ------------------------------------------------------

    def _collect(self, source: _Lister, dvcfiles: list[str], *, in_git: bool) -> RevData:
        data = RevData()
        metrics: list[_OutRef] = []
        cached_outs: list[_OutRef] = []
        plans: list[_Plan] = []
        for dvcfile in dvcfiles:
            try:
                plan = self._plan(source, dvcfile)
            except ExqError as exc:
                data.errors.append(str(exc))
                continue
            plans.append(plan)
            seen = {m.path for m in metrics}
            metrics.extend(m for m in plan.metrics if m.path not in seen)
            cached_outs.extend(plan.cached_outs)
        params = self._params_to_read(source, plans)
        # A commit holds its cached outs only as hashes in dvc.lock: read them
        # from the cache, as DVC does (the workspace has them on disk).
        files = _RevFiles(source, self, cached_outs if in_git else [], data.errors)
        for path, keys in params.items():
            self._read_params(files, path, keys, data)
        for ref in metrics:
            self._read_metrics(files, ref, data)
        data.missing_objects = files.missing_objects
        return data

    def _params_to_read(
        self, source: FileSource, plans: list[_Plan]
    ) -> dict[str, list[str] | None]:
        """The params files (and keys, None = whole) that DVC shows for a revision.

        As DVC: the keys stages depend on; unless ``param_deps``, the files of
        the top-level ``params:`` lists and the root ``params.yaml``, whole;
        then values used through ``${...}`` of files not shown already.
        """
        params: dict[str, list[str] | None] = {}
        for plan in plans:
            for path, keys in plan.params.items():
                _merge_keys(params, path, keys)
        if not self.param_deps:
            for plan in plans:
                for path in plan.top_params:
                    _merge_keys(params, path, None)
            if source.read_bytes(DEFAULT_PARAMS) is not None:
                _merge_keys(params, DEFAULT_PARAMS, None)
        through_vars: dict[str, list[str] | None] = {}
        for plan in plans:
            for path, keys in plan.tracked.items():
                if path not in params:
                    _merge_keys(through_vars, path, keys)
        return {**params, **through_vars}

    def _read_params(
        self, files: _RevFiles, path: str, keys: list[str] | None, data: RevData
    ) -> None:
        raw = files.read_bytes(path)
        if raw is None:
            return
        try:
            flat = self._flatten(path, raw)
        except ExqError as exc:
            data.errors.append(str(exc))
            return
        if keys is None:
            data.params[path] = flat
            return
        parsed = self._parse(path, raw)
        assert not isinstance(parsed, ExqError)  # _flatten raised otherwise
        chosen: dict[str, Any] = {}
        for key in keys:
            value = get_dotted(parsed, key, _MISSING)
            if isinstance(value, dict):
                chosen.update({k: _plain(v) for k, v in flatten(value, key).items()})
            elif value is not _MISSING:
                chosen[key] = _plain(value)
        data.params[path] = chosen

    def _read_metrics(self, files: _RevFiles, ref: _OutRef, data: RevData) -> None:
        """A metrics file, or the files of a metrics folder."""
        raw = files.read_bytes(ref.path)
        found = [(ref.path, raw)] if raw is not None else files.folder(ref.path)
        for path, content in found:
            try:
                data.metrics[path] = self._flatten(path, content)
            except ExqError as exc:
                data.errors.append(str(exc))

    def cached_object(self, ref: _OutRef, source: FileSource, errors: list[str]) -> str | None:
        """The md5 that the revision's dvc.lock records for a cached out; None if none."""
        lock_path = lock_name(ref.dvcfile)
        raw = source.read_bytes(lock_path)
        if raw is None or self._cache is None:
            return None
        outs = self._lock_outs(lock_path, raw)
        if isinstance(outs, ExqError):
            if str(outs) not in errors:
                errors.append(str(outs))
            return None
        return outs.get(ref.stage, {}).get(ref.out) or None

    def read_object(self, md5: str) -> bytes | None:
        """A file object of the cache; None when this cache does not have it (not pulled)."""
        assert self._cache is not None
        for legacy in (False, True):  # DVC 3's layout, then DVC 2's
            try:
                return self._cache.obj_path(md5, legacy).read_bytes()
            except OSError:
                continue
        return None

    def listing(self, md5: str) -> list[tuple[str, str]]:
        """A folder object's ``(relpath, md5)`` pairs, memoised; [] when not in this cache."""
        assert self._cache is not None
        if md5 not in self._listings:
            self._listings[md5] = []
            for legacy in (False, True):  # DVC 3's layout, then DVC 2's
                try:
                    info = HashInfo(md5=md5, size=0, legacy=legacy)
                    self._listings[md5] = self._cache.load_listing(info)
                    break
                except CacheError:
                    continue
        return self._listings[md5]

    # -- memoised parsing --------------------------------------------------

    def _parse(self, path: str, raw: bytes) -> dict[str, Any] | ExqError:
        """A params/metrics file parsed by its suffix; memoised by path and content."""
        key = (path, raw)
        if key not in self._parsed:
            try:
                self._parsed[key] = parse_params(path, raw)
            except ExqError as exc:
                self._parsed[key] = exc
        return self._parsed[key]

    def _flatten(self, path: str, raw: bytes) -> dict[str, Any]:
        """The file's values as dotted keys; raises the file's parse error."""
        key = (path, raw)
        flat = self._flat.get(key)
        if flat is None:
            parsed = self._parse(path, raw)
            if isinstance(parsed, ExqError):
                raise ParamsError(str(parsed))  # a fresh one: the memoised error is raised often
            flat = self._flat[key] = {k: _plain(v) for k, v in flatten(parsed).items()}
        return dict(flat)

    def _lock_outs(self, lock_path: str, raw: bytes) -> dict[str, dict[str, str]] | ExqError:
        """stage -> {out path: md5} of a dvc.lock, memoised by content."""
        key = (lock_path, raw)
        if key not in self._locks:
            try:
                entries = parse_lock(raw.decode("utf-8", "replace"), lock_path)
                self._locks[key] = {
                    name: {out.path: out.md5 for out in entry.outs if out.md5}
                    for name, entry in entries.items()
                }
            except ExqError as exc:
                self._locks[key] = exc
        return self._locks[key]

    # -- resolution ----------------------------------------------------------

    def _plan(self, source: FileSource, dvcfile: str) -> _Plan:
        raw = source.read_bytes(dvcfile)
        if raw is None:
            raise DvcFileError(f"{dvcfile}: file not found")
        names = _interpolated_names(raw)
        memo = self._resolved.setdefault((dvcfile, raw), [])
        for known in memo:
            if all(
                self._fingerprint(p, source.read_bytes(p), names) == fp for p, fp in known.reads
            ):
                return known.plan
        recorder = _RecordingSource(source)
        data = parse_yaml(raw, dvcfile, error_cls=DvcFileError)
        stages = resolve_dvcfile(data, dvcfile=dvcfile, source=recorder)
        plan = _make_plan(dvcfile, data, stages)
        reads = tuple(
            (p, self._fingerprint(p, source.read_bytes(p), names)) for p in recorder.paths
        )
        memo.append(_Resolution(reads, plan))
        return plan

    def _fingerprint(self, path: str, raw: bytes | None, names: tuple[str, ...] | None) -> Any:
        """What of a params/vars file a resolution can depend on (see ``_Resolution``)."""
        if raw is None or names is None:
            return raw
        parsed = self._parse(path, raw)
        if isinstance(parsed, ExqError):
            return raw
        layout = tuple(self._flatten(path, raw))
        return layout, tuple(repr(get_dotted(parsed, name, _MISSING)) for name in names)


def _plain(value: Any) -> Any:
    """YAML dates and times become ISO strings, so every value is JSON data."""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


class _RevFiles:
    """The files of one revision: what git (or the disk) holds, and, for a commit,
    the files of its cached outs, read from the cache by the ``dvc.lock`` hashes
    (a metrics or params file inside a cached folder has no other copy)."""

    def __init__(
        self, source: _Lister, collector: Collector, cached_outs: list[_OutRef], errors: list[str]
    ) -> None:
        self.source, self.collector = source, collector
        self.cached_outs, self.errors = cached_outs, errors
        # an object named by the lock but absent from the cache (or no cache at all)
        self.missing_objects = False

    def read_bytes(self, path: str) -> bytes | None:
        raw = self.source.read_bytes(path)
        if raw is not None:
            return raw
        md5 = dict(self._cached_files(path)).get(path)
        if md5 is None:
            return None
        raw = self.collector.read_object(md5)
        self.missing_objects |= raw is None
        return raw

    def folder(self, folder: str) -> list[tuple[str, bytes]]:
        """(path, content) of every file under ``folder``."""
        paths = dict.fromkeys(self.source.list_files(folder))
        paths.update(dict.fromkeys(p for p, _ in self._cached_files(folder) if p != folder))
        return [(path, raw) for path in paths if (raw := self.read_bytes(path)) is not None]

    def _cached_files(self, path: str) -> list[tuple[str, str]]:
        """(repo path, md5) of the cached files at or under ``path``."""
        found: list[tuple[str, str]] = []
        for ref in self.cached_outs:
            if not (_within(path, ref.path) or _within(ref.path, path)):
                continue
            if self.collector.cache_dir is None:
                self.missing_objects = True
            md5 = self.collector.cached_object(ref, self.source, self.errors)
            if md5 is None:
                continue
            if not md5.endswith(".dir"):
                found.append((ref.path, md5))
                continue
            listing = self.collector.listing(md5)
            self.missing_objects |= not listing
            for rel, file_md5 in listing:
                full = posixpath.join(ref.path, rel)
                if _within(full, path):
                    found.append((full, file_md5))
        return found


def _within(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or inside it."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


# -- plans -------------------------------------------------------------------


def _interpolated_names(raw: bytes) -> tuple[str, ...] | None:
    """Dotted names in the file's ``${...}``; None when one is not a plain name."""
    names: dict[str, None] = {}
    for match in _INTERPOLATION.finditer(raw):
        text = match.group(1).decode("utf-8", "replace").replace("[", ".").replace("]", "")
        if not _NAME.fullmatch(text):
            return None
        names[text] = None
    return tuple(names)


def _make_plan(dvcfile: str, data: Any, stages: list[Any]) -> _Plan:
    """Params files, metrics files and cached outs of one resolved ``dvc.yaml``."""
    folder = posixpath.dirname(dvcfile)
    params: dict[str, list[str] | None] = {}
    tracked: dict[str, list[str] | None] = {}
    metrics: list[_OutRef] = []
    for stage in stages:
        for file, keys in stage.params.items():
            path = repo_path(stage, file)
            through_vars = stage.tracked.get(file, [])
            explicit = [key for key in keys if key not in through_vars]
            if not keys or explicit:  # [] is the whole file
                _merge_keys(params, path, explicit or None)
            if through_vars:
                _merge_keys(tracked, path, list(through_vars))
        for out in stage.outs_of("metrics"):
            path = repo_path(stage, out.path)
            metrics.append(_OutRef(path, out.cache, dvcfile, stage.name, out.path))
        if stage.live is not None and stage.live.summary:
            # DVC 2 reads a live section's summary as metrics; git keeps it.
            summary = stage.live.summary_path
            metrics.append(_OutRef(repo_path(stage, summary), False, dvcfile, stage.name, summary))
            # A logger in dvclive 1.x+'s layout keeps it inside the (cached) folder.
            inner = f"{stage.live.path}/metrics.json"
            metrics.append(_OutRef(repo_path(stage, inner), False, dvcfile, stage.name, inner))
    cached_outs = [
        _OutRef(repo_path(stage, out.path), True, dvcfile, stage.name, out.path)
        for stage in stages
        for out in stage.outs
        if out.cache
    ]
    top = data if isinstance(data, dict) else {}
    top_params = [_join(folder, file) for file in _top_level_paths(top.get("params"))]
    seen = {m.path for m in metrics}
    for file in _top_level_paths(top.get("metrics")):
        path = _join(folder, file)
        if path not in seen:
            seen.add(path)
            metrics.append(_OutRef(path, False, dvcfile, "", file))
    return _Plan(params, metrics, cached_outs, top_params, tracked)


def _top_level_paths(entries: Any) -> list[str]:
    if not isinstance(entries, list):
        return []
    return [str(e) for e in entries if isinstance(e, (str, int, float))]


def _join(folder: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(folder, path))


def _merge_keys(params: dict[str, list[str] | None], path: str, keys: list[str] | None) -> None:
    """Add a dependency on ``keys`` of ``path``; None (the whole file) wins over keys."""
    if path not in params:
        params[path] = None if keys is None else list(keys)
        return
    current = params[path]
    if current is None:
        return
    if keys is None:
        params[path] = None
    else:
        current.extend(k for k in keys if k not in current)


# -- the workspace -------------------------------------------------------------


_Lister = GitSource | DiskTree
