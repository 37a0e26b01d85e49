"""A mistyped command, stage, experiment or run name gets a "did you mean"."""

from __future__ import annotations

from pathlib import Path

import pytest

from exq.engine.errors import did_you_mean
from tests.e2e.conftest import exq, write
from tests.e2e.queue_helpers import QueueEnv, make_project
from tests.support import git


@pytest.mark.parametrize(
    ("word", "choices", "said"),
    [
        ("trian", ["train", "prepare"], "did you mean 'train'?"),
        ("lr-01", ["lr-1", "lr-10", "zz"], "did you mean 'lr-1' or 'lr-10'?"),
        ("zzz", ["train", "prepare"], None),
        ("x", [], None),
    ],
)
def test_did_you_mean(word: str, choices: list[str], said: str | None) -> None:
    assert did_you_mean(word, choices) == said


def test_mistyped_names_get_a_suggestion(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    write(root / "dvc.yaml", (root / "dvc.yaml").read_text().replace("work:", "train:"))
    git(root, "commit", "-qam", "train stage")
    cases = [
        (["reprp"], "No such command 'reprp'. Did you mean 'repro'?"),
        (["repro", "trian"], "(did you mean 'train'?)"),
        (["queue", "stauts"], "Did you mean 'status'"),
        # sub-commands that other modules than the group's own register
        (["exp", "shw"], "Did you mean 'show'?"),
        (["exp", "dif"], "Did you mean 'diff'?"),
        (["queue", "shw"], "Did you mean 'show'?"),
        (["queue", "priorty"], "Did you mean 'priority'"),
    ]
    exq("exp", "run", "-n", "first-try", cwd=root)
    cases.append((["exp", "apply", "frist-try"], "(did you mean 'first-try'?)"))
    exq("exp", "run", "--queue", "-n", "nightly", cwd=root)
    cases.append((["queue", "logs", "nigthly"], "(did you mean 'nightly'?)"))
    cases += [
        (["status", "trian"], "(did you mean 'train'?)"),
        (["repro", "dvc.yaml:trian"], "(did you mean 'train'?)"),
        (["checkout", "trian"], "(did you mean 'train'?)"),
        (["exp", "remove", "frist-try"], "(did you mean 'first-try'?)"),
        (["exp", "remove", "first-try", "frist-try", "zzz"], "('frist-try': did you mean"),
        (["exp", "show", "--rev", "frist-try"], "(did you mean 'first-try'?)"),
        (["exp", "show", "--rev", "mian"], "(did you mean 'main'?)"),
        (["exp", "diff", "frist-try"], "(did you mean 'first-try'?)"),
        (["queue", "show", "nigthly"], "(did you mean 'nightly'?)"),
        (["queue", "kill", "nigthly"], "(did you mean 'nightly'?)"),
    ]
    for args, said in cases:
        code, _, err = exq(*args, cwd=root, check=False)
        assert code != 0 and said in err and err.count("\n") == 1, (args, err)
