"""Reading a commit's files without a checkout: a ``FileSource`` over git blobs.

``GitSource`` lets templating, params and metrics code read any commit the
way ``DiskSource`` reads the working tree. ``DvcfileFinder`` finds the
``dvc.yaml`` files of many commits quickly: experiments of one baseline share
almost every subtree, so the walk is memoised by tree id and only the folders
an experiment changed are listed again.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from exq.engine.spec.loading import DVCFILE, PROJECT_MARKER, VENV_MARKER, skipped_dir

if TYPE_CHECKING:  # reading the disk's files needs no pygit2: only a Git passed in does
    from exq.engine.git import Git

# As ``pipeline.find_dvcfiles`` on disk: folders never searched.


def _clean(path: str) -> str | None:
    """A repo-relative POSIX path, or None when it names the root or leaves the repo."""
    norm = posixpath.normpath(path.replace("\\", "/")).lstrip("/")
    if norm in ("", ".") or norm == ".." or norm.startswith("../"):
        return None
    return norm


class GitSource:
    """The files of commit ``sha``, read from git blobs; each path is read once.

    Paths are relative to the project, which sits at ``prefix`` in the
    repository ('' when it is the repository's root).
    """

    def __init__(self, git: Git, sha: str, prefix: str = "") -> None:
        self.git = git
        self.sha = sha
        self.prefix = prefix
        self._memo: dict[str, bytes | None] = {}

    def read_bytes(self, path: str) -> bytes | None:
        """Content of the project-relative ``path`` in the commit, or None if no file is there."""
        norm = _clean(path)
        if norm is None:
            return None
        if norm not in self._memo:
            self._memo[norm] = self.git.read_blob(self.sha, posixpath.join(self.prefix, norm))
        return self._memo[norm]

    def list_files(self, folder: str) -> list[str]:
        """Project-relative paths of the files under ``folder`` in the commit (sorted)."""
        norm = _clean(folder)
        if norm is None:
            return []
        files = self.git.list_files(self.sha, posixpath.join(self.prefix, norm))
        return [path[len(self.prefix) + 1 :] for path in files] if self.prefix else files


class DvcfileFinder:
    """Finds every ``dvc.yaml`` of a commit, memoising the walk by tree id."""

    def __init__(self, git: Git) -> None:
        self.git = git
        self._by_tree: dict[str, list[str]] = {}

    def find(self, sha: str, prefix: str = "") -> list[str]:
        """``dvc.yaml`` paths of commit ``sha`` relative to the project at ``prefix``,
        the root one first, then sorted."""
        tree: str | None = self.git.tree_of(sha)
        for part in prefix.split("/") if prefix else []:
            tree = (
                next(
                    (
                        oid
                        for name, kind, oid in self.git.tree_entries(tree)
                        if name == part and kind == "tree"
                    ),
                    None,
                )
                if tree
                else None
            )
        found = self._walk(tree, root=True) if tree else []
        return sorted(found, key=lambda path: (path.count("/"), path))

    def _walk(self, tree_id: str, *, root: bool = False) -> list[str]:
        """``dvc.yaml`` paths inside one tree, relative to it."""
        cached = self._by_tree.get(tree_id)
        if cached is not None:
            return cached
        entries = self.git.tree_entries(tree_id)
        names = {name for name, kind, _ in entries if kind == "blob"}
        folders = {name for name, kind, _ in entries if kind == "tree"}
        found: list[str] = []
        # a committed virtualenv, and another project inside this one, are skipped, as on disk
        if root or (VENV_MARKER not in names and PROJECT_MARKER not in folders):
            found = [DVCFILE] if DVCFILE in names else []
            for name, kind, oid in entries:
                if kind == "tree" and not skipped_dir(name):
                    found.extend(f"{name}/{path}" for path in self._walk(oid))
        self._by_tree[tree_id] = found
        return found
