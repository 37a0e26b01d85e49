"""Linked worktrees with a detached HEAD: where the daemon and ``--temp`` runs happen."""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2

from exq.engine.errors import GitError
from exq.engine.git.repository import Repository

# Throwaway branches of add_worktree: refs/heads/<this>/<pid>-<random>.
TEMP_BRANCH_FOLDER = "exq-worktree-tmp"
TEMP_BRANCH_PREFIX = f"refs/heads/{TEMP_BRANCH_FOLDER}/"


@dataclass(frozen=True)
class WorktreeInfo:
    """A linked worktree; ``prunable`` is True when its folder is gone."""

    name: str
    path: Path
    prunable: bool


class Worktrees(Repository):
    """Adding, listing and removing linked worktrees."""

    def add_worktree(self, path: Path | str, sha: str) -> None:
        """Add a linked worktree at ``path`` with a detached HEAD at ``sha``."""
        path = Path(path).absolute()
        if path.exists():
            if not path.is_dir() or any(path.iterdir()):
                raise GitError(f"cannot add a worktree at {path}: the path exists")
            path.rmdir()  # libgit2 wants to create the folder itself
        try:
            path.parent.mkdir(parents=True, exist_ok=True)  # but not its parents
        except OSError as exc:
            raise GitError(f"cannot add a worktree at {path}: {exc.strerror}") from exc
        commit = self._commit(sha)
        name = _free_name(_sanitize(path.name), set(self._repo.list_worktrees()))
        # libgit2 only adds worktrees on a branch: use a throwaway branch, detach
        # the new worktree's HEAD, then delete the branch. Its name carries our
        # pid: a process killed meanwhile leaves it, to be told apart and removed.
        import uuid  # only to add a worktree (uuid imports platform: not for every git user)

        temp = f"{TEMP_BRANCH_FOLDER}/{os.getpid()}-{uuid.uuid4().hex}"
        try:
            branch = self._repo.branches.local.create(temp, commit)
            try:
                self._repo.add_worktree(name, str(path), branch)
                pygit2.Repository(str(path)).set_head(commit.id)
            finally:
                branch.delete()
        except (pygit2.GitError, OSError) as exc:
            raise GitError(f"cannot add a worktree at {path}: {exc}") from exc

    def list_worktrees(self) -> list[WorktreeInfo]:
        """The linked worktrees (the main working tree is not listed)."""
        out = []
        for name in self._repo.list_worktrees():
            wt = self._repo.lookup_worktree(name)
            out.append(WorktreeInfo(name, Path(wt.path), bool(wt.is_prunable)))
        return out

    def remove_worktree(self, path: Path | str) -> None:
        """Delete a linked worktree's folder and its admin entry (also if the folder is gone)."""
        path = Path(path).absolute()
        target = os.path.realpath(path)
        match = next((w for w in self.list_worktrees() if os.path.realpath(w.path) == target), None)
        if match is None or target == os.path.realpath(self.root):
            if path.exists():
                raise GitError(f"not a linked worktree of {self.root}: {path}")
            return  # already removed
        if path.exists():
            _rmtree(path)
        try:
            # force=True: prune the entry even though git still thinks it valid.
            self._repo.lookup_worktree(match.name).prune(True)
        except pygit2.GitError as exc:
            raise GitError(f"cannot prune worktree {match.name}: {exc}") from exc


def _sanitize(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "-", name).lstrip(".")
    return name or "worktree"


def _free_name(base: str, taken: set[str]) -> str:
    name, i = base, 1
    while name in taken:
        i += 1
        name = f"{base}-{i}"
    return name


def _rmtree(path: Path) -> None:
    try:
        if sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=_chmod_and_retry)
        else:
            shutil.rmtree(path, onerror=_chmod_and_retry)
    except OSError as exc:
        raise GitError(f"cannot remove worktree {path}: {exc}") from exc


def _chmod_and_retry(func: Any, path: str, _exc: Any) -> None:
    # A read-only folder (e.g. one a stage protected) blocks removing its entries.
    os.chmod(os.path.dirname(path), stat.S_IRWXU)
    if not os.path.islink(path):
        os.chmod(path, stat.S_IRWXU)
    func(path)
