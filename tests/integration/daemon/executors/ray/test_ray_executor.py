"""The daemon (in-process) sending checkpoint runs to a real local Ray cluster.

A job stopped from the cluster mid-run is interrupted and resumes on the
cluster from its last checkpoint; a daemon that goes away lets its jobs run
on and the next one follows them again without a second submission; a kill
stops the job. The training script is the one of the local checkpoint tests
(``HOLD_TRAIN``): it waits after step ``HOLD_AT`` for the file ``$RDV/go``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from exq.daemon.config import DaemonConfig
from exq.daemon.executors.ray.executor import submission_id
from exq.daemon.states import RunState
from exq.daemon.store import SyncStore
from exq.daemon.store_async import AsyncStore
from exq.engine.experiments.refs import exp_ref
from exq.engine.git import Git
from tests.ray_cluster import (
    RayCluster,
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
