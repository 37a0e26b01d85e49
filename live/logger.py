"""``Live``: the metrics logger that training scripts use (dvclive 0.x style).

Files, for ``Live("logs")``:

* ``logs/<metric>.tsv``: ``timestamp`` (epoch ms), ``step``, ``<metric>``; a
  name with ``/`` makes folders (``train/loss`` -> ``logs/train/loss.tsv``);
* ``logs.json``: the summary, ``step`` and the latest value of every metric,
  nested along the ``/`` of the names (``{"train": {"loss": ...}}``);
* ``logs.html``: the report, a chart per metric and the summary;
* ``logs/params.yaml``: what ``log_param(s)`` recorded.

Rows are kept in memory and the files are rewritten whole and renamed into
place at step ends (``next_step``, ``make_summary``, ``flush``, ``end``): a
reader never sees a torn line, which appending could not promise (a line
crossing a page boundary can be seen half-written).  A rewrite costs time
linear in the history, so when it grows dear (over 5 ms, i.e. tens of
thousands of steps) the writes between checkpoints are spaced out (see
``_Pace``); a checkpoint always writes everything first.  The report draws at
most ``exq.live.report.MAX_POINTS`` points per chart.

Environment (set by the runner, so DVC-era scripts work unchanged):
``DVCLIVE_PATH`` (the folder, overrides the argument), ``DVCLIVE_SUMMARY`` and
``DVCLIVE_HTML`` (``0``/``1``), ``EXQ_RESUME``/``DVCLIVE_RESUME`` (resume),
``EXQ_CHECKPOINT``/``DVC_CHECKPOINT`` (``next_step`` takes a checkpoint).
"""

from __future__ import annotations

import atexit
import itertools
import json
import math
import os
import time
import warnings
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from exq.live import files, params
from exq.live.checkpoint import checkpoints_enabled, signal_checkpoint
from exq.live.report import render_report

ENV_PATH = "DVCLIVE_PATH"
ENV_SUMMARY = "DVCLIVE_SUMMARY"
ENV_HTML = "DVCLIVE_HTML"
ENV_RESUME = ("EXQ_RESUME", "DVCLIVE_RESUME")
PARAMS_FILE = "params.yaml"
REFRESH_SECONDS = 5

Number = files.Number
_FORBIDDEN = set("\t\n\r\\\0")
_ACTIVE: weakref.WeakValueDictionary[int, Live] = weakref.WeakValueDictionary()
_ids = itertools.count()


def env_flag(name: str) -> bool | None:
    """``1/true/yes/on`` -> True, ``0/false/no/off/''`` -> False, unset -> None."""
    value = os.environ.get(name)
    if value is None:
        return None
    return value.strip().lower() in {"1", "true", "yes", "on", "y"}


class Live:
    """Log metrics step by step into TSV files, a JSON summary and an HTML report."""

    DEFAULT_DIR = "dvclive"

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        resume: bool = False,
        summary: bool = True,
        html: bool = True,
        report: bool | str | None = None,
        checkpoint: bool | None = None,
    ) -> None:
        """Open the logger; without resume, remove the files of a previous run.

        ``report`` is an alias of ``html`` (newer dvclive's name).  ``checkpoint``:
        whether ``next_step`` signals the runner; None decides from the
        environment.
        """
        self._dir = _resolve_dir(path, self.DEFAULT_DIR)
        self._summary = _env_or(ENV_SUMMARY, summary)
        self._html = _env_or(ENV_HTML, html if report is None else bool(report))
        self._resume = resume or any(env_flag(name) for name in ENV_RESUME)
        self._checkpoint = checkpoints_enabled() if checkpoint is None else checkpoint
        self._step = 0
        self._last_logged: int | None = None
        self._lines: dict[str, list[str]] = {}
        self._points: dict[str, list[tuple[int, float]]] = {}
        self._latest: dict[str, Number] = {}
        self._dirty: set[str] = set()
        self._logged: set[str] = set()
        self._params: dict[str, Any] = {}
        self._ended = False
        self._files_pace = _Pace()
        self._report_pace = _Pace()
        files.remove_temps(self._dir)
        if self._resume:
            self._load_previous()
        else:
            files.remove_files(self._dir, [self.summary_path, self.html_path, self.params_path])
        self._dir.mkdir(parents=True, exist_ok=True)
        _ACTIVE[next(_ids)] = self

    # ------------------------------------------------------------------ paths
    @property
    def dir(self) -> Path:
        """The folder of the TSV files."""
        return self._dir

    @property
    def summary_path(self) -> Path:
        """``<dir>.json``, beside the folder."""
        return self._dir.with_name(self._dir.name + ".json")

    @property
    def html_path(self) -> Path:
        """``<dir>.html``, beside the folder."""
        return self._dir.with_name(self._dir.name + ".html")

    @property
    def params_path(self) -> Path:
        """``<dir>/params.yaml``."""
        return self._dir / PARAMS_FILE

    # ------------------------------------------------------------------- step
    @property
    def step(self) -> int:
        """The step that ``log`` writes to; starts at 0, or after the resumed one."""
        return self._step

    @step.setter
    def step(self, value: int) -> None:
        value = int(value)
        if value < 0:
            raise ValueError(f"step must be >= 0, not {value}")
        if value != self._step:
            self._logged.clear()
        self._step = value

    def get_step(self) -> int:
        """dvclive 0.x's name for ``step``."""
        return self._step

    # ---------------------------------------------------------------- logging
    def log(self, name: str, val: Any, step: int | None = None) -> None:
        """Record ``val`` for metric ``name`` at the current step (or ``step``).

        As in dvclive 0.x, logging a metric twice in one step without ``step``
        ends the step first (``next_step``), so scripts that never call
        ``next_step`` get one step per value.
        """
        self._check_name(name)
        value = _to_number(val, name)
        if step is not None:
            self.step = step
        elif name in self._logged:
            self.next_step()
        row = (time.time_ns() // 1_000_000, self._step, value)
        lines = self._lines.setdefault(name, [files.tsv_header(name.rsplit("/", 1)[-1])])
        lines.append(files.format_row(row))
        self._points.setdefault(name, []).append((self._step, float(value)))
        self._latest[name] = value
        self._dirty.add(name)
        self._logged.add(name)
        self._last_logged = self._step

    log_metric = log

    def next_step(self) -> None:
        """End the step: write the files, take a checkpoint if on, then step += 1."""
        if self._checkpoint:
            self.flush()  # the snapshot must see this step's files, all of them
            signal_checkpoint(self._step)
        else:
            self._write_files(force=False)
        self._step += 1
        self._logged.clear()

    def log_param(self, name: str, val: Any) -> None:
        """Record one param in ``<dir>/params.yaml`` (written at once)."""
        self.log_params({name: val})

    def log_params(self, values: Mapping[str, Any]) -> None:
        """Record several params in ``<dir>/params.yaml`` (written at once)."""
        clean = params.normalize_param(dict(values), "params")
        self._params.update(clean)
        files.write_atomic(self.params_path, params.dump_params(self._params))

    # ----------------------------------------------------------------- output
    def make_summary(self) -> None:
        """Write the TSV files that changed and the summary, now."""
        started = time.monotonic()
        for name in sorted(self._dirty):
            files.write_atomic(self._dir / f"{name}{files.TSV_SUFFIX}", "".join(self._lines[name]))
        self._dirty.clear()
        if self._summary:
            text = json.dumps(self.summary(), indent=4) + "\n"
            files.write_atomic(self.summary_path, text)
        self._files_pace.ran(started)

    def make_report(self, *, final: bool = False) -> None:
        """Write the HTML report now (it reloads itself until ``final``)."""
        if not self._html:
            return
        started = time.monotonic()
        page = render_report(
            self._dir.name,
            self.summary(),
            self._points,
            refresh_seconds=None if final else REFRESH_SECONDS,
        )
        files.write_atomic(self.html_path, page)
        self._report_pace.ran(started)

    def flush(self) -> None:
        """Write every file now: TSVs, summary, report."""
        self._write_files(force=True)

    def _write_files(self, *, force: bool) -> None:
        if force or self._files_pace.due():
            self.make_summary()
        if force or self._report_pace.due():
            self.make_report(final=self._ended)

    def summary(self) -> dict[str, Any]:
        """``{"step": ..., <metrics nested by "/">}`` as written to the summary."""
        out: dict[str, Any] = {
            "step": self._step if self._last_logged is None else self._last_logged
        }
        for name, value in self._latest.items():
            node = out
            *parents, leaf = name.split("/")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        return out

    def end(self) -> None:
        """Write the final files; the report stops reloading itself."""
        if self._ended:
            return
        self._ended = True
        self.flush()

    def __enter__(self) -> Live:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.end()

    # ---------------------------------------------------------------- helpers
    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"metric name must be a non-empty string, not {name!r}")
        if name in self._latest:
            return
        parts = name.split("/")
        if any(p in ("", ".", "..") for p in parts) or _FORBIDDEN & set(name):
            raise ValueError(
                f"bad metric name {name!r}: empty, '.' or '..' part, or a control char"
            )
        if name == "step":
            raise ValueError("'step' is the summary's step counter, not a metric name")
        for other in self._latest:
            if other.startswith(name + "/") or name.startswith(other + "/"):
                raise ValueError(
                    f"metric {name!r} conflicts with {other!r} (a name is a folder of the other)"
                )

    def _load_previous(self) -> None:
        """Resume: step from the summary, history from the TSVs, drop later rows."""
        old = _read_json(self.summary_path)
        start: int | None = None
        if isinstance(old.get("step"), int):
            start = old["step"] + 1
            self._last_logged = old["step"]
            self._latest.update(_flatten({k: v for k, v in old.items() if k != "step"}))
        tables = {name: (path, files.read_tsv(path)) for name, path in files.iter_tsv(self._dir)}
        if start is None:
            start = 1 + max((r[1] for _, rows in tables.values() for r in rows), default=-1)
        for name, (path, rows) in tables.items():
            keep = [r for r in rows if r[1] < start]
            header = files.tsv_header(name.rsplit("/", 1)[-1])
            self._lines[name] = [header, *(files.format_row(r) for r in keep)]
            self._points[name] = [(r[1], float(r[2])) for r in keep]
            if keep and name not in self._latest:
                self._latest[name] = keep[-1][2]
            if len(keep) != len(rows) or path.read_text(encoding="utf-8") != "".join(
                self._lines[name]
            ):
                self._dirty.add(name)
        self._step = start
        if self.params_path.is_file():
            try:
                self._params = params.load_params(self.params_path.read_text(encoding="utf-8"))
            except (ValueError, OSError) as exc:
                warnings.warn(
                    f"exq.live: cannot read {self.params_path} ({exc}); params start empty",
                    stacklevel=3,
                )
        self.make_summary()


class _Pace:
    """When to rewrite a group of files at a step end without a checkpoint.

    Cheap writes (under 5 ms) happen at every step.  Once the history makes a
    write dearer, it waits until ten times its cost has passed since the last
    one, so writing never takes more than about a tenth of the training time
    (a per-batch logger of 100 000 steps would otherwise spend most of its time
    rewriting TSVs).  Checkpoints, ``flush`` and ``end`` always write.
    """

    CHEAP = 0.005
    SHARE = 0.1

    def __init__(self) -> None:
        self.cost = 0.0
        self.last = -math.inf

    def due(self) -> bool:
        return self.cost < self.CHEAP or time.monotonic() - self.last >= self.cost / self.SHARE

    def ran(self, started: float) -> None:
        self.last = time.monotonic()
        self.cost = self.last - started


def make_checkpoint() -> None:
    """Write every open ``Live``'s files, signal the runner, block until it is done.

    A no-op outside a runner that takes checkpoints.  The step sent is the
    current step of the most recently opened logger, if any.
    """
    if not checkpoints_enabled():
        return
    step = None
    for live in list(_ACTIVE.values()):
        if not live._ended:
            live.flush()
            step = live.step
    signal_checkpoint(step)


@atexit.register
def _end_all() -> None:
    # Scripts in the dvclive 0.x style never call end(): write their last step.
    for live in list(_ACTIVE.values()):
        try:
            live.end()
        except Exception:  # noqa: BLE001 - never fail an exiting interpreter
            pass


def _resolve_dir(path: str | os.PathLike[str] | None, default: str) -> Path:
    env_path = os.environ.get(ENV_PATH)
    chosen = os.fspath(path) if path is not None else None
    if env_path:
        if chosen is not None and os.path.normpath(chosen) != os.path.normpath(env_path):
            warnings.warn(
                f"exq.live: {ENV_PATH}={env_path} overrides the path {chosen!r}", stacklevel=3
            )
        chosen = env_path
    normal = Path(os.path.normpath(chosen or default))
    if normal.name in ("", ".", ".."):
        raise ValueError(f"exq.live needs a folder name, not {chosen!r}")
    return normal


def _env_or(name: str, value: bool) -> bool:
    flag = env_flag(name)
    return bool(value) if flag is None else flag


def _to_number(val: Any, name: str) -> Number:
    if isinstance(val, bool):
        return int(val)
    if isinstance(val, int):
        return int(val)
    if isinstance(val, float):
        return float(val)
    item = getattr(val, "item", None)  # numpy scalars, 0-d tensors
    if callable(item):
        return _to_number(item(), name)
    try:
        return float(val)
    except (TypeError, ValueError):
        raise TypeError(f"metric {name!r}: {type(val).__name__} is not a number") from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Number]:
    out: dict[str, Number] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = value
    return out
