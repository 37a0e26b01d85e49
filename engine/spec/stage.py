"""The resolved stage: what templating produces and every later step reads.

Paths are kept as written in ``dvc.yaml`` (after interpolation), relative to
the stage's ``wdir``; ``wdir`` and ``dvcfile`` are repo-relative POSIX paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

OutKind = Literal["outs", "metrics", "plots"]


@dataclass(frozen=True)
class Out:
    """One output of a stage: an ``outs``, ``metrics`` or ``plots`` entry."""

    path: str
    kind: OutKind = "outs"
    cache: bool = True
    persist: bool = False
    # DVC 2 checkpoint output (`- model.h5: {checkpoint: true}`): saved at each
    # checkpoint signal and kept between runs.
    checkpoint: bool = False
    # A plots out's drawing options as written (x, y, template, title, x_label,
    # y_label); they change no hash, so they take no part in comparisons.
    plot: tuple[tuple[str, Any], ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class LiveSpec:
    """DVC 2's ``live:`` section: ``live: {logs: {summary: true, html: true, cache: false}}``.

    ``path`` is the logger's folder (relative to the wdir). As in DVC 2, the
    folder is the section's one output (drawn as plots, cached unless
    ``cache`` is false); the summary ``<path>.json`` is read as metrics when
    ``summary`` is on but is no output (dvclive 0.x writes it beside the
    folder, and git keeps it), and the ``html`` report is the logger's own
    business: dvclive 0.x never writes one, so its absence is no error. The
    report's place is DVC 2's, ``<path>_dvc_plots/index.html``, where dvclive
    0.2.2-0.7 point under a live section (exq renders it there when a real
    dvclive asks through ``.dvc/tmp/DVC_LIVE``). The runner points the logger
    at the folder with ``DVCLIVE_PATH``/``DVCLIVE_SUMMARY``/``DVCLIVE_HTML``.
    """

    path: str
    summary: bool = True
    html: bool = True
    cache: bool = True

    @property
    def summary_path(self) -> str:
        return self.path + ".json"

    @property
    def html_path(self) -> str:
        return self.path + "_dvc_plots/index.html"

    def paths(self) -> set[str]:
        """The files the logger keeps between checkpoints: the folder and the summary."""
        return {self.path, self.summary_path} if self.summary else {self.path}

    def env(self) -> dict[str, str]:
        """What tells an exq.live/dvclive logger where to write and what."""
        return {
            "DVCLIVE_PATH": self.path,
            "DVCLIVE_SUMMARY": "1" if self.summary else "0",
            "DVCLIVE_HTML": "1" if self.html else "0",
        }


def live_layout(out_paths: Iterable[str]) -> str | None:
    """The logger file layout that a stage's outs name, for ``EXQ_LIVE_LAYOUT``.

    An out inside a ``plots/metrics`` folder, or ``dvclive/metrics.json``,
    names dvclive 1.x-3.x's layout; an out inside a ``scalars`` folder
    dvclive 0.5-0.7's.  Otherwise None: the logger keeps its default (dvclive
    0.0-0.4's flat folder, which a DVC 2 ``live:`` section's one output holds
    whatever its layout).  Only names this particular are read as a request,
    so a stage's own ``eval/metrics.json`` changes nothing.
    """
    found: str | None = None
    for path in out_paths:
        segments = path.strip("/").split("/")
        pairs = {"/".join(segments[i : i + 2]) for i in range(1, len(segments) - 1)}
        if "plots/metrics" in pairs or segments == ["dvclive", "metrics.json"]:
            return "plots"
        if "scalars" in segments[1:-1] or (segments[-1] == "scalars" and len(segments) > 1):
            found = "scalars"
    return found


@dataclass
class Stage:
    """A stage after templating: one ``foreach``/``matrix`` item is one Stage."""

    name: str
    dvcfile: str
    cmd: str | list[str]
    wdir: str = "."
    deps: list[str] = field(default_factory=list)
    outs: list[Out] = field(default_factory=list)
    # params file (as written, relative to wdir) -> keys the stage depends on,
    # explicit ones first, then those tracked through ${...}; [] = whole file.
    params: dict[str, list[str]] = field(default_factory=dict)
    # The subset of ``params`` known only through ${...}: DVC does not record
    # these in dvc.lock, so their absence from a lock is no change.
    tracked: dict[str, list[str]] = field(default_factory=dict)
    frozen: bool = False
    always_changed: bool = False
    desc: str | None = None
    live: LiveSpec | None = None

    def live_env(self) -> dict[str, str]:
        """The variables that tell the stage's logger where and how to write."""
        env = self.live.env() if self.live is not None else {}
        layout = live_layout(out.path for out in self.outs)
        if layout is not None:
            env["EXQ_LIVE_LAYOUT"] = layout
        return env

    def outs_of(self, kind: OutKind) -> list[Out]:
        return [out for out in self.outs if out.kind == kind]

    @property
    def has_checkpoints(self) -> bool:
        """True when an out is a checkpoint out: the stage signals checkpoints."""
        return any(out.checkpoint for out in self.outs)

    def kept_outs(self) -> list[Out]:
        """Outs that stay in place between runs: persist and checkpoint outs, and,
        in a checkpoint stage, the live logger's files (a resumed logger reads them)."""
        live = self.live.paths() if self.live is not None and self.has_checkpoints else set()
        return [out for out in self.outs if out.persist or out.checkpoint or out.path in live]

    @property
    def address(self) -> str:
        """``dvc.yaml:name`` for stages outside the root file, else ``name``."""
        if self.dvcfile == "dvc.yaml":
            return self.name
        return f"{self.dvcfile}:{self.name}"

    def description(self, max_length: int = 80) -> str:
        """What ``stage list`` says of the stage, as DVC words it.

        The first non-empty line of ``desc``; else its outputs (metrics and
        plots are "Reports"), or with no outputs its deps and params files.
        Cut to ``max_length`` characters, an ellipsis marking the cut.
        """
        first = next((line for line in (self.desc or "").splitlines() if line), "")
        text = first.strip()
        if not text:
            text = self._generated_description()
        return text if len(text) <= max_length else text[: max_length - 1] + "\u2026"

    def _generated_description(self) -> str:
        deps = [*self.deps, *self.params]
        if not self.outs:
            return f"Depends on {', '.join(deps)}" if deps else "No outputs or dependencies"
        parts = []
        outs = [out.path for out in self.outs_of("outs")]
        reports = [out.path for out in [*self.outs_of("metrics"), *self.outs_of("plots")]]
        if outs:
            parts.append(f"Outputs {', '.join(outs)}")
        if reports:
            parts.append(f"Reports {', '.join(reports)}")
        return "; ".join(parts)
