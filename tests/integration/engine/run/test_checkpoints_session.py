"""CheckpointSession: both handshake channels with real scripts, and stopping mid-snapshot."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import anyio
import pytest

from exq.engine.errors import ExperimentError
from exq.engine.run.checkpoint_session import CheckpointSession
from exq.engine.run.runner import OutputSink, run_command

pytestmark = pytest.mark.anyio

PY = sys.executable

SOCKET_SCRIPT = """\
from pathlib import Path
from exq.live import make_checkpoint, CheckpointError
for step in range(3):
    Path("model.txt").write_text(f"step {step}")
    try:
        make_checkpoint()
    except CheckpointError as exc:
        Path("refused.txt").write_text(str(exc))
        raise SystemExit(7)
Path("done.txt").write_text("done")
"""

FILE_SCRIPT = """\
import os, time
from pathlib import Path
flag = Path(os.environ["DVC_ROOT"]) / ".dvc" / "tmp" / "DVC_CHECKPOINT"
for step in range(2):
    Path("model.txt").write_text(f"file step {step}")
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.write_text("")
    while flag.exists():
        time.sleep(0.005)
"""

# Signals once, then would run for ever: the test stops it.
HANG_SCRIPT = """\
import os, time
from pathlib import Path
from exq.live import make_checkpoint
Path("model.txt").write_text("first")
Path("pid.txt").write_text(str(os.getpid()))
make_checkpoint()
Path("released.txt").write_text("")
while True:
    time.sleep(0.05)
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def command(root: Path, script: str, sink: OutputSink):
    (root / "script.py").write_text(script)

    async def run(extra: Mapping[str, str]) -> int:
        env = {**os.environ, "DVC_ROOT": str(root), **extra}
        return await run_command(f"{PY} script.py", cwd=root, env=env, label="s", sink=sink)

    return run


@pytest.fixture
def sink(tmp_path: Path):
    with open(tmp_path / "out.log", "wb") as stream:
        yield OutputSink(stream=stream)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / ".dvc").mkdir(parents=True)
    return folder


async def test_each_make_checkpoint_waits_for_the_handler(root: Path, sink: OutputSink) -> None:
    seen: list[str] = []

    async def handler(step: int | None) -> None:
        await anyio.sleep(0.01)  # the script must still be blocked meanwhile
        seen.append((root / "model.txt").read_text())

    session = CheckpointSession(handler, dvc_root=root)
    code = await session.run(command(root, SOCKET_SCRIPT, sink))
    assert code == 0
    assert seen == ["step 0", "step 1", "step 2"]
    assert session.count == 3 and session.errors == []


async def test_the_signal_file_channel_serves_dvc_era_scripts(root: Path, sink: OutputSink) -> None:
    seen: list[tuple[int | None, str]] = []

    async def handler(step: int | None) -> None:
        seen.append((step, (root / "model.txt").read_text()))

    session = CheckpointSession(handler, dvc_root=root)
    assert await session.run(command(root, FILE_SCRIPT, sink)) == 0
    assert seen == [(None, "file step 0"), (None, "file step 1")]


async def test_a_refused_checkpoint_raises_in_the_script(root: Path, sink: OutputSink) -> None:
    async def handler(step: int | None) -> None:
        raise ExperimentError("ref moved meanwhile")

    session = CheckpointSession(handler, dvc_root=root)
    assert await session.run(command(root, SOCKET_SCRIPT, sink)) == 7
    assert "ref moved meanwhile" in (root / "refused.txt").read_text()
    assert session.count == 0 and session.errors == ["ref moved meanwhile"]


async def test_stopping_waits_for_the_snapshot_under_way(root: Path, sink: OutputSink) -> None:
    started, release = anyio.Event(), anyio.Event()
    finished: list[bool] = []

    async def handler(step: int | None) -> None:
        started.set()
        await release.wait()
        # the script is still there, blocked in make_checkpoint
        finished.append(
            alive(int((root / "pid.txt").read_text())) and not (root / "released.txt").exists()
        )

    session = CheckpointSession(handler, dvc_root=root)
    scope, done = anyio.CancelScope(), anyio.Event()

    async def run() -> None:
        with scope:
            await session.run(command(root, HANG_SCRIPT, sink))
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await started.wait()
        scope.cancel()  # Ctrl-C, in the middle of the snapshot
        with anyio.move_on_after(0.3):  # the run must not end meanwhile
            await done.wait()
        assert not done.is_set() and not finished
        release.set()
        with anyio.fail_after(30):
            await done.wait()
    assert scope.cancelled_caught
    # the snapshot ended before the script was released or stopped; then it was stopped
    assert finished == [True]
    assert session.count == 1
    assert not alive(int((root / "pid.txt").read_text()))
