"""Another local user can neither pose as the daemon nor read the queue's state.

Run as root, the tests play the other user with ``nobody``: a folder chowned to
it, or a process that drops to its uid. The impostor is a real process on a
real Unix socket answering every line as a daemon would; the CLI must refuse to
talk to it, in one line naming the folder, before sending anything.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import exq
from tests.e2e.queue_helpers import QueueEnv, wait_for

NOBODY = 65534

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")

IMPOSTOR = """\
import os, socket, sys
NOBODY = int(sys.argv[3])
path, when = sys.argv[1], sys.argv[2]
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
if when == "before-bind":   # the other user made the folder and the socket
    os.setuid(NOBODY)
    listener.bind(path)
else:                       # a socket file of ours, listened on by the other user
    listener.bind(path)
    os.setuid(NOBODY)
listener.listen()
print("ready", flush=True)
while True:
    conn, _ = listener.accept()
    print("heard", conn.recv(65536), flush=True)
    conn.sendall(b'{"v":1,"type":"pause","ok":true}\\n')
    conn.close()
"""


class Impostor:
    """A process of another user listening on the daemon's socket path."""

    def __init__(self, env: QueueEnv) -> None:
        self.env = env
        self.proc: subprocess.Popen[str] | None = None

    def start(self, when: str) -> None:
        os.chmod(self.env.runtime.parent, 0o711)  # the other user can reach the folder
        self.proc = subprocess.Popen(
            [sys.executable, "-c", IMPOSTOR, str(self.env.socket), when, str(NOBODY)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "ready\n"

    def stop(self) -> str:
        """What it was sent (a connection that only looked at it sends nothing)."""
        if self.proc is None:
            return ""
        self.proc.kill()
        out, _ = self.proc.communicate()
        self.proc = None
        return "".join(line for line in out.splitlines() if line != "heard b''")


@pytest.fixture
def impostor(queue_env: QueueEnv) -> Iterator[Impostor]:
    other = Impostor(queue_env)
    yield other
    other.stop()


def refused(env: QueueEnv, *why: str) -> None:
    code, out, err = exq("queue", "pause", cwd=env.state.parent, check=False)
    assert code == 5, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"refusing the daemon folder {env.runtime}" in lines[0]
    for text in why:
        assert text in lines[0], lines[0]


def test_a_runtime_folder_made_by_another_user_is_refused(
    queue_env: QueueEnv, impostor: Impostor
) -> None:
    queue_env.runtime.mkdir(mode=0o700)
    os.chown(queue_env.runtime, NOBODY, NOBODY)
    impostor.start("before-bind")
    refused(queue_env, f"belongs to uid {NOBODY}")
    assert impostor.stop() == ""  # nothing was sent to it


def test_a_listener_of_another_user_is_refused(queue_env: QueueEnv, impostor: Impostor) -> None:
    queue_env.runtime.mkdir(mode=0o700)
    impostor.start("after-bind")
    refused(queue_env, f"runs as uid {NOBODY}")
    assert impostor.stop() == ""


def test_a_runtime_folder_others_may_write_is_refused(
    queue_env: QueueEnv, impostor: Impostor
) -> None:
    queue_env.runtime.mkdir(mode=0o700)
    os.chmod(queue_env.runtime, 0o777)  # anyone could have put the socket there
    impostor.start("after-bind")
    refused(queue_env, "may be written by other users")
    assert impostor.stop() == ""


def test_a_daemon_of_ours_is_still_reached(queue_env: QueueEnv) -> None:
    exq("queue", "start", cwd=queue_env.state.parent)
    code, out, _ = exq("queue", "pause", cwd=queue_env.state.parent)
    assert code == 0 and "Paused" in out


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_loose_state_folder_is_tightened_at_start(queue_env: QueueEnv) -> None:
    queue_env.state.mkdir(mode=0o755)
    os.chmod(queue_env.state, 0o755)
    for name in ("daemon.log", "queue.db"):
        (queue_env.state / name).write_bytes(b"")
        os.chmod(queue_env.state / name, 0o644)
    (queue_env.state / "logs").mkdir(mode=0o755)
    os.chmod(queue_env.state / "logs", 0o755)
    exq("queue", "start", cwd=queue_env.state.parent)
    wait_for(lambda: (queue_env.state / "daemon.lock").exists(), "the daemon")
    assert mode(queue_env.state) == 0o700
    assert mode(queue_env.state / "logs") == 0o700
    for path in queue_env.state.iterdir():
        if path.is_file():
            assert mode(path) & 0o077 == 0, path


def test_a_state_folder_of_another_user_is_refused(queue_env: QueueEnv) -> None:
    queue_env.state.mkdir(mode=0o700)
    os.chown(queue_env.state, NOBODY, NOBODY)
    code, _, err = exq("queue", "start", cwd=queue_env.state.parent, check=False)
    assert code != 0
    assert len(err.strip().splitlines()) == 1, err
    assert f"the state folder {queue_env.state} is not a folder of yours" in err
