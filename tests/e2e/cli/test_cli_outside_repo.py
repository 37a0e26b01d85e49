"""Nothing outside the repository is touched, whatever symlinks inside it say.

A real git repository beside a ``shared`` folder (data other people own) and an
``outside`` folder; symlinks in the repository lead into them. Every command
that would write or delete there refuses before anything runs, with one line
naming the path, and the files outside stay as they were.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.conftest import exq, tool, write
from tests.support import git


@pytest.fixture
def repo(project: Path) -> Path:
    """``project`` with ``data -> ../shared`` and ``linked.yaml -> ../outside/p.yaml``."""
    shared, outside = project.parent / "shared", project.parent / "outside"
    write(shared / "dataset.csv", "precious\n")
    write(outside / "p.yaml", "a: 1\n")
    write(outside / "target.txt", "theirs\n")
    os.symlink("../shared", project / "data")
    os.symlink("../outside/p.yaml", project / "linked.yaml")
    write(project / "params.yaml", "lr: 1\n")
    write(
        project / "dvc.yaml",
        f"""\
stages:
  make:
    cmd: {tool("run", "make", "data/dataset.csv")}
    params:
    - lr
    - linked.yaml:
      - a
    outs:
    - data/dataset.csv
""",
    )
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "project")
    return project


def one_error_line(err: str, *names: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ERROR: ")
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


def outside_untouched(repo: Path) -> None:
    shared, outside = repo.parent / "shared", repo.parent / "outside"
    assert sorted(p.name for p in shared.iterdir()) == ["dataset.csv"]
    assert (shared / "dataset.csv").read_text() == "precious\n"
    assert sorted(p.name for p in outside.iterdir()) == ["p.yaml", "target.txt"]
    assert (outside / "p.yaml").read_text() == "a: 1\n"


@pytest.mark.parametrize("command", [["repro"], ["exp", "run"], ["exp", "run", "--temp"]])
def test_an_out_behind_a_symlinked_folder_is_refused(repo: Path, command: list[str]) -> None:
    code, _, err = exq(*command, cwd=repo, check=False)
    assert code == 1
    one_error_line(err, "stage 'make'", "data/dataset.csv", str(repo.parent / "shared"))
    assert not (repo / "runs.log").exists()  # the stage never ran
    outside_untouched(repo)


def test_add_of_a_path_outside_is_refused(repo: Path) -> None:
    code, _, err = exq("add", "../outside/target.txt", cwd=repo, check=False)
    assert code == 1
    one_error_line(err, "outside")
    outside_untouched(repo)


def test_add_behind_a_symlinked_folder_is_refused(repo: Path) -> None:
    (repo / "dvc.yaml").unlink()  # no stage claims it: only the symlink is in the way
    write(repo.parent / "shared" / "new.csv", "theirs too\n")
    code, _, err = exq("add", "data/new.csv", cwd=repo, check=False)
    assert code == 1
    one_error_line(err, "data/new.csv", str(repo.parent / "shared"))
    assert sorted(p.name for p in (repo.parent / "shared").iterdir()) == ["dataset.csv", "new.csv"]


@pytest.mark.parametrize("queue", [False, True], ids=["workspace", "queue"])
def test_set_param_in_a_file_linked_outside_is_one_line(
    repo: Path, queue: bool, tmp_path: Path
) -> None:
    env = {"EXQ_STATE_DIR": str(tmp_path / "state"), "EXQ_RUNTIME_DIR": str(tmp_path / "run")}
    args = ["exp", "run", *(["--queue"] if queue else []), "-S", "linked.yaml:a=2"]
    code, _, err = exq(*args, cwd=repo, check=False, env=env)
    assert code == 1
    assert "Traceback" not in err
    one_error_line(err, "linked.yaml", str(repo.parent / "outside"))
    outside_untouched(repo)
    assert git(repo, "for-each-ref", "refs/exq", "refs/exps") == ""


def test_a_symlink_inside_the_repository_is_fine(project: Path) -> None:
    write(project / "real" / "keep.txt", "x\n")
    os.symlink("real", project / "data")
    write(
        project / "dvc.yaml",
        f"stages:\n  make:\n    cmd: {tool('run', 'make', 'data/out.txt')}\n"
        "    outs:\n    - data/out.txt\n",
    )
    exq("repro", cwd=project)
    assert (project / "real" / "out.txt").exists()


def test_error_lines_escape_control_characters(project: Path) -> None:
    code, _, err = exq("repro", "no\nsuch\x1b[31mstage", cwd=project, check=False)
    assert code != 0
    line = one_error_line(err)
    assert "\x1b" not in err
    assert "no\\nsuch\\x1b[31mstage" in line
