"""A real S3 server (moto's server mode) on 127.0.0.1 for the data remote tests.

The server is a subprocess started on a free port and stopped by the test;
the machine's AWS settings are hidden, so only what a project's
``.dvc/config.local`` gives counts.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BUCKET = "exq-data"
KEY = SECRET = "testing"
# No credentials from the machine: only what config.local gives.
ISOLATED = {
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_MAX_ATTEMPTS": "1",
    "AWS_RETRY_MODE": "standard",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def s3fs_at(endpoint: str):  # noqa: ANN201 - s3fs's type, imported only here
    import s3fs

    return s3fs.S3FileSystem(key=KEY, secret=SECRET, client_kwargs={"endpoint_url": endpoint})


@contextmanager
def moto_server(bucket: str = BUCKET, log: Path | None = None) -> Iterator[str]:
    """A running S3 server holding an empty ``bucket``: its endpoint URL. Its
    requests and errors go to ``log``, if given."""
    port = free_port()
    with open(log or os.devnull, "ab") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the S3 server did not start") from None
                time.sleep(0.1)
        s3fs_at(endpoint).mkdir(bucket)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def s3_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """An S3 server on 127.0.0.1 with an empty bucket; its endpoint URL."""
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in ISOLATED.items():
        monkeypatch.setenv(key, value)
    with moto_server(log=tmp_path / "s3-server.log") as endpoint:
        yield endpoint
