"""Output at any size: progress bars without newlines, and logs bigger than memory.

A stage redraws a progress bar with ``\\r`` and no newline for megabytes, as
tqdm does. Where output is prefixed with the stage name (several stages at
once), exq writes it as lines of at most ``MAX_LINE`` bytes instead of holding
and rescanning an ever longer line. ``queue logs`` streams a log of any size
and ``-n N`` reads only its end; the reader's peak memory is checked with
``wait4``'s rusage.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from exq.engine.run.runner import MAX_LINE
from tests.e2e.conftest import EXQ_BIN, PY, exq, write
from tests.e2e.queue_helpers import QueueEnv, queued_ids, wait_states
from tests.support import git

BAR = """\
import sys
out = sys.stdout.buffer
for i in range(200_000):
    out.write(b"\\r%6d/200000 |%s|" % (i, b"#" * (i % 20)))
out.write(b"\\ndone\\n")
"""
PREFIX = b"[bar] "


@pytest.fixture
def bar_project(project: Path) -> Path:
    write(project / "bar.py", BAR)
    write(project / "params.yaml", "lr: 1\n")
    write(
        project / "dvc.yaml",
        f"stages:\n  bar:\n    cmd: {PY} bar.py\n    params:\n    - lr\n",
    )
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "bar")
    return project


def expected_bar() -> bytes:
    return b"".join(b"\r%6d/200000 |%s|" % (i, b"#" * (i % 20)) for i in range(200_000))


def check_bar_lines(output: bytes) -> None:
    lines = [line for line in output.split(b"\n") if line.startswith(PREFIX)]
    bar = [line[len(PREFIX) :] for line in lines if not line.startswith(PREFIX + b">")]
    assert bar[-1] == b"done"
    assert all(len(line) <= MAX_LINE for line in bar)
    assert b"".join(bar[:-1]) == expected_bar()  # cut into lines, nothing lost


def test_workspace_progress_output_is_cut_into_lines(bar_project: Path) -> None:
    done = subprocess.run(
        [str(EXQ_BIN), "exp", "run", "-j", "2"], cwd=bar_project, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    check_bar_lines(done.stdout)


def exq_rss(*args: str, cwd: Path) -> tuple[bytes, int]:
    """Run exq; its stdout and its peak resident memory in KiB."""
    proc = subprocess.Popen([str(EXQ_BIN), *args], cwd=cwd, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0
    return out, usage.ru_maxrss


def test_queue_logs_of_progress_output_and_of_a_huge_log(
    queue_env: QueueEnv, bar_project: Path
) -> None:
    _, out, _ = exq("exp", "run", "--queue", "-j", "2", cwd=bar_project)
    (run_id,) = queued_ids(out)
    exq("queue", "start", cwd=bar_project)
    wait_states(bar_project, [run_id], {"success"}, seconds=300)
    log, _ = exq_rss("queue", "logs", str(run_id), cwd=bar_project)
    check_bar_lines(log)

    # The log grows to 2 GiB (sparse: no disk used), then two more lines.
    path = queue_env.state / "logs" / f"{run_id}.log"
    assert path.exists()
    with open(path, "r+b") as handle:
        handle.truncate(2 << 30)
        handle.seek(0, os.SEEK_END)
        handle.write(b"\nlast but one\nlast\n")
    tail, rss = exq_rss("queue", "logs", "-n", "2", str(run_id), cwd=bar_project)
    assert tail == b"last but one\nlast\n"
    assert rss < 300 * 1024
    with open(os.devnull, "wb") as sink:
        proc = subprocess.Popen(
            [str(EXQ_BIN), "queue", "logs", str(run_id)], cwd=bar_project, stdout=sink
        )
        _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert usage.ru_maxrss < 300 * 1024  # streamed, not read whole
