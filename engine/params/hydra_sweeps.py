"""Hydra's sweep functions in ``-S``, read with hydra-core's own override parser.

``choice(...)``, ``range(...)``, ``glob(...)`` expand into a grid as Hydra's
basic sweeper does; ``interval(low, high)`` (``tag(log, ...)`` for a log scale,
``tag(int, ...)`` for integers) is a distribution that only random search
(:func:`draw_samples`) can use. Plain comma lists stay with exq's own splitter
(:mod:`exq.engine.params.values`), so hydra-core (the ``exq[hydra]`` extra) is
imported only when a ``-S`` value calls one of these functions.

Each value Hydra yields is written back as exq's YAML flow text, so the
overrides in the grid read exactly as the values Hydra parsed.
"""

from __future__ import annotations

import decimal
import itertools
import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from exq.engine.params.values import (
    MAX_SWEEP_RUNS,
    bad_override,
    calls_function,
    comma_parts,
    parse_value,
)

# The options of a params group for glob(): a group name -> its option names.
GroupOptions = Callable[[str], list[str]]


@dataclass(frozen=True)
class Dimension:
    """One ``-S`` of a sampled space: fixed values to pick from, or an interval."""

    head: str  # the text before '=' (key, with its file prefix if any)
    values: Sequence[Any] | None  # choice / range / comma list / a single value
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    integer: bool = False

    def draw(self, rng: random.Random) -> str:
        if self.values is not None:
            return f"{self.head}={flow(rng.choice(self.values))}"
        if self.log:
            value: Any = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        if self.integer:
            value = min(max(round(value), math.ceil(self.low)), math.floor(self.high))
        return f"{self.head}={flow(value)}"


def expand_function(text: str, groups: GroupOptions | None = None) -> list[str]:
    """The overrides one ``-S`` text with a sweep function stands for, in Hydra's order.

    An interval is refused here: it has no grid, only draws.
    """
    head, _, raw = text.partition("=")
    override = _parse(text, raw)
    kind = override.value_type.name
    if kind == "INTERVAL_SWEEP":
        raise bad_override(
            text,
            "interval() is a distribution",
            "draw from it with --samples N (random search) or --optimize",
        )
    if kind == "GLOB_CHOICE_SWEEP":
        values: list[Any] = _glob(text, head, override, groups)
    else:
        if kind == "RANGE_SWEEP":
            size = range_size(text, override.value())
            if size > MAX_SWEEP_RUNS:
                raise bad_override(
                    text,
                    f"a sweep of {size} values",
                    f"more than {MAX_SWEEP_RUNS} runs at once; narrow it, or draw --samples N"
                    " from it",
                )
        values = list(itertools.islice(override.sweep_iterator(), MAX_SWEEP_RUNS + 1))
        if len(values) > MAX_SWEEP_RUNS:
            raise bad_override(
                text, "a sweep of too many values", f"more than {MAX_SWEEP_RUNS} runs at once"
            )
    if not values:
        raise bad_override(text, "bad value", "the sweep has no values")
    return [f"{head}={flow(value)}" for value in values]


def dimension(text: str, groups: GroupOptions | None = None) -> Dimension:
    """One ``-S`` text as a dimension to draw from (see :class:`Dimension`)."""
    head, eq, raw = text.partition("=")
    if not eq:
        raise bad_override(text, "random search sets values", "write KEY=VALUE")
    if not calls_function(text):
        parts = comma_parts(text, raw)
        return Dimension(head, [parse_value(part, text) for part in parts])
    override = _parse(text, raw)
    if override.value_type.name == "RANGE_SWEEP":
        size = range_size(text, override.value())
        if size > MAX_SWEEP_RUNS:  # drawn from, never listed
            if not size:
                raise bad_override(text, "bad value", "the sweep has no values")
            return Dimension(head, _Steps(override.value(), size))
    if override.value_type.name != "INTERVAL_SWEEP":
        values = [parse_value(o.partition("=")[2], text) for o in expand_function(text, groups)]
        return Dimension(head, values)
    sweep = override.value()
    low, high = float(sweep.start), float(sweep.end)
    unknown = set(sweep.tags) - {"log", "int"}
    if unknown:
        raise bad_override(text, "bad value", f"unknown tag {sorted(unknown)[0]!r}: use log or int")
    if not low < high:
        raise bad_override(text, "bad value", "interval() needs low < high")
    if "log" in sweep.tags and low <= 0:
        raise bad_override(text, "bad value", "a log interval needs low > 0")
    return Dimension(head, None, low, high, log="log" in sweep.tags, integer="int" in sweep.tags)


def draw_samples(
    texts: Sequence[str], samples: int, seed: int, groups: GroupOptions | None = None
) -> list[list[str]]:
    """``samples`` lists of single-valued overrides drawn from the space of ``texts``.

    Reproducible: the same texts, count and seed give the same draws.
    """
    dimensions = [dimension(text, groups) for text in texts]
    rng = random.Random(seed)
    return [[d.draw(rng) for d in dimensions] for _ in range(samples)]


def range_size(text: str, sweep: Any) -> int:
    """How many values Hydra's ``range(start, stop, step)`` yields, counted, not listed."""
    step = 1 if sweep.step is None else sweep.step
    if step == 0:
        raise bad_override(text, "bad value", "range() step must not be zero")
    if all(isinstance(v, int) for v in (sweep.start, sweep.stop, step)):
        return len(range(sweep.start, sweep.stop, step))
    # Hydra steps floats as decimals of their exact values
    span = (decimal.Decimal(sweep.stop) - decimal.Decimal(sweep.start)) / decimal.Decimal(step)
    return max(0, math.ceil(span))


class _Steps(Sequence[Any]):
    """The values of a range too long to list, computed on demand for random draws."""

    def __init__(self, sweep: Any, size: int) -> None:
        self._start = decimal.Decimal(sweep.start)
        self._step = decimal.Decimal(1 if sweep.step is None else sweep.step)
        self._int = all(isinstance(v, int) for v in (sweep.start, sweep.stop, sweep.step or 1))
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: Any) -> Any:
        if not isinstance(index, int) or not 0 <= index < self._size:
            raise IndexError(index)
        value = self._start + index * self._step
        return int(value) if self._int else float(value)


def _parse(text: str, raw: str) -> Any:
    """Hydra's parse of the value; the key is ours (it may name a file: ``f.json:a``)."""
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.errors import HydraException
    except ImportError:
        raise bad_override(
            text,
            "Hydra's sweep functions need hydra-core",
            "pip install 'exq[hydra]'",
        ) from None
    try:
        return OverridesParser.create().parse_override(f"k={raw.strip()}")
    except HydraException as exc:
        reason = " ".join(str(exc).split())
        raise bad_override(text, "bad value", reason[:200]) from None


def _glob(text: str, head: str, override: Any, groups: GroupOptions | None) -> list[str]:
    key = head.rpartition(":")[2].lstrip("+~")
    names = groups(key) if groups is not None else []
    if not names:
        raise bad_override(
            text,
            "glob() picks from the options of a params group",
            f"no conf/{key.replace('.', '/')}/*.yaml",
        )
    return list(override.value().filter(names))


_PLAIN = re.compile(r"^[A-Za-z_][\w.\-/]*$")


def flow(value: Any) -> str:
    """``value`` as the YAML flow text of an override that reads back as ``value``. Pure."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if value != value else "inf")
    if isinstance(value, str):
        if _PLAIN.match(value) and parse_value(value) == value:
            return value
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list):
        return "[" + ", ".join(flow(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{flow(str(k))}: {flow(v)}" for k, v in value.items()) + "}"
    return flow(str(value))


def conf_groups(root: Any) -> GroupOptions:
    """The options of the params group ``key``: the ``*.yaml`` files in ``conf/KEY/``
    (Hydra's config groups, in DVC's default config folder), sorted by name."""
    from pathlib import Path

    def options(key: str) -> list[str]:
        folder = Path(root) / "conf" / key.replace(".", "/")
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))

    return options
