"""Live metrics logger for training scripts; standard library only.

    from exq.live import Live

    with Live("logs") as live:
        live.log_param("lr", 0.01)
        for epoch in range(epochs):
            live.log("loss", train_one_epoch())
            live.next_step()      # the report; a checkpoint under exq

Scripts written for dvclive run unchanged with ``import exq.live as dvclive``.
The dvclive 0.0-0.3 module functions (``init``, ``log``, ``next_step``,
``get_step``, ``set_step``) work on one default logger, which, as in dvclive
0.0-0.2, starts a new step when a metric is logged twice.  ``make_checkpoint()``
signals the runner and blocks until the snapshot is done (see
``exq.live.checkpoint``).  Errors are ``exq.live.error``'s, under dvclive's
names.  Framework integrations live in ``exq.live.keras`` and
``exq.live.lightning`` and are imported only when used.
"""

from __future__ import annotations

import os
from typing import Any

from exq.live import error
from exq.live.error import CheckpointError, DvcLiveError, InitializationError
from exq.live.logger import Live, make_checkpoint

__all__ = [
    "CheckpointError",
    "DvcLiveError",
    "Live",
    "error",
    "get_step",
    "init",
    "log",
    "make_checkpoint",
    "next_step",
    "set_step",
]

_default: Live | None = None


def init(
    path: str | os.PathLike[str] | None = None,
    resume: bool = False,
    step: int = 0,
    summary: bool | None = None,
    html: bool | None = None,
) -> Live:
    """Open the default logger of the module functions (dvclive 0.x's ``init``).

    An explicit ``summary``/``html`` wins over ``DVCLIVE_SUMMARY``/``DVCLIVE_HTML``;
    a ``path`` other than ``DVCLIVE_PATH`` raises ``ConfigMismatchError``.
    """
    global _default
    if _default is not None:
        _default.end()
        _default = None
    live = Live(path, resume=resume, summary=summary, html=html)
    live._auto_step = True  # dvclive 0.0-0.2: a metric logged twice starts a step
    if step:
        live.step = step
    _default = live
    return live


def _logger() -> Live:
    # dvclive 0.2+ let scripts log without init(): the path comes from DVCLIVE_PATH.
    return _default if _default is not None else init()


def log(name: str, val: Any, step: int | None = None) -> None:
    """Log a metric on the default logger."""
    _logger().log(name, val, step)


def next_step() -> None:
    """End the step of the default logger; InitializationError before init() or log()."""
    if _default is None:
        raise InitializationError()
    _default.next_step()


def get_step() -> int:
    """The current step of the default logger."""
    return _logger().step


def set_step(step: int) -> None:
    """End the current step of the default logger and go on at ``step`` (dvclive 0.3)."""
    _logger().set_step(step)
