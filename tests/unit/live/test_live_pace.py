"""When exq.live rewrites its files between checkpoints."""

from __future__ import annotations

import time

from exq.live.logger import _Pace


def test_cheap_writes_happen_at_every_step() -> None:
    pace = _Pace()
    assert pace.due()
    pace.ran(time.monotonic() - 0.001)
    assert pace.due()


def test_dear_writes_wait_ten_times_their_cost() -> None:
    pace = _Pace()
    pace.ran(time.monotonic() - 0.5)  # a write that took half a second
    assert not pace.due()
    pace.last -= 4.0
    assert not pace.due()
    pace.last -= 1.1
    assert pace.due()
