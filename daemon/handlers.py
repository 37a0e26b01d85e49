"""What the socket server may ask of the daemon: the :class:`Handlers` interface.

The server (:mod:`exq.daemon.server`) decodes a request and calls the method of
the same name; the scheduler (:class:`exq.daemon.scheduler.Scheduler`)
implements them. Every method only records intent and wakes the scheduler,
the one reconciler, so each returns at once (none waits for a run to end).

How :mod:`exq.daemon.main` plugs the server in::

    handlers: Handlers = scheduler
    await tg.start(serve, config, handlers)   # serve(config, handlers, *, task_status)

``serve`` must call ``task_status.started()`` once the socket listens, and run
until cancelled. Run ids are ints: the CLI resolves names with
``SyncStore.get_run`` before asking. None of these raise for an unknown run;
``stop`` and ``set_jobs`` raise ``ValueError`` only for a bad argument
(``jobs < 1``), which the server should answer with ``bad_request``.
"""

from __future__ import annotations

from typing import Protocol, TypedDict


class StatusInfo(TypedDict):
    """The daemon's own state; the runs themselves are read from the database."""

    pid: int
    slots_busy: int
    slots_total: int
    paused: bool
    stopping: bool
    running: list[int]  # ids of the runs in a slot now
    gpus_total: int  # the GPUs runs may get
    gpus_free: int  # of those, held by no run
    cpus_total: float
    mem_total: int  # bytes; 0: unknown


class Handlers(Protocol):
    """The daemon's side of each request (names mirror :mod:`exq.daemon.protocol`)."""

    async def wake(self) -> None:
        """New or retried rows are in the queue: look at it now."""

    async def status(self) -> StatusInfo:
        """Pid, slots busy/total, paused, stopping, running run ids."""

    async def kill(self, run_ids: list[int], force: bool) -> list[int]:
        """SIGINT (SIGKILL with ``force``) to each running run's process groups;
        queued runs among ``run_ids`` are cancelled. Returns the ids killed:
        running runs signalled (they end ``failed`` with error ``killed``) and
        queued runs cancelled (they end ``cancelled`` and never start); the
        other ids (ended, unknown) are not running."""

    async def pause(self) -> None:
        """Start no new runs; running ones go on."""

    async def resume(self) -> None:
        """Start new runs again."""

    async def set_jobs(self, jobs: int) -> None:
        """How many runs at once (slots ``0..jobs-1``); lowering it lets the
        runs above the new limit finish. Raises ValueError if ``jobs < 1``."""

    async def stop(self, kill: bool) -> None:
        """Exit once no run is running: start nothing new; with ``kill``, interrupt
        the running runs (SIGINT, grace, SIGKILL; they end ``interrupted`` and are
        requeued at the next start), else let them finish."""
