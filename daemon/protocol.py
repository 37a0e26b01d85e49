"""The daemon's socket protocol: JSON lines, one request and one reply per line.

Shared by the CLI's client (:mod:`exq.daemon.client`) and the daemon's server
(:mod:`exq.daemon.server`); this module imports only the standard library so
the CLI stays fast.

Every message is one JSON object on one line, carrying the protocol version
``v`` and the request ``type``. Names are mirrored across the socket: the
request type ``"kill"`` is the dataclass :class:`Kill`, the client method
``Client.kill``, the server's ``Dispatcher.kill`` and the scheduler's
``Handlers.kill``::

    -> {"v": 1, "type": "kill", "run_ids": [3], "force": false}
    <- {"v": 1, "type": "kill", "ok": true, "killed": [3], "not_running": []}
    <- {"v": 1, "type": "kill", "ok": false,
        "error": {"code": "bad_request", "message": "..."}}

No exception crosses the socket: whatever fails in the daemon comes back as an
:class:`ErrorReply` with one of the :class:`Code` values and a one-line
message; the CLI maps codes to exit statuses in one table.
"""

from __future__ import annotations

import json
import socket
import struct
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, ClassVar

PROTOCOL_VERSION = 1
# A line longer than this is refused: no request or reply comes near it.
MAX_LINE = 1 << 20
# Runs at once (-j) a daemon accepts: far above any machine's or cluster's use,
# and low enough that a typo cannot make the daemon allocate for it.
MAX_JOBS = 1024
# Numbers on the wire are SQLite integers (run ids): signed 64 bits.
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1


class Code:
    """Error codes of :class:`ErrorReply` (and the client's own failures)."""

    BAD_REQUEST = "bad_request"  # not JSON, missing or mistyped fields
    UNKNOWN_REQUEST = "unknown_request"  # a type the daemon does not know
    VERSION_MISMATCH = "version_mismatch"  # client and daemon speak different versions
    PERMISSION_DENIED = "permission_denied"  # the peer is another user
    NOT_FOUND = "not_found"  # a run id the daemon does not know
    INVALID_STATE = "invalid_state"  # the request does not fit the run's or daemon's state
    FAILED = "failed"  # the daemon could not do it (a user-level error)
    INTERNAL = "internal"  # a bug in the daemon
    # Client side only: never sent by the daemon.
    NOT_RUNNING = "not_running"  # no daemon answers on the socket
    TIMEOUT = "timeout"  # the daemon did not answer in time
    PROTOCOL = "protocol"  # the reply could not be understood

    ALL: ClassVar[frozenset[str]] = frozenset(
        {
            BAD_REQUEST,
            UNKNOWN_REQUEST,
            VERSION_MISMATCH,
            PERMISSION_DENIED,
            NOT_FOUND,
            INVALID_STATE,
            FAILED,
            INTERNAL,
            NOT_RUNNING,
            TIMEOUT,
            PROTOCOL,
        }
    )


class ProtocolError(Exception):
    """A line that is not a valid message; becomes an :class:`ErrorReply`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- replies ---------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """Base of successful replies."""


@dataclass(frozen=True)
class Ack(Reply):
    """Done; nothing to report."""


@dataclass(frozen=True)
class PingReply(Reply):
    pid: int
    version: str


@dataclass(frozen=True)
class StatusReply(Reply):
    """The daemon's own state (the runs are in the database)."""

    pid: int
    slots_busy: int
    slots_total: int
    paused: bool = False
    stopping: bool = False
    running: list[int] = field(default_factory=list)
    gpus_total: int = 0
    gpus_free: int = 0
    cpus_total: float = 0.0  # what the daemon counts runs' --cpus and --mem against
    mem_total: int = 0


@dataclass(frozen=True)
class KillReply(Reply):
    killed: list[int] = field(default_factory=list)
    not_running: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class ErrorReply:
    """A request that failed, with a :class:`Code` and a one-line message."""

    code: str
    message: str


# -- requests --------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """Base of requests; ``kind`` (``type`` on the wire) names it everywhere."""

    kind: ClassVar[str]
    reply: ClassVar[type[Reply]]


@dataclass(frozen=True)
class Ping(Request):
    """Is a daemon there, and which?"""

    kind: ClassVar[str] = "ping"
    reply: ClassVar[type[Reply]] = PingReply


@dataclass(frozen=True)
class Status(Request):
    """Pid, slots busy and total, paused or not."""

    kind: ClassVar[str] = "status"
    reply: ClassVar[type[Reply]] = StatusReply


@dataclass(frozen=True)
class Wake(Request):
    """New rows are in the queue: look now rather than at the next poll."""

    kind: ClassVar[str] = "wake"
    reply: ClassVar[type[Reply]] = Ack


@dataclass(frozen=True)
class Kill(Request):
    """SIGINT (SIGKILL with ``force``) to the process groups of running runs."""

    kind: ClassVar[str] = "kill"
    reply: ClassVar[type[Reply]] = KillReply
    run_ids: list[int]
    force: bool = False


@dataclass(frozen=True)
class Pause(Request):
    """Take no new runs; running ones go on."""

    kind: ClassVar[str] = "pause"
    reply: ClassVar[type[Reply]] = Ack


@dataclass(frozen=True)
class Resume(Request):
    """Take new runs again."""

    kind: ClassVar[str] = "resume"
    reply: ClassVar[type[Reply]] = Ack


@dataclass(frozen=True)
class SetJobs(Request):
    """How many runs go at once."""

    kind: ClassVar[str] = "set_jobs"
    reply: ClassVar[type[Reply]] = Ack
    jobs: int


@dataclass(frozen=True)
class Stop(Request):
    """Exit once running runs end (``kill``: interrupt them first)."""

    kind: ClassVar[str] = "stop"
    reply: ClassVar[type[Reply]] = Ack
    kill: bool = False


REQUESTS: dict[str, type[Request]] = {
    cls.kind: cls for cls in (Ping, Status, Wake, Kill, Pause, Resume, SetJobs, Stop)
}


# -- peers -----------------------------------------------------------------

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket: each
    side checks that the other is the same user."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return pid, uid, gid


# -- encoding --------------------------------------------------------------


def encode_request(request: Request) -> bytes:
    """One line: ``{"v": ..., "type": ..., <fields>}``."""
    return _line({"v": PROTOCOL_VERSION, "type": request.kind, **asdict(request)})


def encode_reply(request_type: str, reply: Reply | ErrorReply) -> bytes:
    """One line answering a request of ``request_type`` (``"?"`` when unknown)."""
    message: dict[str, Any] = {"v": PROTOCOL_VERSION, "type": request_type}
    if isinstance(reply, ErrorReply):
        message.update(ok=False, error={"code": reply.code, "message": reply.message})
    else:
        message.update(ok=True, **asdict(reply))
    return _line(message)


def decode_request(line: bytes) -> Request:
    """The request on ``line``; raises :class:`ProtocolError` on anything else."""
    message = _load(line)
    _check_version(message.get("v"), "client")
    kind = message.get("type")
    cls = REQUESTS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError(Code.UNKNOWN_REQUEST, f"unknown request type {kind!r}")
    body = {k: v for k, v in message.items() if k not in ("v", "type")}
    return _build(cls, body, f"request '{kind}'", Code.BAD_REQUEST)


def request_type_of(line: bytes) -> str:
    """The ``type`` of a line that may not decode, to label an error reply."""
    try:
        kind = json.loads(line).get("type")
    except (ValueError, AttributeError, UnicodeDecodeError, RecursionError):
        return "?"
    return kind if isinstance(kind, str) and len(kind) < 64 else "?"


def decode_reply(line: bytes, request: Request) -> Reply | ErrorReply:
    """The reply to ``request`` on ``line``; raises :class:`ProtocolError` if malformed.

    Error replies are read whatever the version (their shape never changes), so
    a version mismatch reported by the daemon reaches the user as such.
    """
    message = _load(line)
    if message.get("ok") is False:
        error = message.get("error")
        if not isinstance(error, dict):
            raise ProtocolError(Code.PROTOCOL, "error reply without an error object")
        code, text = error.get("code"), error.get("message")
        return ErrorReply(code=str(code), message=str(text))
    _check_version(message.get("v"), "daemon")
    if message.get("type") != request.kind or message.get("ok") is not True:
        raise ProtocolError(
            Code.PROTOCOL, f"reply of type {message.get('type')!r} to a '{request.kind}' request"
        )
    body = {k: v for k, v in message.items() if k not in ("v", "type", "ok")}
    return _build(request.reply, body, f"reply to '{request.kind}'", Code.PROTOCOL)


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def _load(line: bytes) -> dict[str, Any]:
    if len(line) > MAX_LINE:
        raise ProtocolError(Code.BAD_REQUEST, f"message longer than {MAX_LINE} bytes")
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(Code.BAD_REQUEST, f"not a JSON message: {exc}") from exc
    except RecursionError as exc:  # [[[[...: Python's parser recurses per level
        raise ProtocolError(Code.BAD_REQUEST, "not a JSON message: nested too deeply") from exc
    if not isinstance(message, dict):
        raise ProtocolError(Code.BAD_REQUEST, "a message must be a JSON object")
    return message


def check_jobs(jobs: int) -> int:
    """``jobs`` if it is a number of runs at once a daemon takes; else ValueError."""
    if not 1 <= jobs <= MAX_JOBS:
        raise ValueError(f"jobs must be from 1 to {MAX_JOBS}, not {jobs}")
    return jobs


def _check_version(version: object, peer: str) -> None:
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            Code.VERSION_MISMATCH,
            f"the {peer} speaks protocol version {version!r}, this side {PROTOCOL_VERSION}"
            " (restart the daemon after upgrading exq: 'exq queue stop' then 'exq queue start')",
        )


def _build(cls: type[Any], body: dict[str, Any], what: str, code: str) -> Any:
    """``cls(**body)`` after checking names and types against its annotations."""
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise ProtocolError(code, f"{what}: unknown field(s) {', '.join(unknown)}")
    missing = [
        name
        for name, f in known.items()
        if name not in body and f.default is MISSING and f.default_factory is MISSING
    ]
    if missing:
        raise ProtocolError(code, f"{what}: missing field(s) {', '.join(missing)}")
    for name, value in body.items():
        if not _matches(value, hints[name]):
            raise ProtocolError(code, f"{what}: field '{name}' has a wrong type")
        if not _ints_in_range(value):
            raise ProtocolError(code, f"{what}: field '{name}' holds a number out of range")
    return cls(**body)


def _ints_in_range(value: object) -> bool:
    """Whether every integer in ``value`` (a field already type-checked) fits 64 bits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _INT_MIN <= value <= _INT_MAX
    if isinstance(value, list):
        return all(_ints_in_range(item) for item in value)
    return True


def _matches(value: object, hint: Any) -> bool:
    """JSON value against a field type: int, bool, str, float, list[X], X | None."""
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:  # JSON true is not a number here
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return False
