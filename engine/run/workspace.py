"""The workspace side of a stage: hashing its deps and outs, reading its params,
saving its outs to the cache and restoring them.

``StageIO`` is the one place where the pipeline meets files; the decisions it
feeds (``outdated``) are pure. Hashes are memoised for one run, so a folder
that fifty stages depend on is hashed once; a stage's outs are dropped from
the memo when it writes them.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from exq.engine.data.cache import Cache, hash_path, remove_out
from exq.engine.data.hashdb import HashState
from exq.engine.data.hashing import HashInfo, legacy_hash_path
from exq.engine.errors import ExqError, StageFailed
from exq.engine.run.outdated import StatusItem, stage_changes, stage_status
from exq.engine.run.project import Project
from exq.engine.run.tracked import ignore_in_git
from exq.engine.spec.graph import repo_path
from exq.engine.spec.loading import Pipeline
from exq.engine.spec.lockfile import LockEntry, LockPath
from exq.engine.spec.paramfiles import DiskSource, get_dotted, load_params
from exq.engine.spec.stage import Stage

ParamsNow = dict[str, dict[str, Any]]


class StageIO:
    """Measures and changes the workspace for the stages of one project."""

    def __init__(self, project: Project, *, state_db: Path | None = None) -> None:
        self.root = project.root
        self.cache = Cache(project.cache_dir, project.link_types, shared=project.shared_group)
        # A worktree shares its main project's state DB, so cache objects verified
        # there are not read again (rows are keyed by absolute path).
        self.state = HashState(project.root, db_path=state_db)
        self.source = DiskSource(project.root)
        self._memo: dict[tuple[str, bool], HashInfo | None] = {}
        self._memo_lock = threading.Lock()
        self._hashing: dict[tuple[str, bool], threading.Lock] = {}

    def close(self) -> None:
        self.state.close()

    def __enter__(self) -> StageIO:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- measuring --------------------------------------------------------

    def hash_of(self, rel: str, legacy: bool = False) -> HashInfo | None:
        """Hash of the repo-relative path now, or None when it does not exist;
        ``legacy``: DVC 2's hash, to compare with an entry DVC 2 wrote."""
        key = (rel, legacy)
        with self._memo_lock:
            if key in self._memo:
                return self._memo[key]
            # Stages checked side by side often share a dep folder: one thread
            # hashes it while the others wait for its result.
            path_lock = self._hashing.setdefault(key, threading.Lock())
        with path_lock:
            with self._memo_lock:
                if key in self._memo:
                    return self._memo[key]
            path = self.root / rel
            info = None
            if os.path.lexists(path):
                if legacy:
                    info = legacy_hash_path(path, self.root)
                else:
                    info = hash_path(path, self.state)
            with self._memo_lock:
                self._memo[key] = info
        return info

    def hash_like(self, rel: str, recorded: HashInfo | None) -> HashInfo | None:
        """Hash of ``rel`` now, the way the ``recorded`` entry was hashed (DVC 2 or 3)."""
        return self.hash_of(rel, legacy=recorded is not None and recorded.legacy)

    def forget(self, rels: list[str]) -> None:
        """Drop memoised hashes of these paths and of any path inside or around them."""
        with self._memo_lock:
            for key in list(self._memo):
                if any(_related(key[0], rel) for rel in rels):
                    del self._memo[key]

    def params_now(self, stage: Stage) -> ParamsNow:
        """Current values of the stage's params: file -> {key: value}; missing files left out."""
        result: ParamsNow = {}
        for file, keys in stage.params.items():
            rel = repo_path(stage, file)
            if self.source.read_bytes(rel) is None:
                continue
            data = load_params(self.source, rel)
            if not keys:
                result[file] = dict(data)
                continue
            values: dict[str, Any] = {}
            for key in keys:
                try:
                    values[key] = get_dotted(data, key)
                except (KeyError, IndexError, TypeError):
                    continue
            result[file] = values
        return result

    def check_inputs(self, stage: Stage) -> None:
        """Before a run: every dep, params file and tracked key must exist, as DVC requires.

        Raises ``StageFailed`` naming the path or the keys, so the stage's outs
        are not removed for a command that cannot work, and no lock entry
        records a param that is not there.
        """
        for dep in stage.deps:
            if not os.path.lexists(self.root / repo_path(stage, dep)):
                raise StageFailed(stage.address, f"dependency '{dep}' does not exist")
        now = self.params_now(stage)
        for file, keys in stage.params.items():
            if file not in now:
                raise StageFailed(stage.address, f"dependency '{file}' does not exist")
            missing = [key for key in keys if key not in now[file]]
            if missing:
                names = ", ".join(missing)
                raise StageFailed(stage.address, f"parameters '{names}' are missing from '{file}'")

    def _measure(
        self, stage: Stage, entry: LockEntry | None = None
    ) -> tuple[dict[str, HashInfo | None], dict[str, HashInfo | None]]:
        """Deps and outs now, each hashed as its lock record was (DVC 2 or 3)."""

        def legacy(recorded: LockPath | None) -> bool:
            return recorded is not None and recorded.md5 is not None and recorded.hash is None

        deps = {
            dep: self.hash_of(repo_path(stage, dep), legacy(entry.dep(dep) if entry else None))
            for dep in stage.deps
        }
        outs = {
            out.path: self.hash_of(
                repo_path(stage, out.path), legacy(entry.out(out.path) if entry else None)
            )
            for out in stage.outs
        }
        return deps, outs

    def _not_in_cache(self, stage: Stage, entry: LockEntry | None) -> list[str]:
        missing = []
        for out in stage.outs:
            recorded = entry.out(out.path) if entry else None
            info = recorded.to_hash() if recorded else None
            if out.cache and info is not None and not self.cache.exists(info, self.state):
                missing.append(out.path)
        return missing

    def changes(self, pipeline: Pipeline, stage: Stage) -> list[str]:
        """Why the stage must run; [] when it is up to date."""
        entry = pipeline.lock_entry(stage)
        deps, outs = self._measure(stage, entry)
        missing = self._not_in_cache(stage, entry)
        return stage_changes(stage, entry, deps, outs, self.params_now(stage), not_in_cache=missing)

    def status(self, pipeline: Pipeline, stage: Stage) -> list[StatusItem]:
        """The stage's entry in ``status --json``; [] when it is up to date."""
        entry = pipeline.lock_entry(stage)
        deps, outs = self._measure(stage, entry)
        missing = self._not_in_cache(stage, entry)
        return stage_status(stage, entry, deps, outs, self.params_now(stage), not_in_cache=missing)

    # -- changing ---------------------------------------------------------

    def remove_outs(self, stage: Stage, *, reset: bool = False) -> None:
        """Clear the stage's outs before it runs; kept ones become private copies.

        Kept: persist outs, checkpoint outs (training resumes from them) and a
        checkpoint stage's live logger files. ``reset`` (``exp run --reset``)
        removes the checkpoint and live ones too; persist outs stay.
        """
        kept = {out.path for out in stage.kept_outs()}
        rels = [repo_path(stage, out.path) for out in stage.outs]
        for out, rel in zip(stage.outs, rels, strict=True):
            path = self.root / rel
            if out.persist or (out.path in kept and not reset):
                self.cache.unprotect(path, self.state)
            elif os.path.lexists(path):
                remove_out(path)
        self.forget(rels)

    def restore(self, pipeline: Pipeline, stage: Stage) -> bool:
        """Check out the stage's outs from the cache when only they are missing or changed.

        True when every out was restored, so the stage need not run.
        """
        entry = pipeline.lock_entry(stage)
        if entry is None or stage.always_changed or not stage.outs:
            return False
        infos = []
        for out in stage.outs:
            recorded = entry.out(out.path)
            info = recorded.to_hash() if recorded else None
            if not out.cache or info is None or not self.cache.exists(info, self.state):
                return False
            infos.append((out, info))
        deps, _ = self._measure(stage, entry)
        # Judge the stage as if its outs were in place: only cmd, deps and params count.
        recorded_outs = {out.path: info for out, info in infos}
        if stage_changes(stage, entry, deps, recorded_outs, self.params_now(stage)):
            return False
        for out, info in infos:
            self.cache.checkout(self.root / repo_path(stage, out.path), info, self.state)
        self.forget([repo_path(stage, out.path) for out in stage.outs])
        self.state.flush()
        return True

    def commit_outs(
        self, pipeline: Pipeline, stage: Stage, *, checkpoint: bool = False
    ) -> LockEntry:
        """After a run: save the outs to the cache and build the stage's lock entry.

        ``checkpoint``: in the middle of a run, at a checkpoint signal. Only the
        checkpoint outs must exist (outs not written yet are left out of the
        entry), and saved outs are made private writable copies again, since
        the command goes on writing them.
        """
        rels = [repo_path(stage, out.path) for out in stage.outs]
        self.forget(rels)
        previous = pipeline.lock_entry(stage)
        outs: list[LockPath] = []
        for out, rel in zip(stage.outs, rels, strict=True):
            path = self.root / rel
            if not os.path.lexists(path):
                if checkpoint and not out.checkpoint:
                    continue
                when = "at the checkpoint" if checkpoint else "after the run"
                raise StageFailed(stage.address, f"output '{out.path}' does not exist {when}")
            try:
                info = (
                    self.cache.save(path, self.state) if out.cache else hash_path(path, self.state)
                )
            except ExqError as exc:
                raise StageFailed(stage.address, f"output '{out.path}': {exc.message}") from exc
            recorded = previous.out(out.path) if previous else None
            kept = self._unchanged_legacy(recorded, rel, cached=out.cache)
            outs.append(kept or LockPath.from_hash(out.path, info))
            if out.cache:
                # Cached outs live in the cache, not in git, as DVC arranges it.
                with self._memo_lock:
                    ignore_in_git(path.parent / ".gitignore", "/" + path.name)
                if checkpoint:
                    self.cache.unprotect(path, self.state)
        deps = []
        for dep in stage.deps:
            dep_info = self.hash_of(repo_path(stage, dep))
            if dep_info is None:
                raise StageFailed(stage.address, f"dependency '{dep}' does not exist")
            recorded = previous.dep(dep) if previous else None
            kept = self._unchanged_legacy(recorded, repo_path(stage, dep), cached=False)
            deps.append(kept or LockPath.from_hash(dep, dep_info))
        self.state.flush()
        params = locked_params(stage, self.params_now(stage))
        return LockEntry(cmd=stage.cmd, deps=deps, params=params, outs=outs)

    def _unchanged_legacy(
        self, recorded: LockPath | None, rel: str, *, cached: bool
    ) -> LockPath | None:
        """As DVC 3: an entry DVC 2 wrote (no ``hash: md5``) stays as it is while the
        content it names has not changed; None when a DVC 3 entry must replace it."""
        if recorded is None or recorded.hash is not None or recorded.md5 is None:
            return None
        now = self.hash_of(rel, legacy=True)
        if now is None or now.md5 != recorded.md5:
            return None
        info = recorded.to_hash()
        if cached and (info is None or not self.cache.exists(info, self.state)):
            return None  # its object is not in DVC 2's cache layout: record the new one
        return recorded


def locked_params(stage: Stage, now: ParamsNow) -> ParamsNow:
    """What ``dvc.lock`` records of the stage's params: as DVC, the keys ``dvc.yaml``
    lists, not those used only through ``${...}`` (a file used only so is left out)."""
    locked: ParamsNow = {}
    for file, values in now.items():
        through_vars = set(stage.tracked.get(file, []))
        kept = {key: value for key, value in values.items() if key not in through_vars}
        if kept or not through_vars:
            locked[file] = kept
    return locked


def _related(a: str, b: str) -> bool:
    """True when one repo-relative path is the other or inside it."""
    if a == b:
        return True
    return a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/") or b == "."
