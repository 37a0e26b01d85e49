"""Snapshots: the workspace as it is, committed without touching the user's index,
HEAD or branches (what a queued or temporary run starts from)."""

from __future__ import annotations

import os
import stat

import pygit2
from pygit2.enums import FileMode, FileStatus

from exq.engine.errors import GitError, ObjectsVanished
from exq.engine.git.repository import (
    HEX40,
    MODE_EXEC,
    MODE_FILE,
    MODE_GITLINK,
    MODE_LINK,
    Repository,
    lstat_or_none,
)

# Tries of a snapshot whose fresh objects a concurrent gc deleted under it.
_SNAPSHOT_ATTEMPTS = 3


class Snapshots(Repository):
    """Commits of the workspace; no ref points at them until the caller sets one."""

    def snapshot_workspace(
        self, message: str, *, parent: str | None = None, extra: dict[str, bytes] | None = None
    ) -> str:
        """Commit the workspace as it is (tracked changes and untracked, non-ignored
        files) on top of ``parent`` (default HEAD); ``extra`` overrides file contents.

        The user's index, HEAD and branches are not touched and no ref points at
        the new commit. Returns its sha.

        A concurrent ``git gc --prune=now`` deletes loose objects no ref reaches,
        such as the blobs a snapshot has just written and not yet put in a tree:
        then the snapshot is made again, with a fresh handle on the repository
        (so that no cached list of packs hides what is gone).
        """
        for attempt in range(1, _SNAPSHOT_ATTEMPTS + 1):
            try:
                return self._snapshot(message, parent, extra)
            except (pygit2.GitError, GitError) as exc:
                # libgit2's own errors; OSError where it lost a race for a file (gc
                # removed an objects/xx folder as a blob was renamed into it).
                vanished = exc if isinstance(exc, pygit2.GitError) else exc.__cause__
                if not isinstance(vanished, (pygit2.GitError, OSError)):
                    raise
                if attempt == _SNAPSHOT_ATTEMPTS:
                    raise GitError(
                        f"cannot snapshot the workspace of {self.root}: {vanished}",
                        hint="git objects vanished while it was made: was 'git gc --prune=now'"
                        " running? It deletes what is being committed",
                    ) from exc
                self._repo = pygit2.Repository(self._repo.path)
        raise AssertionError("unreachable")

    def _snapshot(self, message: str, parent: str | None, extra: dict[str, bytes] | None) -> str:
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
            mode = old if old in (MODE_FILE, MODE_EXEC) else MODE_FILE
            index.add(pygit2.IndexEntry(rel, repo.create_blob(data), FileMode(mode)))
        parents = [self._parent(parent).id] if parent else ([head.id] if head else [])
        return self._write_commit(index.write_tree(repo), parents, message)

    def commit_with_files(
        self, base: str, files: dict[str, bytes], message: str, *, parent: str
    ) -> str:
        """A commit of ``base``'s tree with ``files`` (paths relative to the
        repository) written over, on top of ``parent``; the workspace is not read
        (a study's later trials start from the snapshot taken when it was queued)."""
        repo = self._repo
        index = pygit2.Index()
        try:
            index.read_tree(self._commit(base).tree)
            for rel, data in files.items():
                rel = _clean_relpath(rel)
                old = _index_mode(index, rel)
                mode = old if old in (MODE_FILE, MODE_EXEC) else MODE_FILE
                index.add(pygit2.IndexEntry(rel, repo.create_blob(data), FileMode(mode)))
            tree = index.write_tree(repo)
        except pygit2.GitError as exc:
            raise GitError(f"cannot write a commit in {self.root}: {exc}") from exc
        return self._write_commit(tree, [self._parent(parent).id], message)

    def untracked_files(self) -> list[tuple[str, int]]:
        """The untracked, non-ignored files a snapshot takes in, with their sizes
        in bytes (path relative to the repository)."""
        try:
            status = self._repo.status(untracked_files="all")
        except pygit2.GitError as exc:
            raise GitError(f"cannot read the status of {self.root}: {exc}") from exc
        found = []
        for rel, flags in status.items():
            if not flags & FileStatus.WT_NEW or rel.endswith("/"):
                continue
            st = lstat_or_none(self.root / rel)
            if st is not None and stat.S_ISREG(st.st_mode):
                found.append((rel, st.st_size))
        return sorted(found)

    def _parent(self, parent: str) -> pygit2.Commit:
        try:
            return self._commit(parent)
        except GitError:
            if HEX40.fullmatch(parent) and self._repo.get(parent) is None:
                raise ObjectsVanished(parent, self.root) from None
            raise

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
            st = lstat_or_none(self.root / rel)
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


def _clean_relpath(rel: str) -> str:
    parts = [p for p in rel.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or rel.startswith("/") or ".." in parts or parts[0] == ".git":
        raise GitError(f"invalid path inside the repository: {rel!r}")
    return "/".join(parts)


def _index_mode(index: pygit2.Index, rel: str) -> int | None:
    try:
        return int(index[rel].mode)
    except KeyError:
        return None


def _is_gitlink(index: pygit2.Index, rel: str) -> bool:
    return _index_mode(index, rel) == MODE_GITLINK


def _index_remove(index: pygit2.Index, rel: str) -> None:
    if rel in index:
        index.remove(rel)


def _workdir_mode(st: os.stat_result, old: int | None, filemode: bool) -> int:
    if stat.S_ISLNK(st.st_mode):
        return MODE_LINK
    if not filemode:  # core.filemode=false: the exec bit on disk means nothing
        return old if old in (MODE_FILE, MODE_EXEC) else MODE_FILE
    return MODE_EXEC if st.st_mode & stat.S_IXUSR else MODE_FILE
