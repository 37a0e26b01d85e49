"""``exp run --queue`` with large untracked files in the workspace: a snapshot
commits them whole, as git objects, so they are named, and refused past a
limit unless ``--force`` (whatever the executor)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import git
from tests.e2e.conftest import exq
from tests.e2e.queue_helpers import (
    QueueEnv,
    make_project,
    queued_ids,
)


def sparse(path: Path, size: int) -> None:
    """A file of ``size`` bytes of zeros that takes no room on disk."""
    with open(path, "wb") as out:
        out.truncate(size)


def test_large_untracked_files_are_named_and_refused_past_the_limit(
    queue_env: QueueEnv,
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path / "repo")
    sparse(root / "dump.bin", 2 * 10**9)
    code, out, err = exq("exp", "run", "--queue", "-n", "big", cwd=root, check=False)
    assert code != 0 and out == ""
    assert err.startswith(
        "ERROR: untracked files of 2000.0 MB would go into the run's snapshot as git objects:"
        " dump.bin (2000.0 MB)"
    )
    assert git(root, "for-each-ref", "refs/exq/").strip() == ""  # nothing queued

    os.remove(root / "dump.bin")
    sparse(root / "weights.bin", 100 * 10**6)
    _, out, err = exq("exp", "run", "--queue", "-n", "warned", cwd=root)
    assert queued_ids(out)
    assert err.strip() == (
        "WARNING: untracked files go into the run's snapshot as git objects: weights.bin (100.0 MB)"
    )
