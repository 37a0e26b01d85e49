"""The daemon as a real process: kill -9 under load, SIGTERM, a second daemon.

The daemon is the real ``exq daemon`` process, configured by the environment
only; the projects and the stage script are those of the in-process tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from exq.daemon.states import RunState
from exq.daemon.store import SyncStore
from exq.engine.git import Git
from tests.e2e.conftest import EXQ_BIN
from tests.e2e.daemon_helpers import config_of, events, runs, start, terminate, wait_until
from tests.support import alive, enqueue, make_project


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    runtime = Path(tempfile.mkdtemp(dir="/tmp", prefix="exq-e-"))
    (tmp_path / "rdv").mkdir()
    yield {
        **os.environ,
        "EXQ_STATE_DIR": str(tmp_path / "state"),
        "EXQ_RUNTIME_DIR": str(runtime / "run"),
        "EXQ_GRACE_SECONDS": "10",
        "RDV": str(tmp_path / "rdv"),
    }
    shutil.rmtree(runtime, ignore_errors=True)


def test_kill_9_with_two_running_and_ten_queued_loses_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    repo = make_project(tmp_path / "repo")
    db = config_of(env).db_path
    ids = [
        enqueue(config_of(env), repo, f"r{i}", "mode=block", f"lr={i}", env=env) for i in range(12)
    ]
    daemon = start(env, jobs=2)
    try:
        with SyncStore(db) as store:
            wait_until(lambda: sum(len(store.procs(i)) for i in ids) == 2, "two runs to start")
            running = [r for r in store.list_runs() if r.state is RunState.RUNNING]
            pids = [p.pid for r in running for p in store.procs(r.id)]
        assert len(running) == 2
        rdv = Path(env["RDV"])
        wait_until(lambda: all(list(rdv.glob(f"start-{r.id}-*")) for r in running), "stage scripts")
        pids += [int(p.name.split("-")[2]) for p in rdv.glob("start-*")]
        daemon.kill()
        daemon.wait(timeout=10)
        assert sorted(r.state for r in runs(env)).count(RunState.QUEUED) == 10
        daemon = start(env, jobs=2)
        wait_until(
            lambda: not any(alive(pid) for pid in pids), "the dead daemon's stages to go", seconds=5
        )
        reaped = [e for e in events(config_of(env).daemon_log) if e["event"] == "recovery.killed"]
        assert set(pids) <= set(reaped[-1]["pids"])  # the restart killed them, nothing else
        (rdv / "go").write_text("")
        wait_until(lambda: all(r.state is RunState.SUCCESS for r in runs(env)), "all twelve")
        assert terminate(daemon) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    final = runs(env)
    assert [r.id for r in final] == ids
    assert sorted(r.attempts for r in final) == [1] * 10 + [2, 2]
    assert {r.id for r in final if r.attempts == 2} == {r.id for r in running}
    finished = [e for e in events(config_of(env).daemon_log) if e["event"] == "run.finished"]
    assert sorted(e["run_id"] for e in finished if e["state"] == "success") == ids
    refs = Git.open(repo).list_refs("refs/exps/")
    assert len(refs) == 12
    assert {r.experiment_ref: r.experiment_sha for r in final} == refs


def test_sigterm_exits_0_interrupts_and_the_next_start_requeues(
    env: dict[str, str], tmp_path: Path
) -> None:
    repo = make_project(tmp_path / "repo")
    run_id = enqueue(config_of(env), repo, "blocked", "mode=block", env=env)
    rdv = Path(env["RDV"])
    daemon = start(env)
    try:
        wait_until(lambda: list(rdv.glob(f"start-{run_id}-*")), "the stage to start")
        pid = int(next(rdv.glob(f"start-{run_id}-*")).name.split("-")[2])
        assert terminate(daemon) == 0
        assert not alive(pid)
        (record,) = runs(env)
        assert (record.state, record.attempts) == (RunState.INTERRUPTED, 1)
        assert not Path(config_of(env).socket_path).exists()
        (rdv / "go").write_text("")
        daemon = start(env)
        wait_until(lambda: runs(env)[0].state is RunState.SUCCESS, "the run to succeed")
        assert runs(env)[0].attempts == 2
        assert terminate(daemon) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()


def test_a_second_sigterm_skips_the_grace(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "EXQ_GRACE_SECONDS": "600"}  # the test would time out long before
    repo = make_project(tmp_path / "repo")
    run_id = enqueue(config_of(env), repo, "stubborn", "mode=stubborn", env=env)
    rdv = Path(env["RDV"])
    daemon = start(env)
    try:
        wait_until(lambda: list(rdv.glob(f"start-{run_id}-*")), "the stage to start")
        pid = int(next(rdv.glob(f"start-{run_id}-*")).name.split("-")[2])
        daemon.send_signal(signal.SIGTERM)
        log = config_of(env).daemon_log
        wait_until(lambda: any(e["event"] == "run.signalled" for e in events(log)), "SIGINT")
        assert alive(pid)  # it ignores SIGINT
        assert terminate(daemon) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert not alive(pid)
    assert runs(env)[0].state is RunState.INTERRUPTED


def test_a_second_daemon_is_refused_with_one_line(env: dict[str, str], tmp_path: Path) -> None:
    first = start(env)
    elsewhere = Path(tempfile.mkdtemp(dir="/tmp", prefix="exq-e-"))
    try:
        # The same socket, then only the same state folder (the lock).
        for runtime in (env["EXQ_RUNTIME_DIR"], str(elsewhere / "run")):
            second = subprocess.run(
                [str(EXQ_BIN), "daemon"],
                capture_output=True,
                text=True,
                env={**env, "EXQ_RUNTIME_DIR": runtime},
                timeout=60,
            )
            assert second.returncode != 0
            lines = second.stderr.strip().splitlines()
            assert len(lines) == 1 and f"already running (pid {first.pid}" in lines[0], lines
        assert first.poll() is None
    finally:
        assert terminate(first) == 0
        shutil.rmtree(elsewhere, ignore_errors=True)
