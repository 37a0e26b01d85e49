"""Whether an interrupted run resumes from a checkpoint, and the setting that turns it off."""

from __future__ import annotations

from pathlib import Path

import pytest

from exq.daemon.config import DaemonConfig
from exq.daemon.states import resume_point

SHA = "a" * 40


@pytest.mark.parametrize(
    ("sha", "checkpoints", "enabled", "expected"),
    [
        (SHA, 3, True, SHA),  # a checkpoint run: resume from its last checkpoint
        (SHA, 3, False, None),  # turned off: start over from the snapshot
        (None, 0, True, None),  # not a checkpoint run
        (SHA, 0, True, None),  # a sha from an earlier success, no checkpoint this time
        ("", 2, True, None),
    ],
)
def test_resume_point(
    sha: str | None, checkpoints: int, enabled: bool, expected: str | None
) -> None:
    assert resume_point(sha, checkpoints, enabled) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, True),
        ("1", True),
        ("yes", True),
        ("0", False),
        ("false", False),
        ("OFF", False),
        ("", False),
        ("no", False),
    ],
)
def test_exq_resume_checkpoints_variable(value: str | None, expected: bool) -> None:
    env = {"EXQ_STATE_DIR": "/s", "EXQ_RUNTIME_DIR": "/r"}
    if value is not None:
        env["EXQ_RESUME_CHECKPOINTS"] = value
    config = DaemonConfig.from_env(env)
    assert config.resume_checkpoints is expected
    assert config.state_dir == Path("/s")
