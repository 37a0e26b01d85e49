"""The daemon's socket server with the CLI's client, in-process, over a real Unix socket.

The handlers are a small recorder standing in for the scheduler: these tests
are about the socket, the modes, the peer check and the protocol's errors.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from exq.daemon.client import Client, DaemonError, DaemonNotRunning
from exq.daemon.config import DaemonConfig
from exq.daemon.protocol import Code, KillReply, StatusReply
from exq.daemon.server import SocketInUse, peer_credentials, serve
from exq.engine.errors import ExqError


class Recorder:
    """Records calls in the order they came; some requests can be made to fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail_with: BaseException | None = None

    async def _record(self, *call: Any) -> None:
        self.calls.append(call)
        if self.fail_with is not None:
            raise self.fail_with

    async def wake(self) -> None:
        await self._record("wake")

    async def status(self) -> dict[str, Any]:
        await self._record("status")
        return {"slots_busy": 1, "slots_total": 2, "paused": True, "running": [{"id": 4}]}

    async def kill(self, run_ids: list[int], force: bool) -> list[int]:
        await self._record("kill", run_ids, force)
        return [i for i in run_ids if i < 10]

    async def pause(self) -> None:
        await self._record("pause")

    async def resume(self) -> None:
        await self._record("resume")

    async def set_jobs(self, n: int) -> None:
        await self._record("set_jobs", n)

    async def stop(self, kill: bool) -> None:
        await self._record("stop", kill)


@pytest.fixture
def config(tmp_path: Path) -> Iterator[DaemonConfig]:
    # tmp_path may be too long for a socket path (108 bytes): the runtime dir goes in /tmp.
    short = Path(tempfile.mkdtemp(prefix="exq-t", dir="/tmp"))
    yield DaemonConfig(state_dir=tmp_path / "state", runtime_dir=short / "run")
    shutil.rmtree(short, ignore_errors=True)


@asynccontextmanager
async def serving(config: DaemonConfig, handlers: Recorder, **kwargs: Any) -> AsyncIterator[Client]:
    async with anyio.create_task_group() as tg:
        await tg.start(
            lambda task_status: serve(config, handlers, task_status=task_status, **kwargs)
        )
        yield Client(config.socket_path, timeout=5)
        tg.cancel_scope.cancel()


async def call(func: Any, *args: Any) -> Any:
    """Run a blocking client call in a thread, as the server runs in this loop."""
    return await anyio.to_thread.run_sync(lambda: func(*args))


def raw_exchange(path: Path, data: bytes) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(data)
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(4096)
            assert chunk, "connection closed without a reply"
            reply += chunk
    return json.loads(reply)


@pytest.mark.anyio
async def test_modes_of_folder_and_socket(config: DaemonConfig) -> None:
    async with serving(config, Recorder()):
        assert stat.S_IMODE(os.stat(config.runtime_dir).st_mode) == 0o700
        st = os.stat(config.socket_path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
    assert not config.socket_path.exists()  # removed when the server stops


@pytest.mark.anyio
async def test_existing_loose_folder_is_tightened(config: DaemonConfig) -> None:
    config.runtime_dir.mkdir(mode=0o755)
    os.chmod(config.runtime_dir, 0o755)
    async with serving(config, Recorder()):
        assert stat.S_IMODE(os.stat(config.runtime_dir).st_mode) == 0o700


@pytest.mark.anyio
async def test_requests_reach_the_handlers_of_the_same_name(config: DaemonConfig) -> None:
    handlers = Recorder()
    async with serving(config, handlers) as client:
        pong = await call(client.ping)
        assert pong.pid == os.getpid()
        await call(client.wake)
        await call(client.pause)
        await call(client.resume)
        await call(client.set_jobs, 3)
        killed = await call(client.kill, [4, 12], True)
        status = await call(client.status)
        await call(client.stop, True)
    assert handlers.calls == [
        ("wake",),
        ("pause",),
        ("resume",),
        ("set_jobs", 3),
        ("kill", [4, 12], True),
        ("status",),
        ("stop", True),
    ]
    assert killed == KillReply(killed=[4], not_running=[12])
    assert status == StatusReply(
        pid=os.getpid(), slots_busy=1, slots_total=2, paused=True, running=[4]
    )


@pytest.mark.anyio
async def test_handler_errors_become_error_replies(config: DaemonConfig) -> None:
    handlers = Recorder()
    async with serving(config, handlers) as client:
        handlers.fail_with = ExqError("no such run 42")
        with pytest.raises(DaemonError) as caught:
            await call(client.kill, [42])
        assert (caught.value.code, caught.value.message) == (Code.FAILED, "no such run 42")
        handlers.fail_with = RuntimeError("boom")
        with pytest.raises(DaemonError) as caught:
            await call(client.pause)
        assert caught.value.code == Code.INTERNAL and "boom" in caught.value.message
        handlers.fail_with = None
        await call(client.resume)  # the server goes on after both
        with pytest.raises(DaemonError) as caught:
            await call(client.set_jobs, 0)
        assert caught.value.code == Code.BAD_REQUEST
    assert ("set_jobs", 0) not in handlers.calls


@pytest.mark.anyio
async def test_unknown_request_and_bad_lines_get_error_replies(config: DaemonConfig) -> None:
    async with serving(config, Recorder()):
        path = config.socket_path
        reply = await call(raw_exchange, path, b'{"v": 1, "type": "frobnicate"}\n')
        assert reply["ok"] is False and reply["error"]["code"] == Code.UNKNOWN_REQUEST
        assert reply["type"] == "frobnicate"
        reply = await call(raw_exchange, path, b"{not json\n")
        assert reply["error"]["code"] == Code.BAD_REQUEST
        reply = await call(raw_exchange, path, b'{"v": 1, "type": "kill", "run_ids": "1"}\n')
        assert reply["error"]["code"] == Code.BAD_REQUEST


@pytest.mark.anyio
async def test_protocol_version_mismatch(config: DaemonConfig) -> None:
    async with serving(config, Recorder()):
        reply = await call(raw_exchange, config.socket_path, b'{"v": 999, "type": "ping"}\n')
    assert reply["ok"] is False
    assert reply["error"]["code"] == Code.VERSION_MISMATCH
    assert "999" in reply["error"]["message"]


@pytest.mark.anyio
async def test_several_requests_on_one_connection(config: DaemonConfig) -> None:
    handlers = Recorder()
    async with serving(config, handlers):

        def two() -> list[bytes]:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(5)
                sock.connect(str(config.socket_path))
                sock.sendall(b'{"v":1,"type":"wake"}\n{"v":1,"type":"pause"}\n')
                reader = sock.makefile("rb")
                return [reader.readline(), reader.readline()]

        lines = await call(two)
    assert [json.loads(line)["type"] for line in lines] == ["wake", "pause"]
    assert handlers.calls == [("wake",), ("pause",)]


@pytest.mark.anyio
async def test_peer_of_another_uid_is_refused(config: DaemonConfig) -> None:
    handlers = Recorder()
    # We cannot connect as another user here; the server is told to expect one instead.
    async with serving(config, handlers, allowed_uid=os.getuid() + 1) as client:
        with pytest.raises(DaemonError) as caught:
            await call(client.wake)
    assert caught.value.code == Code.PERMISSION_DENIED
    assert str(os.getuid()) in caught.value.message
    assert handlers.calls == []


def test_peer_credentials_name_the_connecting_process() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        assert peer_credentials(left) == (os.getpid(), os.getuid(), os.getgid())


@pytest.mark.anyio
async def test_stale_socket_file_is_replaced(config: DaemonConfig) -> None:
    config.runtime_dir.mkdir(mode=0o700)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(config.socket_path))  # bound, never listening, then gone: a dead daemon
    dead.close()
    assert config.socket_path.exists()
    with pytest.raises(DaemonNotRunning):
        Client(config.socket_path).ping()
    async with serving(config, Recorder()) as client:
        assert (await call(client.ping)).pid == os.getpid()


@pytest.mark.anyio
async def test_live_socket_is_not_taken_over(config: DaemonConfig) -> None:
    async with serving(config, Recorder()) as client:
        with pytest.raises(SocketInUse):
            await serve(config, Recorder())
        assert (await call(client.ping)).pid == os.getpid()  # the first one still serves


def test_client_without_daemon(config: DaemonConfig) -> None:
    client = Client(config.socket_path, timeout=1)
    with pytest.raises(DaemonNotRunning) as caught:
        client.status()
    assert caught.value.code == Code.NOT_RUNNING
    assert client.running() is None
    assert client.wake_if_running() is False


def test_client_times_out_on_a_silent_listener(config: DaemonConfig) -> None:
    config.runtime_dir.mkdir(mode=0o700)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.bind(str(config.socket_path))
        silent.listen()
        with pytest.raises(DaemonError) as caught:
            Client(config.socket_path, timeout=0.2).ping()
    assert caught.value.code == Code.TIMEOUT


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the server closed its end (a send fails), not merely stopped reading."""
    try:
        sock.send(b"\n")
    except BlockingIOError:
        return False  # still open: its buffer is full as nobody reads
    except (BrokenPipeError, ConnectionResetError):
        return True
    return False


@pytest.mark.anyio
async def test_a_client_that_stops_reading_is_dropped(config: DaemonConfig) -> None:
    async with serving(config, Recorder(), idle_timeout=0.5):

        def flood_and_wait() -> bool:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(str(config.socket_path))
                sock.setblocking(False)
                pings = b'{"v":1,"type":"ping"}\n' * 200_000  # replies fill the socket
                sent = 0
                while sent < len(pings):
                    try:
                        sent += sock.send(pings[sent:])
                    except BlockingIOError:
                        break  # the server no longer reads: it is stuck sending
                    except (BrokenPipeError, ConnectionResetError):
                        return True
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    if closed_by_peer(sock):
                        return True
                    time.sleep(0.05)
                return False

        assert await call(flood_and_wait), "the connection stayed open"
        assert (await call(Client(config.socket_path, timeout=5).ping)).pid == os.getpid()


@pytest.mark.anyio
async def test_kill_of_many_ids_reads_the_queue_once(tmp_path: Path) -> None:
    """The scheduler's kill handler with a real store: 20,000 ids (two queued, the
    rest unknown) cost a constant number of SQL statements, not one per id."""
    import structlog

    from exq.daemon.scheduler import Scheduler
    from exq.daemon.store import NewRun, SyncStore
    from exq.daemon.store_async import AsyncStore

    db = tmp_path / "queue.db"
    with SyncStore(db) as store:
        ids = [
            store.enqueue(NewRun(name=f"r{i}", repo="/r", baseline="b", snapshot="s"))
            for i in range(2)
        ]
    config = DaemonConfig(state_dir=tmp_path, runtime_dir=tmp_path / "run")
    async with await AsyncStore.open(db) as astore:
        statements: list[str] = []
        await astore._conn.set_trace_callback(statements.append)
        scheduler = Scheduler(astore, config, structlog.get_logger())
        asked = [*range(1000, 21_000), *ids]
        killed = await scheduler.kill(asked, False)
        await astore._conn.set_trace_callback(None)
    assert killed == ids
    assert len(statements) <= 3, statements[:5]
