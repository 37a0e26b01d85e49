"""The daemon in-process: real git repos, real SQLite, real stage processes.

Stage commands run ``stage.py`` (written into each project), which reads
``mode`` from params.yaml: ``ok`` writes its out, ``fail`` exits 7, ``meet``
waits until another run is at the rendezvous too (so two runs provably
overlap), ``block`` waits for the file ``go``, ``stubborn`` does that while
ignoring SIGINT. Every stage leaves ``start-<run>-<pid>`` (holding its
worker slot) in the rendezvous folder ``RDV``, given through
``config.extra_env``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import replace
from functools import partial
from pathlib import Path

import anyio
import pytest

from exq.daemon.config import DaemonConfig
from exq.daemon.main import DaemonAlreadyRunning, run, sd_notify
from exq.daemon.states import RunState
from exq.daemon.store import NewRun, RunProcess, SyncStore
from exq.daemon.store_async import AsyncStore
from exq.engine.errors import ExqError
from exq.engine.experiments.refs import exp_ref
from exq.engine.git import Git
from tests.support import (
    alive,
    call,
    daemon,
    enqueue,
    events,
    get,
    make_project,
    rdv,
    started,
    wait_for,
    wait_state,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_project(tmp_path / "repo")


# -- running runs -------------------------------------------------------------


async def test_two_slots_run_concurrently_and_commit_experiments(
    config: DaemonConfig, repo: Path
) -> None:
    config = replace(config, jobs=2)
    ids = [enqueue(config, repo, f"meet{i}", "mode=meet", f"lr=0.{i + 2}") for i in range(2)]
    ids.append(enqueue(config, repo, "plain", "lr=0.9"))
    async with daemon(config):
        for run_id in ids:
            await wait_state(config, run_id, RunState.SUCCESS, RunState.FAILED)
    g = Git.open(repo)
    baseline = g.head_sha()
    assert baseline is not None
    for run_id, name in zip(ids, ["meet0", "meet1", "plain"], strict=True):
        record = get(config, run_id)
        assert record.state is RunState.SUCCESS, record.error
        assert record.experiment_ref == exp_ref(baseline, name)
        assert g.get_ref(record.experiment_ref) == record.experiment_sha
        assert (record.attempts, record.exit_code, record.checkpoints) == (1, 0, 0)
        (start,) = started(config, run_id)
        assert start.read_text() == str(record.worker_slot)  # EXQ_WORKER_SLOT
        assert f"done {run_id}" in Path(record.log_path or "").read_text()
    assert {get(config, i).worker_slot for i in ids[:2]} == {0, 1}
    lock = g.read_blob(get(config, ids[1]).experiment_sha or "", "dvc.lock")
    assert lock is not None and b"mode: meet" in lock and b"lr: 0.3" in lock
    assert g.list_worktrees() == []
    assert list(config.worktrees_dir.iterdir()) == []
    finished = [e for e in events(config) if e["event"] == "run.finished"]
    assert sorted(e["run_id"] for e in finished) == ids
    assert all(e["state"] == "success" for e in finished)


async def test_runs_of_two_repositories_meet_once_jobs_is_raised(
    config: DaemonConfig, repo: Path, tmp_path: Path
) -> None:
    other = make_project(tmp_path / "other")
    first = enqueue(config, repo, "here", "mode=meet")
    second = enqueue(config, other, "there", "mode=meet")
    async with daemon(config):
        await wait_for(lambda: started(config, first), "the first run to start")
        assert get(config, second).state is RunState.QUEUED  # one slot
        await call(config, "set_jobs", 2)
        for run_id in (first, second):
            assert (
                await wait_state(config, run_id, RunState.SUCCESS, RunState.FAILED)
            ).state is RunState.SUCCESS
    for run_id, root in ((first, repo), (second, other)):
        record = get(config, run_id)
        assert record.repo == str(root)
        g = Git.open(root)
        assert g.list_refs("refs/exps/") == {record.experiment_ref: record.experiment_sha}
        assert g.list_worktrees() == []


async def test_a_failing_run_is_failed_with_its_code_and_log_and_the_next_goes_on(
    config: DaemonConfig, repo: Path
) -> None:
    bad = enqueue(config, repo, "bad", "mode=fail")
    good = enqueue(config, repo, "good")
    async with daemon(config):
        failed = await wait_state(config, bad, RunState.FAILED, RunState.SUCCESS)
        after = await wait_state(config, good, RunState.SUCCESS, RunState.FAILED)
        assert after.state is RunState.SUCCESS
    assert failed.state is RunState.FAILED
    assert failed.exit_code == 7
    assert failed.error is not None and "train" in failed.error and "7" in failed.error
    assert failed.experiment_ref is None
    log = Path(failed.log_path or "").read_text()
    assert "about to fail" in log and "exq: failed" in log
    assert Git.open(repo).list_refs("refs/exps/").keys() == {get(config, good).experiment_ref}


async def test_a_run_in_a_broken_repository_fails_with_the_error(
    config: DaemonConfig, repo: Path, tmp_path: Path
) -> None:
    gone = tmp_path / "gone"
    with SyncStore(config.db_path) as store:
        lost = store.enqueue(NewRun(repo=str(gone), baseline="a" * 40, snapshot="b" * 40, name="x"))
    good = enqueue(config, repo, "good")
    async with daemon(config):
        await wait_state(config, good, RunState.SUCCESS)
    record = get(config, lost)
    assert record.state is RunState.FAILED
    assert record.error is not None and str(gone) in record.error


# -- control ------------------------------------------------------------------


async def test_kill_fails_a_running_run_and_cancels_a_queued_one(
    config: DaemonConfig, repo: Path
) -> None:
    blocked = enqueue(config, repo, "blocked", "mode=block")
    nxt = enqueue(config, repo, "next")
    later = enqueue(config, repo, "later")
    async with daemon(config):
        await wait_for(lambda: started(config, blocked), "the blocked run to start")
        pid = int(started(config, blocked)[0].name.split("-")[2])
        with SyncStore(config.db_path) as store:
            assert [p.pid for p in store.procs(blocked)] != []
        reply = await call(config, "kill", [blocked, later, 999])
        assert reply.killed == [blocked, later]  # type: ignore[attr-defined]
        killed = await wait_state(config, blocked, RunState.FAILED, RunState.SUCCESS)
        await wait_state(config, nxt, RunState.SUCCESS)
    assert (killed.state, killed.error) == (RunState.FAILED, "killed")
    assert get(config, later).state is RunState.CANCELLED
    assert started(config, later) == []
    await wait_for(lambda: not alive(pid), "the killed stage to be gone")


async def test_pause_starts_nothing_until_resume(config: DaemonConfig, repo: Path) -> None:
    async with daemon(config):
        await call(config, "pause")
        waiting = enqueue(config, repo, "waiting")
        probe = enqueue(config, repo, "probe")
        await call(config, "kill", [probe])  # its cancellation shows a pass went by
        await wait_state(config, probe, RunState.CANCELLED)
        assert get(config, waiting).state is RunState.QUEUED
        status = await call(config, "status")
        assert status.paused and status.slots_busy == 0  # type: ignore[attr-defined]
        await call(config, "resume")
        assert (await wait_state(config, waiting, RunState.SUCCESS)).attempts == 1


async def test_stop_lets_running_runs_finish(config: DaemonConfig, repo: Path) -> None:
    blocked = enqueue(config, repo, "blocked", "mode=block")
    queued = enqueue(config, repo, "queued")
    async with anyio.create_task_group() as tg:
        await tg.start(partial(run, config, install_signal_handlers=False))
        await wait_for(lambda: started(config, blocked), "the run to start")
        await call(config, "stop", False)
        status = await call(config, "status")
        assert status.stopping  # type: ignore[attr-defined]
        (rdv(config) / "go").write_text("")
    # The daemon returned on its own: the run finished, the queued one waits.
    assert get(config, blocked).state is RunState.SUCCESS
    assert get(config, queued).state is RunState.QUEUED
    names = [e["event"] for e in events(config)]
    assert names.index("daemon.stopping") < names.index("daemon.stopped")


async def test_stop_kill_interrupts_and_the_next_start_requeues_at_the_front(
    config: DaemonConfig, repo: Path
) -> None:
    blocked = enqueue(config, repo, "blocked", "mode=block")
    queued = enqueue(config, repo, "queued")
    async with anyio.create_task_group() as tg:
        await tg.start(partial(run, config, install_signal_handlers=False))
        await wait_for(lambda: started(config, blocked), "the run to start")
        await call(config, "stop", True)
    first = get(config, blocked)
    assert first.state is RunState.INTERRUPTED
    assert get(config, queued).state is RunState.QUEUED
    (rdv(config) / "go").write_text("")
    async with daemon(config):
        again = await wait_state(config, blocked, RunState.SUCCESS)
        after = await wait_state(config, queued, RunState.SUCCESS)
    assert again.attempts == 2
    assert again.started is not None and after.started is not None
    assert again.started < after.started  # at the front of the queue
    assert len(started(config, blocked)) == 2


async def test_a_stage_ignoring_sigint_is_killed_after_the_grace(
    config: DaemonConfig, repo: Path
) -> None:
    config = replace(config, grace=0.5)
    stubborn = enqueue(config, repo, "stubborn", "mode=stubborn")
    async with anyio.create_task_group() as tg:
        await tg.start(partial(run, config, install_signal_handlers=False))
        await wait_for(lambda: started(config, stubborn), "the run to start")
        pid = int(started(config, stubborn)[0].name.split("-")[2])
        await call(config, "stop", True)
    assert get(config, stubborn).state is RunState.INTERRUPTED
    assert not alive(pid)
    signalled = [e["signal"] for e in events(config) if e["event"] == "run.signalled"]
    assert signalled[:1] == ["SIGINT"] and "SIGKILL" in signalled


# -- lifecycle ------------------------------------------------------------------


async def test_a_second_daemon_is_refused(config: DaemonConfig, tmp_path: Path) -> None:
    async with daemon(config):
        with pytest.raises(DaemonAlreadyRunning, match=f"pid {os.getpid()}"):
            await run(config, install_signal_handlers=False)
        # Another state folder, the same socket: the server's one-line error.
        other = replace(config, state_dir=tmp_path / "other-state")
        with pytest.raises(ExqError, match="daemon.sock"):
            await run(other, install_signal_handlers=False)
        assert (await call(config, "status")).pid == os.getpid()  # type: ignore[attr-defined]


async def test_recovery_reaps_leftovers_prunes_worktrees_and_requeues(
    config: DaemonConfig, repo: Path
) -> None:
    first = enqueue(config, repo, "first")
    left = enqueue(config, repo, "left")
    TOKEN = f"tok-{uuid.uuid4().hex}"
    # What a SIGKILLed daemon leaves: a run "running" with a live stage process
    # group, its worktree, and a process of someone else that must survive.
    async with await AsyncStore.open(config.db_path) as store:
        assert await store.claim(left, slot=0, log_path=str(config.logs_dir / "x.log"), token=TOKEN)
        orphan = subprocess.Popen(
            ["sleep", "300"], start_new_session=True, env={**os.environ, "EXQ_RUN_TOKEN": TOKEN}
        )
        await store.add_proc(RunProcess(left, orphan.pid, 0, TOKEN))
    stranger = subprocess.Popen(
        ["sleep", "300"],
        start_new_session=True,
        env={**os.environ, "EXQ_RUN_TOKEN": f"other-{TOKEN}"},
    )
    stale = config.worktrees_dir / f"{left}-1"
    Git.open(repo).add_worktree(stale, Git.open(repo).head_sha() or "")
    try:
        async with daemon(config):
            assert orphan.wait(timeout=10) == -signal.SIGKILL
            assert not stale.exists()
            again = await wait_state(config, left, RunState.SUCCESS)
            after = await wait_state(config, first, RunState.SUCCESS)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
    assert again.attempts == 2 and again.started < after.started  # type: ignore[operator]
    recovered = [e for e in events(config) if e["event"] == "run.recovered"]
    assert [(e["run_id"], e["state"]) for e in recovered] == [
        (left, "interrupted"),
        (left, "queued"),
    ]
    assert all(
        os.path.realpath(w.path) != os.path.realpath(stale) for w in Git.open(repo).list_worktrees()
    )


async def test_sd_notify_ready_and_stopping(
    config: DaemonConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config.runtime_dir.parent / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(10)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        async with anyio.create_task_group() as tg:
            await tg.start(partial(run, config, install_signal_handlers=False))
            assert sock.recv(64) == b"READY=1"
            await call(config, "stop", False)
        assert sock.recv(64) == b"STOPPING=1"
    # Under systemd the log also goes to stderr; the file has it either way.
    assert "daemon.started" in [e["event"] for e in events(config)]


def test_sd_notify_to_an_abstract_socket() -> None:
    name = f"exq-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert sd_notify("READY=1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(64) == b"READY=1"
    assert not sd_notify("READY=1", {})
    assert not sd_notify("READY=1", {"NOTIFY_SOCKET": "/nonexistent/socket"})
