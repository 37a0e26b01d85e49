"""A real one-node Ray cluster on 127.0.0.1 for the ray executor's tests.

``ray start --head --block`` runs in the foreground of a process the tests
own, with every port on loopback picked free, its files in a short temporary
folder, and this interpreter's folder first on PATH, so the cluster's jobs run
``python -m exq.daemon.remote_worker`` with the exq under test. Stopping that
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def start_cluster(temp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start a head node keeping its files in ``temp``; (its process, the Jobs API address).
    Raises RuntimeError with the end of its output if it does not come up."""
    dashboard = _free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_JOB_STOP_WAIT_TIME_S": "20"}
    args = [
        str(RAY_BIN), "start", "--head", "--block", "--disable-usage-stats",
        "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
        f"--port={_free_port()}", f"--dashboard-port={dashboard}",
        f"--dashboard-agent-listen-port={_free_port()}",
        f"--ray-client-server-port={_free_port()}", f"--metrics-export-port={_free_port()}",
        "--num-cpus=4", "--num-gpus=0", "--include-dashboard=true", f"--temp-dir={temp}",
    ]
    log_path = temp / "ray-start.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(f"{address}/api/version"):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_cluster(proc)
            raise RuntimeError(f"ray start failed: {log_path.read_text()[-2000:]}")
        time.sleep(0.5)
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
