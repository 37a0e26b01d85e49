"""Names of queued experiments: one name, one experiment. A name that a queued or
running run of the same baseline has is refused at enqueue unless ``-f``; the
daemon never moves an experiment ref it did not make; a name git cannot
store is refused at enqueue."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import exq
from tests.e2e.queue_helpers import (
    QueueEnv,
    make_project,
    queued_ids,
    status,
    wait_states,
)
from tests.support import git

ENDED = {"success", "failed", "interrupted", "cancelled"}


def exp_refs(root: Path) -> dict[str, str]:
    out = git(root, "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps")
    return dict(line.split() for line in out.splitlines())


def test_a_name_already_queued_is_refused_unless_forced(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    root = make_project(tmp_path / "repo")
    (first,) = queued_ids(exq("exp", "run", "--queue", "-n", "same", "-S", "lr=1", cwd=root)[1])
    code, out, err = exq("exp", "run", "--queue", "-n", "same", "-S", "lr=2", cwd=root, check=False)
    head = git(root, "rev-parse", "HEAD").strip()
    assert (code, out) == (1, "")
    assert err.startswith(
        f"ERROR: experiment 'same' is already queued as run {first} for baseline {head[:7]}"
    )
    assert err.count("\n") == 1
    assert [r["id"] for r in status(root)["runs"]] == [first]
    # -f replaces it deliberately: both run, the second one's experiment stays.
    (second,) = queued_ids(
        exq("exp", "run", "--queue", "-n", "same", "-S", "lr=2", "-f", cwd=root)[1]
    )
    exq("queue", "start", cwd=root)
    runs = wait_states(root, [first, second], ENDED)
    assert [runs[i]["state"] for i in (first, second)] == ["success", "success"]
    (ref,) = exp_refs(root)
    assert git(root, "show", f"{ref}:params.yaml") == "mode: ok\nlr: 2\n"


def test_the_daemon_never_overwrites_an_experiment_it_did_not_make(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    root = make_project(tmp_path / "repo")
    (queued,) = queued_ids(exq("exp", "run", "--queue", "-n", "mine", "-S", "lr=1", cwd=root)[1])
    # Meanwhile the user makes an experiment of that name in the workspace.
    exq("exp", "run", "-n", "mine", "-S", "lr=5", cwd=root)
    (ref, theirs), *_ = exp_refs(root).items()
    exq("queue", "start", cwd=root)
    run = wait_states(root, [queued], ENDED)[queued]
    assert run["state"] == "failed"
    assert run["error"].startswith(f"experiment 'mine' already exists ({ref})")
    assert exp_refs(root) == {ref: theirs}


def test_a_name_git_cannot_store_is_refused_at_enqueue(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    code, out, err = exq("exp", "run", "--queue", "-n", "x" * 300, cwd=root, check=False)
    assert (code, out) == (1, "")
    assert err.startswith("ERROR: experiment name 'xxxx") and "too long (300 bytes)" in err
    assert err.count("\n") == 1
    assert status(root)["runs"] == []
    assert git(root, "for-each-ref", "refs/exq") == ""


def test_an_automatic_name_is_the_inputs_so_the_same_inputs_may_run_again(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    root = make_project(tmp_path / "repo")
    (first,) = queued_ids(exq("exp", "run", "--queue", "-S", "lr=3", cwd=root)[1])
    (second,) = queued_ids(exq("exp", "run", "--queue", "-S", "lr=3", cwd=root)[1])
    exq("queue", "start", cwd=root)
    runs = wait_states(root, [first, second], ENDED)
    assert [runs[i]["state"] for i in (first, second)] == ["success", "success"]
    assert runs[first]["experiment_ref"] == runs[second]["experiment_ref"]
    assert len(exp_refs(root)) == 1
