"""The end-to-end daemon tests' environment: the queue's folders in temp folders,
a runtime folder for the checkpoint folders, and the rendezvous folder ``RDV``."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import EXQ_BIN


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    runtime = Path(tempfile.mkdtemp(dir="/tmp", prefix="exq-l-"))
    (runtime / "xdg").mkdir(mode=0o700)
    (tmp_path / "rdv").mkdir()
    yield {
        **os.environ,
        "EXQ_STATE_DIR": str(tmp_path / "state"),
        "EXQ_RUNTIME_DIR": str(runtime / "run"),
        "XDG_RUNTIME_DIR": str(runtime / "xdg"),  # where the checkpoint folders go
        "EXQ_GRACE_SECONDS": "10",
        "RDV": str(tmp_path / "rdv"),
    }
    shutil.rmtree(runtime, ignore_errors=True)


def exq(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXQ_BIN), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
