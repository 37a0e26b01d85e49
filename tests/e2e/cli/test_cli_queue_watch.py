"""``exq queue status --watch`` piped: a new block of plain lines when something
changes, and an exit of its own once the queue drains."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.e2e.conftest import EXQ_BIN, exq
from tests.e2e.queue_helpers import QueueEnv, make_project, queued_ids, wait_for


def test_watch_prints_changes_and_exits_when_the_queue_drains(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    root = make_project(tmp_path / "repo", mode="block")
    _, out, _ = exq("exp", "run", "--queue", "-n", "slow", cwd=root)
    (run_id,) = queued_ids(out)
    exq("queue", "start", cwd=root)
    watcher = subprocess.Popen(
        [str(EXQ_BIN), "queue", "status", "--watch", "--interval", "0.2"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: (queue_env.shared / f"start-{run_id}").exists(), "the run to start")
        time.sleep(0.5)
        assert watcher.poll() is None  # still watching: the run goes on
        (queue_env.shared / "go").write_text("")
        stdout, stderr = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0, stderr
    blocks = [b for b in stdout.split("\n\n") if b.strip()]
    assert "\x1b" not in stdout  # plain text when piped
    assert any(" slow " in b and " running " in b for b in blocks)
    last = blocks[-1].splitlines()
    assert " success " in last[1] and last[-1].startswith("Daemon: running")
    # unchanged ticks print nothing: one block per change, not one per 0.2 s
    assert len(blocks) <= 4


def test_watch_of_a_drained_queue_prints_once_and_exits(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    code, out, _ = exq("queue", "status", "--watch", cwd=tmp_path, timeout=20)
    assert code == 0
    assert out.splitlines()[0] == "No runs in the queue."
    code, _, err = exq("queue", "status", "--watch", "--json", cwd=tmp_path, check=False)
    assert code == 2 and "--watch and --json do not go together" in err


def test_watch_with_no_daemon_says_so_and_exits(queue_env: QueueEnv, tmp_path: Path) -> None:
    """Queued runs and no daemon: nothing will change, so the watch does not wait."""
    root = make_project(tmp_path / "repo")
    exq("exp", "run", "--queue", "-n", "waiting", cwd=root)
    code, out, err = exq("queue", "status", "--watch", "--interval", "0.2", cwd=root, timeout=30)
    assert code == 0
    assert " waiting " in out and " queued " in out and "Daemon: not running" in out
    assert err == "No daemon runs the queue: start it with 'exq queue start'.\n"


def test_watch_of_a_paused_queue_with_nothing_running_says_so_and_exits(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    """Paused, nothing running: nothing will change until 'queue resume'; the watch
    waited for ever."""
    root = make_project(tmp_path / "repo")
    exq("queue", "start", cwd=root)
    exq("queue", "pause", cwd=root)
    exq("exp", "run", "--queue", "-n", "held", cwd=root)
    code, out, err = exq("queue", "status", "--watch", "--interval", "0.2", cwd=root, timeout=30)
    assert code == 0
    assert " held " in out and " queued " in out and "paused" in out
    assert err == "The queue is paused: its runs start after 'exq queue resume'.\n"
