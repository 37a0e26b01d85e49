"""When ``queue status --watch`` stops: the snapshot's ``drained`` and ``settled``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exq.cli.queue_status import Snapshot
from exq.daemon.protocol import StatusReply
from exq.daemon.study_service import StudyStatus
from exq.daemon.study_store import StudyRecord

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def study(budget: int, queued: int, state: str = "active") -> StudyStatus:
    record = StudyRecord(
        id=1,
        name="st",
        repo="/r",
        baseline="b" * 40,
        snapshot="s" * 40,
        space=["lr=interval(0, 1)"],
        spec={},
        template={},
        budget=budget,
        state=state,
        queued=queued,
        last_trial=queued - 1,
        error=None,
        created="2026-01-02T03:04:05+00:00",
    )
    return StudyStatus(record, [])


@pytest.mark.parametrize(
    ("studies", "drained"),
    [
        ([], True),
        # between two trials nothing runs or waits, yet the study asks for the next:
        # the watch stopped there, mid-study
        ([study(budget=3, queued=1)], False),
        ([study(budget=3, queued=3)], True),  # every trial queued and ended
        ([study(budget=3, queued=1, state="done")], True),
    ],
)
def test_a_study_with_trials_to_ask_keeps_the_queue_from_draining(
    studies: list[StudyStatus], drained: bool
) -> None:
    reply = StatusReply(pid=4, slots_busy=0, slots_total=1)
    snapshot = Snapshot([], reply, None, {}, None, NOW, studies=studies)
    assert snapshot.drained is drained
    assert snapshot.settled is drained
    no_daemon = Snapshot([], None, None, {}, None, NOW, studies=studies)
    assert no_daemon.settled  # nothing will ask Optuna: no wait for ever
