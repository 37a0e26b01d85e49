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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from exq.engine.data.cache import Cache
from exq.engine.errors import DvcFileError, ExqError, ParamsError
from exq.engine.git import Git
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


@dataclass(frozen=True)
class _MetricRef:
    path: str  # repo-relative
    cached: bool
    dvcfile: str
    stage: str
    out: str  # the out's path as the lock records it


@dataclass(frozen=True)
class _Plan:
    """What one ``dvc.yaml`` names: params files (keys, None = whole) and metrics files."""

    params: dict[str, list[str] | None]
    metrics: list[_MetricRef]


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
    ) -> None:
        self.git = git
        self.root = Path(root)
        self.cache_dir = cache_dir
        self.param_deps = param_deps
        self._parsed: dict[tuple[str, bytes], dict[str, Any] | ExqError] = {}
        self._flat: dict[tuple[str, bytes], dict[str, Any]] = {}
        self._locks: dict[tuple[str, bytes], dict[str, dict[str, str]] | ExqError] = {}
        self._resolved: dict[tuple[str, bytes], list[_Resolution]] = {}
        self._finder = DvcfileFinder(git) if git is not None else None
        self._cache = Cache(cache_dir) if cache_dir is not None else None

    # -- entry points ------------------------------------------------------

    def commit(self, sha: str) -> RevData:
        """Params and metrics of commit ``sha`` (full sha), read from git blobs."""
        if self.git is None or self._finder is None:
            raise ExqError("no git repository to read commits from")
        source = GitSource(self.git, sha)
        return self._collect(source, self._finder.find(sha), in_git=True)

    def workspace(self) -> RevData:
        """Params and metrics of the working tree as it is on disk."""
        return self._collect(DiskTree(self.root), find_dvcfiles(self.root), in_git=False)

    # -- one revision ------------------------------------------------------

    def _collect(self, source: _Lister, dvcfiles: list[str], *, in_git: bool) -> RevData:
        data = RevData()
        params: dict[str, list[str] | None] = {}
        metrics: list[_MetricRef] = []
        if not self.param_deps and source.read_bytes(DEFAULT_PARAMS) is not None:
            params[DEFAULT_PARAMS] = None
        for dvcfile in dvcfiles:
            try:
                plan = self._plan(source, dvcfile)
            except ExqError as exc:
                data.errors.append(str(exc))
                continue
            for path, keys in plan.params.items():
                _merge_keys(params, path, keys)
            seen = {m.path for m in metrics}
            metrics.extend(m for m in plan.metrics if m.path not in seen)
        for path, keys in params.items():
            self._read_params(source, path, keys, data)
        for ref in metrics:
            self._read_metrics(source, ref, data, in_git=in_git)
        return data

    def _read_params(
        self, source: FileSource, path: str, keys: list[str] | None, data: RevData
    ) -> None:
        raw = source.read_bytes(path)
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

    def _read_metrics(
        self, source: _Lister, ref: _MetricRef, data: RevData, *, in_git: bool
    ) -> None:
        files = self._metric_files(source, ref, in_git=in_git, errors=data.errors)
        for path, raw in files:
            try:
                data.metrics[path] = self._flatten(path, raw)
            except ExqError as exc:
                data.errors.append(str(exc))

    def _metric_files(
        self, source: _Lister, ref: _MetricRef, *, in_git: bool, errors: list[str]
    ) -> list[tuple[str, bytes]]:
        """(path, content) of a metrics out: a file, the files of a folder, or a cache object."""
        raw = source.read_bytes(ref.path)
        if raw is not None:
            return [(ref.path, raw)]
        if in_git and ref.cached:
            cached = self._from_cache(source, ref, errors)
            if cached is not None:
                return [(ref.path, cached)]
        return [
            (path, data)
            for path in source.list_files(ref.path)
            if (data := source.read_bytes(path)) is not None
        ]

    def _from_cache(self, source: FileSource, ref: _MetricRef, errors: list[str]) -> bytes | None:
        """A cached metrics file: the object the revision's dvc.lock names, if the cache has it."""
        if self._cache is None:
            return None
        lock_path = lock_name(ref.dvcfile)
        raw = source.read_bytes(lock_path)
        if raw is None:
            return None
        outs = self._lock_outs(lock_path, raw)
        if isinstance(outs, ExqError):
            errors.append(str(outs))
            return None
        md5 = outs.get(ref.stage, {}).get(ref.out)
        if not md5 or md5.endswith(".dir"):
            return None
        try:
            return self._cache.obj_path(md5).read_bytes()
        except OSError:
            return None  # not in this cache (not pulled): shown as missing

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
        plan = _make_plan(dvcfile, data, stages, param_deps=self.param_deps)
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


def _make_plan(dvcfile: str, data: Any, stages: Iterable[Any], *, param_deps: bool) -> _Plan:
    """Params files and metrics files of one resolved ``dvc.yaml``."""
    folder = posixpath.dirname(dvcfile)
    params: dict[str, list[str] | None] = {}
    metrics: list[_MetricRef] = []
    for stage in stages:
        for file, keys in stage.params.items():
            whole = not keys or not param_deps
            _merge_keys(params, repo_path(stage, file), None if whole else list(keys))
        for out in stage.outs_of("metrics"):
            path = repo_path(stage, out.path)
            metrics.append(_MetricRef(path, out.cache, dvcfile, stage.name, out.path))
        if stage.live is not None and stage.live.summary:
            # DVC 2 reads a live section's summary as metrics; git keeps it.
            summary = stage.live.summary_path
            metrics.append(
                _MetricRef(repo_path(stage, summary), False, dvcfile, stage.name, summary)
            )
    top = data if isinstance(data, dict) else {}
    for file in _top_level_paths(top.get("params")):
        _merge_keys(params, _join(folder, file), None)
    seen = {m.path for m in metrics}
    for file in _top_level_paths(top.get("metrics")):
        path = _join(folder, file)
        if path not in seen:
            seen.add(path)
            metrics.append(_MetricRef(path, False, dvcfile, "", file))
    return _Plan(params, metrics)


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
