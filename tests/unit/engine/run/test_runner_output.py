"""The output sink splits only new bytes and never holds more than one line's cap."""

from __future__ import annotations

import io

import pytest

from exq.engine.run.runner import MAX_LINE, OutputSink

PREFIX = b"[train] "


def unprefixed(text: bytes) -> list[bytes]:
    lines = text.split(b"\n")
    assert lines[-1] == b""
    assert all(line.startswith(PREFIX) for line in lines[:-1])
    return [line[len(PREFIX) :] for line in lines[:-1]]


def test_progress_without_newlines_is_held_no_longer_than_a_line() -> None:
    out = io.BytesIO()
    sink, pending = OutputSink(stream=out, prefixed=True), bytearray()
    bar = b"".join(b"\r%5d%% |####|" % i for i in range(300_000))  # ~4 MB, no newline
    for start in range(0, len(bar), 4096):
        sink.chunk("train", bar[start : start + 4096], pending)
        assert len(pending) < MAX_LINE  # bounded, whatever came before
    sink.finish("train", pending)
    lines = unprefixed(out.getvalue())
    assert all(len(line) <= MAX_LINE for line in lines)
    assert len(lines) == -(-len(bar) // MAX_LINE)
    assert b"".join(lines) == bar  # nothing lost, nothing added but line ends


@pytest.mark.parametrize("size", [1, 7, 4096, MAX_LINE + 3])
def test_lines_come_out_whole_whatever_the_chunks(size: int) -> None:
    text = b"".join(b"line %d %s\n" % (i, b"x" * (i % 50)) for i in range(3000)) + b"tail"
    out = io.BytesIO()
    sink, pending = OutputSink(stream=out, prefixed=True), bytearray()
    for start in range(0, len(text), size):
        sink.chunk("train", text[start : start + size], pending)
    sink.finish("train", pending)
    assert unprefixed(out.getvalue()) == text.split(b"\n")


def test_a_newline_after_a_long_unfinished_line_keeps_the_cap() -> None:
    out = io.BytesIO()
    sink, pending = OutputSink(stream=out, prefixed=True), bytearray()
    sink.chunk("train", b"a" * (MAX_LINE - 1), pending)
    sink.chunk("train", b"b" * MAX_LINE + b"\nend\n", pending)
    lines = unprefixed(out.getvalue())
    assert all(len(line) <= MAX_LINE for line in lines)
    assert b"".join(lines[:-1]) == b"a" * (MAX_LINE - 1) + b"b" * MAX_LINE
    assert lines[-1] == b"end"
