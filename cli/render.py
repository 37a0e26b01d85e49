"""Drawing experiment tables and diffs as text: rich boxes, csv, markdown, json.

Every function returns a string and takes the terminal width as a parameter,
so tests compare exact output. The table model comes from
``exq.engine.experiments.compare``; nothing here decides what goes into a table, only how
it looks.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii
from typing import Any

from exq.engine.experiments.compare import Column, DiffRow, Row, Table, cell_value, diff_to_dict

ELLIPSIS = "…"


# ---------------------------------------------------------------- fitting


def cell_len(text: str) -> int:
    """The columns ``text`` takes on a terminal, as rich counts them: its length
    when it is printable ASCII (without importing rich's Unicode tables, which
    take longer than a whole ``metrics show``), else rich's own count (wide
    characters take two columns, control characters none)."""
    if text.isascii() and text.isprintable():
        return len(text)
    from rich.cells import cell_len as rich_cell_len

    return rich_cell_len(text)


def table_width(widths: Sequence[int]) -> int:
    """Width of a boxed table whose columns hold ``widths`` cells (one space of padding each side)."""
    return sum(w + 2 for w in widths) + len(widths) + 1


def fit_columns(widths: Sequence[int], max_width: int, *, keep: int = 1) -> tuple[int, bool]:
    """How many leading columns fit in ``max_width``, and whether a ``…`` column is needed.

    Trailing columns are dropped until the kept ones plus a one-cell ``…``
    column fit; the first ``keep`` columns are always kept, even if too wide.
    """
    if table_width(widths) <= max_width:
        return len(widths), False
    # The widest prefix that fits beside the ``…`` column, found in one pass: a
    # table of many thousand params costs its number of columns, not its square.
    used = table_width([cell_len(ELLIPSIS)])
    count = 0
    for width in widths[:-1]:
        if used + width + 3 > max_width:
            break
        used += width + 3
        count += 1
    if count >= keep:
        return count, True
    kept = min(keep, len(widths))
    return kept, kept < len(widths)


def column_widths(table: Table) -> list[int]:
    """The natural width of each column: its widest cell or header."""
    return [
        max([cell_len(col.header), *(cell_len(line[i]) for line in table.rows)])
        for i, col in enumerate(table.columns)
    ]


# ---------------------------------------------------------------- the experiments table


def render_table(table: Table, *, width: int, color: bool = False) -> str:
    """Draw ``table`` in a heavy-headed box no wider than ``width``, eliding trailing columns.

    With ``color``, ANSI styles are included (baseline rows bold, as DVC does).
    """
    widths = column_widths(table)
    count, elided = fit_columns(widths, width)
    if not color and not elided and _plain_cells(table):
        return _draw_heavy_head(table, widths)
    # rich only where it draws: JSON, CSV, the plain grids and the box above need none
    from rich import box
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    grid = RichTable(box=box.HEAVY_HEAD)
    for col in table.columns[:count]:
        grid.add_column(Text(col.header), justify=col.align, no_wrap=True, overflow="ellipsis")
    if elided:
        grid.add_column(ELLIPSIS, no_wrap=True)
    for index, line in enumerate(table.rows):
        cells = [Text(cell) for cell in line[:count]]
        if elided:
            cells.append(Text(ELLIPSIS))
        bold = index < len(table.source) and table.source[index].kind == "baseline"
        grid.add_row(*cells, style="bold" if bold else None)
    out = io.StringIO()
    console = Console(
        file=out,
        width=width,
        force_terminal=color,
        color_system="standard" if color else None,
        legacy_windows=False,
        soft_wrap=False,
    )
    console.print(grid)
    return out.getvalue()


def _plain_cells(table: Table) -> bool:
    """Whether every cell is one printable line, which :func:`_draw_heavy_head` draws
    as rich would."""
    if not table.rows:
        return False
    return all(c.header.isprintable() for c in table.columns) and all(
        cell.isprintable() for line in table.rows for cell in line
    )


def _draw_heavy_head(table: Table, widths: list[int]) -> str:
    """The table in rich's HEAVY_HEAD box, drawn directly when every column fits:
    rich's layout takes time that grows faster than the number of columns, and a
    params file can hold thousands of keys (the piped output is never elided)."""
    aligns = [col.align for col in table.columns]

    def line(cells: Sequence[str], edge: str) -> str:
        padded = (
            _justify(cell, width, align)
            for cell, width, align in zip(cells, widths, aligns, strict=True)
        )
        return edge + edge.join(padded) + edge

    def rule(left: str, fill: str, mid: str, right: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + right

    lines = [
        rule("┏", "━", "┳", "┓"),
        line([col.header for col in table.columns], "┃"),
        rule("┡", "━", "╇", "┩"),
        *(line(row, "│") for row in table.rows),
        rule("└", "─", "┴", "┘"),
    ]
    return "\n".join(lines) + "\n"


def _justify(cell: str, width: int, align: str) -> str:
    if align == "right":  # as rich: trailing blanks go before a right-aligned cell
        cell = cell.rstrip()
    room = " " * (width - cell_len(cell))
    return f" {room}{cell} " if align == "right" else f" {cell}{room} "


def _raw_cell(row: Row, column: Column) -> str:
    if column.kind in ("metric", "param"):
        value = cell_value(row, column)
        return "" if value is None else str(value)
    if column.kind == "created":
        return row.created.isoformat() if row.created else ""
    if column.kind == "state":
        return row.state
    if column.kind == "sweep":
        return row.sweep or ""
    return row.name


def render_csv(table: Table) -> str:
    """Comma-separated values in ``dvc exp show --csv``'s shape: raw values, no tree, empty when missing.

    The first columns are ``Experiment,rev,typ,Created,parent`` (Created only
    when the table has it), then State if shown, then the metric and param
    columns. Unlike DVC, Experiment is always the row's name, rev the full sha
    and typ the row's kind.
    """
    data = [col for col in table.columns if col.kind not in ("experiment", "created")]
    has_created = any(col.kind == "created" for col in table.columns)
    header = ["Experiment", "rev", "typ", *(["Created"] if has_created else []), "parent"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header + [col.header for col in data])
    for row in table.source:
        line = [row.name, row.rev or "", row.kind]
        if has_created:
            line.append(row.created.isoformat() if row.created else "")
        line.append(row.parent or "")
        writer.writerow(line + [_raw_cell(row, col) for col in data])
    return out.getvalue()


# ---------------------------------------------------------------- plain and markdown grids


def _widths(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    # like tabulate: a header gets two cells of room beyond its own width
    return [max([cell_len(h) + 2, *(cell_len(r[i]) for r in rows)]) for i, h in enumerate(header)]


def _pad(text: str, width: int) -> str:
    return text + " " * (width - cell_len(text))


def plain_grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns separated by two spaces, left-aligned, no trailing blanks (DVC's diff tables)."""
    widths = _widths(header, rows)
    lines = [
        "  ".join(_pad(c, w) for c, w in zip(line, widths, strict=False)).rstrip()
        for line in [header, *rows]
    ]
    return "\n".join(lines) + "\n"


def markdown_grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table, left-aligned, with ``|`` in cells escaped."""
    header = [h.replace("|", "\\|") for h in header]
    rows = [[c.replace("|", "\\|") for c in line] for line in rows]
    widths = _widths(header, rows)
    lines = [
        "| " + " | ".join(_pad(c, w) for c, w in zip(line, widths, strict=False)) + " |"
        for line in [header, *rows]
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines) + "\n"


def render_markdown(table: Table) -> str:
    """The experiments table as markdown (``exp show --md``): formatted cells, tree glyphs kept."""
    return markdown_grid([col.header for col in table.columns], table.rows)


# ---------------------------------------------------------------- diffs


def render_diff(
    rows: Sequence[DiffRow],
    *,
    title: str,
    old_label: str = "HEAD",
    new_label: str = "workspace",
    show_change: bool = True,
    markdown: bool = False,
) -> str:
    """One diff table: ``Path  <title>  <old_label>  <new_label>  Change``; empty string if no rows.

    ``params diff`` passes ``show_change=False`` (DVC shows no Change column there).
    """
    if not rows:
        return ""
    header = ["Path", title, old_label, new_label] + (["Change"] if show_change else [])
    lines = [[r.path, r.key, r.old, r.new] + ([r.change] if show_change else []) for r in rows]
    return markdown_grid(header, lines) if markdown else plain_grid(header, lines)


def render_exp_diff(
    metrics: Sequence[DiffRow],
    params: Sequence[DiffRow],
    *,
    old_label: str = "HEAD",
    new_label: str = "workspace",
    markdown: bool = False,
) -> str:
    """``exp diff``: the metrics table, a blank line, the params table (empty ones left out)."""
    parts = [
        render_diff(rows, title=title, old_label=old_label, new_label=new_label, markdown=markdown)
        for rows, title in ((metrics, "Metric"), (params, "Param"))
    ]
    return "\n".join(part for part in parts if part)


def render_diff_json(rows: Sequence[DiffRow]) -> str:
    """``{file: {key: {"old", "new"[, "diff"]}}}`` for ``metrics diff --json`` / ``params diff --json``."""
    return json.dumps(finite(diff_to_dict(list(rows))))


def render_exp_diff_json(metrics: Sequence[DiffRow], params: Sequence[DiffRow]) -> str:
    """``{"metrics": {...}, "params": {...}}`` as ``dvc exp diff --json`` prints it."""
    return json.dumps(
        finite({"metrics": diff_to_dict(list(metrics)), "params": diff_to_dict(list(params))})
    )


def finite(value: Any) -> Any:
    """``value`` with NaN and the infinities as None: JSON has no such numbers (the
    json module would write ``NaN``, which jq, JavaScript and strict parsers refuse)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def render_json(data: Any) -> str:
    """JSON for ``--json`` outputs (``rows_to_json`` results), indented for people, stable for tools.

    Exactly ``json.dumps(finite(data), indent=2)``, written faster: with an indent, the
    json module encodes in Python through generators, a third of ``exp show
    --json``'s time over 10,000 experiments. Anything but plain JSON data (a
    key that is not a string, a type of its own) goes to the json module.
    """
    out: list[str] = []
    try:
        _encode(data, out, "\n")
    except _NotPlain:
        return json.dumps(finite(data), indent=2)
    return "".join(out)


class _NotPlain(Exception):
    """A value ``_encode`` leaves to the json module."""


def _encode(value: Any, out: list[str], newline: str) -> None:
    """Append ``value``'s indented JSON to ``out``; ``newline`` holds the current indent."""
    kind = type(value)
    if kind is str:
        out.append(encode_basestring_ascii(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif kind is int:
        out.append(int.__repr__(value))
    elif kind is float:
        out.append(_float_text(value))
    elif kind is dict:
        if not value:
            out.append("{}")
            return
        inner = newline + "  "
        separator = "{" + inner
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            out.append(separator)
            out.append(encode_basestring_ascii(key))
            out.append(": ")
            _encode(item, out, inner)
            separator = "," + inner
        out.append(newline + "}")
    elif kind is list or kind is tuple:
        if not value:
            out.append("[]")
            return
        inner = newline + "  "
        separator = "[" + inner
        for item in value:
            out.append(separator)
            _encode(item, out, inner)
            separator = "," + inner
        out.append(newline + "]")
    else:
        raise _NotPlain


def _float_text(value: float) -> str:
    """As the json module writes a float; NaN and the infinities as null (see ``finite``)."""
    if not math.isfinite(value):
        return "null"
    return float.__repr__(value)
