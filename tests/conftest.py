"""Shared fixtures: anyio's backend, and real git repositories in temp folders.

No test reads or writes the user's own queue or config: the whole session's
state folder and config file are in a temp folder (tests that need their own set
these variables themselves).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support import git

_SANDBOX = Path(tempfile.mkdtemp(prefix="exq-tests-"))
os.environ["EXQ_STATE_DIR"] = str(_SANDBOX / "state")
os.environ["EXQ_CONFIG"] = str(_SANDBOX / "config.toml")  # absent: the defaults


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_SANDBOX, ignore_errors=True)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """An empty git repository with a committer configured locally."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test")
    git(repo, "config", "user.email", "test@example.com")
    return repo


@pytest.fixture
def dvc_bin() -> str:
    """The real dvc executable, or skip the test."""
    candidate = os.environ.get("EXQ_TEST_DVC") or shutil.which("dvc")
    if not candidate or not Path(candidate).exists():
        pytest.skip("the real dvc is not installed (make dvc)")
    return candidate


# The local Ray cluster of the ray executor's tests (session-wide: it takes seconds to start).
from tests.ray_cluster import ray_cluster  # noqa: E402, F401
from tests.s3_server import s3_server  # noqa: E402, F401
