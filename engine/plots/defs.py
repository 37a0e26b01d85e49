"""Which files a revision's plots are, and how their authors asked to draw them: pure.

A ``PlotDef`` is one file (or folder) of one plot: a stage's ``plots`` out,
or an entry of a ``dvc.yaml``'s top-level ``plots:`` list. A top-level plot
with a name and ``y`` mapping files to columns (``- ROC: {x: fpr, y: {a.json:
tpr, b.json: tpr}}``) is one chart drawn from several files: its defs share
the ``plot_id``. A def also says where a revision's ``dvc.lock`` records the
stage out holding the file, so a cached file is found in the cache.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

# DVC's built-in templates; ``linear`` is the default.
TEMPLATES = (
    "linear",
    "simple",
    "scatter",
    "smooth",
    "confusion",
    "confusion_normalized",
    "bar_horizontal",
    "bar_horizontal_sorted",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg")


def is_image(path: str) -> bool:
    """True for the image files DVC shows as they are (png, jpg/jpeg, svg)."""
    return path.lower().endswith(IMAGE_SUFFIXES)


@dataclass(frozen=True)
class PlotDef:
    """A plots entry: a repo-relative file or folder, with the drawing options it asks for.

    ``cached``, ``dvcfile``, ``stage`` and ``out`` (the path as the lock
    writes it) say where a revision's ``dvc.lock`` records the stage's out
    holding the file, so a cached one is found in the cache; ``out_path`` is
    that whole out, repo-relative (``path`` may be a file inside it).
    ``plot_id`` names the chart of a top-level plot with several files; else
    every file is a chart (or, without options, a chart per column) of its own.
    """

    path: str
    x: str | None = None
    y: tuple[str, ...] | None = None
    cached: bool = False
    dvcfile: str = ""
    stage: str = ""
    out: str = ""
    out_path: str = ""
    plot_id: str = ""
    template: str | None = None
    title: str | None = None
    x_label: str | None = None
    y_label: str | None = None

    @property
    def id(self) -> str:
        """The chart this def belongs to: the top-level plot's name, else the path."""
        return self.plot_id or self.path

    @property
    def styled(self) -> bool:
        """True when the author shaped the chart (columns, template, title or a shared name):
        one chart as asked. Else each numeric column is drawn on a chart of its own."""
        return bool(
            self.plot_id or self.y is not None or self.template or self.title or self.y_label
        )


def _options(props: dict[str, Any]) -> dict[str, Any]:
    """The drawing options of an entry's props (``y`` as a tuple of columns)."""
    return {
        "x": _field(props.get("x")),
        "y": _fields(props.get("y")),
        "template": _field(props.get("template")),
        "title": _field(props.get("title")),
        "x_label": _field(props.get("x_label")),
        "y_label": _field(props.get("y_label")),
    }


def stage_plot_def(path: str, props: dict[str, Any], **where: Any) -> PlotDef:
    """The def of a stage's ``plots`` out (repo-relative ``path``) with its options."""
    return PlotDef(path, **{**_options(props), **where})


def top_level_plot_defs(dvcfile: str, entries: Any) -> list[PlotDef]:
    """The defs of a ``dvc.yaml``'s top-level ``plots:`` list (DVC 3's format).

    Entries are paths (``- logs``), paths with options (``- logs: {x: step}``),
    or named plots whose ``y`` maps files to columns (``- loss: {y: {a.csv:
    loss}}``), whose ``x`` may map files too. Paths are relative to the
    ``dvc.yaml`` folder.
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
            if not isinstance(y, dict):
                defs.append(PlotDef(_join(folder, str(name)), dvcfile=dvcfile, **_options(props)))
                continue
            for file, columns in y.items():
                x = props.get("x")
                options = _options({**props, "x": x.get(file) if isinstance(x, dict) else x})
                options["y"] = _fields(columns)
                defs.append(
                    PlotDef(_join(folder, str(file)), dvcfile=dvcfile, plot_id=str(name), **options)
                )
    return defs


def _field(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _fields(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return None


def _join(folder: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(folder, path))


def merge_defs(defs: Iterable[PlotDef]) -> list[PlotDef]:
    """One def per chart and path: a stage's out keeps its cache facts, a top-level
    entry of the same path adds its options."""
    merged: dict[tuple[str, str], PlotDef] = {}
    for new in defs:
        key = (new.plot_id, new.path)
        old = merged.get(key)
        if old is None:
            merged[key] = new
            continue
        base, extra = (old, new) if old.stage else (new, old)
        merged[key] = replace(
            base,
            x=base.x or extra.x,
            y=base.y or extra.y,
            template=base.template or extra.template,
            title=base.title or extra.title,
            x_label=base.x_label or extra.x_label,
            y_label=base.y_label or extra.y_label,
        )
    return list(merged.values())


def attach_outs(defs: Sequence[PlotDef], outs: Sequence[PlotDef]) -> list[PlotDef]:
    """Defs with no stage of their own take the cache facts of the stage out holding them.

    ``outs`` are every stage out (plots or not, as defs): a top-level plot's
    file inside a cached ``eval`` folder is read from the cache through it.
    """
    result = []
    for d in defs:
        owner = None if d.stage else next((o for o in outs if _inside_or_is(d.path, o.path)), None)
        if owner is not None:
            d = replace(
                d,
                cached=owner.cached,
                dvcfile=owner.dvcfile,
                stage=owner.stage,
                out=owner.out,
                out_path=owner.out_path or owner.path,
            )
        result.append(d)
    return result


def select_defs(defs: Sequence[PlotDef], targets: Sequence[str] | None) -> list[PlotDef]:
    """The defs that ``targets`` (repo-relative files or folders, or plot names) name.

    A target that is a def's path or chart name, or a folder holding defs,
    keeps them; a file inside a plots folder narrows that def to the file; a
    target no def names becomes a def of its own (any file can be plotted, as
    with DVC).
    """
    if not targets:
        return list(defs)
    chosen: list[PlotDef] = []
    for target in (_norm(t) for t in targets):
        matched = [
            d for d in defs if d.path == target or d.plot_id == target or _inside(d.path, target)
        ]
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


def _inside_or_is(path: str, folder: str) -> bool:
    return path == folder or _inside(path, folder)


def target_found(target: str, paths: Iterable[str], ids: Iterable[str] = ()) -> bool:
    """True when a revision holds the target file, a file inside the target folder,
    or a plot of that name."""
    norm = _norm(target)
    return norm in set(ids) or any(path == norm or _inside(path, norm) for path in paths)
