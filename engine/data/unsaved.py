"""What a checkout would lose: workspace files whose bytes no cache object holds.

A checkout overwrites the files of an output that differ from the recorded
version and deletes those the version does not list. A file whose bytes the
cache holds (under any name) can be had back; one whose bytes it does not is
an edit or a new file of the user's, which DVC, and so exq, will not throw
away without ``--force``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from exq.engine.data.cache import Cache
from exq.engine.data.hashdb import HashState
from exq.engine.data.hashing import (
    HashInfo,
    hash_dir_entries,
    hash_file,
    legacy_dir_entries,
    legacy_md5,
)
from exq.engine.errors import CacheError


def unsaved(cache: Cache, path: Path | str, info: HashInfo, state: HashState) -> list[str]:
    """The files under ``path`` (or ``path`` itself) that a checkout of ``info``
    would overwrite or delete and the cache cannot give back."""
    path = Path(os.path.abspath(path))
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return []
    if stat.S_ISLNK(st.st_mode):
        return []  # a link: removing it loses no bytes
    legacy = info.legacy

    def held(md5: str) -> bool:
        return os.path.isfile(cache.obj_path(md5, legacy))

    if stat.S_ISREG(st.st_mode):
        md5 = legacy_md5(path) if legacy else hash_file(path, st, state).md5
        return [] if md5 == info.md5 or held(md5) else [os.fspath(path)]
    if not stat.S_ISDIR(st.st_mode):
        return []
    wanted: dict[str, str] = {}
    if info.isdir:
        try:
            wanted = dict(cache.load_listing(info, state))
        except CacheError:
            return []  # the checkout stops on the missing listing before it changes anything
    _, _, files = legacy_dir_entries(path, state.root) if legacy else hash_dir_entries(path, state)
    return [
        os.fspath(fpath) for rel, fpath, _, md5 in files if wanted.get(rel) != md5 and not held(md5)
    ]
