"""Is a stage out of date? A pure comparison of its lock entry with the workspace.

The caller measures the workspace and hands in plain data:

- ``deps_now`` / ``outs_now``: path as written in dvc.yaml (relative to the
  stage's wdir) -> its HashInfo now, or None when it does not exist;
- ``params_now``: params file as written -> ``{key: value}`` now, holding the
  stage's tracked keys that exist (dotted keys for nested values); for a file
  tracked whole (``params: [file:]``) its top-level mapping. A file that does
  not exist is left out.

The rules are DVC 3's (checked against dvc 3.67.1):

- a dep or out whose md5 differs from the lock, or that has no lock record,
  is ``modified``; one that does not exist is ``deleted``; a cached out whose
  object is missing from the cache is ``not in cache``;
- a tracked param key missing now is ``deleted``, one absent from the lock is
  ``new``, a different value is ``modified``; a params file with no lock record
  is ``new``, a missing one ``deleted``;
- deps, params and outs removed from dvc.yaml do not count (DVC ignores them);
- a different ``cmd`` (compared as written: a string and a list differ) counts;
- ``always_changed``, and a stage with neither deps, params nor outs, always runs;
  so does a stage with checkpoint outs, as in DVC 2 (DVC 3 has none): it
  continues training from its checkpoint outs;
- a frozen stage never runs (DVC only verifies its outs), so ``stage_changes``
  returns nothing for it, while ``stage_status`` still reports its outs and cmd.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from exq.engine.data.hashing import HashInfo
from exq.engine.spec.graph import repo_path
from exq.engine.spec.lockfile import LockEntry, LockPath, plain
from exq.engine.spec.stage import Stage

StatusItem = str | dict[str, dict[str, Any]]


def always_changed(stage: Stage) -> bool:
    """Whether the stage runs whatever changed (DVC 2 counted checkpoint stages in)."""
    return stage.always_changed or is_callback(stage) or stage.has_checkpoints


def _path_state(recorded: LockPath | None, now: HashInfo | None) -> str | None:
    if now is None:
        return "deleted"
    if recorded is None or recorded.md5 != now.md5:
        return "modified"
    return None


def deps_status(
    stage: Stage, entry: LockEntry | None, deps_now: Mapping[str, HashInfo | None]
) -> dict[str, str]:
    """Changed deps: path as written -> ``modified`` / ``deleted``."""
    result: dict[str, str] = {}
    for dep in stage.deps:
        state = _path_state(entry.dep(dep) if entry else None, deps_now.get(dep))
        if state:
            result[dep] = state
    return result


def params_status(
    stage: Stage, entry: LockEntry | None, params_now: Mapping[str, Mapping[str, Any]]
) -> dict[str, str | dict[str, str]]:
    """Changed params: file -> ``new``/``deleted``, or file -> {key: state}."""
    result: dict[str, str | dict[str, str]] = {}
    for file, keys in stage.params.items():
        actual = params_now.get(file)
        recorded = entry.params.get(file) if entry else None
        tracked = stage.tracked.get(file, [])
        if recorded is None and keys and all(key in tracked for key in keys):
            recorded = {}  # only ${...} values, which a lock written by DVC leaves out
        if actual is None:
            result[file] = "deleted"
            continue
        if recorded is None:
            result[file] = "new"
            continue
        # a whole-file dependency: the file's keys first, then the lock's
        names = list(keys) or list(dict.fromkeys([*actual, *recorded]))
        changed: dict[str, str] = {}
        for key in names:
            if key not in actual:
                changed[key] = "deleted"
            elif key not in recorded:
                if key not in tracked:
                    changed[key] = "new"
            elif plain(actual[key]) != plain(recorded[key]):
                changed[key] = "modified"
        if changed:
            result[file] = changed
    return result


def outs_status(
    stage: Stage,
    entry: LockEntry | None,
    outs_now: Mapping[str, HashInfo | None],
    not_in_cache: Collection[str] = (),
) -> dict[str, str]:
    """Changed outs: path as written -> ``modified`` / ``deleted`` / ``not in cache``."""
    result: dict[str, str] = {}
    for out in stage.outs:
        recorded = entry.out(out.path) if entry else None
        if out.cache and recorded is not None and out.path in not_in_cache:
            result[out.path] = "not in cache"
            continue
        state = _path_state(recorded, outs_now.get(out.path))
        if state:
            result[out.path] = state
    return result


def is_callback(stage: Stage) -> bool:
    """A stage with no deps, params or outs: DVC runs it every time."""
    return not (stage.deps or stage.params or stage.outs)


def cmd_changed(stage: Stage, entry: LockEntry | None) -> bool:
    """True when the lock records another command (never without an entry, as DVC)."""
    return entry is not None and plain(entry.cmd) != plain(stage.cmd)


def _describe(changes: Mapping[str, Any]) -> str:
    return ", ".join(f"{path} ({state})" for path, state in changes.items())


def stage_changes(
    stage: Stage,
    entry: LockEntry | None,
    deps_now: Mapping[str, HashInfo | None],
    outs_now: Mapping[str, HashInfo | None],
    params_now: Mapping[str, Mapping[str, Any]],
    *,
    not_in_cache: Collection[str] = (),
) -> list[str]:
    """Why the stage must run, in words; an empty list means it is up to date.

    ``not_in_cache``: outs (as written) whose recorded object is missing from
    the cache; DVC reruns a stage for them.
    """
    if stage.frozen:
        return []
    reasons: list[str] = []
    if always_changed(stage):
        reasons.append("always changed")
    if entry is None:
        return [*reasons, "not in dvc.lock"]
    if cmd_changed(stage, entry):
        reasons.append("cmd changed")
    deps = deps_status(stage, entry, deps_now)
    if deps:
        reasons.append(f"deps changed: {_describe(deps)}")
    for file, change in params_status(stage, entry, params_now).items():
        if isinstance(change, str):
            reasons.append(f"params changed: {file} ({change})")
        else:
            reasons.append(f"params changed: {file}: {_describe(change)}")
    outs = outs_status(stage, entry, outs_now, not_in_cache)
    if outs:
        reasons.append(f"outs changed: {_describe(outs)}")
    return reasons


def stage_status(
    stage: Stage,
    entry: LockEntry | None,
    deps_now: Mapping[str, HashInfo | None],
    outs_now: Mapping[str, HashInfo | None],
    params_now: Mapping[str, Mapping[str, Any]],
    *,
    not_in_cache: Collection[str] = (),
) -> list[StatusItem]:
    """One stage's value in ``dvc status --json``; [] when it is up to date.

    Paths are repo-relative (what DVC prints when run from the repository root).
    """
    items: list[StatusItem] = []
    if not stage.frozen:
        changed_deps: dict[str, Any] = {
            repo_path(stage, p): s for p, s in deps_status(stage, entry, deps_now).items()
        }
        for file, change in params_status(stage, entry, params_now).items():
            changed_deps[repo_path(stage, file)] = change
        if changed_deps:
            items.append({"changed deps": changed_deps})
    outs = outs_status(stage, entry, outs_now, not_in_cache)
    if outs:
        items.append({"changed outs": {repo_path(stage, p): s for p, s in outs.items()}})
    if always_changed(stage):
        items.append("always changed")
    if cmd_changed(stage, entry):
        items.append("changed command")
    return items


def status_json(statuses: Mapping[str, list[StatusItem]]) -> dict[str, list[StatusItem]]:
    """``dvc status --json``: stage address -> its items, up-to-date stages left out."""
    return {address: items for address, items in statuses.items() if items}
