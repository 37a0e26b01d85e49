"""File helpers of exq.live: atomic writes, appended TSV rows, clean-up.

Metric rows are appended to their TSV as they are logged, one ``write`` each
(header and first row together), as dvclive does: a killed script loses no
row it logged.  A reader may catch the last line half-written; ``read_tsv``
skips a line without its newline.  Every other file (summary, report,
params, a TSV cut back on resume) is written whole to a temp file in the
same folder and renamed over the target, so a reader sees the old file or
the new one, never a part.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

TSV_SUFFIX = ".tsv"
_TMP_PREFIX = ".exqlive-"
_TMP_SUFFIX = ".tmp"
_counter = itertools.count()

Number = int | float
Row = tuple[int, int, Number]  # (timestamp ms, step, value)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and a rename.

    No fsync: the rename is what readers need; a power cut at worst loses the
    last step, which resume handles.  The temp file is opened with mode 0666
    so the umask applies as for any other file the script writes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{_TMP_PREFIX}{path.name}.{os.getpid()}.{next(_counter)}{_TMP_SUFFIX}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def append_row(path: Path, column: str, row: Row) -> None:
    """Append one row to a metric TSV, with the header first when the file is new.

    One ``os.write`` on an ``O_APPEND`` descriptor: the row is in the file
    (the page cache) when this returns, so a SIGKILL right after loses
    nothing, and the line is never interleaved with another writer's.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        line = format_row(row)
        if os.fstat(fd).st_size == 0:
            line = tsv_header(column) + line
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def format_number(value: Number) -> str:
    """The text of a metric value: ints as ints, floats round-trip exactly."""
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def parse_number(text: str) -> Number:
    """Inverse of ``format_number``; ValueError on anything else."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def format_row(row: Row) -> str:
    """One TSV line with its newline."""
    timestamp, step, value = row
    return f"{timestamp}\t{step}\t{format_number(value)}\n"


def tsv_header(column: str) -> str:
    """The header line: ``timestamp``, ``step`` and the metric's own column."""
    return f"timestamp\tstep\t{column}\n"


def read_tsv(path: Path) -> list[Row]:
    """The rows of a metric TSV, skipping the header and any malformed line.

    Reads dvclive's files too: ``step`` and the value are found by the header
    (dvclive 1.x+ writes no ``timestamp`` column unless asked: 0 stands in).
    """
    rows: list[Row] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return rows
    lines = text.replace("\r\n", "\n").split("\n")
    if text and not text.endswith("\n"):
        lines = lines[:-1]  # a torn last line (killed during an append)
    header = lines[0].split("\t") if lines else []
    if "step" not in header or len(header) < 2:
        return rows
    at_step = header.index("step")
    at_time = header.index("timestamp") if "timestamp" in header else None
    for line in lines[1:]:
        fields = line.split("\t")
        if len(fields) != len(header):
            continue
        try:
            stamp = 0 if at_time is None else int(fields[at_time])
            rows.append((stamp, int(fields[at_step]), parse_number(fields[-1])))
        except ValueError:
            continue
    return rows


def iter_tsv(folder: Path, skip: Iterable[Path] = ()) -> Iterator[tuple[str, Path]]:
    """Every metric TSV under ``folder``, as (metric name with ``/``, path).

    Folders in ``skip`` are left out (the sub-folders of other layouts).
    """
    if not folder.is_dir():
        return
    skipped = [s for s in skip if s != folder]
    for path in sorted(folder.rglob(f"*{TSV_SUFFIX}")):
        if any(path.is_relative_to(s) for s in skipped):
            continue
        if path.is_file() and not path.name.startswith(_TMP_PREFIX):
            name = path.relative_to(folder).with_suffix("").as_posix()
            yield name, path


def remove_files(folder: Path, extra: Iterable[Path]) -> None:
    """Remove the logger's files under ``folder`` and ``extra``; keep the rest.

    Folders emptied by the removal go too, except ``folder`` itself.
    """
    for path in extra:
        path.unlink(missing_ok=True)
    if not folder.is_dir():
        return
    for _, path in list(iter_tsv(folder)):
        path.unlink(missing_ok=True)
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        try:
            sub.rmdir()
        except OSError:
            pass  # not empty: the user's files


def remove_temps(folder: Path) -> None:
    """Remove the temp files that a killed writer left in and beside ``folder``.

    A temp file of a process still running (its pid is in the name) stays:
    that writer is about to rename it.
    """
    found = [*folder.parent.glob(f"{_TMP_PREFIX}{folder.name}.*{_TMP_SUFFIX}")]
    if folder.is_dir():
        found += folder.rglob(f"{_TMP_PREFIX}*{_TMP_SUFFIX}")
    for path in found:
        pid = path.name[: -len(_TMP_SUFFIX)].split(".")[-2]
        if not (pid.isdigit() and _running(int(pid))):
            path.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
