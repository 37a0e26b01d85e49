"""What ``exq queue`` shows and does is true when the daemon is dead, stopped or
away, when a stage leaves a process behind, and beside other repositories.

Real ``exq`` processes, a real daemon started by ``exq queue start``, real
signals (SIGKILL, SIGSTOP).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.e2e.conftest import EXQ_BIN, exq, write
from tests.e2e.queue_helpers import (
    QueueEnv,
    daemon_pid,
    make_project,
    queued_ids,
    runs_by_id,
    status,
    wait_for,
    wait_states,
)
from tests.support import alive, git

ENDED = {"success", "failed", "interrupted", "cancelled"}

# A stage that leaves a process of its own session behind (a double fork), which
# still carries the run's token, then ends (mode ok) or waits for "go" (block).
FORKER = """\
import os, subprocess, sys, time
from pathlib import Path

params = dict(l.split(": ", 1) for l in Path("params.yaml").read_text().splitlines() if ": " in l)
shared = Path(os.environ["QSHARED"])
run = os.environ["EXQ_RUN_ID"]
orphan = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(300)"],
    start_new_session=True,
    stdin=subprocess.DEVNULL,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
(shared / f"orphan-{run}").write_text(str(orphan.pid))
if params["mode"].strip() == "block":
    deadline = time.monotonic() + 60
    while not (shared / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
Path("out.txt").write_text("done\\n")
"""


def enqueue(root: Path, *args: str) -> list[int]:
    _, out, _ = exq("exp", "run", "--queue", *args, cwd=root)
    return queued_ids(out)


def orphan_of(env: QueueEnv, run_id: int) -> int:
    path = env.shared / f"orphan-{run_id}"
    wait_for(path.exists, f"run {run_id}'s stage to fork")
    return int(path.read_text())


def test_status_after_a_kill_9_shows_running_runs_interrupted(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    root = make_project(tmp_path / "repo")
    (blocked,) = enqueue(root, "-S", "mode=block")
    exq("queue", "start", cwd=root)
    wait_for(lambda: (queue_env.shared / f"start-{blocked}").exists(), "the run to start")
    pid = daemon_pid(queue_env)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: daemon_pid(queue_env) is None, "the daemon to die")
    try:
        shown = status(root)
        assert shown["daemon"]["running"] is False
        (run,) = shown["runs"]
        assert (run["id"], run["state"]) == (blocked, "interrupted")
        _, out, _ = exq("queue", "status", cwd=root)
        row, daemon_line = out.splitlines()[1:]
        assert " interrupted " in row and "the daemon died" in row
        assert daemon_line.startswith("Daemon: not running")
    finally:
        (queue_env.shared / "go").write_text("")  # the dead daemon's stage may end


def test_status_of_a_stopped_daemon_reads_the_queue_and_says_it_does_not_answer(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    root = make_project(tmp_path / "repo")
    exq("queue", "start", cwd=root)
    exq("queue", "pause", cwd=root)
    (waiting,) = enqueue(root, "-n", "waiting")
    pid = daemon_pid(queue_env)
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        shown = status(root)
        _, out, _ = exq("queue", "status", cwd=root)
    finally:
        os.kill(pid, signal.SIGCONT)
    daemon = shown["daemon"]
    assert (daemon["running"], daemon["answering"], daemon["pid"]) == (True, False, pid)
    assert [(r["id"], r["state"]) for r in shown["runs"]] == [(waiting, "queued")]
    assert f"Daemon: running (pid {pid}) but not answering" in out.splitlines()[-1]


def test_logs_follow_says_why_a_queued_run_waits_and_fails_with_the_run(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    root = make_project(tmp_path / "repo")
    (blocked,) = enqueue(root, "-S", "mode=block", "-n", "first")
    (failing,) = enqueue(root, "-S", "mode=fail", "-n", "second")
    err_path = tmp_path / "follower.err"
    with open(err_path, "w") as err:
        follower = subprocess.Popen(
            [str(EXQ_BIN), "queue", "logs", "-f", "second"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        said = err_path.read_text
        wait_for(lambda: "no exq daemon is running" in said(), "the follower to say why")
        exq("queue", "start", cwd=root)
        wait_for(lambda: (queue_env.shared / f"start-{blocked}").exists(), "the first run")
        exq("queue", "pause", cwd=root)
        wait_for(lambda: "the queue is paused" in said(), "the follower to see the pause")
        exq("queue", "resume", cwd=root)
        (queue_env.shared / "go").write_text("")
        out, _ = follower.communicate(timeout=60)
    finally:
        follower.kill()
    assert follower.returncode == 1
    assert "failing on purpose" in out
    lines = said().splitlines()
    assert lines[0] == f"exq: run {failing} 'second' is queued: no exq daemon is running" + (
        " (start it with 'exq queue start')."
    )
    assert lines[-1].startswith(f"ERROR: run {failing} 'second' ended failed")


def test_kill_of_a_queued_run_needs_no_daemon(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    (waiting,) = enqueue(root, "-n", "waiting")
    code, out, err = exq("queue", "kill", "waiting", cwd=root, check=False)
    assert (code, out, err) == (0, f"Cancelled run {waiting} (it was queued).\n", "")
    assert runs_by_id(root)[waiting]["state"] == "cancelled"
    assert daemon_pid(queue_env) is None


def test_a_double_forked_process_of_a_run_is_reaped_at_its_end_kill_and_stop(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    root = make_project(tmp_path / "repo")
    write(root / "qtool.py", FORKER)
    git(root, "commit", "-qam", "a stage that forks")
    (done,) = enqueue(root, "-n", "done")
    (killed,) = enqueue(root, "-S", "mode=block", "-n", "killed")
    (stopped,) = enqueue(root, "-S", "mode=block", "-n", "stopped")
    exq("queue", "start", cwd=root)
    orphans = [orphan_of(queue_env, done)]
    orphans.append(orphan_of(queue_env, killed))
    assert wait_states(root, [done], ENDED)[done]["state"] == "success"
    exq("queue", "kill", str(killed), cwd=root)
    assert wait_states(root, [killed], ENDED)[killed]["state"] == "failed"
    orphans.append(orphan_of(queue_env, stopped))
    exq("queue", "stop", "--kill", cwd=root)
    wait_for(lambda: daemon_pid(queue_env) is None, "the daemon to exit")
    assert runs_by_id(root)[stopped]["state"] == "interrupted"
    wait_for(lambda: not any(alive(pid) for pid in orphans), "the left processes to be reaped")


def test_gc_in_one_repository_leaves_another_repositorys_queue_alone(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    ours = make_project(tmp_path / "ours")
    theirs = make_project(tmp_path / "theirs")
    # Our queue ref 1 comes from another queue database; in this one, run 1 is theirs.
    other = {"EXQ_STATE_DIR": str(tmp_path / "other-state")}
    exq("exp", "run", "--queue", "-n", "mine", cwd=ours, env=other)
    (theirs_id,) = enqueue(theirs, "-n", "theirs")
    assert theirs_id == 1
    _, out, _ = exq("exp", "gc", "-w", "-f", cwd=ours)
    assert "Removed 1 queued experiments." in out
    assert git(ours, "for-each-ref", "refs/exq/queue") == ""  # our orphan ref went
    assert [r["name"] for r in status(theirs)["runs"]] == ["theirs"]
    assert git(theirs, "for-each-ref", "--format=%(refname)", "refs/exq/queue").split() == [
        "refs/exq/queue/1"
    ]
