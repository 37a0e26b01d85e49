"""The runner with real child processes: output, failures, cancellation."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import anyio
import pytest

from exq.engine.run.runner import Outcome, OutputSink, run_command, run_dag

pytestmark = pytest.mark.anyio


async def test_output_is_prefixed_line_by_line(tmp_path: Path) -> None:
    out = io.BytesIO()
    sink = OutputSink(stream=out, prefixed=True)
    code = await run_command(
        "printf 'a\\nb'; echo err >&2", cwd=tmp_path, env=os.environ, label="s@1", sink=sink
    )
    assert code == 0
    lines = out.getvalue().decode().splitlines()
    assert lines[0].startswith("[s@1] > printf")
    assert "[s@1] a" in lines
    assert "[s@1] berr" in lines or ("[s@1] b" in lines and "[s@1] err" in lines)


async def test_list_command_stops_at_first_failure(tmp_path: Path) -> None:
    sink = OutputSink(stream=io.BytesIO())
    code = await run_command(
        ["true", "exit 3", "touch never"], cwd=tmp_path, env=os.environ, label="x", sink=sink
    )
    assert code == 3
    assert not (tmp_path / "never").exists()


async def test_cancel_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    sink = OutputSink(stream=io.BytesIO())
    script = f"sleep 300 & echo $! > {pidfile}; sleep 300"
    with anyio.move_on_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: run_command(script, cwd=tmp_path, env=os.environ, label="x", sink=sink)
            )
            deadline = time.monotonic() + 10
            while not pidfile.exists() or not pidfile.read_text().strip():
                assert time.monotonic() < deadline
                await anyio.sleep(0.02)
            tg.cancel_scope.cancel()
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while _alive(grandchild):
        assert time.monotonic() < deadline, "grandchild survived cancellation"
        await anyio.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


async def test_dag_runs_independent_nodes_concurrently_and_in_order() -> None:
    running: set[str] = set()
    overlap: list[set[str]] = []
    order: list[str] = []

    async def work(node: str) -> bool:
        running.add(node)
        overlap.append(set(running))
        await anyio.sleep(0.05)
        running.discard(node)
        order.append(node)
        return True

    preds = {"a": set(), "b": set(), "c": {"a", "b"}}
    outcomes = await run_dag(["a", "b", "c"], preds, work, jobs=2)
    assert outcomes == {"a": Outcome.DONE, "b": Outcome.DONE, "c": Outcome.DONE}
    assert {"a", "b"} in overlap
    assert order[-1] == "c"


async def test_dag_failure_skips_dependents_and_stops_new_work() -> None:
    started: list[str] = []

    async def work(node: str) -> bool:
        started.append(node)
        return node != "a"

    preds = {"a": set(), "b": {"a"}, "c": set()}
    outcomes = await run_dag(["a", "b", "c"], preds, work, jobs=1)
    assert outcomes["a"] is Outcome.FAILED
    assert outcomes["b"] is Outcome.SKIPPED
    assert outcomes["c"] is Outcome.SKIPPED
    assert started == ["a"]
