"""The socket protocol: every message survives encode/decode; bad lines get codes."""

from __future__ import annotations

import json

import pytest

from exq.daemon.protocol import (
    PROTOCOL_VERSION,
    REQUESTS,
    Ack,
    Code,
    ErrorReply,
    Kill,
    KillReply,
    Pause,
    Ping,
    PingReply,
    ProtocolError,
    Request,
    Resume,
    SetJobs,
    Status,
    StatusReply,
    Stop,
    Wake,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
    request_type_of,
)

ALL_REQUESTS: list[Request] = [
    Ping(),
    Status(),
    Wake(),
    Kill(run_ids=[3, 7], force=True),
    Kill(run_ids=[]),
    Pause(),
    Resume(),
    SetJobs(jobs=4),
    Stop(kill=True),
    Stop(),
]


@pytest.mark.parametrize("request_", ALL_REQUESTS, ids=repr)
def test_request_round_trip(request_: Request) -> None:
    line = encode_request(request_)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_request(line) == request_


def test_request_wire_shape() -> None:
    line = encode_request(Kill(run_ids=[3], force=False))
    assert json.loads(line) == {
        "v": PROTOCOL_VERSION,
        "type": "kill",
        "run_ids": [3],
        "force": False,
    }


def test_every_request_kind_is_registered_once() -> None:
    assert sorted(REQUESTS) == sorted(
        ["ping", "status", "wake", "kill", "pause", "resume", "set_jobs", "stop"]
    )
    assert all(cls.kind == kind for kind, cls in REQUESTS.items())


@pytest.mark.parametrize(
    ("request_", "reply"),
    [
        (Ping(), PingReply(pid=12, version="0.1.0")),
        (Status(), StatusReply(pid=1, slots_busy=1, slots_total=2, paused=True, running=[5])),
        (Kill(run_ids=[1, 2]), KillReply(killed=[1], not_running=[2])),
        (Wake(), Ack()),
        (SetJobs(jobs=2), Ack()),
    ],
    ids=lambda v: type(v).__name__,
)
def test_reply_round_trip(request_: Request, reply: object) -> None:
    line = encode_reply(request_.kind, reply)  # type: ignore[arg-type]
    assert decode_reply(line, request_) == reply


def test_error_reply_round_trip_and_shape() -> None:
    line = encode_reply("kill", ErrorReply(Code.NOT_FOUND, "no run 9"))
    assert json.loads(line) == {
        "v": PROTOCOL_VERSION,
        "type": "kill",
        "ok": False,
        "error": {"code": "not_found", "message": "no run 9"},
    }
    assert decode_reply(line, Kill(run_ids=[9])) == ErrorReply("not_found", "no run 9")


def test_error_reply_is_read_whatever_its_version() -> None:
    line = json.dumps(
        {
            "v": 99,
            "type": "ping",
            "ok": False,
            "error": {"code": "version_mismatch", "message": "old"},
        }
    ).encode()
    assert decode_reply(line, Ping()) == ErrorReply("version_mismatch", "old")


@pytest.mark.parametrize(
    ("line", "code", "words"),
    [
        (b"not json", Code.BAD_REQUEST, "not a JSON message"),
        (b"[1, 2]", Code.BAD_REQUEST, "JSON object"),
        (b'{"v": 1, "type": "frobnicate"}', Code.UNKNOWN_REQUEST, "frobnicate"),
        (b'{"v": 1}', Code.UNKNOWN_REQUEST, "None"),
        (b'{"v": 2, "type": "ping"}', Code.VERSION_MISMATCH, "version 2"),
        (b'{"type": "ping"}', Code.VERSION_MISMATCH, "version None"),
        (b'{"v": 1, "type": "kill"}', Code.BAD_REQUEST, "missing field(s) run_ids"),
        (b'{"v": 1, "type": "kill", "run_ids": ["3"]}', Code.BAD_REQUEST, "'run_ids'"),
        (b'{"v": 1, "type": "kill", "run_ids": [true]}', Code.BAD_REQUEST, "'run_ids'"),
        (b'{"v": 1, "type": "set_jobs", "jobs": 2.5}', Code.BAD_REQUEST, "'jobs'"),
        (b'{"v": 1, "type": "stop", "kill": 1}', Code.BAD_REQUEST, "'kill'"),
        (b'{"v": 1, "type": "ping", "extra": 1}', Code.BAD_REQUEST, "unknown field(s) extra"),
    ],
)
def test_bad_requests_have_codes(line: bytes, code: str, words: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_request(line)
    assert caught.value.code == code
    assert words in caught.value.message


@pytest.mark.parametrize(
    "line",
    [
        b'{"v": 1, "type": "status", "ok": true, "pid": 1}',  # missing slots
        b'{"v": 1, "type": "ping", "ok": true, "pid": 1, "version": "x"}',  # wrong type
        b'{"v": 1, "type": "status", "ok": false}',  # error without error object
        b'{"v": 2, "type": "status", "ok": true, "pid": 1, "slots_busy": 0, "slots_total": 1}',
    ],
)
def test_bad_replies_raise(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_reply(line, Status())


@pytest.mark.parametrize(
    ("line", "kind"),
    [(b'{"type": "kill", "v": 9}', "kill"), (b"garbage", "?"), (b"[]", "?"), (b'{"type": 3}', "?")],
)
def test_request_type_of_labels_undecodable_lines(line: bytes, kind: str) -> None:
    assert request_type_of(line) == kind
