"""How ``queue show`` words an attempt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exq.cli.queue_order_cmds import attempt_text
from exq.daemon.states import AttemptRecord, RunState

START = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)


def _attempt(
    checkpoints: int, exit_code: int | None = 5, error: str | None = None
) -> AttemptRecord:
    return AttemptRecord(
        attempt=1,
        state=RunState.FAILED,
        started=START,
        finished=START + timedelta(seconds=3.2),
        exit_code=exit_code,
        error=error,
        checkpoints=checkpoints,
        location=None,
    )


@pytest.mark.parametrize(
    ("checkpoints", "said"),
    [(0, "failed after 3.2s (exit 5)"), (1, ", 1 checkpoint"), (4, ", 4 checkpoints")],
)
def test_checkpoints_are_counted_in_words(checkpoints: int, said: str) -> None:
    text = attempt_text(_attempt(checkpoints))
    assert text.endswith(said), text


def test_only_the_errors_first_line_is_shown() -> None:
    text = attempt_text(_attempt(2, error="stage 'train' failed\ntraceback..."))
    assert text.endswith(", 2 checkpoints: stage 'train' failed")
