"""What ``exp show`` read of each commit, kept between runs in the git folder.

A commit never changes, so its params and metrics (as one exq version
collects them, for one project folder and one ``--param-deps`` choice) and its
time, parents and message are read once and kept in
``.git/exq/revs-<key>.json``. ``exp show`` over thousands of experiments then
reads one file instead of every commit, tree and blob again.

Kept are only values that depend on the commit alone: a revision read with
errors, or that names objects the DVC cache lacks (a pull can bring them), is
read again every time. An object the cache has is the commit's for good: its
name is the hash of its content. The file is rewritten whole, atomically,
when a run read new commits; a file that cannot be read is an empty store.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from exq import __version__
from exq.engine.experiments.collect import RevData
from exq.engine.git import CommitInfo, Git
from exq.engine.writes import atomic_write_text

STORE_FOLDER = "exq"
# Part of the file's key with exq's version: raise it when what Collector reads of a
# commit changes, so that no store made before is read again.
FORMAT = 1
# Entries kept beyond twice what one run used (other baselines' experiments, -A).
SPARE_ENTRIES = 1000


class RevStore:
    """Commit sha -> (its CommitInfo, its RevData), loaded from and saved to one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, list[Any]] = _load(path)
        self._added = False
        self._used: set[str] = set()  # shas this run read or added

    @classmethod
    def open(cls, git: Git, *, prefix: str, param_deps: bool) -> RevStore:
        """The store of ``git``'s repository for a project at ``prefix``; its commits'
        facts are handed to ``git`` so that none is read again."""
        key = json.dumps([__version__, FORMAT, prefix, param_deps])
        name = f"revs-{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"
        store = cls(git.common_dir() / STORE_FOLDER / name)
        git.remember_commits(store.infos())
        return store

    def infos(self) -> list[CommitInfo]:
        return [_info(sha, entry) for sha, entry in self._entries.items()]

    def data(self, sha: str) -> RevData | None:
        entry = self._entries.get(sha)
        if entry is None:
            return None
        self._used.add(sha)
        return RevData(params=entry[6], metrics=entry[7])

    def put(self, info: CommitInfo, data: RevData) -> None:
        offset = info.time.utcoffset() or timedelta(0)
        self._entries[info.sha] = [
            int(info.time.timestamp()),
            int(offset.total_seconds()) // 60,
            list(info.parents),
            info.message,
            info.author,
            info.email,
            data.params,
            data.metrics,
        ]
        self._added = True
        self._used.add(info.sha)

    def save(self) -> None:
        """Write the file if this run added commits to it; a failure to write loses nothing.

        Commits of removed experiments would stay for ever: once the file holds
        far more than this run used, only what it used is kept.
        """
        if not self._added:
            return
        if len(self._entries) > 2 * len(self._used) + SPARE_ENTRIES:
            self._entries = {sha: self._entries[sha] for sha in self._used}
        try:
            atomic_write_text(self.path, json.dumps(self._entries, separators=(",", ":")))
        except OSError:
            return  # a read-only repository: the next run reads the commits again
        self._added = False


def _load(path: Path) -> dict[str, list[Any]]:
    try:
        entries = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(entries, dict):
        return {}
    return {sha: e for sha, e in entries.items() if isinstance(e, list) and len(e) == 8}


def _info(sha: str, entry: list[Any]) -> CommitInfo:
    tz = timezone(timedelta(minutes=entry[1]))
    return CommitInfo(
        sha=sha,
        parents=tuple(entry[2]),
        time=datetime.fromtimestamp(entry[0], tz),
        message=entry[3],
        author=entry[4],
        email=entry[5],
    )
