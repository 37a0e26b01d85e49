"""``-S/--set-param`` edits of params files, keeping the rest of each file byte for byte.

Two steps, as ``dvc exp run -S`` has them:

* :func:`parse_set_param` turns ``[file:][+|++|~]key[=value]`` into a
  :class:`ParamEdit`; pure, no files. The grammar is Hydra's override grammar
  as DVC uses it: ``key=v`` changes an existing key, ``+key=v`` adds a new one,
  ``++key=v`` adds or changes, ``~key`` deletes and ``~key=v`` deletes only if
  the current value is ``v``. Keys are dotted, list items are numbers
  (``train.layers.0=64``). Values are YAML flow text read with Hydra's types:
  ``key=`` is the empty string, ``1e-3`` is a float, ``yes``/``on`` and dates
  stay strings.
* :func:`plan_changes` checks every edit against the files (they exist and
  parse, the keys exist or do not, as the operation needs) and computes the new
  bytes of each file without writing anything; :func:`apply_edits` then writes
  each file atomically. A bad ``-S`` fails before any file changes.

Each edit splices only the text of the value it changes (YAML, JSON, Python) or
goes through tomlkit (TOML), and the result is read back and compared with the
expected data, so a file is never written with content that means something
else than asked.

Modules: ``values`` (the value grammar, sweeps), ``spans``
(shared span tree and splicing), one editor per format (``yaml_edit``,
``json_edit``, ``toml_edit``, ``py_edit``), each offering
``load(text, file)`` and ``edit(text, file, StructOp)``.
"""

from __future__ import annotations

import copy
import importlib
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any, Literal

from exq.engine.confine import check_inside
from exq.engine.errors import ParamsError
from exq.engine.params.spans import StructOp
from exq.engine.params.values import bad_override as _bad
from exq.engine.params.values import expand_sweeps, parse_value

__all__ = [
    "EditPlan",
    "ParamChange",
    "ParamEdit",
    "apply_edits",
    "edit_params_text",
    "expand_sweeps",
    "parse_set_param",
    "parse_set_params",
    "plan_changes",
    "plan_edits",
    "write_plan",
]

Op = Literal["set", "add", "force", "delete"]

SUFFIXES = (".yaml", ".yml", ".json", ".toml", ".py")
# Editor modules, imported when a file of their kind is edited (tomlkit, for
# one, is not worth loading for a YAML edit).
_FORMATS = {
    ".yaml": "yaml_edit",
    ".yml": "yaml_edit",
    ".json": "json_edit",
    ".toml": "toml_edit",
    ".py": "py_edit",
}


def _editor(file: str) -> ModuleType | None:
    name = _FORMATS.get(PurePosixPath(file).suffix.lower())
    return None if name is None else importlib.import_module(f"exq.engine.params.{name}")


_SEGMENT = re.compile(r"[\w$-]+")


@dataclass(frozen=True)
class ParamEdit:
    """One parsed ``-S`` override. ``value`` is unused for a bare ``~key``."""

    file: str
    op: Op
    key_path: tuple[str | int, ...]
    value: Any = None
    has_value: bool = True
    text: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        """The dotted key as written, e.g. ``train.layers.0``."""
        return ".".join(str(seg) for seg in self.key_path)


@dataclass(frozen=True)
class ParamChange:
    """What one edit did to one key, for callers to print."""

    file: str
    key: str
    action: Literal["modified", "added", "deleted"]
    old: Any = None
    new: Any = None

    def __str__(self) -> str:
        if self.action == "added":
            return f"{self.file}: +{self.key} = {self.new!r}"
        if self.action == "deleted":
            return f"{self.file}: -{self.key} (was {self.old!r})"
        return f"{self.file}: {self.key} {self.old!r} -> {self.new!r}"


@dataclass
class EditPlan:
    """New content per file (``root / file``) and the changes; nothing written yet."""

    files: dict[Path, bytes]
    changes: list[ParamChange]
    originals: dict[Path, bytes] = field(default_factory=dict)

    def changed_files(self) -> list[Path]:
        """The files whose bytes differ from what is on disk now."""
        return [p for p, data in self.files.items() if self.originals.get(p) != data]


# --------------------------------------------------------------------------- parsing


def parse_set_param(text: str, default_file: str = "params.yaml") -> ParamEdit:
    """Parse one ``-S`` argument: ``[file:][+|++|~]key[=value]``.

    Raises ParamsError naming the text and why ("expected key=value",
    "bad key", "bad value") when it is malformed.
    """
    head, eq, raw_value = text.partition("=")
    file, colon, override = head.partition(":")
    if not colon:
        file, override = default_file, head
    elif not file:
        raise _bad(text, "bad key", "the file name before ':' is empty")
    if file[:1] in "+~" and colon:
        raise _bad(
            text, "bad key", f"put the prefix after the file: '{file.lstrip('+~')}:{file[:1]}...'"
        )
    _check_file(text, file)
    file = str(PurePosixPath(file.replace("\\", "/")))  # "./params.yaml" is "params.yaml"
    op, key = _split_prefix(override)
    key_path = _parse_key(text, key)
    if not eq:
        if op != "delete":
            raise _bad(text, "expected key=value")
        return ParamEdit(file, op, key_path, None, has_value=False, text=text)
    return ParamEdit(file, op, key_path, parse_value(raw_value, text), text=text)


def parse_set_params(texts: Iterable[str], default_file: str = "params.yaml") -> list[ParamEdit]:
    """Parse several ``-S`` arguments in order."""
    return [parse_set_param(t, default_file) for t in texts]


def _split_prefix(override: str) -> tuple[Op, str]:
    if override.startswith("++"):
        return "force", override[2:]
    if override.startswith("+"):
        return "add", override[1:]
    if override.startswith("~"):
        return "delete", override[1:]
    return "set", override


def _check_file(text: str, file: str) -> None:
    pure = PurePosixPath(file.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts:
        raise _bad(text, "bad key", f"params file '{file}' must be inside the repository")
    if pure.suffix.lower() not in SUFFIXES:
        raise _bad(text, "bad key", f"'{file}' is not a params file ({', '.join(SUFFIXES)})")


def _parse_key(text: str, key: str) -> tuple[str | int, ...]:
    if not key:
        raise _bad(text, "bad key", "the key is empty")
    segments: list[str | int] = []
    for seg in key.split("."):
        if not _SEGMENT.fullmatch(seg):
            raise _bad(text, "bad key", f"'{key}' is not a dotted key")
        segments.append(int(seg) if seg.isdigit() else seg)
    return tuple(segments)


# --------------------------------------------------------------------------- semantics


def _resolve(data: Any, edit: ParamEdit) -> tuple[StructOp, ParamChange]:
    """Check ``edit`` against ``data``, change ``data`` in place, say what to splice."""
    node: Any = data
    real: list[Any] = []
    for depth, seg in enumerate(edit.key_path):
        last = depth == len(edit.key_path) - 1
        where = ".".join(str(s) for s in edit.key_path[:depth]) or "the top level"
        found, key = _child(node, seg, where, edit)
        if not found:
            return _missing(node, key, tuple(real), depth, edit)
        if last:
            return _existing(node, key, tuple(real), edit)
        real.append(key)
        node = node[key]
    raise AssertionError("unreachable: key paths are never empty")


def _child(node: Any, seg: str | int, where: str, edit: ParamEdit) -> tuple[bool, Any]:
    if isinstance(node, dict):
        for key in reversed(list(node)):
            if str(key) == str(seg):
                return True, key
        return False, str(seg)
    if isinstance(node, list):
        if not isinstance(seg, int):
            raise _edit_error(edit, f"'{where}' is a list; '{seg}' is not an index")
        if seg >= len(node):
            raise _edit_error(
                edit, f"index {seg} is out of range for '{where}' ({len(node)} items)"
            )
        return True, seg
    raise _edit_error(edit, f"'{where}' is {node!r}, not a mapping or list")


def _missing(
    node: Any, key: str, parent: tuple[Any, ...], depth: int, edit: ParamEdit
) -> tuple[StructOp, ParamChange]:
    if edit.op not in ("add", "force"):
        hint = " (use '+key=value' to add it)" if edit.op == "set" else ""
        raise _edit_error(edit, f"key '{edit.key}' not found{hint}")
    rest = edit.key_path[depth + 1 :]
    if any(isinstance(seg, int) for seg in rest):
        raise _edit_error(edit, f"cannot create list items under missing key '{edit.key}'")
    value: Any = copy.deepcopy(edit.value)
    for seg in reversed(rest):
        value = {str(seg): value}
    node[key] = copy.deepcopy(value)
    change = ParamChange(edit.file, edit.key, "added", None, edit.value)
    return StructOp("insert", (*parent, key), value), change


def _existing(
    node: Any, key: Any, parent: tuple[Any, ...], edit: ParamEdit
) -> tuple[StructOp, ParamChange]:
    old = node[key]
    path = (*parent, key)
    if edit.op == "add":
        raise _edit_error(
            edit, f"key '{edit.key}' already exists (use '{edit.key}=...' or '++{edit.key}=...')"
        )
    if edit.op == "delete":
        if edit.has_value and not (old == edit.value or _same_data(old, edit.value)):
            raise _edit_error(edit, f"'{edit.key}' is {old!r}, not {edit.value!r}; not deleted")
        del node[key]
        return StructOp("remove", path), ParamChange(edit.file, edit.key, "deleted", old, None)
    node[key] = copy.deepcopy(edit.value)
    return StructOp("replace", path, edit.value), ParamChange(
        edit.file, edit.key, "modified", old, edit.value
    )


def _edit_error(edit: ParamEdit, why: str) -> ParamsError:
    return ParamsError(f"{edit.file}: -S '{edit.text or edit.key}': {why}")


def _same_data(a: Any, b: Any) -> bool:
    """Deep, typed equality (1 != 1.0 != True), NaN equal to NaN, key order ignored."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_data(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_data(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


# --------------------------------------------------------------------------- files


def edit_params_text(
    text: str, file: str, edits: Sequence[ParamEdit]
) -> tuple[str, list[ParamChange]]:
    """Apply ``edits`` (all for ``file``) to its content; pure, no I/O.

    The new text is read back and must mean exactly the expected data, or
    ParamsError is raised.
    """
    fmt = _editor(file)
    if fmt is None:
        raise ParamsError(f"{file}: not a params file ({', '.join(SUFFIXES)})")
    data = fmt.load(text, file)
    changes: list[ParamChange] = []
    for edit in edits:
        op, change = _resolve(data, edit)
        text = fmt.edit(text, file, op)
        changes.append(change)
    result = fmt.load(text, file)
    if not _same_data(result, data):
        applied = ", ".join(repr(e.text or e.key) for e in edits)
        raise ParamsError(
            f"{file}: cannot apply {applied} in place: the edited file would not read back "
            "as intended (YAML anchors or merge keys, or an unusual layout)"
        )
    return text, changes


def plan_changes(root: Path, edits: Sequence[ParamEdit]) -> EditPlan:
    """Validate all edits and compute every file's new bytes; writes nothing."""
    by_file: dict[str, list[ParamEdit]] = {}
    for edit in edits:
        by_file.setdefault(os.path.normpath(edit.file), []).append(edit)
    plan = EditPlan({}, [])
    for file, file_edits in by_file.items():
        path = Path(root) / file
        check_inside(root, file, f"params file '{file}'", follow=True)
        raw = _read(path, file)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParamsError(f"{file}: not UTF-8 text ({exc.reason})") from exc
        new_text, changes = edit_params_text(text, file, file_edits)
        plan.files[path] = new_text.encode("utf-8")
        plan.originals[path] = raw
        plan.changes.extend(changes)
    return plan


def plan_edits(root: Path, edits: Sequence[ParamEdit]) -> dict[Path, bytes]:
    """New content per file for ``edits`` under ``root``, without writing."""
    return plan_changes(root, edits).files


def apply_edits(root: Path, edits: Sequence[ParamEdit]) -> list[Path]:
    """Validate, then write each edited file atomically; return the files that changed."""
    return write_plan(plan_changes(root, edits))


def write_plan(plan: EditPlan) -> list[Path]:
    """Write the files of ``plan`` whose content changes: all temp files first, then renames."""
    staged: list[tuple[str, Path]] = []
    try:
        for path in plan.changed_files():
            staged.append((_stage(path, plan.files[path]), path))
        for tmp, path in staged:
            os.replace(tmp, path)
    except OSError as exc:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise ParamsError(
            f"{exc.filename or 'params file'}: cannot write ({exc.strerror})"
        ) from exc
    return [path for _, path in staged]


def _stage(path: Path, data: bytes) -> str:
    import tempfile  # only to write params files: a queued run's edits go into blobs

    mode = os.stat(path).st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)  # mkstemp makes 0600 files; keep the params file's mode
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def _read(path: Path, file: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ParamsError(f"{file}: params file not found") from exc
    except OSError as exc:
        raise ParamsError(f"{file}: cannot read ({exc.strerror})") from exc
