"""Run-state rules: transitions, start-up recovery, queue order and slots, end states."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exq.daemon.resources import Candidate, Holding, Machine, plan_starts
from exq.daemon.states import (
    DIED,
    MAX_ATTEMPTS,
    TRANSITIONS,
    Outcome,
    QueueItem,
    RunState,
    StopReason,
    can_transition,
    end_state,
    free_slots,
    front_seqs,
    recovery_decision,
)

NO_GPUS = Machine(cpus=4.0)
NOW = datetime(2026, 1, 1, tzinfo=UTC)

Q, R, S, F, INT, C, P = (
    RunState.QUEUED,
    RunState.RUNNING,
    RunState.SUCCESS,
    RunState.FAILED,
    RunState.INTERRUPTED,
    RunState.CANCELLED,
    RunState.PRUNED,
)


@pytest.mark.parametrize(
    ("old", "new", "allowed"),
    [
        (Q, R, True),
        (Q, C, True),
        (Q, S, False),
        (Q, F, False),
        (Q, INT, False),
        (R, S, True),
        (R, F, True),
        (R, INT, True),
        (R, Q, False),
        (R, C, False),
        (S, Q, False),
        (S, F, False),
        (S, R, False),
        (F, Q, True),
        (F, R, False),
        (INT, Q, True),
        (INT, F, True),
        (INT, R, False),
        (C, Q, True),
        (C, R, False),
        (R, P, True),  # its pruner stopped it
        (Q, P, False),  # only a running run has checkpoints to judge
        (P, Q, True),  # exq queue retry resumes it
        (P, R, False),
        (P, F, False),
    ],
)
def test_transitions(old: RunState, new: RunState, allowed: bool) -> None:
    assert can_transition(old, new) is allowed


def test_every_state_has_a_rule_and_nothing_moves_to_itself() -> None:
    assert set(TRANSITIONS) == set(RunState)
    assert all(state not in targets for state, targets in TRANSITIONS.items())


def test_only_queued_runs_can_start() -> None:
    assert [s for s in RunState if can_transition(s, R)] == [Q]


@pytest.mark.parametrize(
    ("state", "attempts", "steps", "kill", "error"),
    [
        (R, 1, (INT, Q), True, None),
        (R, MAX_ATTEMPTS - 1, (INT, Q), True, None),
        (R, MAX_ATTEMPTS, (INT, F), True, f"interrupted {MAX_ATTEMPTS} times, not retried again"),
        (INT, 1, (Q,), False, None),
        (INT, MAX_ATTEMPTS, (F,), False, f"interrupted {MAX_ATTEMPTS} times, not retried again"),
        (Q, 0, (), False, None),
        (S, 1, (), False, None),
        (F, 1, (), False, None),
        (C, 0, (), False, None),
    ],
)
def test_recovery_decisions(
    state: RunState, attempts: int, steps: tuple[RunState, ...], kill: bool, error: str | None
) -> None:
    decision = recovery_decision(state, attempts)
    assert decision.steps == steps
    assert decision.kill_leftovers is kill
    assert decision.error == error


def test_recovery_steps_are_legal_transitions() -> None:
    for state in RunState:
        for attempts in (0, 1, MAX_ATTEMPTS):
            current = state
            for step in recovery_decision(state, attempts).steps:
                assert can_transition(current, step), (state, attempts, step)
                current = step


def test_died_error_is_a_sentence() -> None:
    assert "daemon died" in DIED


@pytest.mark.parametrize(
    ("requeued", "queued", "expected"),
    [
        # Two interrupted runs go before the queue, oldest (lowest seq) first.
        ([QueueItem(2, 2), QueueItem(1, 1)], [QueueItem(5, 5), QueueItem(6, 6)], {1: 3, 2: 4}),
        # An empty queue: they still keep their relative order.
        ([QueueItem(7, 10), QueueItem(3, 4)], [], {3: -1, 7: 0}),
        # A queue whose front was already moved below zero.
        ([QueueItem(9, 9)], [QueueItem(4, -3), QueueItem(8, 8)], {9: -4}),
        ([], [QueueItem(1, 1)], {}),
    ],
)
def test_front_seqs(
    requeued: list[QueueItem], queued: list[QueueItem], expected: dict[int, int]
) -> None:
    seqs = front_seqs(requeued, queued)
    assert seqs == expected
    assert all(seq < min((q.seq for q in queued), default=10**9) for seq in seqs.values())


def _picked(items: list[QueueItem], busy: set[int], jobs: int) -> list[tuple[int, int]]:
    """(run id, slot) pairs the scheduler's planner starts for these queued runs."""
    candidates = [Candidate(run_id=item.run_id, priority=0, seq=item.seq) for item in items]
    starts = plan_starts(candidates, NO_GPUS, Holding(), free_slots(busy, jobs), NOW)
    return [(start.run_id, start.slot) for start in starts]


def test_requeued_runs_are_picked_before_the_queue() -> None:
    queued = [QueueItem(5, 5), QueueItem(6, 6)]
    interrupted = [QueueItem(2, 2), QueueItem(1, 1)]
    seqs = front_seqs(interrupted, queued)
    merged = queued + [QueueItem(i, s) for i, s in seqs.items()]
    assert _picked(merged, set(), 3) == [(1, 0), (2, 1), (5, 2)]


@pytest.mark.parametrize(
    ("queued", "busy", "jobs", "expected"),
    [
        ([QueueItem(3, 3), QueueItem(1, 1), QueueItem(2, 2)], set(), 2, [(1, 0), (2, 1)]),
        ([QueueItem(3, 3), QueueItem(1, 1)], {0}, 2, [(1, 1)]),
        ([QueueItem(3, 3), QueueItem(1, 1)], {1}, 3, [(1, 0), (3, 2)]),
        ([QueueItem(1, 1)], {0, 1}, 2, []),
        ([QueueItem(1, 1)], {0, 1, 2}, 2, []),  # jobs lowered below the busy slots
        ([], set(), 4, []),
        # Equal seq: the lower id first.
        ([QueueItem(9, 1), QueueItem(4, 1)], set(), 1, [(4, 0)]),
    ],
)
def test_queued_runs_take_the_lowest_free_slots_in_queue_order(
    queued: list[QueueItem], busy: set[int], jobs: int, expected: list[tuple[int, int]]
) -> None:
    assert _picked(queued, busy, jobs) == expected


@pytest.mark.parametrize(
    ("outcome", "stop", "state", "error"),
    [
        (Outcome.SUCCESS, None, S, None),
        (Outcome.SUCCESS, StopReason.KILL, S, None),
        (Outcome.SUCCESS, StopReason.SHUTDOWN, S, None),
        (Outcome.FAILED, None, F, "stage 'x': boom"),
        (Outcome.FAILED, StopReason.KILL, F, "killed"),
        (Outcome.CANCELLED, StopReason.KILL, F, "killed"),
        (Outcome.FAILED, StopReason.SHUTDOWN, INT, "interrupted by the daemon stopping"),
        (Outcome.CANCELLED, StopReason.SHUTDOWN, INT, "interrupted by the daemon stopping"),
        (Outcome.CANCELLED, None, INT, "interrupted by the daemon stopping"),
        # Pruned: stopped by its SIGINT after the checkpoint, with the scheduler's reason.
        (Outcome.FAILED, StopReason.PRUNE, P, "stage 'x': boom"),
        (Outcome.SUCCESS, StopReason.PRUNE, S, None),  # it ended before the signal
    ],
)
def test_end_state(
    outcome: Outcome, stop: StopReason | None, state: RunState, error: str | None
) -> None:
    assert end_state(outcome, stop, "stage 'x': boom") == (state, error)
    assert can_transition(R, state)


class CountingSlots(set[int]):
    """Busy slots that count how often they are asked about."""

    asked = 0

    def __contains__(self, slot: object) -> bool:
        CountingSlots.asked += 1
        return super().__contains__(slot)


@pytest.mark.parametrize("jobs", [4, 1000, 1024, 10**12])
def test_finding_free_slots_costs_the_runs_started_not_jobs(jobs: int) -> None:
    busy = CountingSlots({0, 2})
    CountingSlots.asked = 0
    queued = [QueueItem(run_id=i, seq=i) for i in (7, 8)]
    assert _picked(queued, busy, jobs) == [(7, 1), (8, 3)]
    assert CountingSlots.asked <= len(busy) + len(queued)
