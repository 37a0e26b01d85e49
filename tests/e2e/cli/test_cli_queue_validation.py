"""``exq exp run --queue`` refuses, with the error a run would fail with, a
snapshot that cannot run: exit 1, one line, nothing queued, no ref."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import exq, write
from tests.e2e.queue_helpers import QueueEnv, queued_ids, status
from tests.support import git

DVCYAML = """\
stages:
  train:
    cmd: echo ${train.lr} > out.txt
    outs:
    - out.txt
"""


def make_project(root: Path) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    exq("init", cwd=root)
    write(root / "params.yaml", "train:\n  lr: 0.1\n")
    write(root / "dvc.yaml", DVCYAML)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "project")
    return root


@pytest.mark.parametrize(
    ("dvcyaml", "args", "error"),
    [
        (
            "stages: [\n",
            [],
            "dvc.yaml: invalid YAML at line 2: did not find expected node content",
        ),
        (
            DVCYAML.replace("outs:", "outz:"),
            [],
            "dvc.yaml: stages.train: unknown key 'outz'",
        ),
        (
            DVCYAML.replace("train.lr}", "train.lrr}"),
            [],
            "dvc.yaml: stages.train.cmd: Could not find 'train.lrr'",
        ),
        (
            DVCYAML,
            ["trian"],
            "stage 'trian' not found in 'dvc.yaml' (target 'trian') (did you mean 'train'?)",
        ),
        # One point of the sweep cannot run: none of it is queued.
        (
            DVCYAML,
            ["-S", "train.lr=0.1,[1]"],
            "dvc.yaml: stages.train.cmd: Cannot interpolate data of type 'list'",
        ),
    ],
    ids=["yaml", "unknown-key", "unresolved", "unknown-target", "sweep-point"],
)
def test_a_snapshot_that_cannot_run_is_refused_at_enqueue(
    queue_env: QueueEnv, tmp_path: Path, dvcyaml: str, args: list[str], error: str
) -> None:
    root = make_project(tmp_path / "repo")
    write(root / "dvc.yaml", dvcyaml)  # a workspace change: the snapshot takes it
    code, out, err = exq("exp", "run", "--queue", *args, cwd=root, check=False)
    assert (code, out, err) == (1, "", f"ERROR: {error}\n")
    # The run would have failed the same way: the workspace form says so too.
    if not args or args[0] != "-S":
        run_code, _, run_err = exq("repro", *args, cwd=root, check=False)
        assert (run_code, run_err) == (1, f"ERROR: {error}\n")
    assert status(root)["runs"] == []
    assert git(root, "for-each-ref", "refs/exq", "refs/exps") == ""


def test_a_sweep_that_can_run_is_queued_whole(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    _, out, _ = exq("exp", "run", "--queue", "-S", "train.lr=0.1,0.2", "train", cwd=root)
    assert len(queued_ids(out)) == 2
