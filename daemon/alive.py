"""Whether a daemon is alive: the process holding its single-instance lock.

Read from ``/proc/locks`` without taking the lock. Standard library only, and
apart from the client: ``queue status`` asks here when there is no socket to
ask, without importing the socket protocol.
"""

from __future__ import annotations

import os
from pathlib import Path


def lock_holder(lock_path: Path) -> int | None:
    """The pid of the live daemon holding its single-instance lock (``flock`` on
    ``lock_path``), or None when no process holds it: then no daemon is alive,
    whatever the socket says. Reads ``/proc/locks`` and never takes the lock
    itself (that could make a daemon starting meanwhile refuse to start)."""
    try:
        info = os.stat(lock_path)
    except OSError:
        return None
    where = (os.major(info.st_dev), os.minor(info.st_dev), info.st_ino)
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as table:
            lines = table.read().splitlines()
    except OSError:
        return _pid_in_file(lock_path)
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; "1: -> ..." waits for it
        if len(fields) < 6 or fields[1] != "FLOCK" or not fields[4].isdigit():
            continue
        if _device_inode(fields[5]) == where:
            return int(fields[4])
    return None


def _device_inode(text: str) -> tuple[int, int, int] | None:
    """``fe:00:2192715`` (major and minor in hex, then the inode) as numbers."""
    try:
        major, minor, inode = text.split(":")
        return int(major, 16), int(minor, 16), int(inode)
    except ValueError:
        return None


def _pid_in_file(lock_path: Path) -> int | None:
    try:
        text = lock_path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and Path(f"/proc/{text}").exists() else None
