"""``exq queue ...`` against a real ``exq daemon`` process started by ``exq queue start``."""

from __future__ import annotations

import os
import signal
import stat
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
from tests.support import git

ENDED = {"success", "failed", "interrupted", "cancelled"}


def enqueue(root: Path, *args: str) -> list[int]:
    _, out, _ = exq("exp", "run", "--queue", *args, cwd=root)
    return queued_ids(out)


def test_start_runs_two_at_once_and_reports(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    meet = enqueue(root, "-S", "mode=meet", "-S", "lr=1,2", "-n", "meet")
    failing = enqueue(root, "-S", "mode=fail", "-n", "boom")
    after = enqueue(root, "-S", "lr=3", "-n", "after")
    _, out, _ = exq("queue", "start", "-j", "2", cwd=root)
    assert out.startswith("Started the exq daemon (pid ") and "2 run(s) at a time" in out
    pid = daemon_pid(queue_env)
    assert pid is not None

    runs = wait_states(root, meet + failing + after, ENDED)
    assert [runs[i]["state"] for i in meet + failing + after] == [
        "success",
        "success",
        "failed",
        "success",
    ]
    # The two "meet" runs only end when both run at the same time, in slots 0 and 1.
    slots = sorted((queue_env.shared / f"start-{i}").read_text().split()[1] for i in meet)
    assert slots == ["0", "1"]
    boom = runs[failing[0]]
    assert boom["exit_code"] == 3 and boom["experiment_ref"] is None and boom["attempt"] == 1
    head = git(root, "rev-parse", "HEAD").strip()
    for run_id, name, lr in [
        (meet[0], "meet-1", "1"),
        (meet[1], "meet-2", "2"),
        (after[0], "after", "3"),
    ]:
        ref = f"refs/exps/{head[:2]}/{head[2:]}/{name}"
        assert runs[run_id]["experiment_ref"] == ref
        assert git(root, "show", f"{ref}:params.yaml").endswith(f"lr: {lr}\n")
    assert not (root / "out.txt").exists()  # the workspace is left alone

    # Socket folder and socket modes, on the real daemon.
    assert stat.S_IMODE(os.stat(queue_env.runtime).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(queue_env.socket).st_mode) == 0o600

    data = status(root)
    assert data["daemon"] == {
        "running": True,
        "answering": True,
        "pid": pid,
        "slots_busy": 0,
        "slots_total": 2,
        "gpus_total": 0,
        "gpus_free": 0,
        "paused": False,
    }
    _, table, _ = exq("queue", "status", cwd=root)
    assert table.splitlines()[-1] == f"Daemon: running (pid {pid}), 0/2 slots busy"

    _, log, _ = exq("queue", "logs", "boom", cwd=root)
    assert "failing on purpose" in log
    _, log, _ = exq("queue", "logs", str(after[0]), cwd=root)
    assert f"qtool run {after[0]} mode ok lr 3" in log

    # A second start only sets the jobs; a second daemon is refused.
    _, out, _ = exq("queue", "start", "-j", "3", cwd=root)
    assert out == f"The exq daemon is running (pid {pid}); now 3 run(s) at a time.\n"
    assert status(root)["daemon"]["slots_total"] == 3
    code, out, err = exq("daemon", cwd=root, check=False)
    assert code == 1 and err == f"ERROR: an exq daemon is already running (pid {pid})\n"

    # Stop: the daemon exits and takes its socket with it.
    _, out, _ = exq("queue", "stop", cwd=root)
    assert out == "Stopping the exq daemon once the running runs finish.\n"
    wait_for(lambda: daemon_pid(queue_env) is None, "the daemon to exit")
    assert not queue_env.socket.exists()
    assert status(root)["daemon"]["running"] is False


def test_kill_pause_resume_retry_remove(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    exq("queue", "start", cwd=root)
    (blocked,) = enqueue(root, "-S", "mode=block", "-n", "blocked")
    wait_for(lambda: (queue_env.shared / f"start-{blocked}").exists(), "the blocked run to start")
    stage_pid = int((queue_env.shared / f"start-{blocked}").read_text().split()[0])
    assert runs_by_id(root)[blocked]["state"] == "running"

    # kill: SIGINT to the run's process group; it ends failed ("killed").
    _, out, _ = exq("queue", "kill", "blocked", cwd=root)
    assert out == f"Sent SIGINT to run {blocked} (a queued run is cancelled).\n"
    run = wait_states(root, [blocked], ENDED)[blocked]
    assert (run["state"], run["error"]) == ("failed", "killed")
    wait_for(lambda: not _alive(stage_pid), "the stage process to go")
    code, _, err = exq("queue", "kill", str(blocked), cwd=root, check=False)
    assert code == 1 and f"not running or queued: {blocked}" in err

    # pause: new runs wait; resume: they go.
    exq("queue", "pause", cwd=root)
    (gated,) = enqueue(root, "-S", "mode=gate", "-n", "gated")
    assert runs_by_id(root)[gated]["state"] == "queued"
    _, table, _ = exq("queue", "status", cwd=root)
    assert table.splitlines()[-1].endswith("slots busy, paused")
    exq("queue", "resume", cwd=root)
    run = wait_states(root, [gated], ENDED)[gated]
    assert (run["state"], run["exit_code"], run["attempt"]) == ("failed", 4, 1)

    # retry: the same snapshot runs again, attempts counted.
    (queue_env.shared / "allow").write_text("")
    _, out, _ = exq("queue", "retry", "gated", cwd=root)
    assert out == f"Queued run {gated} 'gated' again.\n"
    run = wait_states(root, [gated], {"success"})[gated]
    assert run["attempt"] == 2 and run["exit_code"] == 0 and run["error"] is None

    # remove: ended runs go, with their queue refs.
    _, out, _ = exq("queue", "remove", "--failed", "--success", cwd=root)
    assert sorted(out.splitlines()) == sorted(
        [
            f"Removed run {blocked} 'blocked' (failed).",
            f"Removed run {gated} 'gated' (success).",
        ]
    )
    assert status(root)["runs"] == []
    assert git(root, "for-each-ref", "refs/exq/queue") == ""


def test_kill_cancels_a_queued_run(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    exq("queue", "start", cwd=root)
    exq("queue", "pause", cwd=root)
    (waiting,) = enqueue(root, "-n", "waiting")
    _, out, _ = exq("queue", "kill", str(waiting), "--force", cwd=root)
    assert out == f"Sent SIGKILL to run {waiting} (a queued run is cancelled).\n"
    assert wait_states(root, [waiting], ENDED)[waiting]["state"] == "cancelled"


def test_stop_kill_interrupts_running_runs(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    exq("queue", "start", cwd=root)
    (blocked,) = enqueue(root, "-S", "mode=block")
    wait_for(lambda: (queue_env.shared / f"start-{blocked}").exists(), "the run to start")
    _, out, _ = exq("queue", "stop", "--kill", cwd=root)
    assert out.startswith("Stopping the exq daemon: running runs are interrupted")
    wait_for(lambda: daemon_pid(queue_env) is None, "the daemon to exit")
    assert runs_by_id(root)[blocked]["state"] == "interrupted"


def test_run_all_follows_the_queue(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    ids = enqueue(root, "-S", "lr=1,2,3", "-n", "all")
    code, out, err = exq("exp", "run", "--run-all", "-j", "2", cwd=root)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Started the exq daemon (pid ") and "following 3 run(s)" in lines[0]
    head = git(root, "rev-parse", "HEAD").strip()
    for run_id, name in zip(ids, ["all-1", "all-2", "all-3"], strict=True):
        assert f"[{run_id}] {name}: success -> refs/exps/{head[:2]}/{head[2:]}/{name}" in lines
    assert lines[-1] == "Done: 3 success."
    assert status(root)["daemon"]["slots_total"] == 2


def test_run_all_stops_following_on_ctrl_c(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    (blocked,) = enqueue(root, "-S", "mode=block")
    env = {**os.environ}
    proc = subprocess.Popen(
        [str(EXQ_BIN), "exp", "run", "--run-all"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: (queue_env.shared / f"start-{blocked}").exists(), "the run to start")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "Stopped following; the runs go on" in err
    assert runs_by_id(root)[blocked]["state"] == "running"  # the run goes on
    (queue_env.shared / "go").write_text("")
    assert wait_states(root, [blocked], ENDED)[blocked]["state"] == "success"


def _alive(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rfind(")") + 2] not in "ZX"


def test_queued_add_edit_is_applied_once(queue_env: QueueEnv, tmp_path: Path) -> None:
    """``+key=value`` adds a key: applied at enqueue into the snapshot, not again by the run."""
    root = make_project(tmp_path / "repo")
    write(root / "params.yaml", "mode: ok\nlr: 0.1\n")
    (run_id,) = enqueue(root, "-S", "+extra=5", "-n", "added")
    exq("queue", "start", cwd=root)
    run = wait_states(root, [run_id], ENDED)[run_id]
    assert run["state"] == "success", run["error"]
    assert (
        git(root, "show", f"{run['experiment_ref']}:params.yaml") == "mode: ok\nlr: 0.1\nextra: 5\n"
    )


def test_logs_follow_until_the_run_ends(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    (blocked,) = enqueue(root, "-S", "mode=block", "-n", "followed")
    follower = subprocess.Popen(
        [str(EXQ_BIN), "queue", "logs", "-f", "followed"],
        cwd=root,
        env={**os.environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        exq("queue", "start", cwd=root)
        wait_for(lambda: (queue_env.shared / f"start-{blocked}").exists(), "the run to start")
        assert follower.poll() is None  # still following a running run
        (queue_env.shared / "go").write_text("")
        out, err = follower.communicate(timeout=60)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    assert f"qtool run {blocked} mode block lr 0.1" in out
    assert "'followed' saved as refs/exps/" in out  # the whole log, to the end of the run


def test_run_all_on_a_paused_queue_says_so_and_follows_on_resume(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    # it showed '[1] r: queued' and then nothing, for ever, with no word of the pause
    root = make_project(tmp_path / "repo")
    exq("queue", "start", cwd=root)
    exq("queue", "pause", cwd=root)
    (run_id,) = enqueue(root)
    said = tmp_path / "stderr"
    with open(said, "w") as stderr:
        proc = subprocess.Popen(
            [str(EXQ_BIN), "exp", "run", "--run-all"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        paused = "exq: the queue is paused: its runs start after 'exq queue resume'.\n"
        wait_for(lambda: said.read_text() == paused, "a word of the pause")
        exq("queue", "resume", cwd=root)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert out.splitlines()[-1] == "Done: 1 success."
    assert runs_by_id(root)[run_id]["state"] == "success"
