"""The daemon (in-process) sending checkpoint runs to a real local Ray cluster.

A job stopped from the cluster mid-run is interrupted and resumes on the
cluster from its last checkpoint; a daemon that goes away lets its jobs run
on and the next one follows them again without a second submission; a kill
stops the job. The training script is the one of the local checkpoint tests
(``HOLD_TRAIN``): it waits after step ``HOLD_AT`` for the file ``$RDV/go``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from exq.daemon import service
from exq.daemon.config import DaemonConfig
from exq.daemon.executors.ray.executor import submission_id
from exq.daemon.service import EnqueueRequest
from exq.daemon.states import RunState
from exq.daemon.store import SyncStore
from exq.daemon.store_async import AsyncStore
from exq.engine.experiments.refs import exp_ref
from exq.engine.git import Git
from tests.ray_cluster import (
    RayCluster,
    _descendants,
    free_port,
    kill_node,
    ray_available,
    start_head,
    start_worker,
    stop_cluster,
)
from tests.support import (
    call,
    chain_steps,
    computed,
    daemon,
    enqueue,
    events,
    get,
    make_training_project,
    rdv,
    tsv_steps,
    wait_for,
    wait_state,
)

pytestmark = [pytest.mark.anyio, pytest.mark.ray]
SLOW = 180.0  # seconds: a job's start on a 2-core machine is a few seconds


def on_ray(config: DaemonConfig, cluster: RayCluster, hold_at: int) -> DaemonConfig:  # noqa: F811
    return replace(
        config,
        executor="ray",
        ray_address=cluster.address,
        extra_env={**config.extra_env, "HOLD_AT": str(hold_at)},
    )


async def held(config: DaemonConfig, run_id: int, checkpoints: int) -> None:  # noqa: F811
    """Wait until the script holds after a step and that many checkpoints landed."""
    await wait_for(
        lambda: list(rdv(config).glob("held-*")) and get(config, run_id).checkpoints >= checkpoints,
        f"{checkpoints} checkpoints and a held script",
        SLOW,
    )


async def test_a_job_stopped_on_the_cluster_resumes_there_with_a_gapless_chain(
    config: DaemonConfig,
    tmp_path: Path,
    ray_cluster: RayCluster,  # noqa: F811
) -> None:
    repo, baseline = make_training_project(tmp_path / "train", epochs=5)
    config = on_ray(config, ray_cluster, hold_at=2)
    run_id = enqueue(config, repo, "far")
    async with daemon(config):
        await held(config, run_id, 3)
        await wait_for(
            lambda: get(config, run_id).location.startswith(f"ray {ray_cluster.address} node "),
            "the job's node in its location",
        )
        job = submission_id(config.daemon_id(), get(config, run_id))
        await anyio.to_thread.run_sync(ray_cluster.client().stop_job, job)  # as a lost node would
        await wait_for(lambda: get(config, run_id).attempts == 2, "the second attempt", SLOW)
        (rdv(config) / "go").write_text("")
        record = await wait_state(config, run_id, RunState.SUCCESS, RunState.FAILED)
        await wait_for(lambda: get(config, run_id).state is RunState.SUCCESS, "success", SLOW)
    record = get(config, run_id)
    assert record.error is None and record.attempts == 2
    tip = Git.open(repo).get_ref(exp_ref(baseline, "far"))
    assert tip == record.experiment_sha
    assert chain_steps(repo, tip, baseline) == [0, 1, 2, 3, 4]
    assert tsv_steps(repo, tip) == [0, 1, 2, 3, 4]
    assert computed(rdv(config)) == [0, 1, 2, 3, 4]  # no step computed twice
    log = Path(record.log_path or "").read_text()
    assert "\x1e" not in log and "resum" in log.lower()
    # The stop reached every process of the job, the worker's watchdog too: the
    # worker still sent its (interrupted) result, without a traceback of its own.
    # The script may print one (SIGINT in its sleep): that is the user's output.
    assert log.count("sent its result") == 2
    assert all(Path(frame).name == "train.py" for frame in traceback_files(log)), log


async def test_a_restarted_daemon_follows_the_job_it_left_running(
    config: DaemonConfig,
    tmp_path: Path,
    ray_cluster: RayCluster,  # noqa: F811
) -> None:
    repo, baseline = make_training_project(tmp_path / "train", epochs=4)
    config = on_ray(config, ray_cluster, hold_at=1)
    run_id = enqueue(config, repo, "kept")
    async with daemon(config):
        await held(config, run_id, 2)
    assert get(config, run_id).state is RunState.RUNNING  # let go of, not stopped
    (rdv(config) / "go").write_text("")
    # The next daemon runs new work locally: the adopted run stays on its cluster.
    async with daemon(replace(config, executor="local", ray_address="http://127.0.0.1:9")):
        await wait_for(lambda: get(config, run_id).state is not RunState.RUNNING, "its end", SLOW)
    record = get(config, run_id)
    assert (record.state, record.attempts, record.error) == (RunState.SUCCESS, 1, None)
    tip = Git.open(repo).get_ref(exp_ref(baseline, "kept"))
    assert chain_steps(repo, tip, baseline) == [0, 1, 2, 3]
    assert computed(rdv(config)) == [0, 1, 2, 3]
    jobs = await anyio.to_thread.run_sync(ray_cluster.client().list_jobs)
    mine = [
        j for j in jobs if (j.submission_id or "").startswith(f"exq-{config.daemon_id()}-{run_id}-")
    ]
    assert len(mine) == 1  # one attempt, submitted once


async def test_kill_stops_the_job_and_fails_the_run(
    config: DaemonConfig,
    tmp_path: Path,
    ray_cluster: RayCluster,  # noqa: F811
) -> None:
    repo, _ = make_training_project(tmp_path / "train", epochs=4)
    config = on_ray(config, ray_cluster, hold_at=0)
    run_id = enqueue(config, repo, "doomed")
    async with daemon(config):
        await held(config, run_id, 1)
        reply = await call(config, "kill", [run_id], False)
        assert reply.killed == [run_id]  # type: ignore[attr-defined]
        await wait_for(lambda: get(config, run_id).state is not RunState.RUNNING, "its end", SLOW)
    record = get(config, run_id)
    assert (record.state, record.error) == (RunState.FAILED, "killed")
    job = submission_id(config.daemon_id(), record)
    info = await anyio.to_thread.run_sync(ray_cluster.client().get_job_info, job)
    assert str(info.status) in ("STOPPED", "JobStatus.STOPPED", "FAILED", "JobStatus.FAILED")


async def test_resources_and_timeout_mean_the_same_on_ray(
    config: DaemonConfig,
    tmp_path: Path,
    ray_cluster: RayCluster,  # noqa: F811
) -> None:
    repo, baseline = make_training_project(tmp_path / "train", epochs=3)
    config = on_ray(config, ray_cluster, hold_at=0)
    # Held after step 0 until `go`, which comes only after the time limit.
    request = EnqueueRequest(name="slow", stage_jobs=1, timeout="40s", cpus="1", mem="64M")
    ((run_id, _),) = service.enqueue(request, config, root=repo, ring=False)
    async with daemon(config):
        await wait_for(
            lambda: (
                get(config, run_id).state is not RunState.RUNNING
                and get(config, run_id).attempts == 1
            ),
            "the time limit",
            SLOW + 40,
        )
        record = get(config, run_id)
        assert (record.state, record.error) == (
            RunState.TIMEOUT,
            "stopped: it ran past its time limit",
        )

        (rdv(config) / "go").write_text("")
        # Goes on from its checkpoint, on the cluster (the retry rings the daemon).
        await anyio.to_thread.run_sync(lambda: service.retry(config, ["slow"]))
        await wait_for(lambda: get(config, run_id).state is RunState.SUCCESS, "success", SLOW)
    tip = Git.open(repo).get_ref(exp_ref(baseline, "slow"))
    assert chain_steps(repo, tip, baseline) == [0, 1, 2]
    assert computed(rdv(config)) == [0, 1, 2]  # no step computed twice


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[str, Callable[[], subprocess.Popen[bytes]]]]:
    """A head node with no CPUs (jobs that ask for one go to a worker node) and a
    way to add worker nodes: (the Jobs API address, start a worker node)."""
    if not ray_available():
        pytest.skip("Ray is not installed (make ray)")
    temp = Path(tempfile.mkdtemp(prefix="exqray-", dir="/tmp"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        head, address, gcs = start_head(temp, num_cpus=0)
        procs.append(head)

        def add_worker() -> subprocess.Popen[bytes]:
            procs.append(start_worker(temp, gcs, num_cpus=2))
            return procs[-1]

        yield address, add_worker
    finally:
        for proc in reversed(procs):
            stop_cluster(proc)
        shutil.rmtree(temp, ignore_errors=True)


async def test_a_run_whose_node_dies_resumes_on_another_node(
    config: DaemonConfig,
    tmp_path: Path,  # noqa: F811
    two_nodes: tuple[str, Callable[[], subprocess.Popen[bytes]]],
) -> None:
    address, add_worker = two_nodes
    first = add_worker()
    repo, baseline = make_training_project(tmp_path / "train", epochs=5)
    config = replace(
        config, executor="ray", ray_address=address, extra_env={**config.extra_env, "HOLD_AT": "2"}
    )
    run_id = enqueue(config, repo, "moved")
    with SyncStore(config.db_path) as store:  # it needs a CPU: only worker nodes have one
        store._conn.execute("UPDATE runs SET cpus = 1 WHERE id = ?", (run_id,))
    async with daemon(config):
        await held(config, run_id, 3)
        first_node = get(config, run_id).location
        kill_node(first)  # the machine dies, with the run's worker and stage
        await wait_for(lambda: get(config, run_id).attempts == 2, "the second attempt", SLOW)
        events = [
            line
            for line in config.daemon_log.read_text().splitlines()
            if '"state": "interrupted"' in line
        ]
        assert "its node has died" in events[0]
        add_worker()
        (rdv(config) / "go").write_text("")
        await wait_for(lambda: get(config, run_id).state is not RunState.RUNNING, "its end", SLOW)
    record = get(config, run_id)
    assert (record.state, record.attempts, record.error) == (RunState.SUCCESS, 2, None)
    assert record.location != first_node
    tip = Git.open(repo).get_ref(exp_ref(baseline, "moved"))
    assert chain_steps(repo, tip, baseline) == [0, 1, 2, 3, 4]
    assert computed(rdv(config)) == [0, 1, 2, 3, 4]


async def test_a_node_without_exq_fails_the_run_with_the_reason(
    config: DaemonConfig,
    tmp_path: Path,
    ray_cluster: RayCluster,  # noqa: F811
) -> None:
    repo, _ = make_training_project(tmp_path / "train", epochs=2)
    bare_python = Path(sys.base_prefix) / "bin" / "python3"  # this Python without the venv
    config = replace(on_ray(config, ray_cluster, hold_at=-1), ray_python=str(bare_python))
    run_id = enqueue(config, repo, "nowhere")
    async with daemon(config):
        await wait_for(
            lambda: (
                get(config, run_id).state is not RunState.RUNNING
                and get(config, run_id).attempts == 1
            ),
            "its end",
            SLOW,
        )
        record = await wait_state(config, run_id, RunState.FAILED, RunState.SUCCESS)
    assert record.state is RunState.FAILED and record.attempts == 1
    assert record.error is not None and "No module named" in record.error
    assert "\n" not in record.error
    last = Path(record.log_path or "").read_text().splitlines()[-1]
    assert last == f"exq: failed: {record.error}"  # as a local run's log ends


async def test_an_adopted_run_waits_for_its_cluster_to_come_back(
    config: DaemonConfig,
    tmp_path: Path,  # noqa: F811
) -> None:
    if not ray_available():
        pytest.skip("Ray is not installed (make ray)")
    repo, baseline = make_training_project(tmp_path / "train", epochs=2)
    port = free_port()
    address = f"http://127.0.0.1:{port}"
    config = replace(config, extra_env={**config.extra_env, "HOLD_AT": "-1"})
    run_id = enqueue(config, repo, "patient")
    async with await AsyncStore.open(config.db_path) as store:  # as a dead daemon left it
        assert await store.claim(
            run_id,
            slot=0,
            log_path=str(config.logs_dir / "1.log"),
            token="t0",
            location=f"ray {address}",
        )
    temp = Path(tempfile.mkdtemp(prefix="exqray-", dir="/tmp"))
    head = None
    try:
        async with daemon(config):
            await anyio.sleep(3)  # the cluster is away: the run waits, it does not fail
            assert get(config, run_id).state is RunState.RUNNING
            head, _, _ = await anyio.to_thread.run_sync(lambda: start_head(temp, dashboard=port))
            await wait_for(
                lambda: get(config, run_id).state is not RunState.RUNNING, "its end", SLOW
            )
    finally:
        if head is not None:
            stop_cluster(head)
        shutil.rmtree(temp, ignore_errors=True)
    record = get(config, run_id)
    assert (record.state, record.attempts) == (RunState.SUCCESS, 1)
    assert Git.open(repo).get_ref(exp_ref(baseline, "patient")) == record.experiment_sha


@pytest.fixture
def own_head(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A cluster of this test's own that can go and come back on one address:
    calling it starts the head (again); ``own_head.kill`` kills it like a lost machine."""
    if not ray_available():
        pytest.skip("Ray is not installed (make ray)")
    port = free_port()
    heads: list[subprocess.Popen[bytes]] = []
    temps: list[Path] = []

    def start() -> str:
        temps.append(Path(tempfile.mkdtemp(prefix="exqray-", dir="/tmp")))
        head, address, _ = start_head(temps[-1], num_cpus=2, dashboard=port)
        heads.append(head)
        return address

    start.kill = lambda: kill_node(heads[-1])  # type: ignore[attr-defined]
    start.heads = heads  # type: ignore[attr-defined]
    try:
        yield start
    finally:
        for head in heads:
            stop_cluster(head)
        for temp in temps:
            shutil.rmtree(temp, ignore_errors=True)


async def test_runs_wait_for_a_cluster_that_went_away_and_a_restarted_head_requeues_its_runs(
    config: DaemonConfig,
    tmp_path: Path,  # noqa: F811
    own_head: Callable[[], str],
) -> None:
    address = await anyio.to_thread.run_sync(own_head)
    repo, baseline = make_training_project(tmp_path / "train", epochs=3)
    config = replace(
        config,
        jobs=2,
        executor="ray",
        ray_address=address,
        extra_env={**config.extra_env, "HOLD_AT": "0"},
    )
    first = enqueue(config, repo, "first")
    async with daemon(config):
        await held(config, first, 1)
        await anyio.to_thread.run_sync(own_head.kill)  # type: ignore[attr-defined]
        later = enqueue(config, repo, "later")
        await wait_for(lambda: get(config, later).error, "the word on it", SLOW)
        await anyio.sleep(5)  # a few tries of the backoff
        waiting = get(config, later)
        assert (waiting.state, waiting.attempts) == (RunState.QUEUED, 0)
        assert (waiting.error or "").startswith(f"cannot reach the Ray cluster at {address}")
        said = [
            e for e in events(config) if e.get("event") == "ray.unreachable" and "location" in e
        ]
        assert len(said) == 1  # once, not at each try
        assert get(config, first).state is RunState.RUNNING  # its job may still be there

        (rdv(config) / "go").write_text("")
        await anyio.to_thread.run_sync(own_head)  # a new head: it knows no job of before
        await wait_for(lambda: get(config, first).attempts == 2, "the first run sent again", SLOW)
        await wait_for(
            lambda: {get(config, i).state for i in (first, later)} == {RunState.SUCCESS},
            "both runs to succeed",
            SLOW,
        )
    gone = [
        e for e in events(config) if e.get("state") == "interrupted" and e.get("run_id") == first
    ]
    assert "no longer knows job" in str(gone[0]["error"])
    assert get(config, later).attempts == 1
    tip = Git.open(repo).get_ref(exp_ref(baseline, "first"))
    assert chain_steps(repo, tip, baseline) == [0, 1, 2]  # resumed from its checkpoint


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _run_processes() -> list[int]:
    """Pids of the run's worker and of what it started (the stage, the watchdog)."""
    workers = [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and "exq.daemon.executors.ray.worker" in _cmdline(int(entry.name))
    ]
    found = set(workers)
    for pid in workers:
        found |= _descendants(pid)
    return sorted(found)


def _kill_all_but_the_run(head: subprocess.Popen[bytes]) -> None:
    """Kill every process of the head (its services, the job's supervisor and
    Ray's own watcher of it) but the run's worker and what it started: what a
    crash of the cluster's processes leaves behind."""
    keep = set(_run_processes())
    keep |= {pid for pid in _descendants(head.pid) if _session(pid) in {_session(k) for k in keep}}
    doomed = (_descendants(head.pid) | {head.pid}) - keep
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for pid in doomed:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    head.wait()


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except ProcessLookupError:
        return None


async def test_a_run_left_by_a_dead_head_stops(
    config: DaemonConfig,
    tmp_path: Path,  # noqa: F811
    own_head: Callable[[], str],
) -> None:
    address = await anyio.to_thread.run_sync(own_head)
    repo, _ = make_training_project(tmp_path / "train", epochs=3)
    config = replace(
        config, executor="ray", ray_address=address, extra_env={**config.extra_env, "HOLD_AT": "0"}
    )
    run_id = enqueue(config, repo, "orphan")
    async with daemon(config):
        await held(config, run_id, 1)
        assert any("train.py" in _cmdline(pid) for pid in _run_processes())
        await anyio.to_thread.run_sync(_kill_all_but_the_run, own_head.heads[-1])  # type: ignore[attr-defined]
        await wait_for(lambda: not _run_processes(), "the worker and its stage to stop", 30)


def traceback_files(log: str) -> list[str]:
    """The files of every traceback frame in ``log``."""
    return re.findall(r'^\s*File "([^"]+)", line \d+', log, flags=re.MULTILINE)
