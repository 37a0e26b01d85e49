"""Reading and writing ``dvc.lock`` in DVC's ``schema: '2.0'`` format.

Written byte for byte as DVC 3 writes it (checked against dvc 3.67.1): ruamel's
round-trip dumper with block style, ``schema: '2.0'`` first, then ``stages``;
per stage ``cmd``, ``deps``, ``params``, ``outs`` (empty ones left out); deps
and outs sorted by path (metrics and plots are plain ``outs``); each path as
``path``, ``hash: md5``, ``md5``, ``size``, then ``nfiles`` (folders) and
``isexec: true`` (executables); params as ``{file: {key: value}}`` with
``params.yaml`` first, other files sorted, keys sorted, values as the params
file gives them (nested mappings keep their own key order).

Like ``dvc repro``, ``update_lock`` replaces the entries it is given in place
and appends new ones at the end (so a sequential run writes stages in run
order, as DVC does); it edits the text entry by entry when the file has the
canonical layout, else goes through a ruamel round trip as DVC does.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exq.engine import yaml12
from exq.engine.data.hashing import HashInfo, is_md5
from exq.engine.errors import DvcFileError
from exq.engine.writes import atomic_write_text

SCHEMA = "2.0"
DEFAULT_PARAMS = "params.yaml"


@dataclass(frozen=True)
class LockPath:
    """One dep or out as recorded: ``path`` as written in dvc.yaml (relative to wdir).

    ``hash`` is ``"md5"`` for DVC 3 entries and None for DVC 2 entries written
    without a ``hash:`` key (DVC 3 treats those as legacy ``md5-dos2unix``).
    ``md5`` is None when the entry carries no hash at all.
    """

    path: str
    md5: str | None
    size: int | None = None
    nfiles: int | None = None
    isexec: bool = False
    hash: str | None = "md5"

    @classmethod
    def from_hash(cls, path: str, info: HashInfo) -> LockPath:
        """The entry for ``path`` hashed as ``info``."""
        return cls(path, info.md5, info.size, info.nfiles, info.isexec)

    def to_hash(self) -> HashInfo | None:
        """The recorded hash as a HashInfo, or None when nothing was recorded."""
        if self.md5 is None:
            return None
        return HashInfo(
            md5=self.md5,
            size=self.size or 0,
            nfiles=self.nfiles,
            isexec=self.isexec,
            legacy=self.hash is None,
        )


@dataclass
class LockEntry:
    """One stage's record in ``dvc.lock``."""

    cmd: str | list[str]
    deps: list[LockPath] = field(default_factory=list)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    outs: list[LockPath] = field(default_factory=list)

    def dep(self, path: str) -> LockPath | None:
        """The recorded dep with this path (as written), if any."""
        return next((d for d in self.deps if d.path == path), None)

    def out(self, path: str) -> LockPath | None:
        """The recorded out with this path (as written), if any."""
        return next((o for o in self.outs if o.path == path), None)


# -- reading ---------------------------------------------------------------


def read_lock(path: Path) -> dict[str, LockEntry]:
    """Stage name -> entry; {} when the file does not exist.

    Raises DvcFileError naming the file when it is not a valid lock file.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise DvcFileError(f"{path}: cannot read lock file: {exc}") from exc
    return parse_lock(text, str(path))


def parse_lock(text: str, where: str = "dvc.lock") -> dict[str, LockEntry]:
    """Parse lock file text; ``where`` names the file in errors."""
    try:
        data = yaml12.load(text)
    except yaml12.YAMLError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DvcFileError(f"{where}: lock file is not valid YAML: {detail}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DvcFileError(f"{where}: lock file must be a mapping")
    if "schema" not in data:
        # DVC 1.x lock files: stages at the top level, no schema key.
        stages = data
    elif str(data["schema"]) != SCHEMA:
        raise DvcFileError(f"{where}: unsupported lock file schema '{data['schema']}'")
    else:
        stages = data.get("stages") or {}
    if not isinstance(stages, dict):
        raise DvcFileError(f"{where}: 'stages' must be a mapping")
    return {str(name): _entry(where, str(name), raw) for name, raw in stages.items()}


def _entry(where: str, name: str, raw: Any) -> LockEntry:
    if not isinstance(raw, dict):
        raise DvcFileError(f"{where}: stages.{name}: must be a mapping")
    cmd = raw.get("cmd")
    if not isinstance(cmd, (str, list)):
        raise DvcFileError(f"{where}: stages.{name}.cmd: missing or not a string or list")
    params = raw.get("params") or {}
    if not isinstance(params, dict) or not all(
        isinstance(v, dict) or v is None for v in params.values()
    ):
        raise DvcFileError(f"{where}: stages.{name}.params: must map files to key/values")
    return LockEntry(
        cmd=cmd,
        deps=_paths(where, f"stages.{name}.deps", raw.get("deps")),
        params={str(f): dict(v or {}) for f, v in params.items()},
        outs=_paths(where, f"stages.{name}.outs", raw.get("outs")),
    )


def _paths(where: str, location: str, raw: Any) -> list[LockPath]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise DvcFileError(f"{where}: {location}: must be a list")
    result = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise DvcFileError(f"{where}: {location}[{i}]: needs a 'path'")
        md5 = item.get("md5")
        if md5 is not None and not is_md5(str(md5)):
            raise DvcFileError(f"{where}: {location}[{i}]: '{md5}' is not an md5")
        hash_name = item.get("hash")
        result.append(
            LockPath(
                path=item["path"],
                md5=None if md5 is None else str(md5),
                size=item.get("size"),
                nfiles=item.get("nfiles"),
                isexec=bool(item.get("isexec", False)),
                hash=None if hash_name is None else str(hash_name),
            )
        )
    return result


# -- writing ---------------------------------------------------------------


def _yaml() -> Any:
    # Imported here: only writing needs ruamel, and reading a lock must stay quick.
    from ruamel.yaml import YAML

    # The same dumper settings DVC uses: round-trip, block style, width 80.
    yaml = YAML()
    yaml.default_flow_style = False
    return yaml


def plain(value: Any) -> Any:
    """``value`` as plain Python data (ruamel's round-trip scalars and maps unwrapped).

    Round-trip scalars would otherwise be dumped in their source spelling
    (``1.0e-3``), where DVC, which loads params with the safe loader, writes
    ``0.001``.
    """
    if isinstance(value, bool) or type(value).__name__ == "ScalarBoolean":
        return bool(value)  # ruamel's round-trip booleans are ints underneath
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value  # None, dates and timestamps dump as they are


def _path_dict(item: LockPath) -> dict[str, Any]:
    out: dict[str, Any] = {"path": item.path}
    if item.hash is not None:
        out["hash"] = item.hash
    if item.md5 is not None:
        out["md5"] = item.md5
    if item.size is not None:
        out["size"] = item.size
    if item.nfiles is not None:
        out["nfiles"] = item.nfiles
    if item.isexec:
        out["isexec"] = True
    return out


def entry_to_dict(entry: LockEntry) -> dict[str, Any]:
    """The mapping DVC writes for one stage (sorted deps, outs and params)."""
    data: dict[str, Any] = {"cmd": plain(entry.cmd)}
    if entry.deps:
        data["deps"] = [_path_dict(d) for d in sorted(entry.deps, key=lambda d: d.path)]
    files = sorted(entry.params, key=lambda f: (f != DEFAULT_PARAMS, f))
    params = {f: {k: plain(entry.params[f][k]) for k in sorted(entry.params[f])} for f in files}
    if params:
        data["params"] = params
    if entry.outs:
        data["outs"] = [_path_dict(o) for o in sorted(entry.outs, key=lambda o: o.path)]
    return data


def dumps_lock(entries: Mapping[str, LockEntry]) -> str:
    """The text of a lock file holding ``entries`` in the given order."""
    data = {"schema": SCHEMA, "stages": {n: entry_to_dict(e) for n, e in entries.items()}}
    stream = io.StringIO()
    _yaml().dump(data, stream)
    return stream.getvalue()


def write_lock(path: Path, entries: Mapping[str, LockEntry]) -> None:
    """Write a whole lock file atomically, stages in the order of ``entries``.

    An empty mapping removes the file, as DVC does when no stage is left.
    """
    try:
        if not entries:
            path.unlink(missing_ok=True)
            return
        atomic_write_text(path, dumps_lock(entries))
    except OSError as exc:
        raise DvcFileError(f"{path}: cannot write lock file: {exc}") from exc


def update_lock(
    path: Path, updates: Mapping[str, LockEntry], order: list[str] | None = None
) -> None:
    """Replace or add the entries in ``updates``, keeping every other entry as it is.

    Existing stages keep their place; a new one goes before the first entry
    that follows it in ``order`` (so stages finishing in any order give one
    file), else at the end. When ``order`` (the stage names of the matching dvc.yaml) is
    given, entries of stages no longer in it are dropped.

    A file in the layout DVC and exq write is edited as text, one entry's
    lines at a time, so a lock of a thousand stages costs milliseconds per
    update; any other file goes through a ruamel round trip.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise DvcFileError(f"{path}: cannot read lock file: {exc}") from exc
    keep = None if order is None else set(order) | set(updates)
    new_text = _splice(text, updates, keep, order)
    if new_text is None:
        new_text = _round_trip(text, str(path), updates, keep)
    try:
        if new_text:
            atomic_write_text(path, new_text)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:
        raise DvcFileError(f"{path}: cannot write lock file: {exc}") from exc


def _entry_text(name: str, entry: LockEntry) -> str:
    """The lines of one stage entry under ``stages:``, exactly as a whole dump has them."""
    stream = io.StringIO()
    _yaml().dump({"stages": {name: entry_to_dict(entry)}}, stream)
    return stream.getvalue().split("\n", 1)[1]


_HEADER = "schema: '2.0'\nstages:\n"
_KEY_LINE = re.compile(r"  (\S[^\n]*?):\n")


def _splice(
    text: str,
    updates: Mapping[str, LockEntry],
    keep: set[str] | None,
    order: list[str] | None = None,
) -> str | None:
    """Edit a canonical lock file as text; None when its layout is not the canonical one."""
    if not text:
        return dumps_lock(updates) if updates else ""
    if not text.startswith(_HEADER):
        return None
    blocks: dict[str, list[str]] = {}
    lines = text[len(_HEADER) :].splitlines(keepends=True)
    tail: list[str] = []
    current: list[str] | None = None
    for index, line in enumerate(lines):
        if line[:1] not in (" ", "\n"):  # a top-level key after the stages (datasets)
            tail = lines[index:]
            break
        if line.startswith("  ") and line[2:3] not in (" ", "\n"):
            match = _KEY_LINE.fullmatch(line)
            name = _key_name(match.group(1)) if match else None
            if name is None or name in blocks:
                return None
            current = blocks[name] = [line]
        elif current is None:
            return None
        else:
            current.append(line)
    for name, entry in updates.items():
        if name not in blocks:
            blocks = _insert_in_order(blocks, name, order)
        blocks[name] = [_entry_text(name, entry)]
    kept = [b for n, b in blocks.items() if keep is None or n in keep]
    if not kept:
        return ""
    return _HEADER + "".join("".join(block) for block in kept) + "".join(tail)


def _insert_in_order(
    blocks: dict[str, list[str]], name: str, order: list[str] | None
) -> dict[str, list[str]]:
    """``blocks`` with an empty slot for ``name`` before the first entry that
    comes after it in dvc.yaml, so concurrent runs write one stable order."""
    rank = {n: i for i, n in enumerate(order or [])}
    if name not in rank:
        return {**blocks, name: []}
    result: dict[str, list[str]] = {}
    for existing, lines in blocks.items():
        if name not in result and rank.get(existing, -1) > rank[name]:
            result[name] = []
        result[existing] = lines
    result.setdefault(name, [])
    return result


def _key_name(raw: str) -> str | None:
    if raw[0] not in "'\"":
        return None if any(c in raw for c in "#{}[]&*!|>%") else raw
    try:
        value = yaml12.load(raw)
    except yaml12.YAMLError:
        return None
    return value if isinstance(value, str) else None


def _round_trip(
    text: str, where: str, updates: Mapping[str, LockEntry], keep: set[str] | None
) -> str:
    """Update through ruamel's round trip, as DVC does; rewrites DVC 1.x files as 2.0."""
    old = parse_lock(text, where)  # refuse to build on a broken file
    data = _yaml().load(text) if text.strip() else None
    if not data or "schema" not in data:
        merged = {**old, **updates}
        merged = {n: e for n, e in merged.items() if keep is None or n in keep}
        return dumps_lock(merged) if merged else ""
    stages = data.get("stages")
    if stages is None:
        stages = data["stages"] = {}
    for name, entry in updates.items():
        stages[name] = entry_to_dict(entry)
    for name in [n for n in stages if keep is not None and n not in keep]:
        del stages[name]
    if not stages:
        return ""
    stream = io.StringIO()
    _yaml().dump(data, stream)
    return stream.getvalue()
