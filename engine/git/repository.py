"""A repository's working tree and what it holds: opening, HEAD, commits, trees, blobs.

:class:`Repository` is the base of :class:`exq.engine.git.Git`: every other
part of the seam (refs, snapshots, worktrees, checkout, transport) builds on
the pygit2 repository it opens and on its way of naming commits.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import islice
from pathlib import Path
from typing import Any, Self

import pygit2
from pygit2.enums import FileMode, SortMode

from exq.engine.errors import GitError

FALLBACK_NAME = "exq"
FALLBACK_EMAIL = "exq@localhost"

MODE_FILE = FileMode.BLOB  # 0o100644
MODE_EXEC = FileMode.BLOB_EXECUTABLE  # 0o100755
MODE_LINK = FileMode.LINK  # 0o120000
MODE_GITLINK = FileMode.COMMIT  # 0o160000, a submodule
HEX40 = re.compile(r"[0-9a-f]{40}")
# Commits whose facts one Git keeps (a few hundred bytes each).
_KEPT_COMMITS = 200_000


@dataclass(frozen=True)
class CommitInfo:
    """What exq shows about a commit."""

    sha: str
    parents: tuple[str, ...]
    time: datetime  # committer time, in the committer's offset
    message: str
    author: str
    email: str


class Repository:
    """One git working tree; open it with ``open``.

    Holds a pygit2 Repository, which must not be used by two threads at
    once: open one per thread (opening is cheap).
    """

    def __init__(self, repo: pygit2.Repository) -> None:
        self._repo = repo
        self.root = Path(repo.workdir)
        # Commits never change: what was read of one (by full sha) is kept.
        self._infos: dict[str, CommitInfo] = {}

    @classmethod
    def open(cls, path: Path | str) -> Self:
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

    @classmethod
    def init(cls, path: Path | str) -> Self:
        """A new, empty repository with a working tree at ``path``."""
        try:
            return cls(pygit2.init_repository(str(path)))
        except pygit2.GitError as exc:
            raise GitError(f"cannot create a git repository at {path}: {exc}") from exc

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

    def common_dir(self) -> Path:
        """The folder that holds the refs shared by all working trees (``.git``)."""
        gitdir = Path(self._repo.path)
        pointer = gitdir / "commondir"  # a linked worktree's gitdir names it
        try:
            return (gitdir / pointer.read_text().strip()).resolve()
        except OSError:
            return gitdir

    def prefix_of(self, folder: Path | str) -> str:
        """``folder`` relative to the working tree's root, as commits name it
        ('' for the root itself): where a project in a sub-folder lives."""
        rel = Path(os.path.realpath(folder)).relative_to(os.path.realpath(self.root)).as_posix()
        return "" if rel == "." else rel

    def _relpath(self, path: Path | str) -> str:
        p = Path(path)
        if p.is_absolute():
            try:
                p = p.relative_to(self.root)
            except ValueError as exc:
                raise GitError(f"path {path} is outside the repository {self.root}") from exc
        return p.as_posix()

    def _signature(self) -> pygit2.Signature:
        try:
            return self._repo.default_signature
        except (KeyError, pygit2.GitError):
            return pygit2.Signature(FALLBACK_NAME, FALLBACK_EMAIL)

    def signature(self) -> tuple[str, str]:
        """The (name, email) commits made here carry."""
        sig = self._signature()
        return sig.name, sig.email

    def set_identity(self, name: str, email: str) -> None:
        """Make this repository's commits carry ``name`` and ``email``."""
        self._repo.config["user.name"] = name
        self._repo.config["user.email"] = email

    def _config_bool(self, key: str, *, default: bool) -> bool:
        try:
            return bool(self._repo.config.get_bool(key))
        except (KeyError, pygit2.GitError):
            return default

    def resolve(self, rev: str) -> str:
        """The commit sha that ``rev`` names (sha, short sha, branch, tag, ref, HEAD~n)."""
        return str(self._commit(rev).id)

    def _commit(self, rev: str) -> pygit2.Commit:
        try:
            # Full shas skip rev-parse: reading thousands of experiments must be fast.
            obj = self._repo.get(rev) if HEX40.fullmatch(rev) else self._repo.revparse_single(rev)
            if obj is not None:
                return obj.peel(pygit2.Commit)
        except pygit2.AmbiguousError as exc:
            if "too short" in str(exc):  # libgit2's word for a prefix under 4 digits
                raise GitError(f"unknown revision '{rev}'") from exc
            raise GitError(f"ambiguous revision '{rev}'", hint="use a longer sha") from exc
        except (KeyError, ValueError, pygit2.GitError) as exc:
            raise _unknown(rev) from exc
        raise _unknown(rev)

    def has_commit(self, sha: str) -> bool:
        """True when the commit ``sha`` (full) is in the local object database."""
        try:
            obj = self._repo.get(sha)
        except (ValueError, pygit2.GitError):
            return False
        return isinstance(obj, pygit2.Commit)

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
        kinds = {MODE_GITLINK: "commit", FileMode.TREE: "tree"}
        return [(str(e.name), kinds.get(e.filemode, "blob"), str(e.id)) for e in tree]

    def commit_info(self, sha: str) -> CommitInfo:
        """Sha, parents, time, message and author of a commit."""
        known = self._infos.get(sha)
        if known is not None:
            return known
        commit = self._commit(sha)
        tz = timezone(timedelta(minutes=commit.commit_time_offset))
        info = CommitInfo(
            sha=str(commit.id),
            parents=tuple(str(p) for p in commit.parent_ids),
            time=datetime.fromtimestamp(commit.commit_time, tz),
            message=commit.message,
            author=commit.author.name,
            email=commit.author.email,
        )
        if len(self._infos) >= _KEPT_COMMITS:  # a Git kept open for long: bounded memory
            self._infos.clear()
        self._infos[info.sha] = info
        return info

    def remember_commits(self, infos: Iterable[CommitInfo]) -> None:
        """Take ``infos`` (read earlier, kept elsewhere) as these commits' facts: no object
        is read again for them. Only for commits of this repository: a commit never changes."""
        self._infos.update((info.sha, info) for info in infos)

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


def lstat_or_none(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None
    except NotADirectoryError:  # a parent became a file
        return None


def _walk_tree(tree: pygit2.Tree, prefix: str) -> Iterator[str]:
    for obj in tree:
        path = f"{prefix}/{obj.name}" if prefix else str(obj.name)
        if isinstance(obj, pygit2.Tree):
            yield from _walk_tree(obj, path)
        elif obj.filemode != MODE_GITLINK:
            yield path


def _unknown(rev: str) -> GitError:
    if HEX40.fullmatch(rev):  # a sha exq holds, most likely: say how it can go
        return GitError(
            f"unknown revision '{rev}'",
            hint="no such commit; if exq made it, a concurrent 'git gc --prune=now'"
            " deleted it (it deletes what is being committed)",
        )
    return GitError(f"unknown revision '{rev}'")
