"""Resolve a ``dvc.yaml`` into Stages as DVC 3 templates it (deviations noted).

Pure resolution: every file (``params.yaml``, vars files) is read through a
``FileSource``, so the same code resolves the working tree or a commit.

* ``params.yaml`` beside the ``dvc.yaml`` is loaded into the variables when
  present; then the top-level ``vars`` entries in order: inline mappings, or
  files (``file.yaml``, ``file.json``, ``file.toml``, ``file.py``,
  ``file.yaml:key1,key2``) relative to the ``dvc.yaml`` folder.
* A stage's own ``vars`` load files relative to its ``wdir`` and are seen by
  that stage only. Redefining a variable, interpolating inside ``vars``, or
  loading a partially loaded file again are errors.
* ``foreach`` (list, mapping, or ``${var}``) with ``do``, and ``matrix``
  generate ``name@key`` stages; ``${item}`` (and ``${key}`` for mappings and
  matrices) are available to them.
* Values used through ``${...}`` that come from params/vars *files* are
  added to ``Stage.params`` after the explicit ``params`` (DVC itself only
  reports them in ``dvc params``; pass ``track_vars=False`` to leave them out).

Errors are ``TemplateError(dvcfile, location, reason)`` with locations such as
``vars``, ``stages.build@us.cmd``, ``stages.train.foreach``.
"""

from __future__ import annotations

import itertools
import posixpath
from typing import Any

from exq.engine.errors import DvcFileError, ParamsError, TemplateError
from exq.engine.spec.interpolation import (
    DEFAULT_OPTIONS,
    Context,
    InterpolationError,
    Node,
    ParsingOptions,
    Resolver,
    Tracker,
    contains_interpolation,
    make_node,
    name_fragment,
    to_str,
    unpack_dict,
)
from exq.engine.spec.paramfiles import CachingSource, FileSource, parse_params, parse_yaml
from exq.engine.spec.schema import validate_dvcfile
from exq.engine.spec.stage import LiveSpec, Out, OutKind, Stage

__all__ = ["DEFAULT_PARAMS_FILE", "ParsingOptions", "load_dvcfile", "resolve_dvcfile"]

DEFAULT_PARAMS_FILE = "params.yaml"
JOIN = "@"
_OUT_KINDS: tuple[OutKind, ...] = ("outs", "metrics", "plots")


def load_dvcfile(
    source: FileSource,
    dvcfile: str,
    *,
    track_vars: bool = True,
    options: ParsingOptions | None = None,
) -> list[Stage]:
    """Read, parse and resolve the ``dvc.yaml`` at repo-relative ``dvcfile``."""
    raw = source.read_bytes(dvcfile)
    if raw is None:
        raise DvcFileError(f"{dvcfile}: file not found")
    data = parse_yaml(raw, dvcfile, error_cls=DvcFileError)
    return resolve_dvcfile(
        data, dvcfile=dvcfile, source=source, track_vars=track_vars, options=options
    )


def resolve_dvcfile(
    data: Any,
    *,
    dvcfile: str,
    source: FileSource,
    track_vars: bool = True,
    options: ParsingOptions | None = None,
) -> list[Stage]:
    """Resolve parsed ``dvc.yaml`` data into Stages, in file order.

    ``foreach``/``matrix`` items are expanded in order. Raises DvcFileError
    for a malformed file and TemplateError when templating fails.
    """
    validate_dvcfile(data, dvcfile)
    resolver = _DvcfileResolver(dvcfile, CachingSource(source), options or DEFAULT_OPTIONS)
    return resolver.resolve(data or {}, track_vars=track_vars)


class _DvcfileResolver:
    def __init__(self, dvcfile: str, source: FileSource, options: ParsingOptions) -> None:
        self.dvcfile = dvcfile
        self.folder = posixpath.dirname(dvcfile)
        self.source = source
        self.options = options
        self._parsed: dict[str, dict[str, Any]] = {}

    def _error(self, location: str, exc: Exception | str) -> TemplateError:
        return TemplateError(self.dvcfile, location, str(exc))

    def resolve(self, data: dict[str, Any], *, track_vars: bool) -> list[Stage]:
        context = self._top_context(data.get("vars") or [])
        stages: list[Stage] = []
        for name, definition in (data.get("stages") or {}).items():
            for stage_name, template, ctx in self._expand(name, definition, context):
                stages.append(self._stage(stage_name, template, ctx, track_vars))
        return stages

    # -- variables ---------------------------------------------------------

    def _top_context(self, vars_: list[Any]) -> Context:
        if contains_interpolation(vars_):
            raise self._error("vars", "interpolating is not allowed")
        context = Context()
        try:
            default = self._repo_path(self.folder, DEFAULT_PARAMS_FILE)
            if self.source.read_bytes(default) is not None:
                self._merge_file(context, DEFAULT_PARAMS_FILE, self.folder)
            self._load_vars(context, vars_, self.folder, owner="")
        except (InterpolationError, ParamsError) as exc:
            raise self._error("vars", exc) from exc
        return context

    def _load_vars(self, ctx: Context, vars_: list[Any], base: str, *, owner: str) -> None:
        for idx, item in enumerate(vars_):
            if isinstance(item, str):
                self._merge_file(ctx, item, base)
            else:
                label = f"{owner}.vars[{idx}]" if owner else f"vars[{idx}]"
                ctx.merge(make_node(item, source=label))

    def _merge_file(self, ctx: Context, item: str, base: str) -> None:
        """Load ``file`` or ``file:k1,k2`` into ``ctx``, as DVC's vars do."""
        name, _, keys_text = item.partition(":")
        path = self._repo_path(base, name)
        keys = [key for key in keys_text.split(",") if key] or None
        previous: list[str] = []
        if path in ctx.imports:
            loaded = ctx.imports[path]
            if loaded is None:
                if keys is None:
                    return  # the same whole file twice is allowed
                raise InterpolationError(f"cannot partially load '{item}' as it's already loaded.")
            if keys is None or set(keys) & set(loaded):
                raise InterpolationError(f"cannot load '{item}' as it's partially loaded already")
            previous = loaded
        data = self._read(path)
        if keys is not None:
            for key in keys:
                if key not in data:
                    raise InterpolationError(f"could not find '{key}' in '{path}'")
            data = {key: data[key] for key in keys}
        ctx.merge(make_node(data, source=path, tracked=True), origin=item)
        if keys is None:
            ctx.imports[path] = None
        else:
            ctx.imports[path] = [*previous, *keys]

    def _read(self, path: str) -> dict[str, Any]:
        if path not in self._parsed:
            raw = self.source.read_bytes(path)
            if raw is None:
                raise InterpolationError(f"'{path}' does not exist")
            self._parsed[path] = parse_params(path, raw)
        return self._parsed[path]

    def _repo_path(self, base: str, relative: str) -> str:
        path = posixpath.normpath(posixpath.join(base, relative))
        if posixpath.isabs(path) or path == ".." or path.startswith("../"):
            raise InterpolationError(f"'{relative}' is outside the repository")
        return "" if path == "." else path

    # -- foreach / matrix ----------------------------------------------------

    def _expand(
        self, name: str, definition: dict[str, Any], context: Context
    ) -> list[tuple[str, dict[str, Any], Context]]:
        if "foreach" in definition:
            items = self._foreach_items(name, definition["foreach"], context)
            template = definition["do"]
            where = f"stages.{name}.foreach"
        elif "matrix" in definition:
            items = self._matrix_items(name, definition["matrix"], context)
            template = {k: v for k, v in definition.items() if k != "matrix"}
            where = f"stages.{name}.matrix"
        else:
            return [(name, definition, context)]
        expanded: list[tuple[str, dict[str, Any], Context]] = []
        seen: set[str] = set()
        for key, extra in items:
            if key in seen:
                reason = f"'{key}' occurs twice: stage '{name}{JOIN}{key}' would be defined twice"
                raise self._error(where, reason)
            seen.add(key)
            nodes = {var: make_node(value) for var, value in extra.items()}
            expanded.append((f"{name}{JOIN}{key}", template, context.child(nodes, reserve=True)))
        return expanded

    def _foreach_items(
        self, name: str, data: Any, ctx: Context
    ) -> list[tuple[str, dict[str, Any]]]:
        try:
            resolved = Resolver(ctx, options=self.options).resolve(data, keep_nodes=True)
        except InterpolationError as exc:
            raise self._error(f"stages.{name}.foreach", exc) from exc
        container = resolved.value if isinstance(resolved, Node) else resolved
        if isinstance(container, dict):
            return [
                (to_str(key), {"item": value, "key": to_str(key)})
                for key, value in container.items()
            ]
        if isinstance(container, list):
            if any(_is_container(value) for value in container):
                return [(str(idx), {"item": value}) for idx, value in enumerate(container)]
            return [(name_fragment(value), {"item": value}) for value in container]
        kind = type(container).__name__
        raise self._error(f"stages.{name}.foreach", f"expected list/dictionary, got {kind}")

    def _matrix_items(self, name: str, data: Any, ctx: Context) -> list[tuple[str, dict[str, Any]]]:
        where = f"stages.{name}.matrix"
        try:
            resolved = Resolver(ctx, options=self.options).resolve(data, keep_nodes=True)
        except InterpolationError as exc:
            raise self._error(where, exc) from exc
        axes: dict[str, list[Any]] = {}
        for axis, values in resolved.items():
            values = values.value if isinstance(values, Node) else values
            if not isinstance(values, list):
                kind = type(values).__name__
                raise self._error(where, f"expected a list for '{axis}', got {kind}")
            axes[str(axis)] = values
        items: list[tuple[str, dict[str, Any]]] = []
        for combination in itertools.product(*(list(enumerate(v)) for v in axes.values())):
            item = dict(zip(axes, (value for _, value in combination), strict=True))
            fragments = [
                f"{axis}{idx}" if _is_container(value) else name_fragment(value)
                for axis, (idx, value) in zip(axes, combination, strict=True)
            ]
            key = "-".join(fragments)
            items.append((key, {"item": item, "key": key}))
        return items

    # -- one stage -----------------------------------------------------------

    def _stage(self, name: str, template: dict[str, Any], ctx: Context, track_vars: bool) -> Stage:
        location = f"stages.{name}"
        body = dict(template)
        stage_dir = self._stage_dir(location, body.get("wdir"), ctx)
        vars_ = body.pop("vars", None) or []
        if vars_:
            if contains_interpolation(vars_):
                raise self._error(f"{location}.vars", "interpolating is not allowed")
            ctx = ctx.child()
            try:
                self._load_vars(ctx, vars_, stage_dir, owner=name)
            except (InterpolationError, ParamsError) as exc:
                raise self._error(f"{location}.vars", exc) from exc
        tracker = Tracker()
        resolver = Resolver(ctx, tracker, self.options)
        resolved: dict[str, Any] = {}
        for key, value in body.items():
            try:
                resolved[key] = resolver.resolve(value, field=key)
            except InterpolationError as exc:
                raise self._error(f"{location}.{key}", exc) from exc
        builder = _StageBuilder(self.dvcfile, name, stage_dir or ".", self.options)
        stage = builder.build(resolved)
        if track_vars:
            _add_tracked(stage, tracker, stage_dir or ".")
        return stage

    def _stage_dir(self, location: str, wdir: Any, ctx: Context) -> str:
        """Repo-relative wdir ('' for the root), resolved before stage vars load."""
        if not wdir:
            return self.folder
        try:
            value = Resolver(ctx, options=self.options).resolve_str(wdir, field="wdir")
            return self._repo_path(self.folder, to_str(value))
        except InterpolationError as exc:
            raise self._error(f"{location}.wdir", exc) from exc


def _is_container(value: Any) -> bool:
    if isinstance(value, Node):
        return value.is_container
    return isinstance(value, (dict, list))


def _relpath(path: str, start: str) -> str:
    """``posixpath.relpath`` for repo-relative paths, without touching the cwd."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    base = [p for p in start.split("/") if p not in ("", ".")]
    common = 0
    while common < min(len(parts), len(base)) and parts[common] == base[common]:
        common += 1
    rel = [".."] * (len(base) - common) + parts[common:]
    return "/".join(rel) or "."


def _add_tracked(stage: Stage, tracker: Tracker, stage_dir: str) -> None:
    """Append values used via ``${...}`` to params, relative to the wdir."""
    for source, used in tracker.used.items():
        path = _relpath(source, stage_dir)
        keys = stage.params.get(path)
        if keys == []:  # the whole file is a dependency already
            continue
        keys = stage.params.setdefault(path, [])
        new = [key for key in used if key not in keys]
        keys.extend(new)
        if new:
            stage.tracked.setdefault(path, []).extend(new)


class _StageBuilder:
    """Turns one resolved stage mapping into a ``Stage``."""

    def __init__(self, dvcfile: str, name: str, wdir: str, options: ParsingOptions) -> None:
        self.dvcfile = dvcfile
        self.name = name
        self.wdir = wdir
        self.options = options

    def _error(self, field: str, reason: str) -> TemplateError:
        return TemplateError(self.dvcfile, f"stages.{self.name}.{field}", reason)

    def build(self, data: dict[str, Any]) -> Stage:
        outs = [out for kind in _OUT_KINDS for out in self._outs(data.get(kind) or [], kind)]
        live = self._live(data.get("live"))
        if live is not None:
            outs.extend(self._live_outs(live, outs))
        desc = data.get("desc")
        return Stage(
            name=self.name,
            dvcfile=self.dvcfile,
            cmd=self._cmd(data["cmd"]),
            wdir=self.wdir,
            deps=[self._path(dep, "deps") for dep in data.get("deps") or []],
            outs=outs,
            params=self._params(data.get("params") or []),
            frozen=bool(data.get("frozen", False)),
            always_changed=bool(data.get("always_changed", False)),
            desc=None if desc is None else to_str(desc),
            live=live,
        )

    def _cmd(self, cmd: Any) -> str | list[str]:
        # A dict as the whole cmd (or a whole list item) is unpacked into
        # flags too; DVC would keep the raw dict there, which cannot run.
        def one(part: Any) -> str:
            if isinstance(part, dict):
                return unpack_dict(part, self.options)
            return to_str(part, self.options)

        if isinstance(cmd, list):
            return [one(part) for part in cmd]
        return one(cmd)

    def _path(self, value: Any, field: str) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)):  # bool included: renders true/false
            return to_str(value)
        kind = "null" if value is None else type(value).__name__
        raise self._error(field, f"expected a path, got {kind}")

    def _outs(self, entries: list[Any], kind: OutKind) -> list[Out]:
        outs: list[Out] = []
        for entry in entries:
            if not isinstance(entry, dict):
                outs.append(Out(self._path(entry, kind), kind))
                continue
            for path, props in entry.items():
                merged: dict[str, Any] = {}
                for part in props if isinstance(props, list) else [props or {}]:
                    merged.update(part)
                outs.append(
                    Out(
                        self._path(path, kind),
                        kind,
                        cache=bool(merged.get("cache", True)),
                        persist=bool(merged.get("persist", False)),
                        checkpoint=bool(merged.get("checkpoint", False)),
                        plot=_plot_props(merged) if kind == "plots" else (),
                    )
                )
        return outs

    def _live(self, section: Any) -> LiveSpec | None:
        """DVC 2's ``live: {<folder>: {summary, html (or report), cache}}``."""
        if section is None:
            return None
        if not isinstance(section, dict) or len(section) != 1:
            raise self._error("live", "expected one logger folder: live: {logs: {summary: true}}")
        ((raw_path, props),) = section.items()
        path = self._path(raw_path, "live").rstrip("/")
        props = props or {}
        if not isinstance(props, dict):
            raise self._error(f"live.{path}", f"expected a mapping, got {type(props).__name__}")
        html = props.get("html", props.get("report", True))
        return LiveSpec(
            path=path,
            summary=bool(props.get("summary", True)),
            html=bool(html),
            cache=bool(props.get("cache", True)),
        )

    def _live_outs(self, live: LiveSpec, outs: list[Out]) -> list[Out]:
        """The logger's folder, drawn as plots: DVC 2's one output of a live section."""
        if live.path in {out.path for out in outs}:
            raise self._error("live", f"'{live.path}' is an output of the stage already")
        return [Out(live.path, "plots", cache=live.cache)]

    def _params(self, entries: list[Any]) -> dict[str, list[str]]:
        """DVC's params merge: strings are keys of params.yaml; {file: } = whole."""
        whole = {
            self._path(path, "params")
            for entry in entries
            if isinstance(entry, dict)
            for path, keys in entry.items()
            if not keys
        }
        params: dict[str, list[str]] = {}
        for entry in entries:
            if not isinstance(entry, dict):
                if DEFAULT_PARAMS_FILE not in whole:
                    _add_keys(params, DEFAULT_PARAMS_FILE, [self._path(entry, "params")])
                continue
            for raw_path, keys in entry.items():
                path = self._path(raw_path, "params")
                if path in whole:
                    params[path] = []
                elif not isinstance(keys, list):
                    kind = type(keys).__name__
                    raise self._error("params", f"expected a list of keys for '{path}', got {kind}")
                else:
                    _add_keys(params, path, [self._path(key, "params") for key in keys])
        return params


def _add_keys(params: dict[str, list[str]], path: str, keys: list[str]) -> None:
    current = params.setdefault(path, [])
    current.extend(key for key in keys if key not in current)


PLOT_PROPS = ("x", "y", "template", "title", "x_label", "y_label")


def _plot_props(props: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A plots out's drawing options, hashable (a ``y`` list becomes a tuple)."""
    return tuple(
        (key, tuple(value) if isinstance(value, list) else value)
        for key, value in props.items()
        if key in PLOT_PROPS and value is not None
    )
