"""Git.open, HEAD queries and snapshot_workspace against real repos made with the git CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from exq.engine.errors import GitError
from exq.engine.git import FALLBACK_EMAIL, FALLBACK_NAME, Git


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def write(path: Path, text: str, *, exec_bit: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if exec_bit:
        path.chmod(0o755)


def init_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test User")
    git(path, "config", "user.email", "test@example.com")
    return path


def ls_tree(repo: Path, sha: str) -> dict[str, str]:
    """path -> mode of every file in a commit, as git sees it."""
    lines = git(repo, "ls-tree", "-r", sha).splitlines()
    return {line.split("\t")[1]: line.split()[0] for line in lines}


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = init_repo(tmp_path / "repo")
    write(root / "a.txt", "a\n")
    write(root / "sub" / "b.txt", "b\n")
    write(root / "run.sh", "#!/bin/sh\n", exec_bit=True)
    os.symlink("a.txt", root / "link")
    write(root / ".gitignore", "*.log\n")
    write(root / "sub" / ".gitignore", "ign/\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


def test_open_from_subfolder_finds_the_root(repo: Path) -> None:
    g = Git.open(repo / "sub")
    assert g.root.resolve() == repo.resolve()
    assert g.head_sha() == git(repo, "rev-parse", "HEAD")
    assert g.head_branch() == "main"


def test_open_rejects_non_repo_and_bare(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(GitError, match="not a git repository"):
        Git.open(tmp_path / "plain")
    git(tmp_path, "init", "-q", "--bare", "bare.git")
    with pytest.raises(GitError, match="bare"):
        Git.open(tmp_path / "bare.git")


def test_head_unborn_and_detached(tmp_path: Path, repo: Path) -> None:
    empty = init_repo(tmp_path / "empty")
    g = Git.open(empty)
    assert g.head_sha() is None
    assert g.head_branch() == "main"
    git(repo, "checkout", "-q", "--detach")
    assert Git.open(repo).head_branch() is None


def test_snapshot_captures_every_workspace_change(repo: Path) -> None:
    write(repo / "a.txt", "changed\n")
    (repo / "sub" / "b.txt").unlink()
    write(repo / "new.txt", "new\n")
    write(repo / "newdir" / "deep" / "f.txt", "deep\n")
    write(repo / "tool.sh", "#!/bin/sh\n", exec_bit=True)
    os.symlink("run.sh", repo / "link2")
    write(repo / "staged.txt", "staged\n")
    git(repo, "add", "staged.txt")
    write(repo / "x.log", "ignored\n")
    write(repo / "sub" / "ign" / "z.txt", "ignored by nested .gitignore\n")
    write(repo / ".git" / "info" / "exclude", "excluded.txt\n")
    write(repo / "excluded.txt", "excluded\n")

    sha = Git.open(repo).snapshot_workspace("snap")

    assert ls_tree(repo, sha) == {
        ".gitignore": "100644",
        "a.txt": "100644",
        "link": "120000",
        "link2": "120000",
        "newdir/deep/f.txt": "100644",
        "new.txt": "100644",
        "run.sh": "100755",
        "staged.txt": "100644",
        "sub/.gitignore": "100644",
        "tool.sh": "100755",
    }
    assert git(repo, "show", f"{sha}:a.txt") == "changed"
    assert git(repo, "show", f"{sha}:link2") == "run.sh"
    assert git(repo, "log", "-1", "--format=%P %s", sha) == f"{git(repo, 'rev-parse', 'HEAD')} snap"
    assert git(repo, "log", "-1", "--format=%an <%ae>", sha) == "Test User <test@example.com>"
    assert sha not in git(repo, "for-each-ref", "--format=%(objectname)")


def test_snapshot_leaves_index_head_and_branches_alone(repo: Path) -> None:
    write(repo / "a.txt", "changed\n")
    write(repo / "staged.txt", "staged\n")
    git(repo, "add", "staged.txt")
    write(repo / "untracked.txt", "u\n")
    index = (repo / ".git" / "index").read_bytes()
    before = (
        git(repo, "status", "--porcelain"),
        git(repo, "for-each-ref"),
        git(repo, "symbolic-ref", "HEAD"),
    )

    Git.open(repo).snapshot_workspace("snap")

    assert (repo / ".git" / "index").read_bytes() == index
    after = (
        git(repo, "status", "--porcelain"),
        git(repo, "for-each-ref"),
        git(repo, "symbolic-ref", "HEAD"),
    )
    assert after == before


def test_snapshot_extra_and_parent(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    write(repo / "a.txt", "second\n")
    git(repo, "commit", "-qam", "second")
    g = Git.open(repo)
    sha = g.snapshot_workspace(
        "x", parent=first, extra={"params.yaml": b"lr: 0.1\n", "run.sh": b"echo\n"}
    )
    assert git(repo, "log", "-1", "--format=%P", sha) == first
    assert git(repo, "show", f"{sha}:params.yaml") == "lr: 0.1"
    assert git(repo, "show", f"{sha}:a.txt") == "second"  # the tree is the workspace's
    assert ls_tree(repo, sha)["run.sh"] == "100755"  # extra keeps the mode it overrides
    with pytest.raises(GitError, match="invalid path"):
        g.snapshot_workspace("x", extra={"../escape": b""})


def test_snapshot_file_turned_folder_and_back(repo: Path) -> None:
    (repo / "a.txt").unlink()
    write(repo / "a.txt" / "inner.txt", "inner\n")
    (repo / "sub" / "b.txt").unlink()
    (repo / "sub" / ".gitignore").unlink()
    (repo / "sub").rmdir()
    write(repo / "sub", "now a file\n")
    sha = Git.open(repo).snapshot_workspace("typechange")
    files = ls_tree(repo, sha)
    assert "a.txt/inner.txt" in files and "a.txt" not in files
    assert files["sub"] == "100644"


def test_snapshot_of_unborn_head(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "fresh")
    write(root / "f.txt", "f\n")
    sha = Git.open(root).snapshot_workspace("first")
    assert git(root, "log", "-1", "--format=%P", sha) == ""
    assert ls_tree(root, sha) == {"f.txt": "100644"}


def test_snapshot_in_linked_worktree(repo: Path, tmp_path: Path) -> None:
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "--detach", str(wt))
    write(wt / "a.txt", "in worktree\n")
    write(wt / "sub" / "extra.txt", "extra\n")
    g = Git.open(wt / "sub")
    assert g.root.resolve() == wt.resolve()
    sha = g.snapshot_workspace("wt snap")
    assert git(repo, "show", f"{sha}:a.txt") == "in worktree"
    assert git(repo, "show", f"{sha}:sub/extra.txt") == "extra"
    assert git(repo, "log", "-1", "--format=%P", sha) == git(wt, "rev-parse", "HEAD")
    assert git(repo, "status", "--porcelain") == ""  # the main workspace is untouched


def test_author_falls_back_without_git_identity(tmp_path: Path) -> None:
    root = tmp_path / "anon"
    root.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        env.pop(key, None)
    git(root, "init", "-q", env=env)
    write(root / "f.txt", "f\n")
    # A fresh interpreter: libgit2 reads the global config location once per process.
    code = (
        "import sys; from exq.engine.git import Git; g = Git.open(sys.argv[1]); "
        "sha = g.snapshot_workspace('m'); g.set_ref('refs/heads/exp', sha); print(sha)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(root)], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    sha = out.stdout.strip()
    assert (
        git(root, "log", "-1", "--format=%an <%ae>", sha, env=env)
        == f"{FALLBACK_NAME} <{FALLBACK_EMAIL}>"
    )
    assert git(root, "rev-parse", "refs/heads/exp", env=env) == sha  # the reflog needs no identity


def test_snapshot_honours_core_filemode_false(repo: Path) -> None:
    git(repo, "config", "core.filemode", "false")
    (repo / "a.txt").chmod(0o755)
    write(repo / "a.txt", "changed\n")
    (repo / "run.sh").write_text("#!/bin/sh\necho\n")
    (repo / "run.sh").chmod(0o644)  # the disk says 644, HEAD says 755: HEAD wins
    files = ls_tree(repo, Git.open(repo).snapshot_workspace("m"))
    assert (files["a.txt"], files["run.sh"]) == ("100644", "100755")


def test_snapshot_skips_nested_repositories(repo: Path) -> None:
    nested = init_repo(repo / "vendor" / "lib")
    write(nested / "x.txt", "x\n")
    write(repo / "vendor" / "readme.txt", "r\n")
    files = ls_tree(repo, Git.open(repo).snapshot_workspace("m"))
    assert "vendor/readme.txt" in files
    assert not any(p.startswith("vendor/lib") for p in files)
