"""The cached outputs of experiments, to and from a DVC remote (``exp push``/``pull``).

An experiment's outputs are the hashes its commit records: every ``dvc.lock``
and ``.dvc`` file of the commit's tree, read from git, not from the workspace.
"""

from __future__ import annotations

import posixpath
from typing import Any

import yaml

from exq.engine.data.hashing import HashInfo, is_md5
from exq.engine.errors import DvcFileError
from exq.engine.experiments.manage import committed_outs
from exq.engine.git import Git
from exq.engine.run import transfer
from exq.engine.run.project import Project


def outs_at(git: Git, sha: str) -> list[tuple[str, HashInfo]]:
    """(path, hash) of the cached outputs the commit's dvc.lock and .dvc files record
    (not the outs its stages keep out of the cache, such as a live section's logs);
    DVC 2's entries too, which a run keeps for what it did not change."""
    found: list[tuple[str, HashInfo]] = list(committed_outs(git, sha).items())
    for path in git.list_files(sha):
        folder, name = posixpath.split(path)
        if name.endswith(".dvc") and not path.startswith(".dvc/"):
            found += _tracked_outs(git, sha, path, folder)
    return found


def _tracked_outs(git: Git, sha: str, path: str, folder: str) -> list[tuple[str, HashInfo]]:
    try:
        data: Any = yaml.safe_load(git.read_blob(sha, path) or b"")
    except yaml.YAMLError as exc:
        raise DvcFileError(f"{sha[:7]}:{path}: cannot read: {str(exc).splitlines()[0]}") from exc
    found = []
    for item in data.get("outs", []) if isinstance(data, dict) else []:
        if isinstance(item, dict) and item.get("md5") and isinstance(item.get("path"), str):
            if not is_md5(str(item["md5"])):
                raise DvcFileError(f"{sha[:7]}:{path}: outs: '{item['md5']}' is not an md5")
            info = HashInfo(
                md5=item["md5"], size=int(item.get("size") or 0), legacy=item.get("hash") is None
            )
            found.append((posixpath.join(folder, item["path"]), info))
    return found


def _all_outs(git: Git, shas: list[str]) -> list[tuple[str, HashInfo]]:
    seen: dict[str, tuple[str, HashInfo]] = {}
    for sha in shas:
        for rel, info in outs_at(git, sha):
            seen.setdefault(info.md5, (rel, info))
    return list(seen.values())


def push(
    project: Project, git: Git, shas: list[str], remote: str | None, jobs: int
) -> transfer.Transfer:
    """Send what these experiments' outputs need that the DVC remote lacks."""
    return transfer.push_outs(project, _all_outs(git, shas), remote, jobs)


def pull(
    project: Project, git: Git, shas: list[str], remote: str | None, jobs: int
) -> transfer.Transfer:
    """Fetch into the cache what these experiments' outputs need (for ``exp apply``)."""
    return transfer.fetch_outs(project, _all_outs(git, shas), remote, jobs)
