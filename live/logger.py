"""``Live``: the metrics logger that training scripts use, with dvclive's behaviour.

Files, for ``Live("logs")`` in the default ``flat`` layout (see
``exq.live.layout`` for ``scalars`` and ``plots``, the dvclive 0.5-0.7 and
1.x-3.x ones):

* ``logs/<metric>.tsv``: ``timestamp`` (epoch ms), ``step``, ``<metric>``; a
  name with ``/`` makes folders (``train/loss`` -> ``logs/train/loss.tsv``,
  column ``train/loss``, as dvclive 0.2-0.7 write it);
* ``logs.json``: the summary, ``step`` and the latest value of every metric,
  nested along the ``/`` of the names (``{"train": {"loss": ...}}``); written
  at once (``{"step": 0}``) and after every ``log``, as dvclive 0.4 does;
* ``logs_dvc_plots/index.html``: the report, a chart per metric and the summary;
* ``logs/params.yaml``: what ``log_param(s)`` recorded.

Each ``log`` appends its row to the metric's TSV at once (one flushed
``write``), as dvclive does: a script killed at any point keeps every row it
logged.  A step ends at ``next_step()``, at ``set_step(n)``, and when
``log(..., step=n)`` moves to another step; at a step end the report is
rewritten (paced, see ``_Pace``) and, under a runner that takes checkpoints,
a checkpoint is taken, so a loop that only ever passes ``step=`` gets one
checkpoint per step like dvclive 0.x.

Environment (set by the runner, so DVC-era scripts work unchanged):
``DVCLIVE_PATH`` (the folder; an explicit other path raises
``ConfigMismatchError``), ``DVCLIVE_SUMMARY`` and ``DVCLIVE_HTML`` (``0``/``1``;
an explicit argument wins), ``EXQ_RESUME``/``DVCLIVE_RESUME`` (resume),
``EXQ_LIVE_LAYOUT`` (the layout), ``EXQ_CHECKPOINT`` or ``DVC_CHECKPOINT=1``
with ``DVC_ROOT`` (checkpoints; see ``exq.live.checkpoint``).
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

from exq.live import env, files, params
from exq.live import layout as layouts
from exq.live.checkpoint import checkpoints_enabled, signal_checkpoint
from exq.live.error import (
    ConfigMismatchError,
    DataAlreadyLoggedError,
    InvalidDataTypeError,
    InvalidParameterTypeError,
    env_path_conflict,
)
from exq.live.report import render_report

ENV_PATH = env.DVCLIVE_PATH
REFRESH_SECONDS = 5
PROGRESS_SECONDS = 1.0
DVC_LIVE_SIGNAL = "DVC_LIVE"
# dvclive 1.x-3.x options that only make sense with DVC's own experiments: exq
# makes the experiment itself, so they are accepted and have no effect.
IGNORED_OPTIONS = frozenset(
    {"save_dvc_exp", "dvcyaml", "cache_images", "exp_name", "exp_message", "monitor_system"}
)

Number = files.Number
_FORBIDDEN = set("\t\n\r\\\0")
_ACTIVE: weakref.WeakValueDictionary[int, Live] = weakref.WeakValueDictionary()
_ids = itertools.count()


def env_flag(name: str) -> bool | None:
    """``1/true/yes/on`` -> True, ``0/false/no/off/''`` -> False, unset -> None."""
    return env.env_flag(name)


class Live:
    """Log metrics step by step into TSV files, a JSON summary and an HTML report."""

    DEFAULT_DIR = "dvclive"

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        resume: bool = False,
        summary: bool | None = None,
        *,
        html: bool | None = None,
        report: bool | str | None = "html",
        checkpoint: bool | None = None,
        layout: str | None = None,
        dir: str | os.PathLike[str] | None = None,  # noqa: A002 - dvclive 1.x's name
        total_steps: int | None = None,
        **dvclive_options: Any,
    ) -> None:
        """Open the logger; without resume, remove the files of a previous run.

        ``summary``/``html``: None follows ``DVCLIVE_SUMMARY``/``DVCLIVE_HTML``
        (on when unset); an explicit value wins.  ``report`` is newer
        dvclive's switch for the report (``"html"``/``"auto"`` on, None off).
        ``checkpoint``: whether step ends signal the runner; None decides from
        the environment.  ``layout``: ``flat``, ``scalars`` or ``plots``.
        ``total_steps``: how many steps the script means to run, for the time
        left that ``exq queue status`` shows.
        """
        unknown = set(dvclive_options) - IGNORED_OPTIONS
        if unknown:
            raise TypeError(
                f"Live() got unexpected keyword arguments: {', '.join(sorted(unknown))}"
            )
        self._dir = _resolve_dir(path if path is not None else dir, self.DEFAULT_DIR)
        self._resume = resume or any(env_flag(n) for n in (env.EXQ_RESUME, env.DVCLIVE_RESUME))
        env_html = env_flag(env.DVCLIVE_HTML)
        self._summary = _first(summary, env_flag(env.DVCLIVE_SUMMARY), True)
        self._html = _first(html, env_html, _report_on(report))
        chosen = _layout_name(self._dir, layout, self._resume)
        # dvclive 0.7 kept DVC's report location under a live section with html
        self._files = layouts.Layout(chosen, self._dir, dvc_report=bool(env_html))
        self._checkpoint = checkpoints_enabled() if checkpoint is None else checkpoint
        self._auto_step = False
        self._step = 0
        self._step_dirty = False
        self._last_logged: int | None = None
        self._last_step_of: dict[str, int] = {}
        self._points: dict[str, list[tuple[int, float]]] = {}
        self._latest: dict[str, Number] = {}
        self._params: dict[str, Any] = {}
        self._ended = False
        self._report_pace = _Pace()
        self._total_steps = None if total_steps is None else _check_step(total_steps)
        self._progress_written = 0.0
        files.remove_temps(self._dir)
        if self._resume:
            self._load_previous()
        else:
            files.remove_files(self._dir, [self.summary_path, self.html_path, self.params_path])
            self._dir.mkdir(parents=True, exist_ok=True)
            if self._summary:
                self.make_summary()
        self._dir.mkdir(parents=True, exist_ok=True)
        self._write_progress(force=True)
        _ACTIVE[next(_ids)] = self

    # ------------------------------------------------------------------ paths
    @property
    def dir(self) -> Path:
        """The logger's folder."""
        return self._dir

    @property
    def layout(self) -> str:
        """``flat``, ``scalars`` or ``plots`` (see ``exq.live.layout``)."""
        return self._files.name

    @property
    def metrics_dir(self) -> Path:
        """The folder of the metric TSVs."""
        return self._files.metrics_dir

    @property
    def summary_path(self) -> Path:
        """``<dir>.json``, or ``<dir>/metrics.json`` in the ``plots`` layout."""
        return self._files.summary_path

    @property
    def html_path(self) -> Path:
        """The report: ``<dir>_dvc_plots/index.html`` or ``<dir>/report.html``."""
        return self._files.report_path

    @property
    def params_path(self) -> Path:
        """``<dir>/params.yaml``."""
        return self._files.params_path

    # ------------------------------------------------------------------- step
    @property
    def step(self) -> int:
        """The step that ``log`` writes to; starts at 0, or after the resumed one."""
        return self._step

    @step.setter
    def step(self, value: int) -> None:
        self._step = _check_step(value)

    def get_step(self) -> int:
        """dvclive's name for ``step``."""
        return self._step

    def set_step(self, step: int) -> None:
        """End the current step (report, checkpoint) and go on at ``step`` (dvclive 0.3+)."""
        step = _check_step(step)
        self._end_step(checkpoint=self._step_dirty)
        self._step = step

    def next_step(self) -> None:
        """End the step: write the report, take a checkpoint if on, then step += 1."""
        self._end_step(checkpoint=True)
        self._step += 1

    # ---------------------------------------------------------------- logging
    def log(self, name: str, val: Any, step: int | None = None) -> None:
        """Append ``val`` of metric ``name`` at the current step (or at ``step``).

        ``step`` (dvclive 0.0-0.2) moves to that step first, ending the
        current one.  Logging a metric twice in one step raises
        ``DataAlreadyLoggedError`` (dvclive 0.3+); the module functions of
        ``exq.live`` start a new step instead, as dvclive 0.0-0.2 did.
        """
        self._check_name(name)
        value = _to_number(val, name)
        if step is not None and _check_step(step) != self._step:
            self._end_step(checkpoint=self._step_dirty)
            self._step = int(step)
        elif self._last_step_of.get(name) == self._step:
            if not self._auto_step or step is not None:
                raise DataAlreadyLoggedError(name, self._step)
            self.next_step()
        row = (time.time_ns() // 1_000_000, self._step, value)
        files.append_row(self.metrics_dir / f"{name}{files.TSV_SUFFIX}", name, row)
        self._points.setdefault(name, []).append((self._step, float(value)))
        self._latest[name] = value
        self._last_step_of[name] = self._step
        self._last_logged = self._step
        self._step_dirty = True
        if self._summary:
            self.make_summary()

    def log_metric(self, name: str, val: Any, timestamp: bool = False, plot: bool = True) -> None:
        """dvclive 1.x+'s name for ``log`` (``timestamp``/``plot``: always a timestamped row)."""
        self.log(name, val)

    def log_param(self, name: str, val: Any) -> None:
        """Record one param in ``<dir>/params.yaml`` (written at once)."""
        self.log_params({name: val})

    def log_params(self, values: Mapping[str, Any]) -> None:
        """Record several params in ``<dir>/params.yaml`` (written at once)."""
        try:
            clean = params.normalize_param(dict(values), "params")
        except TypeError as exc:
            raise InvalidParameterTypeError(str(exc)) from None
        self._params.update(clean)
        files.write_atomic(self.params_path, params.dump_params(self._params))

    # ----------------------------------------------------------------- output
    def make_summary(self) -> None:
        """Write the summary now."""
        text = json.dumps(self.summary(), indent=4) + "\n"
        files.write_atomic(self.summary_path, text)

    def make_report(self, *, final: bool = False) -> None:
        """Write the HTML report now (it reloads itself until ``final``)."""
        if not self._html:
            return
        started = time.monotonic()
        experiment, edits = env.experiment_heading()
        page = render_report(
            self._dir.name,
            self.summary(),
            self._points,
            refresh_seconds=None if final else REFRESH_SECONDS,
            experiment=experiment,
            params=edits,
        )
        files.write_atomic(self.html_path, page)
        self._report_pace.ran(started)

    def make_checkpoint(self) -> None:
        """Write every file, then take a checkpoint now (a no-op outside a runner)."""
        if self._checkpoint:
            self.flush()
            signal_checkpoint(self._step)

    def flush(self) -> None:
        """Write the summary and the report now (the TSVs are always written)."""
        if self._summary:
            self.make_summary()
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
        self._write_progress(force=True)

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
    def _end_step(self, *, checkpoint: bool) -> None:
        """A step ends: the report (paced), DVC's report signal, the checkpoint."""
        if checkpoint and self._checkpoint:
            self.flush()  # the snapshot must see this step's report too
            signal_checkpoint(self._step)
        elif self._report_pace.due():
            self.make_report()
        self._signal_dvc_report()
        self._step_dirty = False
        self._write_progress()

    def _write_progress(self, *, force: bool = False) -> None:
        """Tell the queue daemon the step and the declared total (``EXQ_PROGRESS_FILE``),
        at most once a second: a reader needs no more, a per-batch loop pays nothing."""
        target = os.environ.get(env.EXQ_PROGRESS_FILE)
        now = time.monotonic()
        if not target or (not force and now - self._progress_written < PROGRESS_SECONDS):
            return
        self._progress_written = now
        facts = {
            "dir": str(self._dir),
            "step": self.summary()["step"],
            "total_steps": self._total_steps,
            "updated": time.time(),
        }
        try:
            files.write_atomic(Path(target), json.dumps(facts) + "\n")
        except OSError:  # progress is a courtesy: it never stops training
            pass

    def _signal_dvc_report(self) -> None:
        # dvclive 0.0-0.6 asked DVC 2 to render the report by touching this
        # file; under exq (EXQ_ROOT) the report above is the report.
        if not self._html or os.environ.get(env.EXQ_ROOT):
            return
        root = os.environ.get(env.DVC_ROOT)
        if root and self.layout == "flat":
            signal = Path(root) / ".dvc" / "tmp" / DVC_LIVE_SIGNAL
            if signal.parent.is_dir():
                signal.touch()

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
        skip = [] if self.layout != "flat" else layouts.history_dirs(self._dir)[:2]
        tables = {
            name: (path, files.read_tsv(path))
            for name, path in files.iter_tsv(self.metrics_dir, skip)
        }
        logged = _flatten({k: v for k, v in old.items() if k != "step"})
        last_row = max((r[1] for _, rows in tables.values() for r in rows), default=None)
        if isinstance(old.get("step"), int) and (logged or last_row is not None):
            start = old["step"] + 1  # the summary marks the last checkpoint
        else:
            start = 0 if last_row is None else last_row + 1
        self._latest.update(logged)
        for name, (path, rows) in tables.items():
            keep = [r for r in rows if r[1] < start]
            text = files.tsv_header(name) + "".join(files.format_row(r) for r in keep)
            if path.read_text(encoding="utf-8") != text:
                files.write_atomic(path, text)  # rows after the checkpoint go
            self._points[name] = [(r[1], float(r[2])) for r in keep]
            if keep:
                self._last_step_of[name] = keep[-1][1]
                self._latest.setdefault(name, keep[-1][2])
        if self._latest:
            self._last_logged = start - 1
        self._step = start
        if self.params_path.is_file():
            try:
                self._params = params.load_params(self.params_path.read_text(encoding="utf-8"))
            except (ValueError, OSError) as exc:
                warnings.warn(
                    f"exq.live: cannot read {self.params_path} ({exc}); params start empty",
                    stacklevel=3,
                )
        if self._summary:
            self.make_summary()


class _Pace:
    """When to rewrite the report at a step end without a checkpoint.

    Cheap writes (under 5 ms) happen at every step.  Once the history makes a
    write dearer, it waits until ten times its cost has passed since the last
    one, so writing never takes more than about a tenth of the training time
    (a per-batch logger of 100 000 steps would otherwise spend most of its time
    redrawing charts).  Checkpoints, ``flush`` and ``end`` always write.
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
    # Scripts in the dvclive 0.x style never call end(): write the final report.
    for live in list(_ACTIVE.values()):
        try:
            live.end()
        except Exception:  # noqa: BLE001 - never fail an exiting interpreter
            pass


def _resolve_dir(path: str | os.PathLike[str] | None, default: str) -> Path:
    env_path = os.environ.get(ENV_PATH)
    if env_path_conflict(path, env_path):
        raise ConfigMismatchError(os.fspath(path), env_path)  # type: ignore[arg-type]
    chosen = env_path or (os.fspath(path) if path is not None else default)
    normal = Path(os.path.normpath(chosen))
    if normal.name in ("", ".", ".."):
        raise ValueError(f"exq.live needs a folder name, not {chosen!r}")
    return normal


def _layout_name(root: Path, chosen: str | None, resume: bool) -> str:
    return layouts.choose(root, chosen, resume=resume)


def _first(*values: bool | None) -> bool:
    return bool(next(v for v in values if v is not None))


def _report_on(report: bool | str | None) -> bool:
    if report in (None, False):
        return False
    if report in (True, "html", "auto"):
        return True
    raise ValueError(f"report={report!r}: exq.live writes 'html' reports (or None for none)")


def _check_step(value: Any) -> int:
    step = int(value)
    if step < 0:
        raise ValueError(f"step must be >= 0, not {value}")
    return step


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
    raise InvalidDataTypeError(name, type(val))


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
