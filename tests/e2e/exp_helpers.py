"""Helpers shared by the ``exq exp`` end-to-end tests (not a test module)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.e2e.conftest import exq
from tests.support import git


def init_repo(root: Path) -> Path:
    """A git repo with a committer and ``exq init`` done."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    exq("init", cwd=root)
    return root


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return head(root)


def exp_refs(root: Path) -> dict[str, str]:
    """Every ref under refs/exps -> its sha."""
    out = git(root, "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps")
    return dict(line.split() for line in out.splitlines())


def exp_names(root: Path) -> set[str]:
    return {ref.rsplit("/", 1)[1] for ref in exp_refs(root)}


def head(root: Path) -> str:
    return git(root, "rev-parse", "HEAD").strip()


def show(root: Path, rev: str, path: str) -> str:
    return git(root, "show", f"{rev}:{path}")


def workspace_bytes(root: Path) -> dict[str, bytes]:
    """Every file outside .git and .dvc with its bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] not in (".git", ".dvc")
    }


def reported_name(stdout: str) -> str:
    match = re.search(r"Reproduced experiment\(s\): (\S+)", stdout)
    assert match, stdout
    return match.group(1)


def assert_refused(code: int, stderr: str, *words: str) -> None:
    """A non-zero exit with one line on stderr holding every word."""
    assert code != 0
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    for word in words:
        assert word in lines[0], stderr


def exq_input(*args: str, cwd: Path, text: str) -> subprocess.CompletedProcess[str]:
    """Run ``exq`` with ``text`` on its stdin (for prompts)."""
    from tests.e2e.conftest import EXQ_BIN

    return subprocess.run(
        [str(EXQ_BIN), *args],
        cwd=cwd,
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
