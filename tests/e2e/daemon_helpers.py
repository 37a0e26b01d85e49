"""The daemon as a process, for the end-to-end daemon tests: start it with an
environment, read its JSON log, stop it, read the queue's rows."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from exq.daemon.config import DaemonConfig
from exq.daemon.states import RunRecord
from exq.daemon.store import SyncStore
from tests.e2e.conftest import EXQ_BIN


def config_of(env: dict[str, str]) -> DaemonConfig:
    return DaemonConfig.from_env(env)


def start(env: dict[str, str], jobs: int = 1) -> subprocess.Popen[str]:
    """A daemon process, once it logged ``daemon.started``."""
    proc = subprocess.Popen(
        [str(EXQ_BIN), "daemon", "-j", str(jobs)],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    log = config_of(env).daemon_log
    wait_until(
        lambda: (
            proc.poll() is not None
            or any(e["event"] == "daemon.started" and e.get("pid") == proc.pid for e in events(log))
        ),
        "the daemon to start",
    )
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    return proc


def events(log: Path) -> list[dict[str, object]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def wait_until(condition: Callable[[], object], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def runs(env: dict[str, str]) -> list[RunRecord]:
    with SyncStore(config_of(env).db_path) as store:
        return store.list_runs()


def terminate(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


def ref_locks(repo: Path) -> list[Path]:
    return sorted((repo / ".git" / "refs").rglob("*.lock"))


def ckpt_folders(env: dict[str, str]) -> list[Path]:
    return sorted(Path(env["XDG_RUNTIME_DIR"]).glob("exq-ckpt-*"))
