"""The one seam to git: every pygit2 call, and the few `git` processes, live here.

``Git`` wraps one repository's working tree (the main one or a linked
worktree). It snapshots the workspace into commits without touching the
user's index, HEAD or branches; updates refs atomically, with compare-and-set;
reads files of any commit without a checkout; manages detached worktrees; and
pushes and fetches refs. Every failure is an ``exq.engine.errors.GitError``
with a one-line message.

Two things go through the ``git`` executable rather than pygit2, on purpose:
push and fetch, because only git knows the user's ssh agent, credential
helpers and remote config. Everything else is pygit2.
"""

from __future__ import annotations

import enum
import os
import re
import shutil
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import islice
from pathlib import Path
from typing import Any

import pygit2
from pygit2.enums import DeltaStatus, FileMode, FileStatus, SortMode

from exq.engine.errors import GitError

FALLBACK_NAME = "exq"
FALLBACK_EMAIL = "exq@localhost"

_MODE_FILE = FileMode.BLOB  # 0o100644
_MODE_EXEC = FileMode.BLOB_EXECUTABLE  # 0o100755
_MODE_LINK = FileMode.LINK  # 0o120000
_MODE_GITLINK = FileMode.COMMIT  # 0o160000, a submodule
_HEX40 = re.compile(r"[0-9a-f]{40}")
# Variables that would point a child `git` at another repository than ours.
_GIT_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX")
_UNTRACKED = int(FileStatus.WT_NEW | FileStatus.IGNORED)
_IGNORED = int(FileStatus.IGNORED)

# (blob sha, file mode) of one path in a tree or in the workspace.
_Entry = tuple[str, int]
# (sha, pygit2 object type, raw content) of one git object.
GitObject = tuple[str, int, bytes]


class _Any(enum.Enum):
    ANY = "ANY"


ANY = _Any.ANY
"""``set_ref``/``delete_ref`` default: update whatever the ref points at now."""


@dataclass(frozen=True)
class CommitInfo:
    """What exq shows about a commit."""

    sha: str
    parents: tuple[str, ...]
    time: datetime  # committer time, in the committer's offset
    message: str
    author: str
    email: str


@dataclass(frozen=True)
class WorktreeInfo:
    """A linked worktree; ``prunable`` is True when its folder is gone."""

    name: str
    path: Path
    prunable: bool


def check_ref_name(name: str) -> bool:
    """True if ``name`` is a valid full ref name under ``refs/`` (git check-ref-format)."""
    return name.startswith("refs/") and pygit2.reference_is_valid_name(name)


def check_ref_component(name: str) -> bool:
    """True if ``name`` can be one component of a ref name, e.g. an experiment name."""
    return "/" not in name and check_ref_name(f"refs/exq/{name}")


class Git:
    """One git working tree; open it with ``Git.open``.

    A ``Git`` holds a pygit2 Repository, which must not be used by two threads
    at once: open one per thread (opening is cheap).
    """

    def __init__(self, repo: pygit2.Repository) -> None:
        self._repo = repo
        self.root = Path(repo.workdir)

    @classmethod
    def open(cls, path: Path | str) -> Git:
        """Open the repository holding ``path`` (any folder inside a working tree)."""
        try:
            gitdir = pygit2.discover_repository(str(path))
            repo = pygit2.Repository(gitdir) if gitdir else None
        except pygit2.GitError as exc:
            raise GitError(f"not a git repository: {path}") from exc
        if repo is None:
            raise GitError(f"not a git repository: {path}")
        if repo.is_bare or not repo.workdir:
            raise GitError(f"bare repositories are not supported: {path}")
        return cls(repo)

    # -- HEAD -------------------------------------------------------------

    def head_sha(self) -> str | None:
        """The commit HEAD points at, or None when HEAD is unborn."""
        if self._repo.head_is_unborn:
            return None
        return str(self._repo.head.target)

    def head_branch(self) -> str | None:
        """The short name of HEAD's branch (also when unborn), None when detached."""
        if self._repo.head_is_detached:
            return None
        target = self._repo.references["HEAD"].target
        return str(target).removeprefix("refs/heads/")

    # -- snapshots --------------------------------------------------------

    def snapshot_workspace(
        self, message: str, *, parent: str | None = None, extra: dict[str, bytes] | None = None
    ) -> str:
        """Commit the workspace as it is (tracked changes and untracked, non-ignored
        files) on top of ``parent`` (default HEAD); ``extra`` overrides file contents.

        The user's index, HEAD and branches are not touched and no ref points at
        the new commit. Returns its sha.
        """
        repo = self._repo
        head = None if repo.head_is_unborn else repo.head.peel(pygit2.Commit)
        # A fresh in-memory index, never the one in .git/index.
        index = pygit2.Index()
        if head is not None:
            index.read_tree(head.tree)
        self._add_workspace_changes(index)
        for rel, data in (extra or {}).items():
            rel = _clean_relpath(rel)
            old = _index_mode(index, rel)
            mode = old if old in (_MODE_FILE, _MODE_EXEC) else _MODE_FILE
            index.add(pygit2.IndexEntry(rel, repo.create_blob(data), FileMode(mode)))
        parents = [self._commit(parent).id] if parent else ([head.id] if head else [])
        return self._write_commit(index.write_tree(repo), parents, message)

    def _add_workspace_changes(self, index: pygit2.Index) -> None:
        """Make ``index`` (HEAD's tree) match the workspace. Only the paths that
        status reports are looked at: it uses the stat cache of .git/index."""
        try:
            changed = sorted(self._repo.status(untracked_files="all"))
        except pygit2.GitError as exc:
            raise GitError(f"cannot read the status of {self.root}: {exc}") from exc
        filemode = self._config_bool("core.filemode", default=True)
        present: list[tuple[str, os.stat_result]] = []
        for rel in changed:
            if rel.endswith("/"):  # an untracked nested repository: git skips it too
                continue
            st = _lstat(self.root / rel)
            if st is None or (stat.S_ISDIR(st.st_mode) and not _is_gitlink(index, rel)):
                _index_remove(index, rel)  # removals first: a file may become a folder
            elif not stat.S_ISDIR(st.st_mode):
                present.append((rel, st))
        for rel, st in present:
            oid = self._blob_from_workdir(rel)
            mode = _workdir_mode(st, _index_mode(index, rel), filemode)
            index.add(pygit2.IndexEntry(rel, oid, FileMode(mode)))

    def _write_commit(self, tree: pygit2.Oid, parents: list[pygit2.Oid], message: str) -> str:
        sig = self._signature()
        try:
            return str(self._repo.create_commit(None, sig, sig, message, tree, parents))
        except pygit2.GitError as exc:
            raise GitError(f"cannot create a commit in {self.root}: {exc}") from exc

    def _blob_from_workdir(self, rel: str) -> pygit2.Oid:
        try:
            return self._repo.create_blob_fromworkdir(rel)  # applies clean filters, reads links
        except (pygit2.GitError, OSError) as exc:
            raise GitError(f"cannot read {rel} in {self.root}: {exc}") from exc

    def _signature(self) -> pygit2.Signature:
        try:
            return self._repo.default_signature
        except (KeyError, pygit2.GitError):
            return pygit2.Signature(FALLBACK_NAME, FALLBACK_EMAIL)

    def _config_bool(self, key: str, *, default: bool) -> bool:
        try:
            return bool(self._repo.config.get_bool(key))
        except (KeyError, pygit2.GitError):
            return default

    # -- refs -------------------------------------------------------------

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
        target = self._commit(sha).id
        try:
            with self._repo.transaction() as txn:
                txn.lock_ref(name)
                self._check_expected(name, expected_old)
                # signature=None: pygit2 1.21 cannot pass a Signature here (TypeError);
                # libgit2 then uses the repo identity or its own fallback for the reflog.
                txn.set_target(name, target, message=message)
        except pygit2.GitError as exc:
            raise GitError(f"cannot update ref {name}: {exc}") from exc

    def delete_ref(self, name: str, *, expected_old: str | None | _Any = ANY) -> bool:
        """Delete ``name`` (compare-and-set with ``expected_old``); False if it did not exist."""
        _require_ref_name(name)
        try:
            with self._repo.transaction() as txn:
                txn.lock_ref(name)
                if self._check_expected(name, expected_old) is None:
                    return False
                txn.remove(name)
        except pygit2.GitError as exc:
            raise GitError(f"cannot delete ref {name}: {exc}") from exc
        return True

    def _check_expected(self, name: str, expected_old: str | None | _Any) -> str | None:
        current = self.get_ref(name)
        if expected_old is not ANY and current != expected_old:
            raise GitError(
                f"ref {name} changed meanwhile: expected {expected_old or 'no ref'}, "
                f"found {current or 'no ref'}"
            )
        return current

    def common_dir(self) -> Path:
        """The folder that holds the refs shared by all working trees (``.git``)."""
        gitdir = Path(self._repo.path)
        pointer = gitdir / "commondir"  # a linked worktree's gitdir names it
        try:
            return (gitdir / pointer.read_text().strip()).resolve()
        except OSError:
            return gitdir

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
            if ref.name.startswith(prefix):
                try:
                    out[ref.name] = str(ref.resolve().target)
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

    # -- reading commits --------------------------------------------------

    def resolve(self, rev: str) -> str:
        """The commit sha that ``rev`` names (sha, short sha, branch, tag, ref, HEAD~n)."""
        return str(self._commit(rev).id)

    def _commit(self, rev: str) -> pygit2.Commit:
        try:
            # Full shas skip rev-parse: reading thousands of experiments must be fast.
            obj = self._repo.get(rev) if _HEX40.fullmatch(rev) else self._repo.revparse_single(rev)
            if obj is not None:
                return obj.peel(pygit2.Commit)
        except pygit2.AmbiguousError as exc:
            if "too short" in str(exc):  # libgit2's word for a prefix under 4 digits
                raise GitError(f"unknown revision '{rev}'") from exc
            raise GitError(f"ambiguous revision '{rev}'", hint="use a longer sha") from exc
        except (KeyError, ValueError, pygit2.GitError) as exc:
            raise GitError(f"unknown revision '{rev}'") from exc
        raise GitError(f"unknown revision '{rev}'")

    def read_blob(self, sha: str, path: str) -> bytes | None:
        """The content of file ``path`` in commit ``sha``; None if it is not a file there."""
        try:
            obj = self._commit(sha).tree[path.strip("/")]
        except KeyError:
            return None
        return obj.data if isinstance(obj, pygit2.Blob) else None

    def list_files(self, sha: str, prefix: str = "") -> list[str]:
        """Paths of all files (blobs and symlinks) in commit ``sha`` under folder ``prefix``."""
        tree: Any = self._commit(sha).tree
        prefix = prefix.strip("/")
        if prefix:
            try:
                tree = tree[prefix]
            except KeyError:
                return []
            if not isinstance(tree, pygit2.Tree):
                return []
        return sorted(_walk_tree(tree, prefix))

    def tree_of(self, sha: str) -> str:
        """The sha of the tree a commit records."""
        return str(self._commit(sha).tree_id)

    def tree_entries(self, tree_id: str) -> list[tuple[str, str, str]]:
        """(name, kind, object sha) of each entry of tree ``tree_id``; kind is
        ``tree``, ``blob`` (files and symlinks) or ``commit`` (a submodule).

        By tree id, so a caller walking many similar commits can memoise
        the subtrees they share."""
        try:
            tree = self._repo[tree_id]
        except (KeyError, ValueError) as exc:
            raise GitError(f"unknown tree {tree_id}") from exc
        if not isinstance(tree, pygit2.Tree):
            raise GitError(f"{tree_id} is not a tree")
        kinds = {_MODE_GITLINK: "commit", FileMode.TREE: "tree"}
        return [(str(e.name), kinds.get(e.filemode, "blob"), str(e.id)) for e in tree]

    def commit_info(self, sha: str) -> CommitInfo:
        """Sha, parents, time, message and author of a commit."""
        commit = self._commit(sha)
        tz = timezone(timedelta(minutes=commit.commit_time_offset))
        return CommitInfo(
            sha=str(commit.id),
            parents=tuple(str(p) for p in commit.parent_ids),
            time=datetime.fromtimestamp(commit.commit_time, tz),
            message=commit.message,
            author=commit.author.name,
            email=commit.author.email,
        )

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

    def log(self, sha: str, n: int) -> list[str]:
        """Up to ``n`` commits of ``sha``'s first-parent history, ``sha`` first."""
        walker = self._repo.walk(self._commit(sha).id, SortMode.TOPOLOGICAL)
        walker.simplify_first_parent()
        return [str(c.id) for c in islice(walker, max(n, 0))]

    def changed_paths(self, a: str, b: str) -> list[str]:
        """Paths of the files that differ between the trees of commits ``a`` and ``b``."""
        old, new = self._commit(a).tree, self._commit(b).tree
        found: set[str] = set()
        for delta in old.diff_to_tree(new).deltas:
            found.update((delta.old_file.path, delta.new_file.path))
        return sorted(found)

    def is_ancestor(self, a: str, b: str) -> bool:
        """True if ``a`` is ``b`` or one of its ancestors."""
        ca, cb = self._commit(a).id, self._commit(b).id
        return ca == cb or self._repo.descendant_of(cb, ca)

    # -- worktrees --------------------------------------------------------

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
        # the new worktree's HEAD, then delete the branch.
        temp = f"exq-worktree-tmp/{uuid.uuid4().hex}"
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

    # -- workspace --------------------------------------------------------

    def dirty_paths(self, *, untracked: bool = False) -> list[str]:
        """Tracked paths that are staged, modified or deleted; with ``untracked``,
        also untracked files that are not ignored."""
        try:
            status = self._repo.status(untracked_files="all" if untracked else "no")
        except pygit2.GitError as exc:
            raise GitError(f"cannot read the status of {self.root}: {exc}") from exc
        drop = _IGNORED if untracked else _UNTRACKED
        return sorted(p for p, flags in status.items() if flags & ~drop)

    def is_ignored(self, path: Path | str) -> bool:
        """True if git ignores ``path`` (absolute, or relative to the root)."""
        return bool(self._repo.path_is_ignored(self._relpath(path)))

    def would_overwrite(
        self, sha: str, baseline: str | None = None, paths: Iterable[str] | None = None
    ) -> list[str]:
        """Paths that ``checkout_files`` would change although the workspace holds
        content that is neither ``baseline``'s (default HEAD) nor ``sha``'s."""
        return self._clashes(self._plan(sha, baseline, paths))

    def _clashes(self, plan: dict[str, tuple[_Entry | None, _Entry | None]]) -> list[str]:
        return sorted(
            rel
            for rel, (old, new) in plan.items()
            if (ws := self._workspace_oid(rel)) != _oid(old) and ws != _oid(new)
        )

    def checkout_files(
        self,
        sha: str,
        paths: Iterable[str] | None = None,
        *,
        baseline: str | None = None,
        force: bool = False,
    ) -> list[str]:
        """Write into the workspace what changed from ``baseline`` (default HEAD) to
        ``sha``: changed files are written, deleted ones removed. HEAD and the index
        stay. ``paths`` (files or folders) limits the change. Returns the paths touched.
        Refuses to overwrite uncommitted changes unless ``force``."""
        plan = self._plan(sha, baseline, paths)
        if not force:
            clash = self._clashes(plan)
            if clash:
                more = f" and {len(clash) - 3} more" if len(clash) > 3 else ""
                raise GitError(
                    f"would overwrite uncommitted changes in {', '.join(clash[:3])}{more}",
                    hint="commit or stash them, or force",
                )
        try:
            for rel, (_, new) in plan.items():
                if new is None:
                    _delete_file(self.root, rel)
            for rel, (_, new) in plan.items():
                if new is not None:
                    _write_file(self.root / rel, self._repo[new[0]].read_raw(), new[1])
        except OSError as exc:
            raise GitError(f"cannot write {exc.filename or self.root}: {exc.strerror}") from exc
        return sorted(plan)

    def _plan(
        self, sha: str, baseline: str | None, paths: Iterable[str] | None
    ) -> dict[str, tuple[_Entry | None, _Entry | None]]:
        """path -> (baseline entry, target entry) for every file that differs."""
        new_tree = self._commit(sha).tree
        if baseline is None and self._repo.head_is_unborn:
            old_tree = self._repo[self._repo.TreeBuilder().write()].peel(pygit2.Tree)
        else:
            old_tree = self._commit(baseline or "HEAD").tree
        prefixes = None if paths is None else [p.strip("/") for p in paths]
        plan: dict[str, tuple[_Entry | None, _Entry | None]] = {}
        for delta in old_tree.diff_to_tree(new_tree).deltas:
            rel = delta.new_file.path
            if prefixes is not None and not any(_under(rel, p) for p in prefixes):
                continue
            old = None if delta.status == DeltaStatus.ADDED else _entry(delta.old_file)
            new = None if delta.status == DeltaStatus.DELETED else _entry(delta.new_file)
            if (old and old[1] == _MODE_GITLINK) or (new and new[1] == _MODE_GITLINK):
                continue  # submodules are not ours to write
            prev = plan.get(rel, (None, None))  # a type change may come as two deltas
            plan[rel] = (old or prev[0], new or prev[1])
        return plan

    def _workspace_oid(self, rel: str) -> str | None:
        path = self.root / rel
        st = _lstat(path)
        if st is None:
            return None
        if stat.S_ISDIR(st.st_mode):
            return "<folder>"  # matches no blob: never overwritten silently
        if stat.S_ISLNK(st.st_mode):
            return str(pygit2.hash(os.fsencode(os.readlink(path))))
        try:
            return str(self._repo.hashfile(str(path), as_path=rel))
        except (pygit2.GitError, OSError) as exc:
            raise GitError(f"cannot read {rel} in {self.root}: {exc}") from exc

    def _relpath(self, path: Path | str) -> str:
        p = Path(path)
        if p.is_absolute():
            try:
                p = p.relative_to(self.root)
            except ValueError as exc:
                raise GitError(f"path {path} is outside the repository {self.root}") from exc
        return p.as_posix()

    # -- remotes ----------------------------------------------------------

    def push_refs(self, remote: str, refspecs: list[str], *, force: bool = False) -> list[str]:
        """Push ``refspecs`` to ``remote`` (a configured name, a path or a URL).
        A non-fast-forward update is refused unless ``force`` (or a ``+`` refspec).
        Returns the remote refs that changed."""
        if not refspecs:
            return []
        args = ["push", "--porcelain", "--no-verify", *(["--force"] if force else [])]
        proc = self._run_git([*args, self._remote_arg(remote), "--", *refspecs])
        changed: list[str] = []
        for line in proc.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) < 3:
                continue
            flag, dst, summary = parts[0], parts[1].rpartition(":")[2], parts[2]
            if flag == "!":
                raise GitError(
                    f"push of {dst} to {remote} rejected: {_reason(summary)}",
                    hint="pull first, or force",
                )
            if flag in ("*", "+", " ", "-"):
                changed.append(dst)
        if proc.returncode != 0:
            raise GitError(f"push to {remote} failed: {_first_error(proc.stderr)}")
        return changed

    def remote_refs(self, remote: str, prefix: str = "refs/") -> dict[str, str]:
        """The refs of ``remote`` whose names start with ``prefix``: full name -> sha."""
        proc = self._run_git(["ls-remote", "--refs", self._remote_arg(remote)])
        if proc.returncode != 0:
            raise GitError(f"cannot list the refs of {remote}: {_first_error(proc.stderr)}")
        out: dict[str, str] = {}
        for line in proc.stdout.splitlines():
            sha, _, name = line.partition("\t")
            if name.startswith(prefix) and _HEX40.fullmatch(sha):
                out[name] = sha
        return out

    def prefix_of(self, folder: Path | str) -> str:
        """``folder`` relative to the working tree's root, as commits name it
        ('' for the root itself): where a project in a sub-folder lives."""
        rel = Path(os.path.realpath(folder)).relative_to(os.path.realpath(self.root)).as_posix()
        return "" if rel == "." else rel

    def has_commit(self, sha: str) -> bool:
        """True when the commit ``sha`` (full) is in the local object database."""
        try:
            obj = self._repo.get(sha)
        except (ValueError, pygit2.GitError):
            return False
        return isinstance(obj, pygit2.Commit)

    # -- raw objects (shipping commits to and from a remote worker) ---------

    @classmethod
    def init(cls, path: Path | str) -> Git:
        """A new, empty repository with a working tree at ``path``."""
        try:
            return cls(pygit2.init_repository(str(path)))
        except pygit2.GitError as exc:
            raise GitError(f"cannot create a git repository at {path}: {exc}") from exc

    def signature(self) -> tuple[str, str]:
        """The (name, email) commits made here carry."""
        sig = self._signature()
        return sig.name, sig.email

    def set_identity(self, name: str, email: str) -> None:
        """Make this repository's commits carry ``name`` and ``email``."""
        self._repo.config["user.name"] = name
        self._repo.config["user.email"] = email

    def export_objects(self, shas: Iterable[str], known: set[str]) -> list[GitObject]:
        """The commits ``shas`` with their trees and blobs (not their parents),
        leaving out the objects in ``known`` and what a known tree holds.
        ``known`` gains what is returned."""
        out: list[GitObject] = []
        for sha in shas:
            commit = self._commit(sha)
            self._export(commit.id, known, out)
            self._export(commit.tree_id, known, out)
        return out

    def _export(self, oid: pygit2.Oid, known: set[str], out: list[GitObject]) -> None:
        if str(oid) in known:
            return
        kind, data = self._repo.odb.read(oid)
        known.add(str(oid))
        out.append((str(oid), int(kind), bytes(data)))
        if kind == pygit2.GIT_OBJECT_TREE:
            for entry in self._repo[oid]:
                if entry.filemode != _MODE_GITLINK:  # a submodule's commit is not ours
                    self._export(entry.id, known, out)

    def import_objects(self, objects: Iterable[GitObject]) -> None:
        """Write raw objects into the object database, checking each one's id."""
        odb = self._repo.odb
        for sha, kind, data in objects:
            if odb.exists(sha):
                continue
            written = str(odb.write(kind, data))
            if written != sha:
                raise GitError(f"object {sha[:7]} arrived damaged (it hashes to {written[:7]})")

    def fetch_refs(self, remote: str, refspecs: list[str], *, force: bool = False) -> list[str]:
        """Fetch ``refspecs`` (``src:dst``) from ``remote``. A non-fast-forward update
        of a local ref is refused unless ``force``. Returns the local refs that changed."""
        if not refspecs:
            return []
        before = self.list_refs("refs/")
        args = ["fetch", "--no-tags", "--no-write-fetch-head", "--no-recurse-submodules"]
        args += ["--force"] if force else []
        proc = self._run_git([*args, self._remote_arg(remote), *refspecs])
        if proc.returncode != 0:
            rejected = [ln.split() for ln in proc.stderr.splitlines() if "[rejected]" in ln]
            if rejected:
                # " ! [rejected]  <src> -> <dst>  (<reason>)"
                words = rejected[0]
                arrow = words.index("->") if "->" in words else -2
                dst = words[arrow + 1] if 0 <= arrow < len(words) - 1 else "a ref"
                raise GitError(
                    f"fetch of {dst} from {remote} rejected: {_reason(' '.join(words))}",
                    hint="force to overwrite the local ref",
                )
            raise GitError(f"fetch from {remote} failed: {_first_error(proc.stderr)}")
        after = self.list_refs("refs/")
        return sorted(name for name, sha in after.items() if before.get(name) != sha)

    def _remote_arg(self, remote: str) -> str:
        # A relative path means relative to the caller's folder, not the repo root.
        if remote not in set(self._repo.remotes.names()) and Path(remote).exists():
            return str(Path(remote).absolute())
        return remote

    def _run_git(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV}
        try:
            return subprocess.run(
                ["git", *args], cwd=self.root, env=env, capture_output=True, text=True, check=False
            )
        except OSError as exc:
            raise GitError(f"cannot run git (needed to push and fetch): {exc}") from exc


# -- helpers ---------------------------------------------------------------


def _require_ref_name(name: str) -> None:
    if not check_ref_name(name):
        raise GitError(f"invalid ref name: {name!r}")


def _clean_relpath(rel: str) -> str:
    parts = [p for p in rel.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or rel.startswith("/") or ".." in parts or parts[0] == ".git":
        raise GitError(f"invalid path inside the repository: {rel!r}")
    return "/".join(parts)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None
    except NotADirectoryError:  # a parent became a file
        return None


def _index_mode(index: pygit2.Index, rel: str) -> int | None:
    try:
        return int(index[rel].mode)
    except KeyError:
        return None


def _is_gitlink(index: pygit2.Index, rel: str) -> bool:
    return _index_mode(index, rel) == _MODE_GITLINK


def _index_remove(index: pygit2.Index, rel: str) -> None:
    if rel in index:
        index.remove(rel)


def _workdir_mode(st: os.stat_result, old: int | None, filemode: bool) -> int:
    if stat.S_ISLNK(st.st_mode):
        return _MODE_LINK
    if not filemode:  # core.filemode=false: the exec bit on disk means nothing
        return old if old in (_MODE_FILE, _MODE_EXEC) else _MODE_FILE
    return _MODE_EXEC if st.st_mode & stat.S_IXUSR else _MODE_FILE


def _walk_tree(tree: pygit2.Tree, prefix: str) -> Iterator[str]:
    for obj in tree:
        path = f"{prefix}/{obj.name}" if prefix else str(obj.name)
        if isinstance(obj, pygit2.Tree):
            yield from _walk_tree(obj, path)
        elif obj.filemode != _MODE_GITLINK:
            yield path


def _entry(diff_file: Any) -> _Entry:
    return (str(diff_file.id), int(diff_file.mode))


def _oid(entry: _Entry | None) -> str | None:
    return None if entry is None else entry[0]


def _under(rel: str, prefix: str) -> bool:
    return not prefix or rel == prefix or rel.startswith(prefix + "/")


def _write_file(dest: Path, data: bytes, mode: int) -> None:
    """Write one blob atomically: a temp file (or link) beside it, then rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.exq-{uuid.uuid4().hex[:8]}")
    try:
        if mode == _MODE_LINK:
            os.symlink(os.fsdecode(data), tmp)
        else:
            # os.open applies the umask, as git does.
            perms = 0o777 if mode == _MODE_EXEC else 0o666
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, perms)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)  # only reached with force: the plan said a file goes here
        os.replace(tmp, dest)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def _delete_file(root: Path, rel: str) -> None:
    """Remove a file and the folders it leaves empty, as git does."""
    path = root / rel
    if path.is_symlink() or path.is_file():
        path.unlink()
    parent = path.parent
    while parent != root:
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent


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


def _first_error(text: str) -> str:
    """The first `fatal:`/`error:` line of git's stderr, else its last line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in lines:
        for prefix in ("fatal:", "error:"):
            if line.startswith(prefix):
                return line.removeprefix(prefix).strip()
    return lines[-1] if lines else "unknown error"


def _reason(summary: str) -> str:
    """ "[rejected] (non-fast-forward)" -> "non-fast-forward"."""
    summary = summary.strip()
    if summary.endswith(")") and "(" in summary:
        return summary[summary.rindex("(") + 1 : -1]
    return summary
