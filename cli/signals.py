"""Long commands (``repro``, ``exp run``) stopped by SIGTERM or SIGHUP as by Ctrl-C.

Stage commands run in sessions of their own, so a plain ``kill`` or a closed
terminal would otherwise leave them running after exq is gone. Stopped this
way, the stage commands are stopped and a checkpoint under way is finished.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from exq.engine.errors import ExqError

T = TypeVar("T")


def run_until_stopped(run: Callable[[], Awaitable[T]]) -> T:
    """``run()`` in an event loop; SIGTERM or SIGHUP raise ``KeyboardInterrupt``
    once it has stopped."""
    return anyio.run(_until_stopped, run)


async def _until_stopped(run: Callable[[], Awaitable[T]]) -> T:
    stopped = False
    result: list[T] = []
    error: ExqError | None = None
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            nonlocal stopped
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP) as signals:
                async for _ in signals:
                    stopped = True
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(watch)
        try:
            result.append(await run())
        except ExqError as exc:
            error = exc  # raised here, not wrapped in the task group's ExceptionGroup
        tg.cancel_scope.cancel()
    if error is not None:
        raise error
    if stopped or not result:
        raise KeyboardInterrupt
    return result[0]
