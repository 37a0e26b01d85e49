"""The experiments table and metric/param diffs, as pure functions over plain data.

Nothing here reads files or git: the caller collects, per revision, the params
and metrics (already flattened to dotted keys) and hands over ``Row`` objects
in display order. ``build_table`` turns them into a ``Table`` of strings that
``exq.cli.render`` draws; ``diff_values`` compares two revisions for
``exp diff``, ``metrics diff`` and ``params diff``.

Formatting follows DVC: floats get ``precision`` significant digits
(``0.56359``, ``2.1e-07``), ints and bools print as Python does, missing
values print as ``-``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any, Literal, TypeGuard

from exq.engine.errors import ConfigError

Values = dict[str, dict[str, Any]]
"""file -> {dotted key: value}"""

RowKind = Literal["workspace", "baseline", "experiment", "checkpoint", "queued"]
RowState = Literal["success", "queued", "running", "failed", "interrupted", "pruned"]
ColumnKind = Literal["experiment", "created", "state", "sweep", "metric", "param"]

DEFAULT_PRECISION = 5
MISSING = "-"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TOP_KINDS = ("workspace", "baseline")


@dataclass(frozen=True)
class Row:
    """One revision of the table: the workspace, a baseline commit, or an experiment.

    ``checkpoint_tip`` is optional: for the commits of a checkpoint chain it is
    the rev of the chain's tip, so that a resumed-and-modified experiment
    (two chains under one experiment) draws a new ``╓`` where the older chain
    starts. Without it every checkpoint row belongs to the experiment above.
    """

    name: str
    rev: str | None = None
    baseline: str | None = None
    kind: RowKind = "experiment"
    state: RowState = "success"
    created: datetime | None = None
    parent: str | None = None
    params: Values = field(default_factory=dict)
    metrics: Values = field(default_factory=dict)
    checkpoint_tip: str | None = None
    sweep: str | None = None  # the sweep or study the experiment's run was a point of


@dataclass(frozen=True)
class Column:
    """A table column; ``file`` and ``key`` are set for metric and param columns."""

    header: str
    kind: ColumnKind
    file: str | None = None
    key: str | None = None
    align: Literal["left", "right"] = "left"


@dataclass(frozen=True)
class Table:
    """Formatted cells; ``source[i]`` is the Row drawn as ``rows[i]`` (for csv/json)."""

    columns: list[Column]
    rows: list[list[str]]
    source: list[Row] = field(default_factory=list)


@dataclass(frozen=True)
class DiffRow:
    """One line of a diff; ``old``/``new``/``change`` are formatted, the rest raw."""

    path: str
    key: str
    old: str
    new: str
    change: str
    old_value: Any = None
    new_value: Any = None
    diff: int | float | None = None


# ---------------------------------------------------------------- formatting


def format_value(
    value: Any, precision: int | None = DEFAULT_PRECISION, *, round_digits: bool = False
) -> str:
    """Format one metric or param value the way DVC prints it.

    Floats get ``precision`` significant digits (or, with ``round_digits``,
    that many decimals, as ``dvc metrics diff`` does); a falsy precision leaves
    them as Python prints them. ``None`` is ``-``.
    """
    if value is None:
        return MISSING
    if isinstance(value, float) and precision:
        if round_digits:
            return str(round(value, precision))
        return f"{value:.{precision}g}"
    return str(value)


def format_created(created: datetime | None, now: datetime) -> str:
    """``04:06 PM`` for a time on ``now``'s day, ``Feb 17, 2021`` otherwise, ``-`` if unknown."""
    if created is None:
        return MISSING
    if created.tzinfo is not None and now.tzinfo is not None:
        created = created.astimezone(now.tzinfo)
    if created.date() == now.date():
        hour = created.hour % 12 or 12
        half = "AM" if created.hour < 12 else "PM"
        return f"{hour:02d}:{created.minute:02d} {half}"
    return f"{_MONTHS[created.month - 1]} {created.day:02d}, {created.year}"


# ---------------------------------------------------------------- names and filters


def split_filter_list(values: list[str]) -> list[str]:
    """Split comma lists: ``["a,b", "p.yaml:c,d"]`` -> ``["a", "b", "p.yaml:c", "p.yaml:d"]``."""
    out: list[str] = []
    for value in values:
        path, sep, names = value.rpartition(":")
        prefix = f"{path}:" if sep else ""
        out.extend(f"{prefix}{name}" for name in names.split(",") if name)
    return out


def _collect_names(rows: list[Row], attr: str) -> dict[str, list[str]]:
    """Files in first-seen order, each with its keys in first-seen order."""
    names: dict[str, dict[str, None]] = {}
    for row in rows:
        for file, values in getattr(row, attr).items():
            keys = names.setdefault(file, {})
            for key in values:
                keys.setdefault(key)
    return {file: list(keys) for file, keys in names.items()}


def _matches(pattern: str, file: str, key: str) -> bool:
    """A glob matches the key (``file:key`` if it holds a colon) or a dotted prefix of it.

    So ``train`` selects ``train.lr`` and ``train.epochs``, and ``l*`` matches
    keys only, never a file named ``live/...``.
    """
    parts = key.split(".")
    prefix = f"{file}:" if ":" in pattern else ""
    return any(
        fnmatchcase(prefix + ".".join(parts[:end]), pattern) for end in range(len(parts), 0, -1)
    )


def _filter_names(
    names: dict[str, list[str]], include: list[str] | None, exclude: list[str] | None, label: str
) -> list[tuple[str, str]]:
    pairs = [(file, key) for file, keys in names.items() for key in keys]
    for option, patterns in (("include", include), ("exclude", exclude)):
        for pattern in patterns or ():
            if not any(_matches(pattern, file, key) for file, key in pairs):
                raise ConfigError(
                    f"--{option}-{label}: '{pattern}' does not match any {label[:-1]}"
                )
    if include:
        pairs = [p for p in pairs if any(_matches(pat, *p) for pat in include)]
    if exclude:
        pairs = [p for p in pairs if not any(_matches(pat, *p) for pat in exclude)]
    return pairs


def _resolve_sort(
    sort_by: str, metrics: dict[str, list[str]], params: dict[str, list[str]]
) -> tuple[str, str, str]:
    """``[file:]key`` -> (attr, file, key); unknown or ambiguous names are a ConfigError."""
    path, _, key = sort_by.rpartition(":")
    found = [
        (attr, file, key)
        for attr, names in (("metrics", metrics), ("params", params))
        for file, keys in names.items()
        if key in keys and (not path or path == file)
    ]
    if not found:
        raise ConfigError(f"--sort-by: unknown metric or param '{sort_by}'")
    if len(found) > 1:
        options = ", ".join(f"{file}:{k}" for _, file, k in found)
        raise ConfigError(f"--sort-by: '{sort_by}' is ambiguous, it matches {options}")
    return found[0]


def column_pattern(patterns: Sequence[str], option: str) -> re.Pattern[str] | None:
    """DVC 3's ``--drop``/``--keep``: regular expressions, any of which matches a
    column's header from its start (``re.match``); None when none is given."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{option}: '{pattern}' is not a regular expression: {exc}") from None
    return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None


@dataclass(frozen=True)
class ColumnPicks:
    """``--drop`` and ``--keep`` of ``exp show``, as DVC 3 reads them: a column
    whose header matches ``drop`` is left out unless it matches ``keep``; a
    column matching ``keep`` also stays under ``--only-changed``. ``keep`` alone
    leaves every column in."""

    drop: re.Pattern[str] | None = None
    keep: re.Pattern[str] | None = None

    @classmethod
    def of(cls, drop: Sequence[str] = (), keep: Sequence[str] = ()) -> ColumnPicks:
        return cls(column_pattern(drop, "--drop"), column_pattern(keep, "--keep"))

    def kept(self, header: str) -> bool:
        return self.keep is not None and self.keep.match(header) is not None

    def shown(self, header: str) -> bool:
        return self.drop is None or self.drop.match(header) is None or self.kept(header)


NO_PICKS = ColumnPicks()


# ---------------------------------------------------------------- grouping, sorting, tree


def _groups(rows: list[Row]) -> list[list[list[Row]]]:
    """Split rows into groups (top row, then blocks); a block is an experiment and its checkpoints.

    Workspace and baseline rows are one-row blocks that start a group.
    """
    groups: list[list[list[Row]]] = []
    for row in rows:
        if row.kind in _TOP_KINDS or not groups:
            groups.append([[row]])
        elif row.kind == "checkpoint" and groups[-1][-1][0].kind not in _TOP_KINDS:
            groups[-1][-1].append(row)
        else:
            groups[-1].append([row])
    return groups


def _sort_group(
    group: list[list[Row]], column: tuple[str, str, str], descending: bool
) -> list[list[Row]]:
    """Sort a group's experiment blocks by their first row's value, the top row staying first.

    Blocks lacking the value go last, in their order; a checkpoint chain moves
    as one piece with its experiment.
    """
    attr, file, key = column
    top = group[:1] if group[0][0].kind in _TOP_KINDS else []
    blocks = group[len(top) :]

    def value(block: list[Row]) -> Any:
        return getattr(block[0], attr).get(file, {}).get(key)

    present = [b for b in blocks if value(b) is not None]
    missing = [b for b in blocks if value(b) is None]
    present.sort(key=lambda b: _sort_key(value(b)), reverse=descending)
    return top + present + missing


def _sort_key(value: Any) -> tuple[int, Any]:
    # numbers (bools too) before anything else, compared as text, so mixed columns still sort
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


def _block_labels(block: list[Row], last: bool) -> list[str]:
    """The Experiment cell of each row in a block: tree glyph, name and resumed-from parent."""
    if len(block) == 1:
        return [f"{'└──' if last else '├──'} {block[0].name}"]
    tips = [row.checkpoint_tip or block[0].rev for row in block]
    labels = []
    for i, row in enumerate(block):
        if i == len(block) - 1:
            glyph = "├─╨"
        elif i == 0 or tips[i] != tips[i - 1]:
            glyph = "│ ╓"
        else:
            glyph = "│ ╟"
        suffix = ""
        # the last commit of a chain that resumed from another chain names its parent
        if i < len(block) - 1 and tips[i] != tips[i + 1] and row.parent:
            suffix = f" ({row.parent[:7]})"
        labels.append(f"{glyph} {row.name}{suffix}")
    return labels


def _ordered_labels(groups: list[list[list[Row]]]) -> list[tuple[Row, str]]:
    out: list[tuple[Row, str]] = []
    for group in groups:
        for index, block in enumerate(group):
            if index == 0 and block[0].kind in _TOP_KINDS:
                out.append((block[0], block[0].name))
                continue
            out.extend(zip(block, _block_labels(block, index == len(group) - 1), strict=True))
    return out


# ---------------------------------------------------------------- the table


def build_table(
    rows: list[Row],
    *,
    include_params: list[str] | None = None,
    exclude_params: list[str] | None = None,
    include_metrics: list[str] | None = None,
    exclude_metrics: list[str] | None = None,
    sort_by: str | None = None,
    sort_order: Literal["asc", "desc"] = "asc",
    only_changed: bool = False,
    precision: int = DEFAULT_PRECISION,
    no_timestamp: bool = False,
    now: datetime | None = None,
    picks: ColumnPicks = NO_PICKS,
) -> Table:
    """Build the ``exp show`` table from rows given in display order.

    Columns: Experiment, Created (unless ``no_timestamp``), State (only when a
    row is not a success, or ``--keep`` names it), the metrics, then the
    params; ``picks`` (``--drop``/``--keep``) leaves some out. Experiments are
    sorted within their baseline's group; the workspace and baselines stay on top.
    """
    metric_names = _collect_names(rows, "metrics")
    param_names = _collect_names(rows, "params")
    groups = _groups(rows)
    if sort_by:
        column = _resolve_sort(sort_by, metric_names, param_names)
        groups = [_sort_group(group, column, sort_order == "desc") for group in groups]
    ordered = _ordered_labels(groups)

    data_columns = [
        ("metrics", f, k)
        for f, k in _filter_names(metric_names, include_metrics, exclude_metrics, "metrics")
    ]
    data_columns += [
        ("params", f, k)
        for f, k in _filter_names(param_names, include_params, exclude_params, "params")
    ]
    headers = [column.header for column in _data_columns(data_columns)]
    protected = {c for c, h in zip(data_columns, headers, strict=True) if picks.kept(h)}
    data_columns = [c for c, h in zip(data_columns, headers, strict=True) if picks.shown(h)]
    data_columns, cells = _data_cells(
        [row for row, _ in ordered], data_columns, precision, only_changed, protected
    )

    show_name = picks.shown("Experiment")
    show_created = not no_timestamp and picks.shown("Created")
    show_state = (
        any(row.state != "success" for row, _ in ordered) or picks.kept("State")
    ) and picks.shown("State")
    columns = [Column("Experiment", "experiment")] if show_name else []
    if show_created:
        columns.append(Column("Created", "created"))
    if show_state:
        columns.append(Column("State", "state"))
    show_sweep = (any(row.sweep for row, _ in ordered) or picks.kept("Sweep")) and picks.shown(
        "Sweep"
    )
    if show_sweep:
        columns.append(Column("Sweep", "sweep"))
    columns += _data_columns(data_columns)

    now = now or datetime.now().astimezone()
    table_rows = []
    for (row, label), data in zip(ordered, cells, strict=True):
        line = [label] if show_name else []
        if show_created:
            line.append(format_created(row.created, now))
        if show_state:
            line.append(MISSING if row.state == "success" else row.state.capitalize())
        if show_sweep:
            line.append(row.sweep or MISSING)
        table_rows.append(line + data)
    return Table(columns, table_rows, [row for row, _ in ordered])


def pick_values(rows: list[Row], picks: ColumnPicks) -> list[Row]:
    """``rows`` with only the metrics and params whose columns ``picks`` shows
    (``exp show --json --drop ...``), headers named as the table names them."""
    if picks.drop is None:
        return rows
    columns = [
        (attr, file, key)
        for attr in ("metrics", "params")
        for file, keys in _collect_names(rows, attr).items()
        for key in keys
    ]
    headers = [column.header for column in _data_columns(columns)]
    shown = {c for c, h in zip(columns, headers, strict=True) if picks.shown(h)}

    def only_shown(values: Values, attr: str) -> Values:
        picked = {
            file: {k: v for k, v in keys.items() if (attr, file, k) in shown}
            for file, keys in values.items()
        }
        return {file: keys for file, keys in picked.items() if keys}

    return [
        replace(
            row, metrics=only_shown(row.metrics, "metrics"), params=only_shown(row.params, "params")
        )
        for row in rows
    ]


def _data_cells(
    rows: list[Row],
    data_columns: list[tuple[str, str, str]],
    precision: int,
    only_changed: bool,
    protected: set[tuple[str, str, str]] | frozenset[tuple[str, str, str]] = frozenset(),
) -> tuple[list[tuple[str, str, str]], list[list[str]]]:
    """Format the metric and param cells; with ``only_changed`` drop columns that
    show one value, except the ``protected`` ones (``--keep``)."""
    cells = [
        [
            format_value(getattr(row, attr).get(file, {}).get(key), precision)
            for attr, file, key in data_columns
        ]
        for row in rows
    ]
    if only_changed and cells:
        # compare what is shown: values equal at this precision count as unchanged
        keep = [
            i
            for i in range(len(data_columns))
            if len({line[i] for line in cells}) > 1 or data_columns[i] in protected
        ]
        data_columns = [data_columns[i] for i in keep]
        cells = [[line[i] for i in keep] for line in cells]
    return data_columns, cells


def _data_columns(data_columns: list[tuple[str, str, str]]) -> list[Column]:
    """Headers are bare keys, prefixed with ``file:`` where two shown columns share a key."""
    counts: dict[str, int] = {}
    for _, _, key in data_columns:
        counts[key] = counts.get(key, 0) + 1
    return [
        Column(
            key if counts[key] == 1 else f"{file}:{key}",
            "metric" if attr == "metrics" else "param",
            file,
            key,
            "right" if attr == "metrics" else "left",
        )
        for attr, file, key in data_columns
    ]


def cell_value(row: Row, column: Column) -> Any:
    """The raw value behind a metric or param cell (None when missing)."""
    values = row.metrics if column.kind == "metric" else row.params
    return values.get(column.file or "", {}).get(column.key or "")


def mark_sweeps(rows: list[Row], sweeps: Mapping[tuple[str, str], str]) -> list[Row]:
    """``rows`` with each experiment's sweep, found by (baseline, name) in ``sweeps``."""
    return [
        replace(row, sweep=sweeps[(row.baseline or "", row.name)])
        if row.kind not in _TOP_KINDS and (row.baseline or "", row.name) in sweeps
        else row
        for row in rows
    ]


def rows_to_json(rows: list[Row]) -> list[dict[str, Any]]:
    """One JSON-ready object per row, for ``exp show --json``."""
    return [
        {
            "name": row.name,
            "rev": row.rev,
            "baseline": row.baseline,
            "kind": row.kind,
            "state": row.state,
            "created": row.created.isoformat() if row.created else None,
            "parent": row.parent,
            "sweep": row.sweep,
            "params": {file: dict(values) for file, values in row.params.items()},
            "metrics": {file: dict(values) for file, values in row.metrics.items()},
        }
        for row in rows
    ]


# ---------------------------------------------------------------- diffs


def diff_values(
    old: Values,
    new: Values,
    *,
    all: bool = False,  # noqa: A002 - mirrors the --all flag
    precision: int | None = DEFAULT_PRECISION,
    round_digits: bool = False,
    unsupported: str = "diff not supported",
) -> list[DiffRow]:
    """Compare two revisions' values, file by file, keys sorted within a file.

    ``change`` is ``new - old`` when both are numbers (bools count, as in DVC),
    otherwise ``unsupported`` (``exp diff`` says "diff not supported",
    ``metrics diff`` says ``-``). Unchanged keys are left out unless ``all``.
    ``precision=None`` prints values as they are (``exp diff`` does so for params).
    """
    files = list(dict.fromkeys([*old, *new]))
    out: list[DiffRow] = []
    for file in files:
        before, after = old.get(file, {}), new.get(file, {})
        for key in sorted(dict.fromkeys([*before, *after])):
            # a missing key and a null value print alike ("-"), so they compare alike too
            a, b = before.get(key), after.get(key)
            if a == b and not all:
                continue
            diff = b - a if _is_number(a) and _is_number(b) else None
            out.append(
                DiffRow(
                    path=file,
                    key=key,
                    old=format_value(a, precision, round_digits=round_digits),
                    new=format_value(b, precision, round_digits=round_digits),
                    change=unsupported
                    if diff is None
                    else format_value(diff, precision, round_digits=round_digits),
                    old_value=a,
                    new_value=b,
                    diff=diff,
                )
            )
    return out


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float))


def diff_to_dict(rows: list[DiffRow]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{file: {key: {"old", "new"[, "diff"]}}}`` as ``dvc metrics diff --json`` prints it."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        entry: dict[str, Any] = {"old": row.old_value, "new": row.new_value}
        if row.diff is not None:
            entry["diff"] = row.diff
        out.setdefault(row.path, {})[row.key] = entry
    return out
