"""``exq exp run --queue`` and ``exq queue ...`` with no daemon running."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.conftest import exq, write
from tests.e2e.queue_helpers import (
    QueueEnv,
    make_project,
    queued_ids,
    queued_names,
    runs_by_id,
    status,
)
from tests.support import git


def queue_refs(root: Path) -> dict[str, str]:
    out = git(root, "for-each-ref", "--format=%(refname) %(objectname)", "refs/exq/queue")
    return dict(line.split() for line in out.splitlines())


def show(root: Path, rev: str, path: str) -> str:
    return git(root, "show", f"{rev}:{path}")


def test_enqueue_without_daemon_snapshots_the_workspace(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    root = make_project(tmp_path / "repo")
    write(root / "notes.txt", "untracked, not ignored\n")
    write(root / "qtool.py", (root / "qtool.py").read_text() + "# edited\n")
    write(root / "out.txt", "ignored\n")
    code, out, err = exq("exp", "run", "--queue", "-S", "lr=0.5", "-n", "first", cwd=root)
    assert (code, err) == (0, "")
    (run_id,) = queued_ids(out)
    assert out == f"Queued experiment 'first' (run {run_id}) for future execution.\n"
    # Later edits do not reach the snapshot.
    write(root / "notes.txt", "changed after queueing\n")
    write(root / "params.yaml", "mode: fail\nlr: 9\n")

    refs = queue_refs(root)
    ref = f"refs/exq/queue/{run_id}"
    assert list(refs) == [ref]
    snapshot = refs[ref]
    assert show(root, snapshot, "params.yaml") == "mode: ok\nlr: 0.5\n"
    assert show(root, snapshot, "notes.txt") == "untracked, not ignored\n"
    assert show(root, snapshot, "qtool.py").endswith("# edited\n")
    assert "out.txt" not in git(root, "ls-tree", "--name-only", snapshot)
    head = git(root, "rev-parse", "HEAD").strip()
    assert git(root, "rev-parse", f"{snapshot}^").strip() == head
    assert git(root, "status", "--porcelain", "--", "qtool.py").startswith(" M")  # index untouched

    # Durable: another process (sqlite3 itself) sees the row.
    with sqlite3.connect(queue_env.db) as db:
        row = db.execute(
            "SELECT name, state, repo, baseline, snapshot, params FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
    assert row == ("first", "queued", str(root), head, snapshot, '["lr=0.5"]')


def test_sweep_queues_the_cartesian_product(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    _, out, _ = exq(
        "exp",
        "run",
        "--queue",
        "-S",
        "lr=0.1,0.2,0.3",
        "-S",
        "mode=ok,gate",
        "-n",
        "grid",
        cwd=root,
    )
    ids = queued_ids(out)
    assert queued_names(out) == [f"grid-{i}" for i in range(1, 7)]
    assert ids == sorted(ids) and len(set(ids)) == 6
    refs = queue_refs(root)
    combos = {show(root, refs[f"refs/exq/queue/{i}"], "params.yaml") for i in ids}
    assert combos == {
        f"mode: {m}\nlr: {lr}\n" for lr in ("0.1", "0.2", "0.3") for m in ("ok", "gate")
    }
    runs = runs_by_id(root)
    assert runs[ids[0]]["name"] == "grid-1"


def test_sweep_without_name_gets_distinct_automatic_names(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    root = make_project(tmp_path / "repo")
    _, out, _ = exq("exp", "run", "--queue", "-S", "lr=1,2,3", cwd=root)
    names = queued_names(out)
    assert len(names) == 3 and len(set(names)) == 3
    assert all(name.startswith("exp-") for name in names)


def test_sweep_without_queue_is_refused(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    code, out, err = exq("exp", "run", "-S", "lr=0.1,0.2", cwd=root, check=False)
    assert code == 1 and out == ""
    assert err.startswith("ERROR: -S 'lr=0.1,0.2' is a sweep") and err.count("\n") == 1
    assert not (root / "out.txt").exists()
    assert status(root)["runs"] == []


@pytest.mark.parametrize(
    "args",
    [
        ["-S", "nope=1"],
        ["-S", "lr=0.1,0.2", "-S", "missing.key=3"],  # the second point is fine, the key is not
        ["-S", "other.yaml:lr=1"],
        ["-n", "bad name~"],
    ],
)
def test_bad_edits_or_names_queue_nothing(
    queue_env: QueueEnv, tmp_path: Path, args: list[str]
) -> None:
    root = make_project(tmp_path / "repo")
    code, out, err = exq("exp", "run", "--queue", *args, cwd=root, check=False)
    assert code != 0 and out == ""
    assert err.startswith("ERROR: ") and err.count("\n") == 1 and "Traceback" not in err
    assert status(root)["runs"] == []
    assert queue_refs(root) == {}


def test_name_of_an_existing_experiment_is_refused(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    exq("exp", "run", "-n", "done", cwd=root)
    code, _, err = exq("exp", "run", "--queue", "-n", "done", cwd=root, check=False)
    assert code == 1 and "experiment 'done' already exists" in err
    _, out, _ = exq("exp", "run", "--queue", "-n", "done", "-f", cwd=root)
    assert queued_names(out) == ["done"]


@pytest.mark.parametrize(
    "args",
    [
        ["--queue", "-Slr=0.7", "--name=attached"],  # the fast path's forms
        ["--set-param=lr=0.7", "--queue", "-n", "attached", "--", "work"],
        ["--queue", "--temp", "-S", "lr=0.7", "-n", "attached"],  # typer's path
    ],
)
def test_option_forms(queue_env: QueueEnv, tmp_path: Path, args: list[str]) -> None:
    root = make_project(tmp_path / "repo")
    _, out, _ = exq("exp", "run", *args, cwd=root)
    (run_id,) = queued_ids(out)
    assert queued_names(out) == ["attached"]
    snapshot = queue_refs(root)[f"refs/exq/queue/{run_id}"]
    assert show(root, snapshot, "params.yaml") == "mode: ok\nlr: 0.7\n"


def test_status_json_shape_with_daemon_down(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    _, out, _ = exq("exp", "run", "--queue", "-S", "lr=0.2", "-n", "one", cwd=root)
    (run_id,) = queued_ids(out)
    data = status(root)
    assert data["daemon"] == {
        "running": False,
        "answering": False,
        "pid": None,
        "slots_busy": None,
        "slots_total": None,
        "gpus_total": None,
        "gpus_free": None,
        "paused": None,
    }
    (run,) = data["runs"]
    assert list(run) == [
        "id",
        "name",
        "repo",
        "state",
        "attempt",
        "created",
        "started",
        "finished",
        "exit_code",
        "experiment_ref",
        "error",
        "checkpoints",
        "executor",
        "location",
        "cpus",
        "gpus",
        "mem",
        "gpus_assigned",
        "priority",
        "after",
        "timeout",
        "retries",
        "retries_left",
        "retry_delay",
        "not_before",
        "progress",
        "sweep",
    ]
    assert run["sweep"] is None and data["studies"] == []
    assert run["id"] == run_id and run["name"] == "one" and run["repo"] == str(root)
    assert (run["state"], run["attempt"], run["started"], run["finished"]) == (
        "queued",
        0,
        None,
        None,
    )
    assert run["created"].endswith("+00:00")  # ISO 8601 with its zone

    _, table, _ = exq("queue", "status", cwd=root)
    lines = table.splitlines()
    assert lines[0].split() == [
        "ID",
        "Name",
        "Repo",
        "State",
        "Where",
        "Created",
        "Duration",
        "Attempt",
        "Result",
    ]
    assert lines[1].split()[:4] == [str(run_id), "one", str(root), "queued"]
    assert lines[-1].startswith("Daemon: not running")


def test_remove_and_logs_without_daemon(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    _, out, _ = exq("exp", "run", "--queue", "-S", "lr=1,2,3", "-n", "r", cwd=root)
    ids = queued_ids(out)
    code, _, err = exq("queue", "logs", "r-2", cwd=root)
    assert code == 0 and "has no output yet (queued)" in err
    code, _, err = exq("queue", "logs", "no-such-run", cwd=root, check=False)
    assert (
        code == 1 and err == "ERROR: no run 'no-such-run' in the queue (see 'exq queue status')\n"
    )

    _, out, _ = exq("queue", "remove", str(ids[0]), "r-2", cwd=root)
    assert out.splitlines() == [
        f"Removed run {ids[0]} 'r-1' (queued).",
        f"Removed run {ids[1]} 'r-2' (queued).",
    ]
    assert list(runs_by_id(root)) == [ids[2]]
    assert list(queue_refs(root)) == [f"refs/exq/queue/{ids[2]}"]
    exq("queue", "remove", "--queued", cwd=root)
    assert status(root)["runs"] == [] and queue_refs(root) == {}
    code, _, err = exq("queue", "remove", cwd=root, check=False)
    assert code == 2 and err.startswith("ERROR: name the runs to remove")


def test_run_ids_are_never_reused(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    _, out, _ = exq("exp", "run", "--queue", cwd=root)
    (first,) = queued_ids(out)
    exq("queue", "remove", "--all", cwd=root)
    _, out, _ = exq("exp", "run", "--queue", cwd=root)
    assert queued_ids(out) == [first + 1]


@pytest.mark.parametrize("args", [["pause"], ["resume"]])
def test_daemon_commands_without_daemon(
    queue_env: QueueEnv, tmp_path: Path, args: list[str]
) -> None:
    root = make_project(tmp_path / "repo")
    exq("exp", "run", "--queue", cwd=root)
    code, out, err = exq("queue", *args, cwd=root, check=False)
    assert code == 3 and out == ""
    assert err.startswith("ERROR: the exq daemon is not running") and err.count("\n") == 1


def test_stop_without_daemon_is_fine(queue_env: QueueEnv, tmp_path: Path) -> None:
    code, out, _ = exq("queue", "stop", cwd=tmp_path)
    assert (code, out) == (0, "The exq daemon is not running.\n")


def test_retry_refuses_queued_runs(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    _, out, _ = exq("exp", "run", "--queue", cwd=root)
    (run_id,) = queued_ids(out)
    code, _, err = exq("queue", "retry", str(run_id), cwd=root, check=False)
    assert code == 1 and f"{run_id} (queued)" in err


def test_status_json_of_an_empty_queue(queue_env: QueueEnv, tmp_path: Path) -> None:
    _, out, _ = exq("queue", "status", "--json", cwd=tmp_path)
    assert json.loads(out) == {
        "daemon": {
            "running": False,
            "answering": False,
            "pid": None,
            "slots_busy": None,
            "slots_total": None,
            "gpus_total": None,
            "gpus_free": None,
            "paused": None,
        },
        "runs": [],
        "queue": {"eta_seconds": None},
        "studies": [],
    }


def test_exp_show_lists_queued_runs_with_their_params(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    code, out, _ = exq("exp", "run", "--queue", "-S", "lr=0.25", "-n", "later", cwd=root)
    assert code == 0
    code, out, err = exq("exp", "show", "--json", cwd=root)
    assert code == 0, err
    rows = {row["name"]: row for row in json.loads(out)}
    queued = rows["later"]
    head = git(root, "rev-parse", "HEAD").strip()
    assert (queued["kind"], queued["state"], queued["baseline"]) == ("queued", "queued", head)
    assert queued["params"]["params.yaml"]["lr"] == 0.25
    assert queued["metrics"] == {}
    code, out, _ = exq("exp", "show", "--no-timestamp", cwd=root)
    assert "Queued" in out and "later" in out


def test_exp_gc_clears_queued_runs_through_the_queue(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    code, out, _ = exq("exp", "run", "--queue", "-S", "lr=0.3", "-n", "kept", cwd=root)
    assert code == 0
    (run_id,) = queued_ids(out)
    code, out, err = exq("exp", "gc", "-w", "--queued", "-f", cwd=root)
    assert code == 0, err
    assert run_id in runs_by_id(root) and queue_refs(root)
    code, out, err = exq("exp", "gc", "-w", "-f", cwd=root)
    assert code == 0, err
    assert "Removed 1 queued experiments." in out
    assert run_id not in runs_by_id(root)
    assert queue_refs(root) == {}


def test_queue_kill_takes_dvcs_short_force_flag(queue_env: QueueEnv, tmp_path: Path) -> None:
    # 'dvc queue kill -f TASK': exq knew --force only ("No such option: -f")
    root = make_project(tmp_path / "repo")
    _, out, _ = exq("exp", "run", "--queue", "-n", "k", cwd=root)
    (run_id,) = queued_ids(out)
    _, out, _ = exq("queue", "kill", "-f", "k", cwd=root)
    assert out == f"Cancelled run {run_id} (it was queued).\n"
    assert runs_by_id(root)[run_id]["state"] == "cancelled"


def test_exp_remove_takes_queued_experiments_as_dvc_does(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    # 'dvc exp remove NAME' removes a queued experiment, 'dvc exp remove --queue' all
    # of them: exq said "'r-1' is not a valid experiment name" and had no --queue
    root = make_project(tmp_path / "repo")
    other = make_project(tmp_path / "other")
    _, out, _ = exq("exp", "run", "--queue", "-S", "lr=1,2,3", "-n", "r", cwd=root)
    ids = queued_ids(out)
    exq("exp", "run", "--queue", "-n", "elsewhere", cwd=other)
    _, out, _ = exq("exp", "remove", "r-1", cwd=root)
    assert out == "Removed experiments: 'r-1'\n"
    assert [r["name"] for r in status(root)["runs"]] == ["r-2", "r-3", "elsewhere"]
    assert f"refs/exq/queue/{ids[0]}" not in queue_refs(root)
    _, out, _ = exq("exp", "remove", "--queue", cwd=root)
    assert out == "Removed experiments: 'r-2' and 'r-3'\n"
    assert [r["name"] for r in status(root)["runs"]] == ["elsewhere"]  # another repo's
    assert queue_refs(root) == {}
    code, _, err = exq("exp", "remove", "r-9", cwd=root, check=False)
    assert code == 1 and err.count("\n") == 1 and "'r-9'" in err
