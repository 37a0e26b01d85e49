"""``exq push``/``pull`` through a real sshd on 127.0.0.1 (an ``ssh://`` remote, sshfs).

The test starts OpenSSH's server on a free port with its own host key, one
authorized client key and nothing else (no passwords, no PAM), and stops it.
The client checks the server's key against ``~/.ssh/known_hosts`` as ssh does:
the test gives exq a home of its own that knows the key. Skipped where sshd
cannot be started (not installed, or no privilege-separation folder).
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.cli.test_cli_remote_transfer import fresh_copy, make_source, objects, workspace
from tests.e2e.conftest import exq

pytest.importorskip("sshfs")

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@dataclass(frozen=True)
class SshServer:
    port: int
    key: Path  # the client's private key
    home: Path  # a HOME whose ~/.ssh/known_hosts knows the server

    def env(self) -> dict[str, str]:
        return {"HOME": str(self.home)}

    def use(self, root: Path, folder: Path, name: str = "store") -> None:
        url = f"ssh://{getpass.getuser()}@127.0.0.1{folder}"
        exq("remote", "add", "-f", "-d", name, url, cwd=root)
        exq("remote", "modify", name, "port", str(self.port), cwd=root)
        exq("remote", "modify", "--local", name, "keyfile", str(self.key), cwd=root)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_suffix(".pub").read_text().strip()


def _config(folder: Path, port: int) -> Path:
    lines = [
        "ListenAddress 127.0.0.1",
        f"Port {port}",
        f"HostKey {folder / 'host_key'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}",
        f"PidFile {folder / 'sshd.pid'}",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "UsePAM no",
        "StrictModes no",
        "Subsystem sftp internal-sftp",
    ]
    path = folder / "sshd_config"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def ssh_server(tmp_path: Path) -> Iterator[SshServer]:
    if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH's sshd is not installed (apt-get install openssh-server)")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    folder = tmp_path / "sshd"
    folder.mkdir()
    host_key = _keygen(folder / "host_key")
    (folder / "authorized_keys").write_text(_keygen(folder / "client_key") + "\n")
    port = _free_port()
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key}\n")
    server = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(_config(folder, port))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_listening(server, port)
        yield SshServer(port, folder / "client_key", home)
    finally:
        server.terminate()
        server.wait(timeout=10)


def _wait_listening(server: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if server.poll() is not None:
                assert server.stderr is not None
                pytest.skip(f"sshd cannot be started here: {server.stderr.read().decode()[:200]}")
            if time.monotonic() > deadline:
                raise RuntimeError("sshd did not start listening") from None
            time.sleep(0.1)


def test_push_and_pull_through_sshd(tmp_path: Path, ssh_server: SshServer) -> None:
    source = make_source(tmp_path / "source")
    store = tmp_path / "store"
    ssh_server.use(source, store)
    assert "keyfile" not in (source / ".dvc" / "config").read_text()
    _, out, _ = exq("push", "-j", "4", cwd=source, env=ssh_server.env())
    assert "4 file(s) pushed" in out
    pushed = objects(store)
    assert pushed and all(name.startswith("files/md5/") for name in pushed)
    assert not [name for name in pushed if ".tmp" in name]
    _, again, _ = exq("status", "-c", cwd=source, env=ssh_server.env())
    assert "in sync" in again

    target = fresh_copy(source, tmp_path / "target", "/unused")
    ssh_server.use(target, store)
    _, pulled, _ = exq("pull", cwd=target, env=ssh_server.env())
    assert "4 file(s) fetched" in pulled
    assert workspace(target) == workspace(source)


def test_an_unknown_host_key_is_one_line_and_nothing_written(
    tmp_path: Path, ssh_server: SshServer
) -> None:
    source = make_source(tmp_path / "source")
    store = tmp_path / "store"
    ssh_server.use(source, store)
    stranger = tmp_path / "stranger"
    (stranger / ".ssh").mkdir(parents=True)
    code, _, err = exq("push", cwd=source, env={"HOME": str(stranger)}, check=False)
    assert code != 0
    assert len(err.strip().splitlines()) == 1, err
    assert "remote 'store'" in err and "known_hosts" in err
    assert not store.exists() or objects(store) == set()


def test_a_wrong_key_and_a_closed_port_are_one_line(tmp_path: Path, ssh_server: SshServer) -> None:
    source = make_source(tmp_path / "source")
    ssh_server.use(source, tmp_path / "store")
    other = tmp_path / "other_key"
    _keygen(other)
    exq("remote", "modify", "--local", "store", "keyfile", str(other), cwd=source)
    code, _, err = exq("push", cwd=source, env=ssh_server.env(), check=False)
    assert code != 0 and len(err.strip().splitlines()) == 1, err

    exq("remote", "modify", "store", "port", "twenty-two", cwd=source)
    code, _, err = exq("push", cwd=source, env=ssh_server.env(), check=False)
    assert code != 0 and err.strip().splitlines() == [
        "ERROR: ssh remote option port: 'twenty-two' is not a whole number"
    ], err
    exq("remote", "modify", "store", "port", "22.5", cwd=source)
    code, _, err = exq("push", cwd=source, env=ssh_server.env(), check=False)
    assert code != 0 and err.strip().splitlines() == [
        "ERROR: ssh remote option port: '22.5' is not a whole number"
    ], err

    exq("remote", "modify", "store", "port", str(_free_port()), cwd=source)
    code, _, err = exq("push", cwd=source, env=ssh_server.env(), check=False, timeout=60)
    assert code != 0 and len(err.strip().splitlines()) == 1, err
    assert "remote 'store'" in err
