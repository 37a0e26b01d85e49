"""A stale ref lock (its process killed) never blocks an update of a ref exq owns;
a lock a live process holds is respected, and other refs' locks are left alone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from exq.engine.errors import GitError
from exq.engine.git import Git

EXP = "refs/exps/ab/cdef/one"


@pytest.fixture()
def repo(tmp_path: Path) -> tuple[Git, str]:
    root = tmp_path / "repo"
    root.mkdir()
    for args in (
        ["init", "-q", "-b", "main"],
        ["-c", "user.name=T", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "a"],
    ):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    git = Git.open(root)
    return git, git.head_sha() or ""


def lock_of(git: Git, ref: str) -> Path:
    path = git.common_dir() / f"{ref}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_a_stale_lock_of_an_experiment_ref_is_removed_on_the_lock_error(
    repo: tuple[Git, str],
) -> None:
    git, head = repo
    lock_of(git, EXP).write_text("")  # what a process killed mid-update leaves
    git.set_ref(EXP, head, expected_old=None)
    assert git.get_ref(EXP) == head
    assert not lock_of(git, EXP).exists()
    lock_of(git, "refs/exq/queue/1").write_text("")
    git.set_ref("refs/exq/queue/1", head)
    lock_of(git, "refs/exq/queue/1").write_text("")
    assert git.delete_ref("refs/exq/queue/1")


def test_a_lock_a_live_process_holds_is_respected(repo: tuple[Git, str]) -> None:
    git, head = repo
    path = lock_of(git, EXP)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)  # held, as git holds it
    try:
        with pytest.raises(GitError, match="cannot update ref"):
            git.set_ref(EXP, head)
        assert path.exists() and git.get_ref(EXP) is None
    finally:
        os.close(fd)
    git.set_ref(EXP, head)  # its holder gone, the lock is stale
    assert git.get_ref(EXP) == head


def test_the_lock_of_a_ref_exq_does_not_own_is_left_alone(repo: tuple[Git, str]) -> None:
    git, head = repo
    lock_of(git, "refs/heads/other").write_text("")
    with pytest.raises(GitError, match="cannot update ref"):
        git.set_ref("refs/heads/other", head)
    assert lock_of(git, "refs/heads/other").exists()
