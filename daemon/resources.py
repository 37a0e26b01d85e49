"""What a run asks of the machine, and who gets what: pure functions over plain data.

The daemon holds a :class:`Machine` (its GPU ids, CPUs and memory, found by
:mod:`exq.daemon.machine`). Each queued run asks for a :class:`Ask`: whole GPUs
(no sharing of a device between runs), CPUs and memory. :func:`plan_starts`
walks the runs in queue order (priority, then age) and gives each the first
free devices, as long as what it asks is free and a slot is left; the first
run that does not fit waits, and the runs behind it wait too, so a big run is
never starved by small ones that keep slipping past it.

Also the parsers of the values users type: durations (``90``, ``30m``,
``2h``), sizes (``16G``, ``512M``) and GPU counts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from exq.engine.errors import ExqError


class ResourceError(ExqError):
    """A resource value or duration that cannot be used."""


# -- values users type ------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)", re.IGNORECASE)
_BYTES = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


# The longest duration a user may give: added to now, it stays a date a clock holds
MAX_DURATION = 3650 * 86400.0
# The largest whole number a user may give (--priority, --retries), either way
MAX_WHOLE = 2**31 - 1


def parse_duration(text: str, what: str = "--timeout") -> float:
    """Seconds in ``text``: ``90``, ``90s``, ``30m``, ``2h``, ``1.5h``, ``1d``; above 0,
    at most ten years."""
    match = _DURATION.fullmatch(text.strip().lower())
    seconds = float(match.group(1)) * _SECONDS[match.group(2)] if match else 0.0
    if not match or seconds <= 0:
        raise ResourceError(
            f"{what} '{text}' is not a duration",
            hint="give seconds, or a number with s, m, h or d: 90, 30m, 2h",
        )
    if seconds > MAX_DURATION:
        raise ResourceError(f"{what} '{text}': at most 3650d (ten years)")
    return seconds


def parse_size(text: str, what: str = "--mem") -> int:
    """Bytes in ``text``: ``16G``, ``512M``, ``1.5GiB``, or plain bytes; above 0."""
    match = _SIZE.fullmatch(text.strip())
    size = int(float(match.group(1)) * _BYTES[match.group(2).lower()]) if match else 0
    if not match or size <= 0:
        raise ResourceError(
            f"{what} '{text}' is not a size", hint="give bytes, or a number with K, M, G or T: 16G"
        )
    return size


def parse_gpus(text: str | float | int, what: str = "--gpus") -> int:
    """A whole number of GPUs, 0 or more; a fraction is refused (no sharing yet)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ResourceError(f"{what} '{text}' is not a number of GPUs") from None
    if value < 0 or not math.isfinite(value):
        raise ResourceError(f"{what} '{text}': a number of GPUs is 0 or more")
    if value != int(value):
        raise ResourceError(
            f"{what} '{text}': GPUs are not shared between runs",
            hint="ask for whole GPUs, as --gpus 1",
        )
    return int(value)


def parse_cpus(text: str | float | int, what: str = "--cpus") -> float:
    """A number of CPUs above 0 (fractions allowed: they are only counted)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ResourceError(f"{what} '{text}' is not a number of CPUs") from None
    if not value > 0 or not math.isfinite(value):
        raise ResourceError(f"{what} '{text}': a number of CPUs is above 0")
    return value


def format_size(size: int) -> str:
    """``16G``, ``512M``, ``1.5G``: the short form of a byte count."""
    for unit in ("T", "G", "M", "K"):
        if size >= _BYTES[unit.lower()]:
            value = size / _BYTES[unit.lower()]
            return f"{value:.1f}".rstrip("0").rstrip(".") + unit
    return str(size)


def format_duration(seconds: float) -> str:
    """``90s``, ``30m``, ``2h``, ``1h30m``."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return "".join(parts) or "0s"


# -- the machine and the asks -------------------------------------------------


@dataclass(frozen=True)
class Machine:
    """What the daemon may hand out: GPU ids, CPUs, memory in bytes."""

    gpus: tuple[str, ...] = ()
    cpus: float = 1.0
    mem: int = 0  # bytes; 0: unknown, memory asks are then not counted


@dataclass(frozen=True)
class Ask:
    """What one run asks for."""

    gpus: int = 0
    cpus: float = 0.0
    mem: int = 0


def too_big(ask: Ask, machine: Machine) -> str | None:
    """Why ``ask`` can never run on ``machine``, or None if it can."""
    if ask.gpus > len(machine.gpus):
        have = len(machine.gpus)
        return f"asks for {ask.gpus} GPU(s), the machine has {have}" + (
            "" if have else " (set [resources] gpus in the config file, or EXQ_GPUS)"
        )
    if ask.cpus > machine.cpus:
        return f"asks for {ask.cpus:g} CPUs, the machine has {machine.cpus:g}"
    if machine.mem and ask.mem > machine.mem:
        return (
            f"asks for {format_size(ask.mem)} of memory, the machine has {format_size(machine.mem)}"
        )
    return None


@dataclass(frozen=True)
class Holding:
    """What the running runs hold."""

    gpus: frozenset[str] = frozenset()
    cpus: float = 0.0
    mem: int = 0

    def plus(self, gpus: Sequence[str], ask: Ask) -> Holding:
        return Holding(self.gpus | set(gpus), self.cpus + ask.cpus, self.mem + ask.mem)


def holding_of(held: Sequence[tuple[Sequence[str], Ask]]) -> Holding:
    """What runs holding (their devices, their ask) hold together."""
    total = Holding()
    for gpus, ask in held:
        total = total.plus(gpus, ask)
    return total


def free_gpus(machine: Machine, holding: Holding) -> list[str]:
    """The machine's GPU ids nobody holds, in the machine's order."""
    return [gpu for gpu in machine.gpus if gpu not in holding.gpus]


def fit(ask: Ask, machine: Machine, holding: Holding) -> list[str] | None:
    """The devices ``ask`` gets now (maybe none), or None if it must wait."""
    free = free_gpus(machine, holding)
    if ask.gpus > len(free):
        return None
    # A run asking no CPUs still runs on a full machine: CPUs are a share, not a lock.
    if ask.cpus and holding.cpus + ask.cpus > machine.cpus + 1e-9:
        return None
    if machine.mem and ask.mem and holding.mem + ask.mem > machine.mem:
        return None
    return free[: ask.gpus]


# -- who starts -----------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A queued run as the scheduler weighs it."""

    run_id: int
    priority: int
    seq: int
    ask: Ask = field(default_factory=Ask)
    not_before: datetime | None = None
    deps_met: bool = True  # its --after runs all succeeded
    local: bool = True  # runs on a cluster take a slot, not this machine's devices


def queue_order(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Higher priority first, then first queued first."""
    return sorted(candidates, key=lambda c: (-c.priority, c.seq, c.run_id))


@dataclass(frozen=True)
class Start:
    """A run to start now: its slot and its devices."""

    run_id: int
    slot: int
    gpus: tuple[str, ...] = ()


def plan_starts(
    candidates: Sequence[Candidate],
    machine: Machine,
    holding: Holding,
    free_slots: Iterable[int],
    now: datetime,
) -> list[Start]:
    """The runs to start now, in queue order, with their slots and devices.

    Runs waiting for a time (a retry's delay) or for their ``--after`` runs
    are passed over; the first ready local run whose ask is not free stops the
    walk for local runs (no small run overtakes it), cluster runs go on
    taking slots.
    """
    starts: list[Start] = []
    slots = iter(free_slots)  # taken one by one: -j may be large
    blocked = False
    for cand in queue_order(candidates):
        if not cand.deps_met or (cand.not_before is not None and cand.not_before > now):
            continue
        if not cand.local:
            gpus: list[str] | None = []
        elif blocked:
            continue
        else:
            gpus = fit(cand.ask, machine, holding)
        if gpus is None:
            blocked = True
            continue
        slot = next(slots, None)
        if slot is None:
            break
        if cand.local:
            holding = holding.plus(gpus, cand.ask)
        starts.append(Start(cand.run_id, slot, tuple(gpus)))
    return starts


def gpu_env(gpus: Sequence[str] | None, machine: Machine) -> dict[str, str]:
    """The variables that give a run its devices: ``CUDA_VISIBLE_DEVICES`` and
    ``EXQ_GPUS``. On a machine with GPUs a run that asked for none sees none
    (it would otherwise share one); on a machine without, nothing is set."""
    if not machine.gpus:
        return {}
    devices = ",".join(gpus or ())
    return {"CUDA_VISIBLE_DEVICES": devices, "EXQ_GPUS": devices}


# -- retries ----------------------------------------------------------------------


def retry_delay(base: float, used: int) -> float:
    """The wait before retry number ``used + 1``: ``base``, doubling each time, up to
    ``MAX_DURATION``."""
    return min(base * (2 ** min(max(used, 0), 64)), MAX_DURATION)
