"""What a queued run may ask of the queue, checked: pure functions over the values
typed after ``exq exp run --queue`` and the ``[queue]`` defaults of the config file.

Every bad value is one :class:`~exq.daemon.resources.ResourceError` naming the
option (or the config key) before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exq.daemon.resources import (
    MAX_WHOLE,
    Ask,
    ResourceError,
    parse_cpus,
    parse_duration,
    parse_gpus,
    parse_size,
)


@dataclass(frozen=True)
class RunOptions:
    """The checked options of one queued run."""

    gpus: int | None = None
    cpus: float | None = None
    mem: int | None = None  # bytes
    priority: int = 0
    timeout: float | None = None  # seconds
    retries: int = 0
    retry_delay: float | None = None  # seconds

    @property
    def ask(self) -> Ask:
        return Ask(gpus=self.gpus or 0, cpus=self.cpus or 0.0, mem=self.mem or 0)


@dataclass
class RawOptions:
    """The options as typed (strings, or numbers from older callers); None: not given."""

    gpus: Any = None
    cpus: Any = None
    mem: Any = None
    priority: Any = None
    timeout: Any = None
    retries: Any = None
    retry_delay: Any = None


def parse_int(value: Any, what: str, *, minimum: int | None = None) -> int:
    """A whole number (``--priority -1``, ``--retries 2``)."""
    text = str(value).strip()
    try:
        number = int(text)
    except ValueError:
        raise ResourceError(f"{what} '{value}' is not a whole number") from None
    if minimum is not None and number < minimum:
        raise ResourceError(f"{what} '{value}' must be {minimum} or more")
    if abs(number) > MAX_WHOLE:  # the queue's SQLite integers hold no more
        raise ResourceError(f"{what} '{value}': at most {MAX_WHOLE} either way")
    return number


def parse_delay(value: Any, what: str = "--retry-delay") -> float:
    """A delay: a duration, or 0 (retry at once)."""
    if str(value).strip() in ("0", "0s"):
        return 0.0
    return parse_duration(str(value), what)


def resolve(raw: RawOptions, defaults: Mapping[str, Any] | None = None) -> RunOptions:
    """The options of a run: each given option, else its ``[queue]`` default."""
    defaults = defaults or {}

    def pick(name: str, parse: Any, option: str) -> Any:
        value = getattr(raw, name)
        if value is not None:
            return parse(value, option)
        if name in defaults:
            return parse(defaults[name], f"[queue] {name}")
        return None

    priority = raw.priority
    retries = pick("retries", lambda v, w: parse_int(v, w, minimum=0), "--retries")
    return RunOptions(
        gpus=pick("gpus", parse_gpus, "--gpus"),
        cpus=pick("cpus", parse_cpus, "--cpus"),
        mem=pick("mem", lambda v, w: parse_size(str(v), w), "--mem"),
        priority=0 if priority is None else parse_int(priority, "--priority"),
        timeout=pick("timeout", lambda v, w: parse_duration(str(v), w), "--timeout"),
        retries=retries or 0,
        retry_delay=pick("retry_delay", parse_delay, "--retry-delay"),
    )
