"""Helpers shared by the ``exq queue`` end-to-end tests (not a test module).

Every test gets its own state and runtime folders through the environment
(``EXQ_STATE_DIR``, ``EXQ_RUNTIME_DIR``; the runtime folder under /tmp so the
socket path stays short), which the ``exq`` subprocesses, the daemon they
start and its stage commands inherit. Daemons started by a test are stopped
at teardown: ``queue stop --kill`` first, then SIGKILL to the daemon's
process group (it runs in a session of its own) if it is still there.

Stage commands run ``qtool.py``, which reads ``mode`` and ``lr`` from
params.yaml: ``ok`` writes ``out.txt``; ``fail`` exits 3; ``meet`` waits until
another run is at the rendezvous too (two runs provably at once); ``block``
waits for the file ``go``; ``gate`` fails unless the file ``allow`` exists.
The shared folder (``QSHARED``) gets ``start-<run id>`` from each stage.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.conftest import PY, exq, write
from tests.support import git

QTOOL = """\
import os, sys, time
from pathlib import Path

params = dict(l.split(": ", 1) for l in Path("params.yaml").read_text().splitlines() if ": " in l)
mode, lr = params["mode"].strip(), params["lr"].strip()
shared = Path(os.environ["QSHARED"])
run = os.environ.get("EXQ_RUN_ID", "none")
(shared / f"start-{run}").write_text(f"{os.getpid()} {os.environ.get('EXQ_WORKER_SLOT')}")
print(f"qtool run {run} mode {mode} lr {lr}", flush=True)


def wait(cond, what):
    deadline = time.monotonic() + 60
    while not cond():
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for " + what)
        time.sleep(0.01)


if mode == "fail":
    print("failing on purpose", flush=True)
    sys.exit(3)
if mode == "meet":
    (shared / f"here-{run}").write_text("")
    wait(lambda: len(list(shared.glob("here-*"))) >= 2, "another run")
if mode == "block":
    wait(lambda: (shared / "go").exists(), "go")
if mode == "gate" and not (shared / "allow").exists():
    sys.exit(4)
Path("out.txt").write_text(f"mode={mode} lr={lr} slot={os.environ.get('EXQ_WORKER_SLOT')}\\n")
"""

DVC_YAML = f"""\
stages:
  work:
    cmd: {PY} qtool.py
    params:
    - mode
    - lr
    outs:
    - out.txt
"""


@dataclass
class QueueEnv:
    """The folders one test's exq processes share."""

    state: Path
    runtime: Path
    shared: Path

    @property
    def socket(self) -> Path:
        return self.runtime / "daemon.sock"

    @property
    def db(self) -> Path:
        return self.state / "queue.db"


def daemon_pid(env: QueueEnv) -> int | None:
    """The pid written in the daemon's lock file, if it is alive."""
    try:
        pid = int((env.state / "daemon.lock").read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid if not _zombie(pid) else None


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] in "ZX"


def stop_daemon(env: QueueEnv) -> None:
    """Stop the test's daemon: gracefully with --kill, else SIGKILL its group."""
    pid = daemon_pid(env)
    if pid is None:
        return
    exq("queue", "stop", "--kill", cwd=env.state.parent, check=False, timeout=30)
    deadline = time.monotonic() + 20
    while daemon_pid(env) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    if daemon_pid(env) is not None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def make_project(root: Path, mode: str = "ok") -> Path:
    """A committed project with the ``work`` stage running qtool.py."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    exq("init", cwd=root)
    write(root / "qtool.py", QTOOL)
    write(root / "params.yaml", f"mode: {mode}\nlr: 0.1\n")
    write(root / "dvc.yaml", DVC_YAML)
    write(root / ".gitignore", "/out.txt\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "project")
    return root


def status(cwd: Path) -> dict[str, Any]:
    """``exq queue status --json``."""
    _, out, _ = exq("queue", "status", "--json", cwd=cwd)
    return json.loads(out)


def runs_by_id(cwd: Path) -> dict[int, dict[str, Any]]:
    return {run["id"]: run for run in status(cwd)["runs"]}


def queued_ids(stdout: str) -> list[int]:
    """Run ids from ``Queued experiment 'NAME' (run ID) for future execution.`` lines."""
    ids = []
    for line in stdout.splitlines():
        assert line.startswith("Queued experiment '") and line.endswith(" for future execution."), (
            line
        )
        ids.append(int(line.rsplit("(run ", 1)[1].split(")")[0]))
    return ids


def queued_names(stdout: str) -> list[str]:
    return [line.split("'")[1] for line in stdout.splitlines()]


def wait_for(condition: Callable[[], Any], what: str, seconds: float = 60) -> Any:
    """Poll until ``condition()`` is truthy; its value."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_states(
    cwd: Path, ids: list[int], states: set[str], seconds: float = 60
) -> dict[int, dict[str, Any]]:
    """Poll until every run of ``ids`` is in one of ``states``; the runs."""

    def done() -> dict[int, dict[str, Any]] | None:
        runs = runs_by_id(cwd)
        return runs if all(runs[i]["state"] in states for i in ids) else None

    return wait_for(done, f"runs {ids} to reach {sorted(states)}", seconds)
