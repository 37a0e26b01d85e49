"""Integration fixtures: the daemon's configuration in temp folders."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from exq.daemon.config import DaemonConfig


@pytest.fixture
def config(tmp_path: Path) -> Iterator[DaemonConfig]:
    """A daemon's folders in ``tmp_path`` (its socket under a short /tmp folder:
    socket paths are limited), one slot, and ``RDV``, a folder stage commands
    meet in, in the runs' environment."""
    runtime = Path(tempfile.mkdtemp(dir="/tmp", prefix="exq-t-"))
    rdv = tmp_path / "rdv"
    rdv.mkdir()
    yield DaemonConfig(
        state_dir=tmp_path / "state",
        runtime_dir=runtime / "run",
        jobs=1,
        grace=5.0,
        extra_env={"RDV": str(rdv)},
    )
    shutil.rmtree(runtime, ignore_errors=True)
