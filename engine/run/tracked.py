"""Data tracked by ``.dvc`` files (``exq add``), in DVC 3's format.

``data.csv.dvc`` beside ``data.csv`` records its hash under ``outs``; the data
goes to the cache and its path to the ``.gitignore`` of its folder.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from exq.engine.confine import check_inside
from exq.engine.data.cache import Cache
from exq.engine.data.hashdb import HashState
from exq.engine.data.hashing import HashInfo, is_md5
from exq.engine.errors import DvcFileError, ExqError
from exq.engine.spec.loading import find_project_files
from exq.engine.writes import atomic_write_text

SUFFIX = ".dvc"


@dataclass(frozen=True)
class TrackedOut:
    """One entry of a ``.dvc`` file: a path relative to the file's folder and its hash."""

    path: str
    info: HashInfo | None
    cache: bool = True  # 'cache: false': the hash is recorded, no object kept


def dvcfile_for(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def find_tracked(root: Path) -> list[Path]:
    """Every ``*.dvc`` file in the project, outside git's and DVC's folders and
    the projects inside it."""
    return [root / rel for rel in find_project_files(root)[1]]


def read_tracked(dvcfile: Path, root: Path) -> list[TrackedOut]:
    """The outs of a ``.dvc`` file; DvcFileError naming the file when it is malformed."""
    rel = dvcfile.relative_to(root).as_posix()
    try:
        data = yaml.safe_load(dvcfile.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DvcFileError(f"{rel}: cannot read: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("outs"), list):
        raise DvcFileError(f"{rel}: expected a mapping with an 'outs' list")
    outs = []
    for item in data["outs"]:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise DvcFileError(f"{rel}: outs: every entry needs a 'path'")
        md5 = item.get("md5")
        if md5 and not is_md5(str(md5)):
            raise DvcFileError(f"{rel}: outs: '{md5}' is not an md5")
        info = (
            HashInfo(
                md5=md5,
                size=int(item.get("size") or 0),
                nfiles=item.get("nfiles"),
                legacy=item.get("hash") is None,  # written by DVC 2
            )
            if md5
            else None
        )
        outs.append(TrackedOut(item["path"], info, item.get("cache", True) is not False))
    return outs


def render_tracked(name: str, info: HashInfo) -> str:
    """The ``.dvc`` file text as DVC 3 writes it (key order md5, size, nfiles, hash, path)."""
    entry: dict[str, object] = {"md5": info.md5, "size": info.size}
    if info.nfiles is not None:
        entry["nfiles"] = info.nfiles
    if info.isexec:
        entry["isexec"] = True
    entry.update({"hash": "md5", "path": name})
    return yaml.safe_dump({"outs": [entry]}, sort_keys=False)


def update_tracked(text: str, name: str, info: HashInfo) -> str | None:
    """An existing ``.dvc`` file's text with the entry of ``name`` holding ``info``.

    As DVC on a re-add: keys keep their places, comments and other keys
    (``desc``, ``meta``) stay, keys new to the entry come last. None when the
    file has no entry for ``name`` (or is not a ``.dvc`` mapping): write it anew.
    """
    # ruamel only here, where a file is edited in place: reading needs none of it
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    rt = YAML()
    try:
        doc = rt.load(text)
    except YAMLError:
        return None
    outs = doc.get("outs") if isinstance(doc, dict) else None
    entry = next((o for o in outs or [] if isinstance(o, dict) and o.get("path") == name), None)
    if entry is None:
        return None
    values: dict[str, object] = {"md5": info.md5, "size": info.size, "nfiles": info.nfiles}
    values.update({"isexec": True if info.isexec else None, "hash": "md5"})
    for key, value in values.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    buffer = io.StringIO()
    rt.dump(doc, buffer)
    return buffer.getvalue()


def add_path(root: Path, path: Path, cache: Cache, state: HashState) -> Path:
    """Cache ``path``, write its ``.dvc`` file and ignore it in git; the .dvc path."""
    path = Path(os.path.normpath(path.absolute()))
    try:
        rel = path.relative_to(root)
    except ValueError:
        raise ExqError(f"'{path}' is outside the project at {root}") from None
    # Its .dvc file and .gitignore go beside it: that folder must really be ours.
    check_inside(root, rel, f"'{rel.as_posix()}'")
    if not path.exists():
        raise ExqError(f"'{rel.as_posix()}' does not exist")
    if rel.parts[0] in (".git", ".dvc") or path.name.endswith(SUFFIX):
        raise ExqError(f"'{rel.as_posix()}' cannot be tracked")
    info = cache.save(path, state)
    state.flush()
    target = dvcfile_for(path)
    old = target.read_text(encoding="utf-8") if target.is_file() else None
    text = update_tracked(old, path.name, info) if old is not None else None
    atomic_write_text(target, text or render_tracked(path.name, info))
    ignore_in_git(path.parent / ".gitignore", "/" + path.name)
    return target


def ignore_in_git(gitignore: Path, line: str) -> None:
    """Append ``line`` to a .gitignore unless it is there already."""
    text = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    if line in text.splitlines():
        return
    if text and not text.endswith("\n"):
        text += "\n"
    atomic_write_text(gitignore, text + line + "\n")
