"""What a daemon (or a CLI) killed outright leaves behind, put right at start-up.

- Ref lock files. git holds ``<ref>.lock`` open while it moves a ref; a
  process killed meanwhile leaves it, and every later update of that ref
  fails. The lock files of the refs exq owns (``refs/exps``, ``refs/exq``)
  that no live process has open are removed (the database's write lock is
  held meanwhile, so no enqueue is half-way). Other refs are left alone.
- The throwaway branch (``refs/heads/exq-worktree-tmp/<pid>-*``) a process
  killed while adding a worktree leaves.
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

from exq.daemon.store import RunRecord, SyncStore
from exq.engine.errors import ExqError
from exq.engine.experiments.chains import chain_of
from exq.engine.experiments.refs import exp_ref
from exq.engine.git import Git
from exq.engine.git.refs import OWNED_PREFIXES
from exq.engine.git.worktrees import TEMP_BRANCH_PREFIX
from exq.engine.run.checkpoint_session import remove_stale_folders


def clear_leftovers(db_path: Path, records: Iterable[RunRecord], log: Any) -> None:
    """Remove stale ref locks in the runs' repositories and dead processes' folders."""
    repos = sorted({record.repo for record in records})
    with SyncStore(db_path) as store, store.write_lock():
        for repo in repos:
            for ref in remove_stale_locks(repo):
                log.info("recovery.lock_removed", repo=repo, ref=ref)
    for folder in remove_stale_folders():
        log.info("recovery.folder_removed", path=str(folder))


def remove_stale_locks(repo: str) -> list[str]:
    """Remove the lock files of the refs exq owns in ``repo`` that no live process
    holds, and the throwaway worktree branches of dead processes; the refs freed."""
    if not Path(repo).is_dir():
        return []
    try:
        git = Git.open(repo)
        locks = sorted(ref for prefix in OWNED_PREFIXES for ref in git.ref_locks(prefix))
        freed = [ref for ref in locks if git.free_stale_lock(ref)]
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
