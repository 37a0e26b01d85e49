"""The CLI's side of the daemon socket: plain blocking ``socket``, no anyio.

One connection per request: connect, send one line, read one line. Method
names mirror the request types (``Client.kill`` sends :class:`~exq.daemon.protocol.Kill`,
which the daemon's ``Dispatcher.kill`` answers). Failures are
:class:`DaemonError` (an ``ExqError``) with a :class:`~exq.daemon.protocol.Code`;
:class:`DaemonNotRunning` when nothing answers on the socket.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from pathlib import Path
from typing import TypeVar

from exq.daemon.alive import lock_holder as lock_holder  # where the CLI has long found it
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
    decode_reply,
    encode_request,
    peer_credentials,
)
from exq.engine.errors import ExqError

_R = TypeVar("_R", bound=Reply)

DEFAULT_TIMEOUT = 10.0
# Errors of connect() that mean "no daemon here" (the file is missing, or stale).
_NOT_RUNNING = {errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK}


class DaemonError(ExqError):
    """A request the daemon refused or could not answer; ``code`` says why."""

    def __init__(self, code: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code


class DaemonNotRunning(DaemonError):
    """No daemon answers on the socket."""

    def __init__(self, socket_path: Path) -> None:
        super().__init__(
            Code.NOT_RUNNING,
            f"the exq daemon is not running (no answer on {socket_path})",
            hint="start it with 'exq queue start'",
        )


class Client:
    """Talks to the daemon listening on ``socket_path``."""

    def __init__(self, socket_path: Path | str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.socket_path = Path(socket_path)
        self.timeout = timeout

    def request(self, request: Request) -> Reply:
        """Send ``request``, return its reply; raise :class:`DaemonError` for an error reply."""
        line = self._exchange(encode_request(request))
        try:
            reply = decode_reply(line, request)
        except ProtocolError as exc:
            raise DaemonError(exc.code, f"bad reply from the daemon: {exc.message}") from exc
        if isinstance(reply, ErrorReply):
            raise DaemonError(reply.code, reply.message)
        return reply

    def _exchange(self, data: bytes) -> bytes:
        check_runtime_folder(self.socket_path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            try:
                sock.connect(os.fspath(self.socket_path))
            except OSError as exc:
                if exc.errno in _NOT_RUNNING:
                    raise DaemonNotRunning(self.socket_path) from exc
                raise DaemonError(
                    Code.NOT_RUNNING, f"cannot connect to the daemon at {self.socket_path}: {exc}"
                ) from exc
            _check_server(sock, self.socket_path)
            try:
                sock.sendall(data)
                return _read_line(sock)
            except TimeoutError as exc:
                raise DaemonError(
                    Code.TIMEOUT, f"the daemon did not answer within {self.timeout:g} s"
                ) from exc
            except OSError as exc:
                raise DaemonError(
                    Code.PROTOCOL, f"lost the connection to the daemon: {exc}"
                ) from exc
        finally:
            sock.close()

    # -- one method per request type, named alike -------------------------

    def ping(self) -> PingReply:
        return _expect(self.request(Ping()), PingReply)

    def status(self) -> StatusReply:
        return _expect(self.request(Status()), StatusReply)

    def wake(self) -> None:
        _expect(self.request(Wake()), Ack)

    def kill(self, run_ids: list[int], force: bool = False) -> KillReply:
        return _expect(self.request(Kill(run_ids=list(run_ids), force=force)), KillReply)

    def pause(self) -> None:
        _expect(self.request(Pause()), Ack)

    def resume(self) -> None:
        _expect(self.request(Resume()), Ack)

    def set_jobs(self, jobs: int) -> None:
        _expect(self.request(SetJobs(jobs=jobs)), Ack)

    def stop(self, kill: bool = False) -> None:
        _expect(self.request(Stop(kill=kill)), Ack)

    # -- conveniences ------------------------------------------------------

    def running(self) -> PingReply | None:
        """The daemon's ping reply, or None when no daemon answers."""
        try:
            return self.ping()
        except DaemonNotRunning:
            return None

    def wake_if_running(self) -> bool:
        """Ring the daemon if it runs; True if it answered. Never raises."""
        try:
            self.wake()
        except DaemonError:
            return False
        return True


def check_runtime_folder(socket_path: Path) -> None:
    """Refuse a socket folder (or socket) that another user owns or may write to:
    whoever answers there could pose as our daemon. Nothing there: not running."""
    folder = socket_path.parent
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        raise DaemonNotRunning(socket_path) from None
    except OSError as exc:
        raise _untrusted(folder, f"cannot be read ({exc.strerror})") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise _untrusted(folder, "is not a folder")
    _check_owner(folder, st, "folder")
    try:
        sock_st = os.lstat(socket_path)
    except FileNotFoundError:
        raise DaemonNotRunning(socket_path) from None
    except OSError as exc:
        raise _untrusted(folder, f"cannot be read ({exc.strerror})") from exc
    if stat.S_ISSOCK(sock_st.st_mode):  # its mode matters not: the folder guards it
        _check_owner(folder, sock_st, "socket", writable_ok=True)


def _check_owner(folder: Path, st: os.stat_result, what: str, *, writable_ok: bool = False) -> None:
    uid = os.getuid()
    if st.st_uid != uid:
        raise _untrusted(folder, f"its {what} belongs to uid {st.st_uid}, not to you (uid {uid})")
    if not writable_ok and stat.S_IMODE(st.st_mode) & 0o022:
        mode = oct(stat.S_IMODE(st.st_mode))[2:]
        raise _untrusted(folder, f"its {what} may be written by other users (mode {mode})")


def _check_server(sock: socket.socket, socket_path: Path) -> None:
    """Refuse a listener run by another user (it may have replaced our socket)."""
    pid, uid, _gid = peer_credentials(sock)
    if uid != os.getuid():
        raise _untrusted(
            socket_path.parent, f"the process answering there (pid {pid}) runs as uid {uid}"
        )


def _untrusted(folder: Path, why: str) -> DaemonError:
    return DaemonError(
        Code.PERMISSION_DENIED,
        f"refusing the daemon folder {folder}: {why}",
        hint="another user may have made it: remove it, or set XDG_RUNTIME_DIR",
    )


def _read_line(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise DaemonError(Code.PROTOCOL, "the daemon closed the connection without a reply")
        newline = chunk.find(b"\n")
        if newline >= 0:
            chunks.append(chunk[:newline])
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_LINE:
            raise DaemonError(Code.PROTOCOL, "the daemon's reply is too long")


def _expect(reply: Reply, cls: type[_R]) -> _R:
    if not isinstance(reply, cls):  # decode_reply builds request.reply: a bug if it differs
        raise DaemonError(Code.PROTOCOL, f"unexpected reply {type(reply).__name__}")
    return reply
