"""Progress of long data work (hashing, caching, restoring), for whoever shows it.

The engine reports; it never draws. A front end that wants a progress bar
installs a :class:`Reporter` for the process (the CLI does, on a terminal);
without one every call here is a no-op, so the daemon and the tests pay
nothing. Tasks may be advanced from several threads at once: a reporter's
tasks must be thread-safe.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Task(Protocol):
    """One piece of work of known size: files, and their bytes."""

    def advance(self, nbytes: int) -> None:
        """One more file done, of ``nbytes`` bytes."""


class Reporter(Protocol):
    """Shows tasks as they go (a progress bar)."""

    def open(self, label: str, files: int, nbytes: int) -> Task:
        """A task of ``files`` files and ``nbytes`` bytes begins."""

    def close(self, task: Task) -> None:
        """The task ended (done, or failed part way)."""


class _Quiet:
    def advance(self, nbytes: int) -> None:
        pass


QUIET: Task = _Quiet()
_reporter: Reporter | None = None


def install(reporter: Reporter | None) -> None:
    """Send the process's data tasks to ``reporter`` (None: back to silence)."""
    global _reporter
    _reporter = reporter


@contextmanager
def task(label: str, files: int, nbytes: int) -> Iterator[Task]:
    """A task to advance file by file; silent unless a reporter is installed."""
    reporter = _reporter
    if reporter is None or files == 0:
        yield QUIET
        return
    opened = reporter.open(label, files, nbytes)
    try:
        yield opened
    finally:
        reporter.close(opened)
