"""Running stage commands and scheduling them concurrently with anyio.

Two pieces, both free of pipeline semantics:

- ``run_command`` runs one stage's command(s) in its own process group, streams
  the output (prefixed with the stage name when stages run side by side) and,
  when cancelled (Ctrl-C, a daemon stopping), stops the whole group: SIGINT
  first so training code can save itself, then SIGTERM, then SIGKILL.
- ``run_dag`` starts a node as soon as its predecessors succeeded, at most
  ``jobs`` at a time; after the first failure it starts nothing new but lets
  the running nodes finish, so their work is not lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO

import anyio
from anyio.abc import Process

from exq.engine.run.callbacks import SpawnHook

# Seconds to wait after each signal before escalating to the next one.
_SIGNAL_GRACE = ((signal.SIGINT, 3.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0))


class Outcome(Enum):
    """What became of one node of a run."""

    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # a predecessor failed, or the run stopped first


# A line longer than this is written as it stands, ending in a newline: output
# that never ends a line (a progress bar redrawn with \r) is neither held in
# memory nor scanned again with each chunk.
MAX_LINE = 64 * 1024


@dataclass
class OutputSink:
    """Where command output goes: raw when one stage runs, line-prefixed otherwise.

    Prefixing costs each chunk only its own bytes: the newline search covers the
    new data, and the unfinished line kept between chunks is at most
    :data:`MAX_LINE` long.
    """

    stream: IO[bytes]
    prefixed: bool = False
    # ``repro -q``: exq's own lines are left out; the commands' output is not.
    quiet: bool = False

    def chunk(self, label: str, data: bytes, pending: bytearray) -> None:
        if not self.prefixed:
            self._write(data)
            return
        prefix = b"[" + label.encode() + b"] "
        out: list[bytes] = []
        start = 0
        while (newline := data.find(b"\n", start)) >= 0:
            pending += data[start:newline]
            _cut_long(prefix, pending, out)
            out += [prefix, bytes(pending), b"\n"]
            pending.clear()
            start = newline + 1
        pending += data[start:]
        _cut_long(prefix, pending, out)
        self._write(b"".join(out))

    def finish(self, label: str, pending: bytearray) -> None:
        if pending:
            self.chunk(label, b"\n", pending)

    def say(self, label: str, text: str) -> None:
        prefix = f"[{label}] " if self.prefixed else ""
        self.note(f"{prefix}{text}")

    def note(self, text: str) -> None:
        """A line of exq's own, never prefixed: it names its stage itself."""
        if not self.quiet:
            self._write(f"{text}\n".encode())

    def _write(self, data: bytes) -> None:
        try:
            self.stream.write(data)
            self.stream.flush()
        except OSError as exc:  # a full disk, say: the error names where output went
            name = getattr(self.stream, "name", None)
            if exc.filename is not None or not isinstance(name, str):
                raise
            raise OSError(exc.errno, exc.strerror, name) from exc


def _cut_long(prefix: bytes, pending: bytearray, out: list[bytes]) -> None:
    """Move whole lines of :data:`MAX_LINE` bytes from ``pending`` to ``out``."""
    while len(pending) >= MAX_LINE:
        out += [prefix, bytes(pending[:MAX_LINE]), b"\n"]
        del pending[:MAX_LINE]


def stdout_sink(prefixed: bool, *, quiet: bool = False) -> OutputSink:
    return OutputSink(stream=sys.stdout.buffer, prefixed=prefixed, quiet=quiet)


async def run_command(
    cmd: str | list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    label: str,
    sink: OutputSink,
    on_spawn: SpawnHook | None = None,
) -> int:
    """Run ``cmd`` (one shell line, or a list run in order) and return its exit code.

    ``on_spawn(pid)`` is awaited as each command starts, before its output is read.
    """
    commands = [cmd] if isinstance(cmd, str) else list(cmd)
    for line in commands:
        sink.say(label, f"> {line}")
        code = await _run_one(line, cwd=cwd, env=env, label=label, sink=sink, on_spawn=on_spawn)
        if code != 0:
            return code
    return 0


async def _run_one(
    line: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    label: str,
    sink: OutputSink,
    on_spawn: SpawnHook | None,
) -> int:
    process = await anyio.open_process(
        line,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        if on_spawn is not None:
            await on_spawn(process.pid)
        pending = bytearray()
        assert process.stdout is not None
        async for data in process.stdout:
            sink.chunk(label, data, pending)
        sink.finish(label, pending)
        return await process.wait()
    except BaseException:
        with anyio.CancelScope(shield=True):
            await stop_process_group(process)
            await process.aclose()  # its pipe, before the loop closes (a full disk, say)
        raise


async def stop_process_group(process: Process) -> None:
    """Signal the process's whole group, escalating until it is gone."""
    for signum, grace in _SIGNAL_GRACE:
        if process.returncode is not None:
            break
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            break
        with anyio.move_on_after(grace):
            await process.wait()
    # Grandchildren may linger in the group after the leader is gone.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


async def run_dag(
    nodes: list[str],
    predecessors: Mapping[str, set[str]],
    work: Callable[[str], Awaitable[bool]],
    *,
    jobs: int,
) -> dict[str, Outcome]:
    """Run ``work(node)`` for every node once its predecessors are DONE.

    ``work`` returns True on success. ``nodes`` must hold every predecessor it
    names; predecessors outside ``nodes`` are taken as already done.
    """
    outcomes: dict[str, Outcome] = {}
    finished = {node: anyio.Event() for node in nodes}
    limiter = anyio.CapacityLimiter(max(1, jobs))
    stopping = False

    async def one(node: str) -> None:
        nonlocal stopping
        try:
            for pred in predecessors.get(node, set()):
                if pred in finished:
                    await finished[pred].wait()
            preds_ok = all(
                outcomes.get(pred, Outcome.DONE) is Outcome.DONE
                for pred in predecessors.get(node, set())
            )
            if not preds_ok or stopping:
                outcomes[node] = Outcome.SKIPPED
                return
            async with limiter:
                if stopping:
                    outcomes[node] = Outcome.SKIPPED
                    return
                ok = await work(node)
            outcomes[node] = Outcome.DONE if ok else Outcome.FAILED
            stopping = stopping or not ok
        finally:
            finished[node].set()

    async with anyio.create_task_group() as tg:
        for node in nodes:
            tg.start_soon(one, node)
    return outcomes
