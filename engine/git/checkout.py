"""The workspace against commits: what is dirty or ignored, and writing a commit's
files into the workspace (``exp apply``, ``checkout``) without touching HEAD or the
index, refusing to overwrite what the user changed."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pygit2
from pygit2.enums import DeltaStatus, FileStatus

from exq.engine.errors import GitError
from exq.engine.git.repository import MODE_EXEC, MODE_GITLINK, MODE_LINK, Repository, lstat_or_none

_UNTRACKED = int(FileStatus.WT_NEW | FileStatus.IGNORED)
_IGNORED = int(FileStatus.IGNORED)

# (blob sha, file mode) of one path in a tree or in the workspace.
_Entry = tuple[str, int]


class Checkout(Repository):
    """The workspace's state, and writing commits' files into it."""

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
            if (old and old[1] == MODE_GITLINK) or (new and new[1] == MODE_GITLINK):
                continue  # submodules are not ours to write
            prev = plan.get(rel, (None, None))  # a type change may come as two deltas
            plan[rel] = (old or prev[0], new or prev[1])
        return plan

    def _workspace_oid(self, rel: str) -> str | None:
        path = self.root / rel
        st = lstat_or_none(path)
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


def _entry(diff_file: Any) -> _Entry:
    return (str(diff_file.id), int(diff_file.mode))


def _oid(entry: _Entry | None) -> str | None:
    return None if entry is None else entry[0]


def _under(rel: str, prefix: str) -> bool:
    return not prefix or rel == prefix or rel.startswith(prefix + "/")


def _write_file(dest: Path, data: bytes, mode: int) -> None:
    """Write one blob atomically: a temp file (or link) beside it, then rename."""
    import uuid  # only to write files: reading the workspace's state needs it not

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.exq-{uuid.uuid4().hex[:8]}")
    try:
        if mode == MODE_LINK:
            os.symlink(os.fsdecode(data), tmp)
        else:
            # os.open applies the umask, as git does.
            perms = 0o777 if mode == MODE_EXEC else 0o666
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
