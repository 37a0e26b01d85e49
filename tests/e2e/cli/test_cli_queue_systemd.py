"""The systemd user unit, and ``exq daemon`` in the foreground as systemd runs it."""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.e2e.conftest import EXQ_BIN
from tests.e2e.queue_helpers import QueueEnv, wait_for

UNIT = Path(__file__).resolve().parents[3] / "systemd" / "exq.service"


def read_unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(text)
    return parser


def test_unit_directives() -> None:
    unit = read_unit(UNIT.read_text())
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["ExecStart"] == "%h/.local/bin/exq daemon"
    # mixed: SIGTERM to the daemon alone (its graceful stop), SIGKILL to leftovers.
    assert service["KillMode"] == "mixed"
    assert service["Restart"] == "on-failure"
    # Room for the daemon's 30 s grace before systemd SIGKILLs what is left.
    assert int(service["TimeoutStopSec"]) > 30
    assert unit["Install"]["WantedBy"] == "default.target"


def _verify(unit_text: str, folder: Path) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    runtime = folder / "xdg"
    runtime.mkdir(mode=0o700)
    path = folder / "exq.service"
    path.write_text(unit_text)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    return subprocess.run(
        [analyze, "verify", "--user", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # As installed: ExecStart pointing at a real exq (systemd checks it is executable).
    text = UNIT.read_text().replace("%h/.local/bin/exq", str(EXQ_BIN))
    done = _verify(text, tmp_path)
    assert (done.returncode, done.stderr) == (0, "")


def test_systemd_analyze_verify_does_catch_mistakes(tmp_path: Path) -> None:
    text = UNIT.read_text().replace("%h/.local/bin/exq", str(EXQ_BIN))
    done = _verify(text.replace("Type=notify", "Type=notifyy"), tmp_path)
    assert "notifyy" in done.stderr


def test_foreground_daemon_notifies_systemd(queue_env: QueueEnv, tmp_path: Path) -> None:
    folder = Path(tempfile.mkdtemp(prefix="exq-n", dir="/tmp"))
    address = folder / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(address))
        notify.settimeout(60)
        env = {**os.environ, "NOTIFY_SOCKET": str(address)}
        proc = subprocess.Popen(
            [str(EXQ_BIN), "daemon"],
            cwd=tmp_path,
            env=env,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert notify.recv(4096) == b"READY=1"
            assert queue_env.socket.exists()  # READY only once the socket answers
            proc.send_signal(signal.SIGTERM)
            assert notify.recv(4096) == b"STOPPING=1"
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            shutil.rmtree(folder, ignore_errors=True)
    assert proc.returncode == 0, err
    wait_for(lambda: not queue_env.socket.exists(), "the socket to go")
    # Under systemd the daemon also logs to stderr, as JSON lines with stable event names.
    assert '"event": "daemon.started"' in err
