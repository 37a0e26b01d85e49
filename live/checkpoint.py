"""The checkpoint handshake between a training script and the stage runner.

A training script calls ``exq.live.make_checkpoint()`` (or ``Live.next_step()``
with checkpoints on) when its checkpoint outputs are complete on disk.  The call
tells the runner, then BLOCKS until the runner has taken its snapshot (outs to
the cache, metrics, the checkpoint commit) and answered.  While the script waits
it sits in a blocking ``recv``: it writes nothing, so the runner may also kill it
safely at that moment, after the snapshot.

Channels, in the order the script looks for them:

1. ``EXQ_CHECKPOINT=<socket path>`` (exq's own, low overhead).
   The runner listens on a Unix stream socket at that path.  The script
   connects once per process (again after a fork) and keeps the connection.
   Each handshake is one request line and one reply line, ASCII, ``\\n``-ended::

       script -> runner:  checkpoint <step>\\n      (<step>: decimal, or "-")
       runner -> script:  ok\\n                     (snapshot done, go on)
                      or  error <message>\\n        (the script raises
                                                    CheckpointError(message))

   The runner answers the requests of one connection in order; a script never
   has more than one request outstanding.  If the connection closes before the
   reply the script raises ``CheckpointError`` (the runner is gone, so going on
   would train steps that are never saved).  Round trip: well under 1 ms.

2. ``DVC_CHECKPOINT`` on (``1``, ``true``...) and ``DVC_ROOT`` set (DVC 2.x's
   signal file, for DVC-era scripts and tools; ``DVC_ROOT`` is what tells a
   script that a runner is there, as ``dvc.api.make_checkpoint`` documents).
   The script creates the empty file ``$DVC_ROOT/.dvc/tmp/DVC_CHECKPOINT``,
   then waits until the runner deletes it.  Both sides poll, so the latency
   is the runner's poll interval.

3. Otherwise (``DVC_CHECKPOINT=0``, or no ``DVC_ROOT``: a script run by hand,
   even inside a DVC repository): ``make_checkpoint`` returns at once (a
   no-op), never waits for a runner that is not there and never raises.

Runner side (pure standard library, reusable by the engine):

* ``CheckpointServer(path)`` listens on the socket; ``env()`` gives the
  variables for the child; ``wait(timeout)`` returns the next
  ``CheckpointRequest`` (blocking), ``poll(timeout=0)`` returns every request
  ready now, and ``fileno()`` is a descriptor that turns readable when
  ``poll()`` has work, for an event loop (``await anyio.wait_readable(fd)``,
  then ``poll()``).  ``request.ack()`` answers ``ok``; ``request.fail(msg)``
  answers ``error``.  The socket path must fit ``sun_path`` (107 bytes): put it
  in a short private folder (e.g. ``$XDG_RUNTIME_DIR/exq/`` or ``mkdtemp()``).
* ``SignalFileWatcher(dvc_root)`` is the runner side of channel 2:
  ``clear()`` before the stage starts, ``poll()`` every 10-20 ms while it runs,
  ``ack()`` (deletes the file) when the snapshot is done.

A runner that serves both sets both ``EXQ_CHECKPOINT`` and ``DVC_CHECKPOINT``/
``DVC_ROOT``: exq.live uses the socket, while scripts calling DVC's own
``dvc.api.make_checkpoint`` use the file.
"""

from __future__ import annotations

import os
import selectors
import socket
import stat
import struct
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path

from exq.live.env import env_flag
from exq.live.error import CheckpointError

__all__ = [
    "CheckpointError",
    "CheckpointRequest",
    "CheckpointServer",
    "SignalFileWatcher",
    "checkpoints_enabled",
    "signal_checkpoint",
]

ENV_EXQ_CHECKPOINT = "EXQ_CHECKPOINT"
ENV_DVC_CHECKPOINT = "DVC_CHECKPOINT"
ENV_DVC_ROOT = "DVC_ROOT"
SIGNAL_FILE_NAME = "DVC_CHECKPOINT"

_MAX_SUN_PATH = 107
_MAX_LINE = 4096
# The signal file is polled: start fast so a quick runner is not slowed down,
# back off so a slow snapshot does not cost CPU.
_FILE_POLL_MIN = 0.001
_FILE_POLL_MAX = 0.02


def checkpoints_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the process runs under a runner that takes checkpoints."""
    env = os.environ if environ is None else environ
    if env.get(ENV_EXQ_CHECKPOINT):
        return True
    return bool(env_flag(ENV_DVC_CHECKPOINT, env)) and bool(env.get(ENV_DVC_ROOT))


def signal_checkpoint(step: int | None = None) -> None:
    """Signal the runner and block until it has taken the checkpoint.

    A no-op unless ``checkpoints_enabled()``.
    This is the bare protocol; ``exq.live.make_checkpoint`` also flushes the
    open ``Live`` loggers first.
    """
    socket_path = os.environ.get(ENV_EXQ_CHECKPOINT)
    if socket_path:
        _CLIENT.handshake(socket_path, step)
    elif checkpoints_enabled():
        root = os.environ[ENV_DVC_ROOT]
        _signal_file_handshake(Path(root) / ".dvc" / "tmp" / SIGNAL_FILE_NAME)


# --------------------------------------------------------------------------
# script side
# --------------------------------------------------------------------------


class _SocketClient:
    """One connection per process, kept open between handshakes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._pid = 0
        self._path = ""

    def handshake(self, path: str, step: int | None) -> None:
        request = f"checkpoint {'-' if step is None else int(step)}\n".encode()
        with self._lock:
            sock = self._connection(path)
            try:
                sock.sendall(request)
                reply = _read_line(sock)
            except OSError as exc:
                self._drop()
                raise CheckpointError(f"checkpoint channel {path}: {exc}") from exc
            if reply is None:
                self._drop()
                raise CheckpointError(f"checkpoint channel {path}: the runner closed it")
        if reply == "ok":
            return
        message = reply[len("error") :].strip() if reply.startswith("error") else reply
        raise CheckpointError(f"the runner refused the checkpoint: {message}")

    def _connection(self, path: str) -> socket.socket:
        # A forked child must not share its parent's connection: replies
        # would go to whichever process reads first.
        if self._sock is not None and (self._pid != os.getpid() or self._path != path):
            self._drop()
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
            except OSError as exc:
                sock.close()
                raise CheckpointError(f"cannot reach the runner at {path}: {exc}") from exc
            self._sock, self._pid, self._path = sock, os.getpid(), path
        return self._sock

    def _drop(self) -> None:
        # In a forked child this closes only the child's copy of the descriptor.
        if self._sock is not None:
            self._sock.close()
        self._sock = None


def _read_line(sock: socket.socket) -> str | None:
    """Read one reply line; None when the peer closed first."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(_MAX_LINE)
        if not chunk:
            return None
        data += chunk
    return data.decode("ascii", "replace").strip()


_CLIENT = _SocketClient()


def _signal_file_handshake(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    delay = _FILE_POLL_MIN
    while path.exists():
        time.sleep(delay)
        delay = min(delay * 2, _FILE_POLL_MAX)


# --------------------------------------------------------------------------
# runner side
# --------------------------------------------------------------------------


class CheckpointRequest:
    """One ``checkpoint <step>`` line from a script, waiting for an answer."""

    def __init__(self, conn: socket.socket, step: int | None, pid: int | None) -> None:
        self._conn = conn
        self.step = step
        self.pid = pid
        self.answered = False

    def ack(self) -> None:
        """Tell the script the snapshot is done; it goes on."""
        self._answer(b"ok\n")

    def fail(self, message: str) -> None:
        """Make the script's ``make_checkpoint`` raise ``CheckpointError``."""
        text = " ".join(message.split()) or "checkpoint failed"
        self._answer(f"error {text}\n".encode("utf-8", "replace"))

    def _answer(self, data: bytes) -> None:
        if self.answered:
            return
        self.answered = True
        try:
            self._conn.sendall(data)
        except OSError:
            pass  # the script is gone; nothing waits for this answer

    def __repr__(self) -> str:
        return f"CheckpointRequest(step={self.step!r}, pid={self.pid!r})"


class CheckpointServer:
    """Runner side of the ``EXQ_CHECKPOINT`` socket (see the module docstring).

    Not thread-safe: one thread (or one task) calls ``poll``/``wait``; ``ack``
    and ``fail`` may be called from anywhere.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        if len(os.fsencode(self.path)) > _MAX_SUN_PATH:
            raise ValueError(f"checkpoint socket path too long for a Unix socket: {self.path}")
        try:
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)  # a stale socket from a killed runner
            else:
                raise FileExistsError(f"not a socket, will not replace it: {self.path}")
        except FileNotFoundError:
            pass
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        os.chmod(self.path, 0o600)
        self._listener.listen(16)
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._buffers: dict[socket.socket, bytearray] = {}
        self._ready: deque[CheckpointRequest] = deque()

    def env(self) -> dict[str, str]:
        """The variables that point a child process at this server."""
        return {ENV_EXQ_CHECKPOINT: self.path}

    def fileno(self) -> int:
        """A descriptor that turns readable when ``poll()`` has work (epoll/kqueue)."""
        fileno = getattr(self._selector, "fileno", None)
        if fileno is None:
            raise NotImplementedError("this platform's selector has no descriptor")
        return int(fileno())

    def poll(self, timeout: float | None = 0) -> list[CheckpointRequest]:
        """Accept connections, read lines; return every request ready now."""
        if not self._ready:
            for key, _ in self._selector.select(timeout):
                if key.fileobj is self._listener:
                    self._accept()
                else:
                    self._read(key.fileobj)  # type: ignore[arg-type]
        ready = list(self._ready)
        self._ready.clear()
        return ready

    def wait(self, timeout: float | None = None) -> CheckpointRequest | None:
        """Block until the next request arrives; None after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ready:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._ready.extend(self.poll(left))
            if not self._ready and deadline is not None and time.monotonic() >= deadline:
                return None
        return self._ready.popleft()

    def close(self) -> None:
        """Close every connection (waiting scripts get CheckpointError) and the socket."""
        for conn in list(self._buffers):
            self._forget(conn)
        self._selector.close()
        self._listener.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> CheckpointServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            conn.setblocking(False)
            self._buffers[conn] = bytearray()
            self._selector.register(conn, selectors.EVENT_READ, None)

    def _read(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(_MAX_LINE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._forget(conn)
            return
        buffer = self._buffers[conn]
        buffer += data
        while b"\n" in buffer:
            line, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            self._parse(conn, line.decode("ascii", "replace").strip())
        if len(buffer) > _MAX_LINE:
            self._forget(conn)  # not our protocol

    def _parse(self, conn: socket.socket, line: str) -> None:
        verb, _, arg = line.partition(" ")
        arg = arg.strip()
        if verb != "checkpoint" or not (arg == "-" or arg.isdigit()):
            CheckpointRequest(conn, None, None).fail(f"bad request {line[:80]!r}")
            return
        step = None if arg == "-" else int(arg)
        self._ready.append(CheckpointRequest(conn, step, _peer_pid(conn)))

    def _forget(self, conn: socket.socket) -> None:
        self._buffers.pop(conn, None)
        try:
            self._selector.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()


def _peer_pid(conn: socket.socket) -> int | None:
    """The pid of the script at the other end (Linux only)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    except OSError:
        return None
    return int(struct.unpack("3i", creds)[0])


class SignalFileWatcher:
    """Runner side of DVC 2.x's signal file ``<root>/.dvc/tmp/DVC_CHECKPOINT``."""

    def __init__(self, dvc_root: str | os.PathLike[str]) -> None:
        self.root = Path(dvc_root)
        self.path = self.root / ".dvc" / "tmp" / SIGNAL_FILE_NAME

    def env(self) -> dict[str, str]:
        """The variables that tell a DVC-era script to use the signal file."""
        return {ENV_DVC_CHECKPOINT: "1", ENV_DVC_ROOT: str(self.root)}

    def clear(self) -> None:
        """Remove a stale signal file, before the stage starts.

        The folder is made too: dvclive 0.5+ creates the signal file without
        making ``.dvc/tmp`` first (DVC always has it; a fresh worktree not).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)

    def poll(self) -> bool:
        """Whether a script is waiting for a checkpoint."""
        return self.path.exists()

    def ack(self) -> None:
        """Release the waiting script: the snapshot is done."""
        self.path.unlink(missing_ok=True)
