"""Shape check of a raw (not yet interpolated) ``dvc.yaml``, like DVC's schema.

DVC validates the file before templating, so a field that must be a bool
(``frozen``) cannot be written as ``${flag}``. Errors are ``DvcFileError``
reading ``<file>: <location>: <reason>``, e.g.
``dvc.yaml: stages.train: unknown key 'foo'``.
"""

from __future__ import annotations

from typing import Any

from exq.engine.errors import DvcFileError

TOP_LEVEL_KEYS = frozenset(
    {"stages", "vars", "plots", "metrics", "params", "artifacts", "datasets"}
)
STAGE_KEYS = frozenset(
    {
        "cmd",
        "wdir",
        "deps",
        "params",
        "vars",
        "frozen",
        "meta",
        "desc",
        "always_changed",
        "outs",
        "metrics",
        "plots",
        "live",
    }  # DVC 2.x live-metrics section: `live: {logs: {summary: true, html: true}}`
)
# Stage names address stages (`dvc.yaml:name`, `name@key`): these would break that.
FORBIDDEN_NAME_CHARS = ("@", ":", "/", "\\")

_OUT_OPTIONS: dict[str, type | tuple[type, ...] | None] = {
    "cache": bool,
    "persist": bool,
    "checkpoint": bool,
    "push": bool,
    "remote": str,
    "desc": str,
    "type": str,
    "labels": list,
    "meta": None,
}
_PLOT_OPTIONS: dict[str, type | tuple[type, ...] | None] = {
    **_OUT_OPTIONS,
    "template": str,
    "x": str,
    "y": str,
    "x_label": str,
    "y_label": str,
    "title": str,
    "header": bool,
}
# DVC 2.x's live props (its LIVE_PROPS on top of the plot props); `report` is
# the later name of `html`.
_LIVE_OPTIONS: dict[str, type | tuple[type, ...] | None] = {
    **_PLOT_OPTIONS,
    "summary": bool,
    "html": bool,
    "report": bool,
}
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "wdir": str,
    "frozen": bool,
    "always_changed": bool,
    "desc": str,
}


def _fail(dvcfile: str, location: str, reason: str) -> DvcFileError:
    return DvcFileError(f"{dvcfile}: {location}: {reason}" if location else f"{dvcfile}: {reason}")


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _expect(value: Any, kind: type | tuple[type, ...], dvcfile: str, location: str) -> None:
    # bool is an int in Python: never let `true` pass as a number or vice versa
    ok = isinstance(value, kind) and not (isinstance(value, bool) and bool not in _as_tuple(kind))
    if not ok:
        names = "/".join(k.__name__ for k in _as_tuple(kind))
        raise _fail(dvcfile, location, f"expected {names}, got {_type_name(value)}")


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def validate_dvcfile(data: Any, dvcfile: str) -> None:
    """Raise DvcFileError if the parsed ``dvc.yaml`` does not have DVC's shape."""
    if data is None:
        return
    if not isinstance(data, dict):
        raise _fail(dvcfile, "", f"expected a mapping at the top level, got {_type_name(data)}")
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise _fail(dvcfile, "", f"unknown top-level key '{key}'")
    if "vars" in data:
        _check_vars(data["vars"], dvcfile, "vars")
    stages = data.get("stages")
    if stages is None:
        return
    _expect(stages, dict, dvcfile, "stages")
    for name, definition in stages.items():
        check_stage_name(name, dvcfile)
        _check_definition(definition, dvcfile, f"stages.{name}")


def check_stage_name(name: Any, dvcfile: str) -> None:
    """A user-written stage name must be a non-empty string without @ : / \\."""
    if not isinstance(name, str) or not name:
        raise _fail(dvcfile, "stages", f"invalid stage name {name!r}: expected a non-empty string")
    for char in FORBIDDEN_NAME_CHARS:
        if char in name:
            raise _fail(dvcfile, "stages", f"invalid stage name '{name}': '{char}' is not allowed")


def _check_definition(definition: Any, dvcfile: str, location: str) -> None:
    _expect(definition, dict, dvcfile, location)
    if "foreach" in definition or "do" in definition:
        for key in definition:
            if key not in ("foreach", "do"):
                raise _fail(dvcfile, location, f"unknown key '{key}' beside foreach/do")
        for key in ("foreach", "do"):
            if key not in definition:
                raise _fail(dvcfile, location, f"missing required key '{key}'")
        _expect(definition["foreach"], (dict, list, str), dvcfile, f"{location}.foreach")
        _check_stage_body(definition["do"], dvcfile, f"{location}.do", allow_matrix=False)
        return
    _check_stage_body(definition, dvcfile, location, allow_matrix=True)


def _check_stage_body(body: Any, dvcfile: str, location: str, *, allow_matrix: bool) -> None:
    _expect(body, dict, dvcfile, location)
    for key in body:
        if key not in STAGE_KEYS and not (allow_matrix and key == "matrix"):
            raise _fail(dvcfile, location, f"unknown key '{key}'")
    if "cmd" not in body:
        raise _fail(dvcfile, location, "missing required key 'cmd'")
    _check_cmd(body["cmd"], dvcfile, f"{location}.cmd")
    if "matrix" in body:
        _check_matrix(body["matrix"], dvcfile, f"{location}.matrix")
    for key, kind in _FIELD_TYPES.items():
        if key in body:
            _expect(body[key], kind, dvcfile, f"{location}.{key}")
    if "deps" in body:
        _expect(body["deps"], list, dvcfile, f"{location}.deps")
        for idx, dep in enumerate(body["deps"]):
            _expect(dep, str, dvcfile, f"{location}.deps[{idx}]")
    if "params" in body:
        _expect(body["params"], list, dvcfile, f"{location}.params")
        for idx, entry in enumerate(body["params"]):
            _expect(entry, (str, dict), dvcfile, f"{location}.params[{idx}]")
    if "vars" in body:
        _check_vars(body["vars"], dvcfile, f"{location}.vars")
    for section in ("outs", "metrics", "plots"):
        if section in body:
            _check_outs(body[section], section, dvcfile, f"{location}.{section}")
    if "live" in body:
        _check_live(body["live"], dvcfile, f"{location}.live")


def _check_cmd(cmd: Any, dvcfile: str, location: str) -> None:
    _expect(cmd, (str, list), dvcfile, location)
    if isinstance(cmd, list):
        for idx, part in enumerate(cmd):
            _expect(part, (str, int, float, bool), dvcfile, f"{location}[{idx}]")


def _check_matrix(matrix: Any, dvcfile: str, location: str) -> None:
    _expect(matrix, dict, dvcfile, location)
    if not matrix:
        raise _fail(dvcfile, location, "expected at least one axis")
    for axis, values in matrix.items():
        _expect(axis, str, dvcfile, location)
        _expect(values, (str, list), dvcfile, f"{location}.{axis}")


def _check_vars(vars_: Any, dvcfile: str, location: str) -> None:
    _expect(vars_, list, dvcfile, location)
    for idx, item in enumerate(vars_):
        _expect(item, (str, dict), dvcfile, f"{location}[{idx}]")


def _check_outs(entries: Any, kind: str, dvcfile: str, location: str) -> None:
    _expect(entries, list, dvcfile, location)
    options = _PLOT_OPTIONS if kind == "plots" else _OUT_OPTIONS
    for idx, entry in enumerate(entries):
        where = f"{location}[{idx}]"
        _expect(entry, (str, dict), dvcfile, where)
        if isinstance(entry, str):
            continue
        for path, props in entry.items():
            _expect(path, str, dvcfile, where)
            if kind == "plots" and isinstance(props, list):
                for item in props:
                    _check_options(item, options, dvcfile, f"{where}.{path}")
            else:
                _check_options(props, options, dvcfile, f"{where}.{path}")


def _check_options(props: Any, options: dict[str, Any], dvcfile: str, location: str) -> None:
    _expect(props, dict, dvcfile, location)
    for key, value in props.items():
        if key not in options:
            raise _fail(dvcfile, location, f"unknown key '{key}'")
        kind = options[key]
        if kind is not None:
            _expect(value, kind, dvcfile, f"{location}.{key}")


def _check_live(section: Any, dvcfile: str, location: str) -> None:
    _expect(section, dict, dvcfile, location)
    if len(section) != 1:
        raise _fail(dvcfile, location, "expected exactly one logger folder")
    for path, props in section.items():
        _expect(path, str, dvcfile, location)
        if props is not None:
            _check_options(props, _LIVE_OPTIONS, dvcfile, f"{location}.{path}")
