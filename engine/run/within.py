"""Targets inside a tracked folder: ``pull data/images/cats``, ``checkout data/train.csv``.

As DVC's, checkout, push, fetch and pull take a path inside a folder output
(one of its sub-folders or files) and move only what the folder's ``.dir``
listing holds under that path. Such a target is a :class:`Part`: it stands
for the folder where objects are looked up (its ``.dir`` is fetched first,
and pushed as the folder's), and names the files that count.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from exq.engine.data.cache import Cache
from exq.engine.data.hashdb import HashState
from exq.engine.data.hashing import HashInfo, dir_hash
from exq.engine.errors import PipelineError


@dataclass(frozen=True)
class Part:
    """The path ``prefix`` inside the folder output ``folder`` (recorded as ``info``)."""

    folder: str
    info: HashInfo
    prefix: str

    # Looked up as the folder is: by its .dir object.
    md5 = property(lambda self: self.info.md5)
    isdir = True
    legacy = False

    @property
    def path(self) -> str:
        return f"{self.folder}/{self.prefix}"

    def entries(self, listing: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """The ``(relpath, md5)`` pairs of the folder's listing under the prefix
        (relpaths kept as the folder lists them); an error if there are none."""
        inside = self.prefix + "/"
        found = [(rel, md5) for rel, md5 in listing if rel == self.prefix or rel.startswith(inside)]
        if not found:
            raise PipelineError(
                f"'{self.path}' is not in the tracked folder '{self.folder}'",
                hint=f"'exq checkout {self.folder}' restores the whole folder",
            )
        return found


def containing(outs: Iterable[tuple[str, Any]], rel: str) -> Part | None:
    """``rel`` as a part of the folder output it lies in, if it lies in one."""
    for folder, info in outs:
        if info is not None and info.isdir and not info.legacy and rel.startswith(folder + "/"):
            return Part(folder, info, rel[len(folder) + 1 :])
    return None


def part_hash(cache: Cache, state: HashState, part: Part) -> HashInfo:
    """The hash a checkout of the part restores: a file's own, or a sub-folder's,
    whose listing is saved in the cache so the sub-folder is restored as any folder is."""
    entries = part.entries(cache.load_listing(part.info, state))
    if entries == [(part.prefix, entries[0][1])]:
        md5 = entries[0][1]
        obj = cache.obj_path(md5)
        return HashInfo(md5=md5, size=os.path.getsize(obj) if obj.is_file() else 0)
    start = len(part.prefix) + 1
    sizes = [
        os.path.getsize(p) if p.is_file() else 0 for p in (cache.obj_path(m) for _, m in entries)
    ]
    info, data = dir_hash(
        (rel[start:], md5, size) for (rel, md5), size in zip(entries, sizes, strict=True)
    )
    cache.save_listing(info.md5, data, state)
    return info
