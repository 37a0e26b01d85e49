"""A full disk is said in one line, and the daemon goes on.

The disk is a real one: a 1 MiB tmpfs mounted for the test (root only), holding
the daemon's state folder or the file the CLI's output goes to. A stage that
prints 3 MB then fills it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from exq.daemon.client import Client
from tests.conftest import git
from tests.e2e.conftest import EXQ_BIN, PY, exq, write
from tests.e2e.queue_helpers import QueueEnv, queued_ids, stop_daemon, wait_states

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="needs root to mount a small disk")

TALK = f"{PY} -c \"import sys; sys.stdout.write('x' * 3_000_000)\""


@pytest.fixture
def talker(project: Path) -> Path:
    write(project / "dvc.yaml", f"stages:\n  talk:\n    cmd: {TALK}\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "talk")
    return project


def mount_small(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], check=True)


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "small"
    mount_small(folder)
    yield folder
    unmount(folder)


def one_line(err: str) -> str:
    assert "Traceback" not in err and "ExceptionGroup" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_output_to_a_full_disk_is_one_line(talker: Path, small_disk: Path) -> None:
    with open(small_disk / "out.txt", "wb") as out:
        done = subprocess.run(
            [str(EXQ_BIN), "exp", "run"], cwd=talker, stdout=out, stderr=subprocess.PIPE, text=True
        )
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert line.startswith("ERROR: disk full writing <stdout>"), line


def test_a_run_that_fills_the_state_disk_fails_and_the_daemon_goes_on(
    queue_env: QueueEnv, talker: Path
) -> None:
    mount_small(queue_env.state)
    try:
        _, out, _ = exq("exp", "run", "--queue", cwd=talker)
        (run_id,) = queued_ids(out)
        exq("queue", "start", cwd=talker)
        runs = wait_states(talker, [run_id], {"success", "failed", "interrupted"})
        error = runs[run_id]["error"]
        assert runs[run_id]["state"] == "failed"
        assert error.startswith(f"disk full writing {queue_env.state}/logs/{run_id}.log"), error
        assert "\n" not in error
        assert Client(queue_env.socket).ping()  # the daemon is still there
    finally:
        stop_daemon(queue_env)
        unmount(queue_env.state)
