"""``exq queue logs --json``: a run's output as JSON.

Without ``--follow`` it is one object, the run's identity and end with its
output as a list of lines; with ``--follow``, JSON lines: ``{"line": TEXT}``
for each line of output as it comes, then that object without ``lines`` once
the run has ended. Output is decoded as UTF-8, undecodable bytes replaced.
"""

from __future__ import annotations

import json
from typing import IO, Any

from exq.daemon.states import RunRecord


def run_fields(record: RunRecord) -> dict[str, Any]:
    """The run a log belongs to, and how it ended (nulls while it has not)."""
    return {
        "id": record.id,
        "name": record.name,
        "state": record.state.value,
        "attempt": record.attempts,
        "exit_code": record.exit_code,
        "error": record.error,
        "log": record.log_path,
    }


def split_lines(data: bytes) -> list[str]:
    """``data`` as lines of text, a last line without its newline included."""
    return data.decode("utf-8", errors="replace").splitlines()


class JsonLines:
    """A binary stream that writes each whole line written to it as ``{"line": ...}``
    on ``out`` (what :func:`exq.daemon.service.follow_log` copies a log into)."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._pending = bytearray()

    def write(self, data: bytes) -> int:
        self._pending += data
        *whole, rest = self._pending.split(b"\n")
        for line in whole:
            self._emit(bytes(line))
        self._pending = bytearray(rest)
        return len(data)

    def flush(self) -> None:
        self._out.flush()

    def finish(self) -> None:
        """The last line, when the log does not end with a newline."""
        if self._pending:
            self._emit(bytes(self._pending))
            self._pending.clear()
        self._out.flush()

    def _emit(self, line: bytes) -> None:
        text = line.decode("utf-8", errors="replace").removesuffix("\r")
        self._out.write(json.dumps({"line": text}) + "\n")
