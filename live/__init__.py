"""Live metrics logger for training scripts; standard library only.

    from exq.live import Live

    with Live("logs") as live:
        live.log_param("lr", 0.01)
        for epoch in range(epochs):
            live.log("loss", train_one_epoch())
            live.next_step()      # writes the files; a checkpoint under exq

The dvclive 0.x module functions (``init``, ``log``, ``next_step``,
``get_step``) work on one default logger, so DVC-era scripts run unchanged.
``make_checkpoint()`` signals the runner and blocks until the snapshot is done
(see ``exq.live.checkpoint`` for the protocol).  Framework integrations live in
``exq.live.keras`` and ``exq.live.lightning`` and are imported only when used.
"""

from __future__ import annotations

import os
from typing import Any

from exq.live.checkpoint import CheckpointError
from exq.live.logger import Live, make_checkpoint

__all__ = ["CheckpointError", "Live", "get_step", "init", "log", "make_checkpoint", "next_step"]

_default: Live | None = None


def init(
    path: str | os.PathLike[str] | None = None,
    resume: bool = False,
    step: int = 0,
    summary: bool = True,
    html: bool = True,
) -> Live:
    """Open the default logger of the module functions (dvclive 0.x's ``init``)."""
    global _default
    if _default is not None:
        _default.end()
    _default = Live(path, resume=resume, summary=summary, html=html)
    if step:
        _default.step = step
    return _default


def _logger() -> Live:
    # dvclive 0.x let scripts log without init(): the path comes from DVCLIVE_PATH.
    return _default if _default is not None else init()


def log(name: str, val: Any, step: int | None = None) -> None:
    """Log a metric on the default logger."""
    _logger().log(name, val, step)


def next_step() -> None:
    """End the step of the default logger."""
    _logger().next_step()


def get_step() -> int:
    """The current step of the default logger."""
    return _logger().step
