"""A real ``exq daemon`` process attacked through its socket: it answers and goes on.

Each test talks to the daemon over its real Unix socket, with lines a client
could send by mistake or on purpose (nesting deep enough to exhaust a
recursive parser, numbers no run id can be, more connections than file
descriptors), then checks that the daemon still answers a ping.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exq.daemon.client import Client
from exq.daemon.protocol import MAX_JOBS
from exq.daemon.server import MAX_CONNECTIONS
from tests.e2e.conftest import EXQ_BIN, exq
from tests.e2e.queue_helpers import (
    QueueEnv,
    daemon_pid,
    wait_for,
)


def start_daemon(env: QueueEnv, *, max_files: int | None = None) -> subprocess.Popen[bytes]:
    """``exq daemon`` in a session of its own, with at most ``max_files`` open files."""

    def limit() -> None:
        if max_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max_files, max_files))

    proc = subprocess.Popen(
        [str(EXQ_BIN), "daemon"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=limit,
    )
    wait_for(lambda: proc.poll() is not None or Client(env.socket).running(), "the daemon")
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    return proc


@pytest.fixture
def daemon(queue_env: QueueEnv) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_daemon(queue_env)
    yield proc
    stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def exchange(path: Path, data: bytes) -> dict[str, Any]:
    """Send ``data`` on a new connection; the one reply line, decoded."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(path))
        sock.sendall(data)
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(65536)
            assert chunk, "the daemon closed the connection without a reply"
            reply += chunk
    assert reply.count(b"\n") == 1
    return json.loads(reply)


def assert_alive(env: QueueEnv, proc: subprocess.Popen[bytes]) -> None:
    assert proc.poll() is None, "the daemon exited"
    assert Client(env.socket, timeout=30).ping().pid == proc.pid


UNREADABLE = {
    "nested lists": b"[" * 100_000 + b"\n",
    "nested objects": b'{"a":' * 100_000 + b"\n",
    "nested inside a request": b'{"v":1,"type":"kill","run_ids":' + b"[" * 100_000 + b"\n",
    "not utf-8": b'{"v":1,"type":"\xff\xfe"}\n',
    "a number of 5000 digits": b'{"v":1,"type":"kill","run_ids":[' + b"9" * 5000 + b"]}\n",
    "infinity": b'{"v":1,"type":"set_jobs","jobs":Infinity}\n',
}


@pytest.mark.parametrize("line", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_request_gets_an_error_and_the_daemon_goes_on(
    queue_env: QueueEnv, daemon: subprocess.Popen[bytes], line: bytes
) -> None:
    reply = exchange(queue_env.socket, line)
    assert reply["ok"] is False
    assert reply["error"]["code"] == "bad_request"
    assert "\n" not in reply["error"]["message"]
    assert_alive(queue_env, daemon)


def test_a_run_id_beyond_64_bits_is_a_bad_request(
    queue_env: QueueEnv, daemon: subprocess.Popen[bytes]
) -> None:
    huge = 10**30
    line = json.dumps({"v": 1, "type": "kill", "run_ids": [huge]}).encode() + b"\n"
    reply = exchange(queue_env.socket, line)
    assert reply["error"]["code"] == "bad_request", reply
    assert "out of range" in reply["error"]["message"]
    # The CLI: an unknown run, not the daemon's "internal" (exit 70).
    code, _, err = exq("queue", "kill", str(huge), cwd=queue_env.state.parent, check=False)
    assert code == 1, err
    assert err.strip() == f"ERROR: no run '{huge}' in the queue (see 'exq queue status')"
    assert_alive(queue_env, daemon)


def test_jobs_above_the_bound_are_refused(
    queue_env: QueueEnv, daemon: subprocess.Popen[bytes]
) -> None:
    line = json.dumps({"v": 1, "type": "set_jobs", "jobs": 1_000_000_000}).encode() + b"\n"
    reply = exchange(queue_env.socket, line)
    assert reply["error"]["code"] == "bad_request"
    assert str(MAX_JOBS) in reply["error"]["message"]
    code, _, err = exq("queue", "start", "-j", "30000000", cwd=queue_env.state.parent, check=False)
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and str(MAX_JOBS) in err
    assert Client(queue_env.socket).status().slots_total == 1
    exq("queue", "start", "-j", str(MAX_JOBS), cwd=queue_env.state.parent)
    assert Client(queue_env.socket).status().slots_total == MAX_JOBS
    assert_alive(queue_env, daemon)


def test_queue_start_with_jobs_above_the_bound_starts_nothing(queue_env: QueueEnv) -> None:
    code, _, err = exq(
        "queue", "start", "-j", "1000000000", cwd=queue_env.state.parent, check=False
    )
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and str(MAX_JOBS) in err
    assert daemon_pid(queue_env) is None


def socket_fds(pid: int) -> int:
    """How many sockets process ``pid`` has open."""
    fds = Path(f"/proc/{pid}/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:
            pass  # closed meanwhile
    return count


def test_connections_are_capped(queue_env: QueueEnv, daemon: subprocess.Popen[bytes]) -> None:
    base = socket_fds(daemon.pid)
    idle = []
    try:
        for _ in range(MAX_CONNECTIONS + 40):  # connected, never sending
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(queue_env.socket))
            idle.append(sock)
        # The daemon took as many as it serves at once (``base`` may have counted
        # the start's ping connection still), and no more.
        taken = MAX_CONNECTIONS - 1
        wait_for(lambda: socket_fds(daemon.pid) - base >= taken, "connections taken")
        assert socket_fds(daemon.pid) - base <= MAX_CONNECTIONS
        # Clients that hang up make room for the next ones.
        for sock in idle[:5]:
            sock.close()
        wait_for(lambda: socket_fds(daemon.pid) - base >= taken, "room made")
        assert socket_fds(daemon.pid) - base <= MAX_CONNECTIONS
    finally:
        for sock in idle:
            sock.close()
    assert_alive(queue_env, daemon)


def test_out_of_file_descriptors_at_accept_is_survived(queue_env: QueueEnv) -> None:
    proc = start_daemon(queue_env, max_files=48)
    try:
        idle = []
        try:
            for _ in range(60):  # more than the daemon has descriptors left for
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(str(queue_env.socket))
                idle.append(sock)
            log = queue_env.state / "daemon.log"
            wait_for(lambda: "socket.accept_failed" in log.read_text(), "accept to fail")
            assert proc.poll() is None
        finally:
            for sock in idle:
                sock.close()
        assert_alive(queue_env, proc)
    finally:
        stop(proc)
