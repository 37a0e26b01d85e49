"""``queue logs -n``: where the last N lines of a log file start, read from its end."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from exq.daemon.service import LOG_BLOCK, copy_log, tail_offset


def tail(path: Path, n: int) -> bytes:
    out = io.BytesIO()
    copy_log(path, tail_offset(path, n), out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("text", "n", "expected"),
    [
        (b"a\nb\nc\n", 2, b"b\nc\n"),
        (b"a\nb\nc", 2, b"b\nc"),  # no newline at the end
        (b"a\nb\nc\n", 3, b"a\nb\nc\n"),
        (b"a\nb\nc\n", 10, b"a\nb\nc\n"),
        (b"a\nb\nc\n", 0, b""),
        (b"", 3, b""),
        (b"\n\n\n", 2, b"\n\n"),
        (b"one line, no newline", 1, b"one line, no newline"),
    ],
)
def test_tail(tmp_path: Path, text: bytes, n: int, expected: bytes) -> None:
    path = tmp_path / "run.log"
    path.write_bytes(text)
    assert tail(path, n) == expected


def test_tail_across_blocks(tmp_path: Path) -> None:
    lines = [b"%07d %s\n" % (i, b"y" * (i % 97)) for i in range(40_000)]
    path = tmp_path / "run.log"
    path.write_bytes(b"".join(lines))
    assert path.stat().st_size > 20 * LOG_BLOCK
    for n in (1, 2, 500, 39_999, 40_000):
        assert tail(path, n) == b"".join(lines[-n:])


def test_missing_log(tmp_path: Path) -> None:
    assert tail_offset(tmp_path / "gone.log", 3) == 0
