"""Plots: the data model of ``exq plots show`` and ``exq plots diff``, pure functions only.

A plots file (tsv, csv, json or yaml) is parsed into records
(``parse_records``). The charts are built from the records of every revision
and the defs that asked for them (``exq.engine.plots.defs``): a def its
author shaped (``y``, ``template``, ``title``, or a top-level plot naming
several files) is one chart, a line per revision, file and ``y`` column; a
bare file gives a chart per numeric column (``file_series``), a line per
revision. Reading the files of a revision is ``exq.engine.plots.collect``'s
job; drawing them, ``exq.engine.plots.templates``' and ``exq.engine.plots.page``'s.

The x axis is the entry's ``x`` when the file has it, else the ``step``
column (as ``exq.live`` and dvclive write it), else the row index. The y
values are the entry's ``y``, else every numeric column except ``step`` and
``timestamp``. The confusion templates read ``x`` and ``y`` as classes and
the bar templates ``y`` as labels, so their values are kept as they are.
"""

from __future__ import annotations

import csv
import io
import json
import math
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from exq.engine import yaml12
from exq.engine.errors import PlotsError
from exq.engine.plots.defs import TEMPLATES, PlotDef

Number = int | float
Record = dict[str, Any]

PLOT_SUFFIXES = (".tsv", ".csv", ".json", ".yaml", ".yml")
STEP = "step"
INDEX = "index"  # the x axis when a file has no step column
_NOT_Y = frozenset({STEP, "timestamp"})
CATEGORICAL = frozenset({"confusion", "confusion_normalized"})  # x and y are classes
BARS = frozenset({"bar_horizontal", "bar_horizontal_sorted"})  # y labels, x numbers


@dataclass(frozen=True)
class FileData:
    """The records of one plots file in one revision, and the x/y its entry asks for."""

    records: tuple[Record, ...]
    x: str | None = None
    y: tuple[str, ...] | None = None


@dataclass
class RevPlots:
    """What one revision holds: plots files by repo-relative path, the defs that
    asked for each (a file drawn in two plots has two), images, and read errors."""

    rev: str
    files: dict[str, FileData] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    uses: list[PlotDef] = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)

    def plot_uses(self) -> list[PlotDef]:
        """The defs of the files read; files given without one are bare plots."""
        if self.uses:
            return self.uses
        return [PlotDef(path, data.x, data.y) for path, data in self.files.items()]


@dataclass(frozen=True)
class Line:
    """One line (or set of points) of a chart: a revision's values of one file and column.

    Values are numbers, except the classes of a confusion matrix and the labels of a bar chart.
    """

    rev: str
    xs: tuple[Any, ...]
    ys: tuple[Any, ...]
    file: str = ""
    field: str = ""


@dataclass
class Chart:
    """One chart: a metric of a plots file, or a plot its author shaped, with its lines."""

    file: str
    metric: str
    x: str
    lines: list[Line] = field(default_factory=list)
    template: str = "linear"
    title: str | None = None
    plot_id: str = ""
    x_label: str | None = None
    y_label: str | None = None

    @property
    def id(self) -> str:
        return self.plot_id or f"{self.file}:{self.metric}"


# -- parsing -------------------------------------------------------------------


def is_plot_file(path: str) -> bool:
    """True when ``path`` has a suffix that ``parse_records`` reads."""
    return path.lower().endswith(PLOT_SUFFIXES)


# What a live logger (exq.live, dvclive 1.x+) keeps in its folder beside the
# metric history: its params, its summary, the dvc.yaml dvclive 3 writes.
LOGGER_FILES = frozenset({"params.yaml", "metrics.json", "dvc.yaml"})


def is_folder_plot_file(path: str) -> bool:
    """A file of a plots folder that is drawn: a plots file that is no logger file."""
    return is_plot_file(path) and posixpath.basename(path) not in LOGGER_FILES


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
    return [
        {name: value for name, value in zip(header, row, strict=False) if name} for row in rows[1:]
    ]


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
    """The charts of every plot, in order of first appearance, lines in the order of ``revs``.

    A shaped plot is one chart; a bare file is a chart per metric.
    """
    groups: dict[str, list[PlotDef]] = {}
    for rev in revs:
        for use in rev.plot_uses():
            group = groups.setdefault(use.id, [])
            if all(d.path != use.path for d in group):
                group.append(use)
    charts: list[Chart] = []
    for defs in groups.values():
        if len(defs) == 1 and not defs[0].styled:
            charts.extend(_metric_charts(defs[0], revs))
        else:
            charts.append(_shaped_chart(defs, revs))
    return [chart for chart in charts if chart.lines]


def _metric_charts(d: PlotDef, revs: Sequence[RevPlots]) -> list[Chart]:
    charts: dict[str, Chart] = {}
    for rev in revs:
        data = rev.files.get(d.path)
        if data is None:
            continue
        x_field, series = file_series(data.records, d.x, d.y)
        for metric, (xs, ys) in series.items():
            chart = charts.setdefault(
                metric, Chart(d.path, metric, x_field, x_label=d.x_label, template=_tpl(d))
            )
            if all(line.rev != rev.rev for line in chart.lines):
                chart.lines.append(Line(rev.rev, xs, ys))
    return list(charts.values())


def _tpl(d: PlotDef) -> str:
    return d.template if d.template in TEMPLATES else "linear"


def _shaped_chart(defs: list[PlotDef], revs: Sequence[RevPlots]) -> Chart:
    """One chart of every file and ``y`` column of a plot, a line per revision, file and column."""
    first = defs[0]
    template = _tpl(first)
    fields: dict[str, None] = {}
    x_name = first.x or ""
    lines: list[Line] = []
    for rev in revs:
        for d in defs:
            data = rev.files.get(d.path)
            if data is None:
                continue
            x_field, series = _template_series(template, data.records, d.x, d.y)
            x_name = x_name if first.x else x_field
            for column, (xs, ys) in series.items():
                fields[column] = None
                lines.append(Line(rev.rev, xs, ys, d.path, column))
    metric = first.y_label or ", ".join(fields) or "y"
    return Chart(
        first.id,
        metric,
        x_name or INDEX,
        lines,
        template=template,
        title=first.title or first.id,
        plot_id=first.id,
        x_label=first.x_label,
        y_label=first.y_label,
    )


def _template_series(
    template: str, records: Sequence[Record], x: str | None, y: Sequence[str] | None
) -> tuple[str, dict[str, tuple[tuple[Any, ...], tuple[Any, ...]]]]:
    """(x name, {column: (xs, ys)}): numbers for lines and points, classes or labels as written
    for the confusion and bar templates."""
    if template not in CATEGORICAL and template not in BARS:
        return file_series(records, x, y)
    x_field = x or (STEP if template in BARS else INDEX)
    columns = list(y) if y is not None else [k for k in (records[0] if records else {}) if k != x]
    series: dict[str, tuple[tuple[Any, ...], tuple[Any, ...]]] = {}
    for column in columns[:1] if template in CATEGORICAL else columns:
        pairs = [
            (_x_value(template, r.get(x_field)), _label(r.get(column)))
            for r in records
            if r.get(x_field) is not None and r.get(column) is not None
        ]
        pairs = [(a, b) for a, b in pairs if a is not None]
        if pairs:
            series[column] = (tuple(a for a, _ in pairs), tuple(b for _, b in pairs))
    return x_field, series


def _x_value(template: str, value: Any) -> Any:
    return to_number(value) if template in BARS else _label(value)


def _label(value: Any) -> Any:
    """A class or label as JSON can hold it: numbers and text as they are."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return value
    return str(value)


def charts_to_json(
    charts: Iterable[Chart],
    revs: Sequence[str],
    errors: Sequence[str] = (),
    images: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The ``--json`` output: revisions, every chart with its lines, images, read errors."""
    return {
        "revisions": list(revs),
        "plots": [_chart_json(chart) for chart in charts],
        "images": list(images),
        "errors": list(dict.fromkeys(errors)),
    }


def _chart_json(chart: Chart) -> dict[str, Any]:
    data: dict[str, Any] = {
        "file": chart.file,
        "metric": chart.metric,
        "x": chart.x,
        "lines": [_line_json(chart, line) for line in chart.lines],
    }
    if chart.plot_id:
        data = {"id": chart.plot_id, **data, "title": chart.title}
    if chart.template != "linear":
        data["template"] = chart.template
    return data


def _line_json(chart: Chart, line: Line) -> dict[str, Any]:
    where = {"file": line.file, "field": line.field} if chart.plot_id else {}
    return {"rev": line.rev, **where, "x": list(line.xs), "y": list(line.ys)}
