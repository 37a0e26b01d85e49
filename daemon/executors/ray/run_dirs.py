"""A worker's private folder, and the sweep of those killed workers left.

A worker killed outright (its node lost, or SIGKILL when the cluster's stop
wait ran out) cannot remove its folder, which holds a repository and the
run's outputs: often a model of gigabytes. Each folder names the process that
made it, and every new worker on the machine first removes the folders whose
process is gone, so a night of lost nodes does not fill the disk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from exq.engine.run.checkpoint_session import pid_alive

PREFIX = "exq-run-"
OWNER_FILE = "worker.pid"


@contextmanager
def run_dir(root: Path | None = None) -> Iterator[Path]:
    """A new folder for one run under ``root`` (the temp folder), removed at the end."""
    base = Path(root or tempfile.gettempdir())
    remove_orphans(base)
    path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
    try:
        (path / OWNER_FILE).write_text(f"{os.getpid()}\n")
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def remove_orphans(root: Path) -> list[Path]:
    """Remove this user's run folders under ``root`` whose worker process is gone."""
    removed = []
    for folder in root.glob(f"{PREFIX}*"):
        pid = _owner(folder)
        if pid is None or pid_alive(pid):
            continue  # a live worker's, or one being made (no owner yet), or not ours
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _owner(folder: Path) -> int | None:
    try:
        if folder.stat().st_uid != os.getuid():
            return None
        return int((folder / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return None
