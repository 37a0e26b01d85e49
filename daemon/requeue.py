"""Interrupted runs back into the queue: at start-up, and when a cluster run is
interrupted under a running daemon (its node died)."""

from __future__ import annotations

from typing import Any

from exq.daemon.config import DaemonConfig
from exq.daemon.states import (
    QueueItem,
    RunState,
    front_seqs,
    recovery_decision,
    resume_point,
)
from exq.daemon.store import RunRecord
from exq.daemon.store_async import AsyncStore


async def requeue_interrupted(
    store: AsyncStore, records: list[RunRecord], config: DaemonConfig, log: Any
) -> None:
    """Queue interrupted runs again at the front (checkpoint runs to resume from
    their last checkpoint), or fail those that used up their attempts."""
    records = [r for r in records if r.state is RunState.INTERRUPTED]
    decisions = {r.id: recovery_decision(r.state, r.attempts) for r in records}
    requeue = [
        QueueItem(r.id, r.seq) for r in records if decisions[r.id].steps == (RunState.QUEUED,)
    ]
    seqs = front_seqs(requeue, await store.queue_items())
    for record in records:
        decision = decisions[record.id]
        resume = resume_point(record.experiment_sha, record.checkpoints, config.resume_checkpoints)
        if record.id in seqs:
            await store.transition(
                record.id,
                RunState.INTERRUPTED,
                RunState.QUEUED,
                seq=seqs[record.id],
                error=None,
                exit_code=None,
                finished=None,
                worker_slot=None,
                resume_sha=resume,
            )
        else:
            await store.transition(
                record.id, RunState.INTERRUPTED, RunState.FAILED, error=decision.error
            )
        log.info(
            "run.recovered",
            run_id=record.id,
            state=decision.steps[-1].value,
            attempts=record.attempts,
            resume_sha=resume if record.id in seqs else None,
        )
