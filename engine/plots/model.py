"""Plots: the data model of ``exq plots show`` and ``exq plots diff``, pure functions only.

A plots file (tsv, csv, json or yaml) is parsed into records
(``parse_records``); the records of one file give one series per numeric
column (``file_series``); the series of every revision are grouped into
charts, one per file and metric, with one line per revision
(``build_charts``). Which files a revision holds is worked out from plain
data too (``top_level_plot_defs``, ``select_defs``). Reading the files of a
revision is ``exq.engine.plots.collect``'s job; drawing the charts,
``exq.engine.plots.page``'s.

The x axis is the ``step`` column when the file has one (as ``exq.live`` and
dvclive write it), else the row index, unless the ``dvc.yaml`` entry names
``x``. The y values are every numeric column except ``step`` and
``timestamp``, unless the entry names ``y``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from exq.engine import yaml12
from exq.engine.errors import PlotsError

Number = int | float
Record = dict[str, Any]

PLOT_SUFFIXES = (".tsv", ".csv", ".json", ".yaml", ".yml")
STEP = "step"
INDEX = "index"  # the x axis when a file has no step column
_NOT_Y = frozenset({STEP, "timestamp"})


@dataclass(frozen=True)
class PlotDef:
    """A plots entry: a repo-relative file or folder, with the x and y fields it asks for.

    ``cached``, ``dvcfile``, ``stage`` and ``out`` (the path as the lock
    writes it) say where a revision's ``dvc.lock`` records a stage's out, so
    a cached one is found in the cache; ``out_path`` is that whole out,
    repo-relative (``path`` is a file inside it when a target narrowed it).
    """

    path: str
    x: str | None = None
    y: tuple[str, ...] | None = None
    cached: bool = False
    dvcfile: str = ""
    stage: str = ""
    out: str = ""
    out_path: str = ""


@dataclass(frozen=True)
class FileData:
    """The records of one plots file in one revision, and the x/y its entry asks for."""

    records: tuple[Record, ...]
    x: str | None = None
    y: tuple[str, ...] | None = None


@dataclass
class RevPlots:
    """What one revision holds: plots files by repo-relative path, and read errors."""

    rev: str
    files: dict[str, FileData] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Line:
    """One revision's line in a chart."""

    rev: str
    xs: tuple[Number, ...]
    ys: tuple[Number, ...]


@dataclass
class Chart:
    """One chart: a metric of a plots file, with a line per revision that has it."""

    file: str
    metric: str
    x: str
    lines: list[Line] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.file}:{self.metric}"


# -- parsing -------------------------------------------------------------------


def is_plot_file(path: str) -> bool:
    """True when ``path`` has a suffix that ``parse_records`` reads."""
    return path.lower().endswith(PLOT_SUFFIXES)


def parse_records(path: str, raw: bytes) -> list[Record]:
    """The rows of a plots file as records; PlotsError names the file when it is unreadable.

    tsv/csv need a header line. json/yaml hold a list of records, a mapping
    whose first list of records is used (as DVC does), or a mapping of
    columns (``{"loss": [..], "acc": [..]}``).
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlotsError(f"{path}: plots file is not UTF-8 text") from exc
    suffix = posixpath.splitext(path.lower())[1]
    if suffix in (".tsv", ".csv"):
        return _parse_table(path, text, "\t" if suffix == ".tsv" else ",")
    if suffix == ".json":
        try:
            data = json.loads(text) if text.strip() else []
        except json.JSONDecodeError as exc:
            raise PlotsError(
                f"{path}: plots file is not valid JSON: {exc.msg} (line {exc.lineno})"
            ) from exc
    elif suffix in (".yaml", ".yml"):
        try:
            data = yaml12.load(text)
        except yaml12.YAMLError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise PlotsError(f"{path}: plots file is not valid YAML: {first}") from exc
    else:
        raise PlotsError(f"{path}: unsupported plots file type", hint="use tsv, csv, json or yaml")
    return _records_of(path, data)


def _parse_table(path: str, text: str, delimiter: str) -> list[Record]:
    kind = "TSV" if delimiter == "\t" else "CSV"
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as exc:
        raise PlotsError(f"{path}: plots file is not valid {kind}: {exc}") from exc
    rows = [row for row in rows if row]
    if not rows:
        return []
    header = [name.strip() for name in rows[0]]
    return [{name: value for name, value in zip(header, row) if name} for row in rows[1:]]


def _records_of(path: str, data: Any) -> list[Record]:
    if data is None:
        return []
    if isinstance(data, list):
        if all(isinstance(item, dict) for item in data):
            return [dict(item) for item in data]
        raise PlotsError(f"{path}: plots file must hold a list of records (mappings)")
    if isinstance(data, dict):
        for value in data.values():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                return [dict(item) for item in value]
        columns = {str(k): v for k, v in data.items() if isinstance(v, list)}
        if columns and all(not isinstance(v, (dict, list)) for c in columns.values() for v in c):
            length = max(len(c) for c in columns.values())
            return [
                {name: col[i] for name, col in columns.items() if i < len(col)}
                for i in range(length)
            ]
    raise PlotsError(f"{path}: plots file must hold a list of records or a mapping of lists")


def to_number(value: Any) -> Number | None:
    """A finite int or float from a record value (numbers, or text of numbers); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number: Number = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return None
    else:
        return None
    if isinstance(number, float) and not math.isfinite(number):
        return None  # NaN and inf cannot be drawn nor written as JSON
    return number


# -- series --------------------------------------------------------------------


def file_series(
    records: Sequence[Record], x: str | None = None, y: Sequence[str] | None = None
) -> tuple[str, dict[str, tuple[tuple[Number, ...], tuple[Number, ...]]]]:
    """(x axis name, {metric: (xs, ys)}) of one file's records.

    Rows whose x or y is not a number are left out of that metric's line.
    """
    x_field = _x_field(records, x)
    metrics = list(y) if y is not None else _numeric_columns(records, exclude={x_field, *_NOT_Y})
    series: dict[str, tuple[tuple[Number, ...], tuple[Number, ...]]] = {}
    for metric in metrics:
        xs: list[Number] = []
        ys: list[Number] = []
        for index, record in enumerate(records):
            value = to_number(record.get(metric))
            at = index if x_field == INDEX else to_number(record.get(x_field))
            if value is not None and at is not None:
                xs.append(at)
                ys.append(value)
        if xs:
            series[metric] = (tuple(xs), tuple(ys))
    return x_field, series


def _x_field(records: Sequence[Record], x: str | None) -> str:
    if x is not None and any(to_number(r.get(x)) is not None for r in records):
        return x
    if any(to_number(r.get(STEP)) is not None for r in records):
        return STEP
    return INDEX


def _numeric_columns(records: Sequence[Record], *, exclude: set[str]) -> list[str]:
    """Columns (in order of first appearance) with at least one numeric value."""
    found: dict[str, None] = {}
    for record in records:
        for name, value in record.items():
            if name not in exclude and name not in found and to_number(value) is not None:
                found[name] = None
    return list(found)


def build_charts(revs: Sequence[RevPlots]) -> list[Chart]:
    """One chart per file and metric, files and metrics in order of first appearance,
    with one line per revision that has the metric (in the order of ``revs``)."""
    charts: dict[tuple[str, str], Chart] = {}
    for rev in revs:
        for path, data in rev.files.items():
            x_field, series = file_series(data.records, data.x, data.y)
            for metric, (xs, ys) in series.items():
                chart = charts.setdefault((path, metric), Chart(path, metric, x_field))
                if all(line.rev != rev.rev for line in chart.lines):
                    chart.lines.append(Line(rev.rev, xs, ys))
    return list(charts.values())


def charts_to_json(
    charts: Iterable[Chart], revs: Sequence[str], errors: Sequence[str] = ()
) -> dict[str, Any]:
    """The ``--json`` output: revisions, every chart with its lines, and read errors."""
    return {
        "revisions": list(revs),
        "plots": [
            {
                "file": chart.file,
                "metric": chart.metric,
                "x": chart.x,
                "lines": [
                    {"rev": line.rev, "x": list(line.xs), "y": list(line.ys)}
                    for line in chart.lines
                ],
            }
            for chart in charts
        ],
        "errors": list(dict.fromkeys(errors)),
    }


# -- which files ---------------------------------------------------------------


def top_level_plot_defs(dvcfile: str, entries: Any) -> list[PlotDef]:
    """The files of a ``dvc.yaml``'s top-level ``plots:`` list (DVC 3's format).

    Entries are paths (``- logs``), paths with options (``- logs: {x: step}``),
    or ids whose ``y`` maps files to columns (``- loss: {y: {a.csv: loss}}``).
    Paths are relative to the ``dvc.yaml`` folder. Templates are not read.
    """
    if not isinstance(entries, list):
        return []
    folder = posixpath.dirname(dvcfile)
    defs: list[PlotDef] = []
    for entry in entries:
        if isinstance(entry, (str, int, float)) and not isinstance(entry, bool):
            defs.append(PlotDef(_join(folder, str(entry)), dvcfile=dvcfile))
            continue
        if not isinstance(entry, dict):
            continue
        for name, props in entry.items():
            props = props if isinstance(props, dict) else {}
            y = props.get("y")
            if isinstance(y, dict):
                for file, columns in y.items():
                    x = props.get("x")
                    x = x.get(file) if isinstance(x, dict) else x
                    defs.append(
                        PlotDef(
                            _join(folder, str(file)), _field(x), _fields(columns), dvcfile=dvcfile
                        )
                    )
            else:
                defs.append(
                    PlotDef(
                        _join(folder, str(name)),
                        _field(props.get("x")),
                        _fields(y),
                        dvcfile=dvcfile,
                    )
                )
    return defs


def _field(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _fields(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return None


def _join(folder: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(folder, path))


def merge_defs(defs: Iterable[PlotDef]) -> list[PlotDef]:
    """One def per path: a stage's out keeps its cache facts, a top-level entry adds x/y."""
    merged: dict[str, PlotDef] = {}
    for new in defs:
        old = merged.get(new.path)
        if old is None:
            merged[new.path] = new
            continue
        base, extra = (old, new) if old.stage else (new, old)
        merged[new.path] = replace(base, x=base.x or extra.x, y=base.y or extra.y)
    return list(merged.values())


def select_defs(defs: Sequence[PlotDef], targets: Sequence[str] | None) -> list[PlotDef]:
    """The defs that ``targets`` (repo-relative files or folders) name.

    A target that is a def's path, or a folder holding defs, keeps them; a
    file inside a plots folder narrows that def to the file; a target no def
    names becomes a def of its own (any file can be plotted, as with DVC).
    """
    if not targets:
        return list(defs)
    chosen: list[PlotDef] = []
    for target in (_norm(t) for t in targets):
        matched = [d for d in defs if d.path == target or _inside(d.path, target)]
        if not matched:
            matched = [_narrow(d, target) for d in defs if _inside(target, d.path)]
        chosen.extend(matched or [PlotDef(target)])
    return merge_defs(chosen)


def _narrow(d: PlotDef, path: str) -> PlotDef:
    return replace(d, path=path, out_path=d.out_path or d.path)


def _norm(path: str) -> str:
    return posixpath.normpath(path.replace("\\", "/")).strip("/") or "."


def _inside(path: str, folder: str) -> bool:
    return folder == "." or path.startswith(folder.rstrip("/") + "/")


def target_found(target: str, revs: Sequence[RevPlots]) -> bool:
    """True when some revision holds the target file, or a file inside the target folder."""
    norm = _norm(target)
    return any(path == norm or _inside(path, norm) for rev in revs for path in rev.files)
