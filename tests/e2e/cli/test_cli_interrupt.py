"""Ctrl-C during ``exq repro``: the children stop and nothing is left half-written."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import EXQ_BIN, tool, wait_until, write


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    state = next((line for line in status.splitlines() if line.startswith("State:")), "")
    return "zombie" not in state and "dead" not in state


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_ctrl_c_stops_children_and_keeps_the_lock_whole(project: Path, signum: int) -> None:
    write(
        project / "dvc.yaml",
        f"""\
stages:
  first:
    cmd: {tool("run", "first", "first.txt")}
    outs:
    - first.txt
  slow:
    cmd: {tool("spawn", "slow.txt")}
    deps:
    - first.txt
    outs:
    - slow.txt
""",
    )
    proc = subprocess.Popen(
        [str(EXQ_BIN), "repro"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids: list[int] = []
    try:
        wait_until(
            lambda: (project / "grandchild.pid").exists() and (project / "child.pid").exists(),
            "the stage to start",
        )
        pids = [int((project / name).read_text()) for name in ("child.pid", "grandchild.pid")]
        assert all(alive(pid) for pid in pids)
        # a terminal's Ctrl-C reaches exq only: stage commands run in their own session;
        # `kill` (SIGTERM) and a closed terminal (SIGHUP) must stop them as well
        proc.send_signal(signum)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError("exq did not stop within 30 s of the signal") from None
        assert proc.returncode != 0
        assert "Traceback" not in err, err
        wait_until(lambda: not any(alive(pid) for pid in pids), "the stage's processes to end", 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

    lock_file = project / "dvc.lock"
    if lock_file.exists():
        data = yaml.safe_load(lock_file.read_text())
        assert list(data["stages"]) == ["first"]
    leftovers = [p.name for p in project.iterdir() if p.name.startswith(".dvc.lock")]
    assert leftovers == []
    assert not (project / "slow.txt").exists()


def test_ctrl_c_then_repro_finishes_the_pipeline(project: Path) -> None:
    """After an interrupt, the next repro skips what finished and runs the rest."""
    write(
        project / "dvc.yaml",
        f"""\
stages:
  first:
    cmd: {tool("run", "first", "first.txt")}
    outs:
    - first.txt
  slow:
    cmd: {tool("spawn", "slow.txt")}
    deps:
    - first.txt
    outs:
    - slow.txt
""",
    )
    proc = subprocess.Popen(
        [str(EXQ_BIN), "repro"], cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(lambda: (project / "child.pid").exists(), "the stage to start")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # let the slow stage finish quickly this time
    text = (
        (project / "dvc.yaml")
        .read_text()
        .replace(tool("spawn", "slow.txt"), tool("run", "slow", "slow.txt"))
    )
    write(project / "dvc.yaml", text)
    (project / "runs.log").unlink()
    done = subprocess.run(
        [str(EXQ_BIN), "repro"], cwd=project, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Stage 'first' didn't change, skipping" in done.stdout
    assert (project / "runs.log").read_text().split() == ["slow"]
