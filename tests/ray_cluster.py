"""A real one-node Ray cluster on 127.0.0.1 for the ray executor's tests.

``ray start --head --block`` runs in the foreground of a process the tests
own, with every port on loopback picked free, its files in a short temporary
folder, and this interpreter's folder first on PATH, so the cluster's jobs run
``python -m exq.daemon.executors.ray.worker`` with the exq under test. Stopping that
process stops the cluster. Tests that use it carry the ``ray`` mark and are
skipped where Ray is not installed (``make test`` installs it).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

RAY_BIN = Path(sys.executable).parent / "ray"
START_TIMEOUT = 90.0


@dataclass(frozen=True)
class RayCluster:
    address: str  # the Jobs API (dashboard) address
    temp_dir: Path

    def client(self):  # noqa: ANN201 - Ray's type, imported only here
        from ray.job_submission import JobSubmissionClient

        return JobSubmissionClient(self.address)


def ray_available() -> bool:
    try:
        import ray.job_submission  # noqa: F401
    except ImportError:
        return False
    return RAY_BIN.is_file()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def _env() -> dict[str, str]:
    # Fast health checks: a node killed by a test is declared dead in seconds.
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_JOB_STOP_WAIT_TIME_S": "20",
        "RAY_health_check_period_ms": "500",
        "RAY_health_check_failure_threshold": "4",
        "RAY_health_check_initial_delay_ms": "1000",
    }


def _spawn(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [
                str(RAY_BIN),
                "start",
                "--block",
                "--disable-usage-stats",
                "--node-ip-address=127.0.0.1",
                *args,
            ],
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_head(
    temp: Path, num_cpus: int = 4, dashboard: int | None = None
) -> tuple[subprocess.Popen[bytes], str, int]:
    """Start a head node keeping its files in ``temp``: (its process, the Jobs API
    address, the GCS port). Raises RuntimeError with the end of its output if it
    does not come up."""
    dashboard, gcs = dashboard or free_port(), free_port()
    proc = _spawn(
        [
            "--head",
            "--dashboard-host=127.0.0.1",
            f"--port={gcs}",
            f"--dashboard-port={dashboard}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--ray-client-server-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--num-cpus={num_cpus}",
            "--num-gpus=0",
            "--include-dashboard=true",
            f"--temp-dir={temp}",
        ],
        temp / "ray-head.log",
    )
    address = f"http://127.0.0.1:{dashboard}"
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(f"{address}/api/version"):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_cluster(proc)
            raise RuntimeError(f"ray start failed: {(temp / 'ray-head.log').read_text()[-2000:]}")
        time.sleep(0.5)
    return proc, address, gcs


def start_worker(temp: Path, gcs: int, num_cpus: int) -> subprocess.Popen[bytes]:
    """Add a worker node to the cluster whose GCS listens on ``gcs``."""
    return _spawn(
        [
            f"--address=127.0.0.1:{gcs}",
            f"--num-cpus={num_cpus}",
            "--num-gpus=0",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--metrics-export-port={free_port()}",
        ],
        temp / "ray-worker.log",
    )


def start_cluster(temp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A one-node cluster with 4 CPUs: (its process, the Jobs API address)."""
    proc, address, _ = start_head(temp)
    return proc, address


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    if not ray_available():
        pytest.skip("Ray is not installed (make ray)")
    temp = Path(tempfile.mkdtemp(prefix="exqray-", dir="/tmp"))  # Ray's socket paths are short
    try:
        try:
            proc, address = start_cluster(temp)
        except RuntimeError as exc:
            pytest.fail(str(exc))
        try:
            yield RayCluster(address=address, temp_dir=temp)
        finally:
            stop_cluster(proc)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def stop_cluster(proc: subprocess.Popen[bytes]) -> None:
    """Stop the head node and everything it started (they share its session)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def kill_node(proc: subprocess.Popen[bytes]) -> None:
    """Kill a node as a machine dies: every process under its ``ray start``, at
    once, whatever session it made (the raylet's workers, the job's driver and
    its stages), stopped first so that none can react."""
    tree = _descendants(proc.pid) | {proc.pid}
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for pid in tree:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    proc.wait()


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found
