"""The daemon's Unix socket: JSON lines from the CLI to the scheduler's handlers.

How ``daemon.main`` starts it, inside its root task group::

    await tg.start(serve, config, handlers)

:func:`serve` makes the runtime folder (0700, ours), removes a stale socket
file left by a dead daemon (refuses if a live one answers there), binds
``config.socket_path`` (0600), calls ``task_status.started()`` once clients
can connect, and serves until it is cancelled; it removes its socket file on
the way out. There is no network port.

Each connection is checked with ``SO_PEERCRED``: a peer whose uid is not ours
gets a ``permission_denied`` reply and is closed. Each line is decoded with
:mod:`exq.daemon.protocol` and answered by the :class:`Dispatcher` method of
the same name as the request type, which calls the handler of the same name
(``kill`` -> ``handlers.kill``, see :class:`exq.daemon.handlers.Handlers`).
Handlers only record intent and wake the scheduler; they must return promptly
(``stop`` too: the reply is sent before the daemon winds down). No exception
crosses the socket: an ``ExqError`` becomes a ``failed`` reply (or the error's
own ``code`` attribute, when it has one of :class:`~exq.daemon.protocol.Code`),
a ``ValueError`` (a bad argument) a ``bad_request`` reply, anything else an
``internal`` reply, logged with its traceback.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import structlog
from anyio.abc import SocketAttribute, SocketListener, SocketStream, TaskStatus
from anyio.streams.buffered import BufferedByteReceiveStream

from exq import __version__
from exq.daemon.config import DaemonConfig
from exq.daemon.handlers import Handlers
from exq.daemon.protocol import (
    MAX_LINE,
    Ack,
    Code,
    ErrorReply,
    Kill,
    KillReply,
    Pause,
    Ping,
    PingReply,
    ProtocolError,
    Reply,
    Request,
    Resume,
    SetJobs,
    Status,
    StatusReply,
    Stop,
    Wake,
    check_jobs,
    decode_request,
    encode_reply,
    peer_credentials,
    request_type_of,
)
from exq.engine.errors import ExqError

log = structlog.get_logger("exq.daemon.server")

# A connection that sends nothing for this long is closed (the CLI sends at once),
# and so is one that does not take a reply within it (a client that stopped reading).
IDLE_TIMEOUT = 60.0
# Connections served at once; further clients wait in the listen backlog. The CLI
# opens one per command, so this is far above use, and it keeps file descriptors
# for the runs.
MAX_CONNECTIONS = 64
# Out of file descriptors (or memory) at accept: wait this long, doubling up to the
# cap, and accept again; connections that end free what the next needs.
ACCEPT_BACKOFF = (0.05, 1.0)
_ACCEPT_RETRY = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class SocketInUse(ExqError):
    """Another daemon answers on the socket path."""


async def serve(
    config: DaemonConfig,
    handlers: Handlers,
    *,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    allowed_uid: int | None = None,
    idle_timeout: float = IDLE_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
) -> None:
    """Serve the socket until cancelled; ``allowed_uid`` defaults to ours, and tests
    lower ``idle_timeout`` and ``max_connections``."""
    path = config.socket_path
    prepare_socket_path(path)
    listener = await anyio.create_unix_listener(path, mode=0o600)
    inode = os.stat(path).st_ino
    dispatcher = Dispatcher(handlers)
    uid = os.getuid() if allowed_uid is None else allowed_uid
    handle = partial(_connection, dispatcher, uid, idle_timeout)
    log.info("socket.listening", path=str(path))
    try:
        async with listener:
            task_status.started()
            await _accept_loop(listener, handle, max_connections)
    finally:
        _unlink_if_ours(path, inode)


async def _accept_loop(
    listener: SocketListener,
    handle: Callable[[SocketStream], Awaitable[None]],
    max_connections: int,
) -> None:
    """Accept and serve connections, at most ``max_connections`` at once; running
    out of file descriptors waits and goes on instead of ending the daemon."""
    slots = anyio.Semaphore(max_connections)
    delay = ACCEPT_BACKOFF[0]
    async with anyio.create_task_group() as tg:
        while True:
            await slots.acquire()
            try:
                stream = await listener.accept()
            except anyio.BrokenResourceError as exc:
                slots.release()
                cause = exc.__cause__
                if not isinstance(cause, OSError) or cause.errno not in _ACCEPT_RETRY:
                    raise
                log.warning("socket.accept_failed", error=str(cause), retry_in=delay)
                await anyio.sleep(delay)
                delay = min(delay * 2, ACCEPT_BACKOFF[1])
                continue
            delay = ACCEPT_BACKOFF[0]
            tg.start_soon(_serve_one, handle, stream, slots)


async def _serve_one(
    handle: Callable[[SocketStream], Awaitable[None]],
    stream: SocketStream,
    slots: anyio.Semaphore,
) -> None:
    try:
        await handle(stream)
    except Exception:  # a bug in one connection must not end the daemon's others
        log.exception("socket.connection_failed")
    finally:
        slots.release()


def prepare_socket_path(path: Path) -> None:
    """Make the socket's folder (0700, ours) and clear a stale socket file.

    Raises :class:`SocketInUse` if a live daemon answers at ``path``.
    """
    folder = path.parent
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            raise ExqError(
                f"{folder} is not a folder of ours", hint="remove it or set EXQ_RUNTIME_DIR"
            )
        if stat.S_IMODE(st.st_mode) != 0o700:  # made earlier by someone else's umask
            os.chmod(folder, 0o700)
        if os.path.lexists(path):
            if _answers(path):
                raise SocketInUse(f"another exq daemon is listening on {path}")
            os.unlink(path)  # left by a daemon that died without cleaning up
            log.info("socket.stale_removed", path=str(path))
    except OSError as exc:
        raise ExqError(f"cannot prepare the socket folder {folder}: {exc}") from exc


def _answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(os.fspath(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _unlink_if_ours(path: Path, inode: int) -> None:
    try:
        if os.stat(path).st_ino == inode:
            os.unlink(path)
    except OSError:
        pass


async def _drain(stream: SocketStream) -> None:
    """Read, for a moment and up to 64 KiB, what a refused peer sent: closing a
    socket with unread data resets it, and the peer would lose the refusal."""
    with anyio.move_on_after(1):
        await stream.send_eof()
        received = 0
        while received < 65536:
            try:
                received += len(await stream.receive(4096))
            except anyio.EndOfStream:
                return


async def _connection(
    dispatcher: Dispatcher, allowed_uid: int, idle_timeout: float, stream: SocketStream
) -> None:
    async with stream:
        try:
            pid, uid, _gid = peer_credentials(stream.extra(SocketAttribute.raw_socket))
            if uid != allowed_uid:
                log.warning("socket.rejected", peer_pid=pid, peer_uid=uid)
                refusal = ErrorReply(Code.PERMISSION_DENIED, f"uid {uid} may not use this daemon")
                await _send(stream, encode_reply("?", refusal), idle_timeout)
                await _drain(stream)
                return
            await _serve_lines(dispatcher, stream, idle_timeout)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            # The client went away mid-exchange: nothing to answer.
            log.debug("socket.client_gone", error=str(exc))
        except TimeoutError:
            log.info("socket.client_not_reading")


async def _send(stream: SocketStream, data: bytes, timeout: float) -> None:
    """Send a reply; TimeoutError if the client does not take it in ``timeout``."""
    with anyio.fail_after(timeout):
        await stream.send(data)


async def _serve_lines(dispatcher: Dispatcher, stream: SocketStream, idle_timeout: float) -> None:
    reader = BufferedByteReceiveStream(stream)
    while True:
        line = b""
        with anyio.move_on_after(idle_timeout):
            try:
                line = await reader.receive_until(b"\n", MAX_LINE)
            except (anyio.EndOfStream, anyio.IncompleteRead):
                return
            except anyio.DelimiterNotFound:
                too_long = ErrorReply(Code.BAD_REQUEST, f"message longer than {MAX_LINE} bytes")
                await _send(stream, encode_reply("?", too_long), idle_timeout)
                return
        if not line:
            return  # idle too long, or an empty line
        await _send(stream, await dispatcher.handle(line), idle_timeout)


class Dispatcher:
    """Answers requests; one method per request type, named alike."""

    def __init__(self, handlers: Handlers) -> None:
        self.handlers = handlers
        self._methods: dict[str, Callable[[Any], Awaitable[Reply]]] = {
            "ping": self.ping,
            "status": self.status,
            "wake": self.wake,
            "kill": self.kill,
            "pause": self.pause,
            "resume": self.resume,
            "set_jobs": self.set_jobs,
            "stop": self.stop,
        }

    async def handle(self, line: bytes) -> bytes:
        """The encoded reply to one encoded request; never raises (bar cancellation)."""
        try:
            request = decode_request(line)
        except ProtocolError as exc:
            return encode_reply(request_type_of(line), ErrorReply(exc.code, exc.message))
        except Exception as exc:  # whatever the line, the daemon answers and goes on
            log.warning("socket.unreadable_request", error=repr(exc))
            unreadable = ErrorReply(Code.BAD_REQUEST, f"cannot read the request: {exc!r}")
            return encode_reply("?", unreadable)
        return encode_reply(request.kind, await self.call(request))

    async def call(self, request: Request) -> Reply | ErrorReply:
        method = self._methods.get(request.kind)
        if method is None:  # a protocol type with no method here: a bug, reported as such
            return ErrorReply(Code.UNKNOWN_REQUEST, f"request '{request.kind}' is not handled")
        try:
            return await method(request)
        except ExqError as exc:
            code = getattr(exc, "code", None)
            return ErrorReply(code if code in Code.ALL else Code.FAILED, str(exc))
        except ValueError as exc:  # handlers raise it for a bad argument (jobs < 1)
            return ErrorReply(Code.BAD_REQUEST, str(exc))
        except Exception as exc:  # no exception crosses the socket
            log.exception("socket.handler_failed", request=request.kind)
            return ErrorReply(Code.INTERNAL, f"internal error in '{request.kind}': {exc!r}")

    async def ping(self, request: Ping) -> PingReply:
        return PingReply(pid=os.getpid(), version=__version__)

    async def status(self, request: Status) -> StatusReply:
        return _status_reply(await self.handlers.status())

    async def wake(self, request: Wake) -> Ack:
        await self.handlers.wake()
        return Ack()

    async def kill(self, request: Kill) -> KillReply:
        done = await self.handlers.kill(list(request.run_ids), request.force)
        if isinstance(done, KillReply):
            return done
        killed = list(request.run_ids) if done is None else [int(i) for i in done]
        gone = set(killed)
        return KillReply(killed=killed, not_running=[i for i in request.run_ids if i not in gone])

    async def pause(self, request: Pause) -> Ack:
        await self.handlers.pause()
        return Ack()

    async def resume(self, request: Resume) -> Ack:
        await self.handlers.resume()
        return Ack()

    async def set_jobs(self, request: SetJobs) -> Ack:
        check_jobs(request.jobs)
        await self.handlers.set_jobs(request.jobs)
        return Ack()

    async def stop(self, request: Stop) -> Ack:
        await self.handlers.stop(request.kill)
        return Ack()


def _status_reply(value: Any) -> StatusReply:
    if isinstance(value, StatusReply):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    get = value.get if isinstance(value, dict) else partial(getattr, value)
    running = get("running", None) or []
    return StatusReply(
        pid=int(get("pid", os.getpid())),
        slots_busy=int(get("slots_busy", len(running))),
        slots_total=int(get("slots_total", 0)),
        paused=bool(get("paused", False)),
        stopping=bool(get("stopping", False)),
        running=[_run_id(r) for r in running],
        gpus_total=int(get("gpus_total", 0)),
        gpus_free=int(get("gpus_free", 0)),
        cpus_total=float(get("cpus_total", 0.0)),
        mem_total=int(get("mem_total", 0)),
    )


def _run_id(run: Any) -> int:
    """A run id, from an id, a record with ``id`` or a dict with ``"id"``."""
    if isinstance(run, dict):
        return int(run["id"])
    return int(getattr(run, "id", run))
