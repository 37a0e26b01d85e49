"""A checkpoint run under a real ``exq daemon`` that is killed with SIGKILL.

The run is queued with ``exq exp run --queue``; its script takes a checkpoint
at every step and holds after step 3 (``HOLD_AT``) until the file ``go``
exists. Once ``exq queue status --json`` shows four checkpoints the daemon is
killed -9 and started again: the run resumes from its last checkpoint and
ends with one chain whose steps go 0..N, each step computed once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exq.daemon.states import RunState
from tests.e2e.conftest import EXQ_BIN
from tests.e2e.daemon_helpers import (
    config_of,
    events,
    runs,
    start,
    terminate,
    wait_until,
)
from tests.support import (
    alive,
    chain_steps,
    computed,
    make_training_project,
    tsv_steps,
)

EPOCHS = 7  # steps 0..6


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    runtime = Path(tempfile.mkdtemp(dir="/tmp", prefix="exq-c-"))
    (tmp_path / "rdv").mkdir()
    yield {
        **os.environ,
        "EXQ_STATE_DIR": str(tmp_path / "state"),
        "EXQ_RUNTIME_DIR": str(runtime / "run"),
        "EXQ_GRACE_SECONDS": "10",
        "RDV": str(tmp_path / "rdv"),
        "HOLD_AT": "3",
    }
    shutil.rmtree(runtime, ignore_errors=True)


def queue_status(env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [str(EXQ_BIN), "queue", "status", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return json.loads(out)


def test_kill_9_mid_run_then_restart_resumes_the_chain_without_gap_or_repeat(
    env: dict[str, str], tmp_path: Path
) -> None:
    repo, baseline = make_training_project(tmp_path / "train", epochs=EPOCHS)
    queued = subprocess.run(
        [str(EXQ_BIN), "exp", "run", "--queue", "-n", "ck"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert queued.returncode == 0, queued.stderr
    rdv = Path(env["RDV"])
    daemon = start(env)
    try:

        def progress() -> dict[str, Any] | None:
            (run,) = queue_status(env)["runs"]
            return run if run["checkpoints"] >= 4 else None

        wait_until(progress, "four checkpoints in queue status")
        run = progress()
        assert run is not None and (run["state"], run["checkpoints"]) == ("running", 4)
        assert run["experiment_ref"].endswith("/ck")
        wait_until(lambda: list(rdv.glob("held-*")), "the script to hold after step 3")
        (held,) = rdv.glob("held-*")
        shown = subprocess.run(
            [str(EXQ_BIN), "exp", "show", "--json"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.returncode == 0, shown.stderr
        (record,) = runs(env)
        tip = [row for row in json.loads(shown.stdout) if row["rev"] == record.experiment_sha]
        assert tip and tip[0]["metrics"]["logs.json"]["step"] == 3  # exp show sees it already
        daemon.kill()
        daemon.wait(timeout=10)
        (record,) = runs(env)
        assert (record.state, record.checkpoints) == (RunState.RUNNING, 4)
        daemon = start(env)
        # The dead daemon's script still holds; the restart reaps it (released
        # before that, it would compute step 4 in the old worktree).
        wait_until(lambda: not alive(int(held.name.split("-")[1])), "the old script to be reaped")
        (rdv / "go").write_text("")
        wait_until(
            lambda: runs(env)[0].state in (RunState.SUCCESS, RunState.FAILED),
            "the resumed run to end",
        )
        assert terminate(daemon) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    (done,) = runs(env)
    assert done.state is RunState.SUCCESS, done.error
    assert (done.attempts, done.checkpoints, done.resume_sha) == (2, EPOCHS, record.experiment_sha)
    recovered = [e for e in events(config_of(env).daemon_log) if e["event"] == "run.recovered"]
    assert recovered[-1]["resume_sha"] == record.experiment_sha
    steps = list(range(EPOCHS))
    assert computed(rdv) == steps  # no step computed again after the restart
    assert [
        s for s in chain_steps(repo, done.experiment_sha or "", baseline) if s is not None
    ] == steps
    assert tsv_steps(repo, done.experiment_sha or "") == steps
    assert queue_status(env)["runs"][0]["checkpoints"] == EPOCHS
