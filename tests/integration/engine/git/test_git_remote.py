"""push_refs / fetch_refs against a bare repository in tmp_path."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from exq.engine.errors import GitError
from exq.engine.git import Git


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def new_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test User")
    git(path, "config", "user.email", "test@example.com")
    return path


def make_commit(repo: Path, parent: str, msg: str) -> str:
    return git(repo, "commit-tree", f"{parent}^{{tree}}", "-p", parent, "-m", msg)


@pytest.fixture()
def setup(tmp_path: Path) -> tuple[Path, Path, str]:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    local = new_repo(tmp_path / "local")
    (local / "f.txt").write_text("f\n")
    git(local, "add", "f.txt")
    git(local, "commit", "-qm", "base")
    base = git(local, "rev-parse", "HEAD")
    git(local, "push", "-q", str(bare), "main")
    return local, bare, base


def test_push_new_and_fast_forward_refs(setup: tuple[Path, Path, str]) -> None:
    local, bare, base = setup
    g = Git.open(local)
    exp1 = make_commit(local, base, "exp1")
    g.set_ref("refs/exps/ab/cd/e1", exp1)
    assert g.push_refs(str(bare), ["refs/exps/ab/cd/e1:refs/exps/ab/cd/e1"]) == [
        "refs/exps/ab/cd/e1"
    ]
    assert git(bare, "rev-parse", "refs/exps/ab/cd/e1") == exp1
    assert g.push_refs(str(bare), ["refs/exps/ab/cd/e1"]) == []  # already up to date
    checkpoint = make_commit(local, exp1, "checkpoint")
    g.set_ref("refs/exps/ab/cd/e1", checkpoint)
    assert g.push_refs(str(bare), ["refs/exps/*:refs/exps/*"]) == ["refs/exps/ab/cd/e1"]
    assert git(bare, "rev-parse", "refs/exps/ab/cd/e1") == checkpoint


def test_push_refuses_diverged_refs_unless_forced(setup: tuple[Path, Path, str]) -> None:
    local, bare, base = setup
    g = Git.open(local)
    theirs, ours = make_commit(local, base, "theirs"), make_commit(local, base, "ours")
    git(local, "push", "-q", str(bare), f"{theirs}:refs/exps/ab/cd/e1")
    g.set_ref("refs/exps/ab/cd/e1", ours)
    with pytest.raises(
        GitError, match="push of refs/exps/ab/cd/e1 to .* rejected: non-fast-forward"
    ):
        g.push_refs(str(bare), ["refs/exps/ab/cd/e1"])
    assert git(bare, "rev-parse", "refs/exps/ab/cd/e1") == theirs
    assert g.push_refs(str(bare), ["refs/exps/ab/cd/e1"], force=True) == ["refs/exps/ab/cd/e1"]
    assert git(bare, "rev-parse", "refs/exps/ab/cd/e1") == ours


def test_push_to_configured_remote_and_bad_remote(setup: tuple[Path, Path, str]) -> None:
    local, bare, base = setup
    git(local, "remote", "add", "origin", str(bare))
    g = Git.open(local)
    g.set_ref("refs/exps/ab/cd/e2", base)
    assert g.push_refs("origin", ["refs/exps/ab/cd/e2"]) == ["refs/exps/ab/cd/e2"]
    with pytest.raises(GitError, match="push to nowhere failed"):
        g.push_refs("nowhere", ["refs/exps/ab/cd/e2"])


def test_fetch_refs_and_diverged_refusal(setup: tuple[Path, Path, str], tmp_path: Path) -> None:
    local, bare, base = setup
    exp1, exp2 = make_commit(local, base, "exp1"), make_commit(local, base, "exp2")
    git(local, "push", "-q", str(bare), f"{exp1}:refs/exps/ab/cd/e1", f"{exp2}:refs/exps/ab/cd/e2")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(bare), str(other))
    g = Git.open(other)

    fetched = g.fetch_refs(str(bare), ["refs/exps/*:refs/exps/*"])
    assert fetched == ["refs/exps/ab/cd/e1", "refs/exps/ab/cd/e2"]
    assert g.list_refs("refs/exps/") == {"refs/exps/ab/cd/e1": exp1, "refs/exps/ab/cd/e2": exp2}
    assert g.fetch_refs(str(bare), ["refs/exps/*:refs/exps/*"]) == []

    local_only = make_commit(other, base, "local only")
    g.set_ref("refs/exps/ab/cd/e1", local_only)
    with pytest.raises(
        GitError, match="fetch of refs/exps/ab/cd/e1 from .* rejected: non-fast-forward"
    ):
        g.fetch_refs(str(bare), ["refs/exps/ab/cd/e1:refs/exps/ab/cd/e1"])
    assert g.get_ref("refs/exps/ab/cd/e1") == local_only
    assert g.fetch_refs("origin", ["refs/exps/ab/cd/e1:refs/exps/ab/cd/e1"], force=True) == [
        "refs/exps/ab/cd/e1"
    ]
    assert g.get_ref("refs/exps/ab/cd/e1") == exp1


def test_fetch_from_missing_remote(setup: tuple[Path, Path, str], tmp_path: Path) -> None:
    local, _, _ = setup
    with pytest.raises(GitError, match="fetch from .*missing.git failed"):
        Git.open(local).fetch_refs(str(tmp_path / "missing.git"), ["refs/exps/*:refs/exps/*"])
