"""Progress bars on stderr for long data work: files, bytes, rate.

The engine reports through :mod:`exq.engine.data.progress`; this draws it
with rich, and only where a person watches: stderr is a terminal, ``-q`` was
not given, and the task has lasted a second (``EXQ_PROGRESS_AFTER``) (short work stays silent, so
quick commands print exactly what they printed before).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from exq.engine.data import progress


def _show_after() -> float:
    """Seconds a task runs before its bar appears (``EXQ_PROGRESS_AFTER``, default 1)."""
    try:
        return float(os.environ.get("EXQ_PROGRESS_AFTER", "1"))
    except ValueError:
        return 1.0


class _Task:
    def __init__(self, bars: RichBars, label: str, files: int, nbytes: int) -> None:
        self.bars, self.label, self.files, self.nbytes = bars, label, files, nbytes
        self.started = time.monotonic()
        self.done_files = 0
        self.done_bytes = 0
        self.bar_id: Any = None
        self.show_after = _show_after()
        self._lock = threading.Lock()

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self.done_files += 1
            self.done_bytes += nbytes
            if self.bar_id is None and time.monotonic() - self.started < self.show_after:
                return
            self.bars.show(self)


class RichBars:
    """A :class:`progress.Reporter` that draws rich bars once a task is slow."""

    def __init__(self) -> None:
        self._progress: Any = None

    def open(self, label: str, files: int, nbytes: int) -> progress.Task:
        return _Task(self, label, files, nbytes)

    def close(self, task: progress.Task) -> None:
        assert isinstance(task, _Task)
        if task.bar_id is not None and self._progress is not None:
            self._progress.remove_task(task.bar_id)
            if not self._progress.tasks:
                self._progress.stop()
                self._progress = None

    def show(self, task: _Task) -> None:
        if self._progress is None:
            self._progress = _new_progress()
            self._progress.start()
        if task.bar_id is None:
            task.bar_id = self._progress.add_task(
                task.label, total=task.nbytes, files=f"0/{task.files:,} files"
            )
        self._progress.update(
            task.bar_id,
            completed=task.done_bytes,
            files=f"{task.done_files:,}/{task.files:,} files",
        )


def _new_progress() -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[files]}"),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def install(quiet: bool = False) -> None:
    """Draw the engine's data tasks on stderr when it is a terminal, unless ``quiet``."""
    if not quiet and sys.stderr.isatty():
        progress.install(RichBars())
