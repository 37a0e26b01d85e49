"""Moving commits between repositories: push and fetch of refs, and raw objects
shipped to and from a remote worker.

Push and fetch go through the ``git`` executable rather than pygit2, on
purpose: only git knows the user's ssh agent, credential helpers and remote
config.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pygit2

from exq.engine.errors import GitError
from exq.engine.git.refs import Refs
from exq.engine.git.repository import HEX40, MODE_GITLINK

if TYPE_CHECKING:
    import subprocess

# Variables that would point a child `git` at another repository than ours.
_GIT_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX")

# (sha, pygit2 object type, raw content) of one git object.
GitObject = tuple[str, int, bytes]


class Transport(Refs):
    """Push, fetch and list remote refs; export and import raw objects."""

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
            if name.startswith(prefix) and HEX40.fullmatch(sha):
                out[name] = sha
        return out

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
        import subprocess  # only to push and fetch

        env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV}
        try:
            return subprocess.run(
                ["git", *args], cwd=self.root, env=env, capture_output=True, text=True, check=False
            )
        except OSError as exc:
            raise GitError(f"cannot run git (needed to push and fetch): {exc}") from exc

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
        tree = self._repo[oid]
        if kind == pygit2.GIT_OBJECT_TREE and isinstance(tree, pygit2.Tree):
            for entry in tree:
                if entry.filemode != MODE_GITLINK:  # a submodule's commit is not ours
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
