"""Detached worktrees, workspace checks and checkout_files (exp apply) on real repos."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from exq.engine.errors import GitError
from exq.engine.git import Git


def git(cwd: Path, *args: str, check: bool = True) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if check:
        assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def write(path: Path, text: str, *, exec_bit: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if exec_bit:
        path.chmod(0o755)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test User")
    git(root, "config", "user.email", "test@example.com")
    write(root / "a.txt", "a\n")
    write(root / "sub" / "b.txt", "b\n")
    write(root / "run.sh", "#!/bin/sh\n", exec_bit=True)
    write(root / ".gitignore", "*.log\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


def experiment(repo: Path, tmp_path: Path) -> str:
    """An experiment commit on HEAD, made in a scratch worktree by the git CLI."""
    wt = tmp_path / "scratch"
    git(repo, "worktree", "add", "-q", "--detach", str(wt))
    write(wt / "a.txt", "from exp\n")
    (wt / "sub" / "b.txt").unlink()
    write(wt / "new" / "f.txt", "new\n")
    write(wt / "tool.sh", "#!/bin/sh\n", exec_bit=True)
    os.symlink("a.txt", wt / "link")
    git(wt, "add", "-A")
    git(wt, "commit", "-qm", "exp")
    sha = git(wt, "rev-parse", "HEAD")
    git(repo, "worktree", "remove", "--force", str(wt))
    return sha


def test_add_worktree_is_detached_and_leaves_no_branch(repo: Path, tmp_path: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    write(repo / "a.txt", "two\n")
    git(repo, "commit", "-qam", "two")
    branches = git(repo, "for-each-ref", "refs/heads/")
    wt = tmp_path / "runs" / "run-1"
    wt.parent.mkdir()
    g = Git.open(repo)
    g.add_worktree(wt, first)

    assert git(wt, "rev-parse", "HEAD") == first
    assert git(wt, "symbolic-ref", "-q", "HEAD", check=False) == ""  # detached
    assert (wt / "a.txt").read_text() == "a\n"
    assert os.access(wt / "run.sh", os.X_OK)
    assert git(wt, "status", "--porcelain") == ""
    assert git(repo, "for-each-ref", "refs/heads/") == branches
    assert str(wt) in git(repo, "worktree", "list", "--porcelain")
    assert [w.name for w in g.list_worktrees()] == ["run-1"]
    assert Git.open(wt).head_branch() is None


def test_add_worktree_names_do_not_clash(repo: Path, tmp_path: Path) -> None:
    g = Git.open(repo)
    g.add_worktree(tmp_path / "x" / "wt", "HEAD")
    g.add_worktree(tmp_path / "y" / "wt", "HEAD")
    infos = {w.name: w.path.resolve() for w in g.list_worktrees()}
    assert infos == {
        "wt": (tmp_path / "x" / "wt").resolve(),
        "wt-2": (tmp_path / "y" / "wt").resolve(),
    }
    with pytest.raises(GitError, match="exists"):
        g.add_worktree(tmp_path / "x" / "wt", "HEAD")


def test_remove_worktree(repo: Path, tmp_path: Path) -> None:
    g = Git.open(repo)
    wt = tmp_path / "wt"
    g.add_worktree(wt, "HEAD")
    write(wt / "out" / "model.bin", "weights\n")
    (wt / "out").chmod(0o500)  # a read-only folder must not block removal
    g.remove_worktree(wt)
    assert not wt.exists()
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert not (repo / ".git" / "worktrees" / "wt").exists()
    g.remove_worktree(wt)  # already gone: nothing to do


def test_remove_worktree_whose_folder_was_deleted(repo: Path, tmp_path: Path) -> None:
    g = Git.open(repo)
    wt = tmp_path / "wt"
    g.add_worktree(wt, "HEAD")
    subprocess.run(["rm", "-rf", str(wt)], check=True)
    assert [w.prunable for w in g.list_worktrees()] == [True]
    g.remove_worktree(wt)
    assert g.list_worktrees() == []
    assert not (repo / ".git" / "worktrees" / "wt").exists()


def test_remove_worktree_refuses_plain_folders(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(GitError, match="not a linked worktree"):
        Git.open(repo).remove_worktree(tmp_path / "plain")
    with pytest.raises(GitError, match="not a linked worktree"):
        Git.open(repo).remove_worktree(repo)
    assert (tmp_path / "plain").exists() and (repo / "a.txt").exists()


def test_dirty_paths_and_ignores(repo: Path) -> None:
    g = Git.open(repo)
    assert g.dirty_paths() == []
    write(repo / "a.txt", "changed\n")
    (repo / "sub" / "b.txt").unlink()
    write(repo / "staged.txt", "s\n")
    git(repo, "add", "staged.txt")
    write(repo / "untracked" / "u.txt", "u\n")
    write(repo / "x.log", "ignored\n")
    assert g.dirty_paths() == ["a.txt", "staged.txt", "sub/b.txt"]
    assert g.dirty_paths(untracked=True) == ["a.txt", "staged.txt", "sub/b.txt", "untracked/u.txt"]
    assert g.is_ignored("x.log") and g.is_ignored(repo / "deep" / "y.log")
    assert not g.is_ignored("a.txt")


def test_checkout_files_applies_an_experiment(repo: Path, tmp_path: Path) -> None:
    exp = experiment(repo, tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    index = (repo / ".git" / "index").read_bytes()
    g = Git.open(repo)
    assert g.would_overwrite(exp) == []

    touched = g.checkout_files(exp)

    assert touched == ["a.txt", "link", "new/f.txt", "sub/b.txt", "tool.sh"]
    assert (repo / "a.txt").read_text() == "from exp\n"
    assert not (repo / "sub").exists()  # emptied folders go, as with git
    assert (repo / "new" / "f.txt").read_text() == "new\n"
    assert os.access(repo / "tool.sh", os.X_OK)
    assert os.readlink(repo / "link") == "a.txt"
    assert git(repo, "rev-parse", "HEAD") == head
    assert (repo / ".git" / "index").read_bytes() == index
    # Tracked files now equal the experiment's; its new files show as untracked.
    assert (
        subprocess.run(["git", "diff", "--quiet", exp, "--", "a.txt", "sub"], cwd=repo).returncode
        == 0
    )
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True
    )
    assert status.stdout.splitlines() == [
        " M a.txt",
        " D sub/b.txt",
        "?? link",
        "?? new/",
        "?? tool.sh",
    ]


def test_checkout_files_refuses_to_overwrite_changes(repo: Path, tmp_path: Path) -> None:
    exp = experiment(repo, tmp_path)
    g = Git.open(repo)
    write(repo / "a.txt", "local edit\n")
    write(repo / "sub" / "b.txt", "edited before delete\n")
    write(repo / "new" / "f.txt", "new\n")  # same as the experiment: no clash
    write(repo / "tool.sh", "untracked, different\n")
    assert g.would_overwrite(exp) == ["a.txt", "sub/b.txt", "tool.sh"]
    assert g.would_overwrite(exp, paths=["sub"]) == ["sub/b.txt"]
    with pytest.raises(GitError, match="would overwrite uncommitted changes in a.txt"):
        g.checkout_files(exp)
    assert (repo / "a.txt").read_text() == "local edit\n"
    assert g.checkout_files(exp, ["new", "link"]) == ["link", "new/f.txt"]
    g.checkout_files(exp, force=True)
    assert (repo / "a.txt").read_text() == "from exp\n"
    assert not (repo / "sub" / "b.txt").exists()


def test_checkout_files_against_an_explicit_baseline(repo: Path, tmp_path: Path) -> None:
    exp = experiment(repo, tmp_path)
    base = git(repo, "rev-parse", "HEAD")
    write(repo / "later.txt", "later\n")
    git(repo, "add", "later.txt")
    git(repo, "commit", "-qm", "later")
    g = Git.open(repo)
    # Relative to its own baseline the experiment does not touch later.txt.
    assert "later.txt" not in g.checkout_files(exp, baseline=base)
    assert (repo / "later.txt").exists()
