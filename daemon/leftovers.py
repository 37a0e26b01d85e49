"""What a daemon (or a CLI) killed outright leaves behind, put right at start-up.

- Ref lock files. git holds ``<ref>.lock`` while it moves a ref; a process
  killed meanwhile leaves it, and every later update of that ref fails. At
  start the daemon holds its single-instance lock, so no run of its own moves
  an experiment ref: the lock of a queued run's experiment ref is stale. A
  queue ref (``refs/exq/queue/<id>``) is only moved inside an enqueue, which
  holds the database's write lock; with that lock held, its lock files are
  stale too. Locks of other refs (the user's own experiments) are left alone.
- The throwaway branch (``refs/heads/exq-worktree-tmp/<pid>-*``) a process
  killed while adding a worktree leaves, and its lock.
- The checkpoint handshake folders (``exq-ckpt-<pid>-*``) of dead processes.
- The checkpoint count of a run the daemon died under: the daemon moves the
  experiment ref, then counts the checkpoint in the store; a kill between the
  two leaves the count one too low. The ref's chain is the truth. So for a
  run killed between its final ref move and the end of its row: the ref then
  holds this attempt's commit, which the next attempt may replace.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from exq.daemon.store import QUEUE_REF_PREFIX, RunRecord, SyncStore
from exq.engine.errors import ExqError
from exq.engine.experiments.chains import chain_of
from exq.engine.experiments.refs import EXPS_PREFIX, exp_ref
from exq.engine.git import Git
from exq.engine.git.worktrees import TEMP_BRANCH_PREFIX
from exq.engine.run.checkpoint_session import remove_stale_folders


def clear_leftovers(db_path: Path, records: Iterable[RunRecord], log: Any) -> None:
    """Remove stale ref locks in the runs' repositories and dead processes' folders."""
    by_repo: dict[str, set[str]] = {}
    for record in records:
        by_repo.setdefault(record.repo, set()).add(exp_ref(record.baseline, record.name))
    with SyncStore(db_path) as store, store.write_lock():
        for repo, refs in sorted(by_repo.items()):
            for ref in remove_stale_locks(repo, refs):
                log.info("recovery.lock_removed", repo=repo, ref=ref)
    for folder in remove_stale_folders():
        log.info("recovery.folder_removed", path=str(folder))


def remove_stale_locks(repo: str, exp_refs: set[str]) -> list[str]:
    """Remove the locks of ``exp_refs`` and of every queue ref in ``repo``, and the
    throwaway worktree branches (with their locks) of dead processes; the refs
    freed. The caller holds the database's write lock."""
    if not Path(repo).is_dir():
        return []
    try:
        git = Git.open(repo)
        locks = git.ref_locks(QUEUE_REF_PREFIX)
        locks.update(
            (ref, path) for ref, path in git.ref_locks(EXPS_PREFIX).items() if ref in exp_refs
        )
        temp = {ref for ref in git.ref_locks(TEMP_BRANCH_PREFIX) if _dead_owner(ref)}
        freed = [ref for ref in sorted(locks.keys() | temp) if git.remove_ref_lock(ref)]
        for ref in sorted(git.list_refs(TEMP_BRANCH_PREFIX)):
            if _dead_owner(ref) and git.delete_ref(ref):
                freed.append(ref)
        return freed
    except ExqError:
        return []  # a repository gone or broken: nothing of ours to free there


def _dead_owner(ref: str) -> bool:
    """Whether the process named in a throwaway branch ``.../<pid>-<random>`` is gone."""
    pid = ref.rsplit("/", 1)[-1].split("-", 1)[0]
    if not pid.isdigit():
        return True  # made before names carried the pid: no live process of ours has it
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def exact_checkpoints(record: RunRecord) -> dict[str, Any]:
    """The checkpoint fields of a run the daemon died under, read from its ref's
    chain: ``checkpoints``, ``experiment_ref`` and ``experiment_sha`` ({} when the
    store is right, or the ref is not this run's chain)."""
    ref = record.experiment_ref or exp_ref(record.baseline, record.name)
    try:
        git = Git.open(record.repo)
        tip = git.get_ref(ref)
        if tip is None or tip == record.experiment_sha:
            return {}
        if record.experiment_sha is not None:
            if not git.is_ancestor(record.experiment_sha, tip):
                return {}
        chain = [c for c in chain_of(git, tip, record.baseline) if c.ref == ref]
        if not chain and record.experiment_sha is None:
            # No chain: a plain experiment commit, this attempt's if it made it
            # (killed between moving the ref and ending the row).
            info = git.commit_info(tip)
            mine = info.parents == (record.baseline,) and info.message.startswith(
                f"exq: experiment {record.name}"
            )
            if mine and _made_since([info], record.started):
                return {"experiment_ref": ref, "experiment_sha": tip}
            return {}
        if record.experiment_sha is None and not _made_since(chain, record.started):
            return {}  # an older experiment of that name: not this attempt's
    except ExqError:
        return {}
    count = sum(1 for commit in chain if commit.info.message.startswith("exq: checkpoint"))
    return {"checkpoints": count, "experiment_ref": ref, "experiment_sha": tip}


def _made_since(commits: list[Any], started: datetime | None) -> bool:
    """Whether every commit (a ``CommitInfo``, or a chain commit holding one) was
    made since ``started``."""
    if not commits or started is None:
        return False
    # Commit times have whole seconds: a commit of this attempt is no older than
    # the second it started in.
    infos = [getattr(c, "info", c) for c in commits]
    return all(info.time.timestamp() >= int(started.timestamp()) for info in infos)
