"""Refs: reading them, and updating them atomically with compare-and-set.

A ref update takes the ref's lock; with ``expected_old`` it is a
compare-and-set under that lock, so two writers never both win. A process
killed while holding a lock leaves ``<ref>.lock`` behind, and every later
update of that ref fails. A lock is held by the process that has the file open
(libgit2 keeps it open until the update is done), so one that no live process
has open is stale: an update of a ref exq owns (:data:`OWNED_PREFIXES`) that
fails on such a lock removes it and tries once more. :meth:`Refs.ref_locks`
finds lock files, :meth:`Refs.free_stale_lock` removes one if it is stale.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable
from pathlib import Path

import pygit2
from pygit2.enums import SortMode

from exq.engine.errors import GitError, ObjectsVanished
from exq.engine.git.repository import HEX40, Repository

# A ref locked by git itself (gc packing refs) is tried again for about a second.
_LOCK_TRIES = 20
_LOCK_WAIT = 0.05


class _Any(enum.Enum):
    ANY = "ANY"


ANY = _Any.ANY
"""``set_ref``/``delete_ref`` default: update whatever the ref points at now."""

# Refs only exq writes: experiments, queued snapshots, worktree throwaway branches.
OWNED_PREFIXES = ("refs/exps/", "refs/exq/", "refs/heads/exq-worktree-tmp/")
PROC = Path("/proc")


def lock_held(path: Path) -> bool:
    """Whether a live process has the lock file ``path`` open (only our own
    processes can be seen, and only they write our refs). Without /proc every
    lock counts as held."""
    if not PROC.is_dir():
        return True
    target = os.path.realpath(path)
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == target:
                    return True
            except OSError:
                continue
    return False


def check_ref_name(name: str) -> bool:
    """True if ``name`` is a valid full ref name under ``refs/`` (git check-ref-format)."""
    return name.startswith("refs/") and pygit2.reference_is_valid_name(name)


def check_ref_component(name: str) -> bool:
    """True if ``name`` can be one component of a ref name, e.g. an experiment name."""
    return "/" not in name and check_ref_name(f"refs/exq/{name}")


class Refs(Repository):
    """Reading and updating refs (branches, tags, ``refs/exps``, ``refs/exq``)."""

    def get_ref(self, name: str) -> str | None:
        """The commit sha ``name`` points at, or None when it does not exist."""
        ref = self._repo.references.get(name)
        return None if ref is None else str(ref.resolve().target)

    def set_ref(
        self, name: str, sha: str, *, expected_old: str | None | _Any = ANY, message: str = "exq"
    ) -> None:
        """Point ``name`` at ``sha`` atomically.

        With ``expected_old`` (a full sha, or None for "must not exist") the
        update is a compare-and-set under the ref's lock; a mismatch raises.
        """
        _require_ref_name(name)
        try:
            target = self._commit(sha).id
        except GitError:
            if HEX40.fullmatch(sha) and self._repo.get(sha) is None:
                raise ObjectsVanished(sha, self.root) from None
            raise

        def update() -> None:
            with self._repo.transaction() as txn:
                txn.lock_ref(name)
                self._check_expected(name, expected_old)
                # signature=None: pygit2 1.21 cannot pass a Signature here (TypeError);
                # libgit2 then uses the repo identity or its own fallback for the reflog.
                txn.set_target(name, target, message=message)

        for attempt in range(_LOCK_TRIES):
            try:
                self._locked(name, update)
                return
            except (pygit2.GitError, OSError) as exc:
                # git itself holds ref locks for moments (gc packing refs, a fetch),
                # and pack-refs removes the folders it empties as a ref is made there
                # (between libgit2 making the folder and creating the lock file in it).
                passing = any(
                    text in str(exc)
                    for text in (
                        "failed to lock",
                        "failed to make directory",
                        "failed to create locked file",
                    )
                )
                if passing and attempt + 1 < _LOCK_TRIES:
                    time.sleep(_LOCK_WAIT)
                    continue
                raise GitError(f"cannot update ref {name}: {exc}") from exc

    def delete_ref(self, name: str, *, expected_old: str | None | _Any = ANY) -> bool:
        """Delete ``name`` (compare-and-set with ``expected_old``); False if it did not exist."""
        _require_ref_name(name)
        found = [True]

        def remove() -> None:
            with self._repo.transaction() as txn:
                txn.lock_ref(name)
                if self._check_expected(name, expected_old) is None:
                    found[0] = False
                    return
                txn.remove(name)

        try:
            self._locked(name, remove)
        except pygit2.GitError as exc:
            raise GitError(f"cannot delete ref {name}: {exc}") from exc
        return found[0]

    def _locked(self, name: str, update: Callable[[], None]) -> None:
        """Run ``update`` (a ref transaction); if it fails on a stale lock of a ref
        exq owns, remove the lock and run it once more."""
        try:
            update()
        except pygit2.GitError:
            if not name.startswith(OWNED_PREFIXES) or not self.free_stale_lock(name):
                raise
            update()

    def _check_expected(self, name: str, expected_old: str | None | _Any) -> str | None:
        current = self.get_ref(name)
        if expected_old is not ANY and current != expected_old:
            raise GitError(
                f"ref {name} changed meanwhile: expected {expected_old or 'no ref'}, "
                f"found {current or 'no ref'}"
            )
        return current

    def ref_locks(self, prefix: str) -> dict[str, Path]:
        """Lock files of loose refs under ``prefix`` (``refs/exps/``): ref name -> path.

        A process that updates a ref holds ``<ref>.lock`` for a moment; one
        killed meanwhile leaves it, and every later update of the ref fails.
        """
        root = self.common_dir()
        base = root / prefix
        found: dict[str, Path] = {}
        if not base.is_dir():
            return found
        for folder, _, names in os.walk(base):
            for name in names:
                if name.endswith(".lock"):
                    path = Path(folder, name)
                    found[path.relative_to(root).as_posix()[: -len(".lock")]] = path
        return found

    def free_stale_lock(self, name: str) -> bool:
        """Remove ``<ref>.lock`` of ref ``name`` if no live process holds it; whether
        a lock was removed."""
        _require_ref_name(name)
        path = self.common_dir() / f"{name}.lock"
        if not path.exists() or lock_held(path):
            return False
        return self.remove_ref_lock(name)

    def remove_ref_lock(self, name: str) -> bool:
        """Delete the lock file ``<ref>.lock`` of ref ``name``; False if there was none.

        Only for a lock known to be stale: its holder is dead.
        """
        _require_ref_name(name)
        try:
            (self.common_dir() / f"{name}.lock").unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise GitError(f"cannot remove the stale lock of ref {name}: {exc}") from exc
        return True

    def list_refs(self, prefix: str) -> dict[str, str]:
        """Every ref whose full name starts with ``prefix``, mapped to its commit sha."""
        out: dict[str, str] = {}
        for ref in self._repo.references.iterator():
            name = ref.name
            if name.startswith(prefix):
                target = ref.target
                if isinstance(target, pygit2.Oid):  # a direct ref: no second lookup
                    out[name] = str(target)
                    continue
                try:
                    out[name] = str(ref.resolve().target)
                except pygit2.GitError:  # a dangling symbolic ref
                    continue
        return out

    def list_branches(self) -> dict[str, str]:
        """Local branches: short name -> commit sha."""
        refs = self.list_refs("refs/heads/")
        return {name.removeprefix("refs/heads/"): sha for name, sha in refs.items()}

    def list_tags(self) -> dict[str, str]:
        """Tags peeled to commits: short name -> commit sha (tags of trees/blobs are left out)."""
        out: dict[str, str] = {}
        for ref in self._repo.references.iterator():
            if ref.name.startswith("refs/tags/"):
                try:
                    out[ref.name.removeprefix("refs/tags/")] = str(ref.peel(pygit2.Commit).id)
                except (pygit2.GitError, ValueError):
                    continue
        return out

    def create_branch(self, name: str, sha: str, *, force: bool = False) -> None:
        """Create branch ``name`` at ``sha``; an existing one is moved only with ``force``."""
        if not check_ref_name(f"refs/heads/{name}"):
            raise GitError(f"invalid branch name: {name!r}")
        commit = self._commit(sha)
        if not force and self._repo.references.get(f"refs/heads/{name}") is not None:
            raise GitError(f"branch {name} already exists", hint="use force to move it")
        try:
            self._repo.branches.local.create(name, commit, force=force)
        except pygit2.GitError as exc:
            raise GitError(f"cannot create branch {name}: {exc}") from exc

    def all_commits(self) -> list[str]:
        """Commits reachable from HEAD, branches and tags (not refs/exps), newest first."""
        tips = set(self.list_branches().values()) | set(self.list_tags().values())
        head = self.head_sha()
        if head:
            tips.add(head)
        if not tips:
            return []
        walker = self._repo.walk(None, SortMode.TOPOLOGICAL | SortMode.TIME)
        for tip in tips:
            walker.push(tip)
        return [str(c.id) for c in walker]


def _require_ref_name(name: str) -> None:
    if not check_ref_name(name):
        raise GitError(f"invalid ref name: {name!r}")
