"""The content-addressed cache and the links between it and the workspace.

Layout as DVC 3: ``<cache_dir>/files/md5/<md5[:2]>/<md5[2:]>`` holds a file's
bytes, and ``<md5[2:]>.dir`` a directory's listing (see ``hashing``). Objects
are written to a temp name beside their final place and renamed, and are made
read-only (0o444). Objects of DVC 2's entries (``HashInfo.legacy``) are read
where DVC 2 put them, ``<cache_dir>/<md5[:2]>/<md5[2:]>``, and verified with
DVC 2's md5, as DVC 3 does; new objects always go to the DVC 3 layout.

Workspace copies are made with the first link type that works, in the
configured order (default reflink, hardlink, copy; ``symlink`` is accepted
too). A hardlinked workspace file *is* the cache object, and root can write
through 0o444, so an object is never trusted blindly: its ``(inode, mtime,
size)`` must be what the state DB recorded when it was verified, or it is
hashed again; an object whose bytes no longer match its name is deleted and
treated as missing. Executable files are never hardlinked or symlinked: that
would either drop their exec bit or set it on the shared object.

The runner must delete (``remove_out``) or ``unprotect`` an output before a
stage writes it: a command that truncates a hardlinked output in place would
otherwise destroy the cached copy (which we then detect, but cannot undo).
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from exq.engine.data import ingest, progress
from exq.engine.data.hashdb import HashState
from exq.engine.data.hashing import (
    DIR_SUFFIX,
    DirFiles,
    HashInfo,
    bytes_md5,
    dir_hash,
    file_info,
    file_md5,
    hash_dir_entries,
    hash_file,
    hash_many,
    hash_path,
    is_exec,
    is_md5,
    legacy_dir_entries,
    legacy_md5,
    parse_dir_listing,
    same_stat,
    scan_dir,
)
from exq.engine.data.links import LINKERS, UNSUPPORTED, copy_new, tmp_beside, unlink_quiet
from exq.engine.data.links import copy as copy_file
from exq.engine.data.threads import creating_threads, map_chunked, worth_threads
from exq.engine.errors import CacheError, ConfigError

__all__ = ["DEFAULT_LINK_TYPES", "LINK_TYPES", "Cache", "hash_path", "remove_out"]

LINK_TYPES = ("reflink", "hardlink", "symlink", "copy")
DEFAULT_LINK_TYPES = ["reflink", "hardlink", "copy"]
READ_ONLY = 0o444
SHARED_DIR_MODE = 0o2775
SHARED_FILE_BITS = stat.S_IRGRP | stat.S_IWGRP  # a writable workspace file in a shared cache


def remove_out(path: Path | str) -> None:
    """Delete a file, symlink or folder tree, read-only entries included; no-op if absent."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    try:
        if stat.S_ISDIR(st.st_mode):
            _rmtree(path)
        else:
            os.unlink(path)
    except OSError as exc:
        raise CacheError(f"{path}: cannot remove: {exc.strerror}") from exc


def _rmtree(path: Path) -> None:
    import shutil  # only to remove a folder: status and checkout's reads need it not

    def retry(func: Callable[..., object], failed: str, *_: object) -> None:
        # A read-only folder blocks deleting its entries: make it writable once.
        os.chmod(os.path.dirname(failed), stat.S_IRWXU)
        if os.path.isdir(failed) and not os.path.islink(failed):
            os.chmod(failed, stat.S_IRWXU)
        func(failed)

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=retry)
    else:
        shutil.rmtree(path, onerror=retry)


class Cache:
    """DVC 3's content-addressed cache, and links from it into the workspace."""

    def __init__(
        self,
        cache_dir: Path | str,
        link_types: Iterable[str] | None = None,
        *,
        shared: bool = False,
    ) -> None:
        self.cache_dir = Path(os.path.abspath(cache_dir))
        # DVC's cache.shared = group: folders the group can write into (setgid,
        # so their files keep the group), and unprotected files it can edit
        self.shared = shared
        self.objects_dir = self.cache_dir / "files" / "md5"
        self._objects_str = str(self.objects_dir)
        self._made: set[str] = set()  # cache folders known to exist
        self.link_types = list(link_types) if link_types is not None else list(DEFAULT_LINK_TYPES)
        bad = [kind for kind in self.link_types if kind not in LINK_TYPES]
        if bad or not self.link_types:
            raise ConfigError(
                f"cache.type: unknown link type {', '.join(bad) or '(none)'}",
                hint=f"use one or more of {', '.join(LINK_TYPES)}",
            )
        self.last_link_type: str | None = None
        self.removed_corrupt: list[Path] = []
        self._unsupported: set[str] = set()

    # ---------------------------------------------------------------- paths

    def obj_path(self, md5: str, legacy: bool = False) -> Path:
        """Where the object named ``md5`` (``<hex>`` or ``<hex>.dir``) lives; ``legacy``:
        an object of a DVC 2 entry, in DVC 2's layout."""
        return (self.cache_dir if legacy else self.objects_dir) / md5[:2] / md5[2:]

    def _obj_str(self, md5: str, legacy: bool = False) -> str:
        """``obj_path`` as a plain string, for loops over the files of a folder."""
        base = str(self.cache_dir) if legacy else self._objects_str
        return f"{base}/{md5[:2]}/{md5[2:]}"

    def hash_path(self, path: Path | str, state: HashState) -> HashInfo:
        """Hash a workspace file or folder (``hashing.hash_path``)."""
        return hash_path(path, state)

    def _make_dirs(self, folder: Path | str) -> None:
        """Create a cache folder and its parents (2775 each when the cache is shared).

        Once per folder: the files of a big folder share 256 prefix folders.
        """
        key = os.fspath(folder)
        if key not in self._made:
            self._make_dirs_now(Path(folder))
            self._made.add(key)

    def _make_dirs_now(self, folder: Path) -> None:
        if not self.shared:
            folder.mkdir(parents=True, exist_ok=True)
            return
        missing = []
        current = folder
        while not current.is_dir():
            missing.append(current)
            current = current.parent
        for path in [*reversed(missing), *([] if missing else [folder])]:
            path.mkdir(exist_ok=True)
            if stat.S_IMODE(os.stat(path).st_mode) != SHARED_DIR_MODE:
                with contextlib.suppress(OSError):  # not ours to change: DVC lets it be too
                    os.chmod(path, SHARED_DIR_MODE)

    # ---------------------------------------------------------------- links

    def _order(self, allowed: Iterable[str]) -> list[str]:
        allowed = set(allowed)
        # Types that failed as unsupported here are remembered and not tried again.
        return [k for k in self.link_types if k in allowed and k not in self._unsupported]

    def _link(self, src: Path | str, dst: Path | str, allowed: Iterable[str]) -> str | None:
        """Make ``dst`` a copy of ``src`` with the first allowed link type that works.

        Returns the type used, or None when every allowed type failed or none is usable.
        """
        for kind in self._order(allowed):
            try:
                LINKERS[kind](src, dst)
            except OSError as exc:
                if exc.errno in UNSUPPORTED:
                    self._unsupported.add(kind)
                unlink_quiet(dst)
                continue
            self.last_link_type = kind
            return kind
        return None

    def _link_or_copy(self, src: Path | str, dst: Path | str, allowed: Iterable[str]) -> str:
        """Like ``_link``, but fall back to a plain copy, which always works."""
        kind = self._link(src, dst, allowed)
        if kind is not None:
            return kind
        try:
            copy_file(src, dst)
        except OSError as exc:
            unlink_quiet(dst)
            raise CacheError(f"{dst}: cannot copy from {src}: {exc.strerror}") from exc
        return "copy"

    # ---------------------------------------------------------- verification

    def _verify(
        self, obj: Path | str, md5: str, state: HashState | None, legacy: bool = False
    ) -> bool:
        """True if ``obj`` holds the bytes named ``md5`` (DVC 2's md5 when ``legacy``);
        delete it if it does not."""
        return self._verified_stat(obj, md5, state, legacy) is not None

    def _verified_stat(
        self, obj: Path | str, md5: str, state: HashState | None, legacy: bool = False
    ) -> os.stat_result | None:
        """``_verify``, answering with the object's stat (None: missing or corrupt)."""
        try:
            st = os.stat(obj)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CacheError(f"{obj}: cannot stat cache object: {exc.strerror}") from exc
        expected = md5.removesuffix(DIR_SUFFIX)
        if state is not None:
            if state.known_md5(os.fspath(obj), st) == expected:
                return st
        try:
            # a listing is JSON without CRLF: both md5s agree on it
            actual = legacy_md5(obj) if legacy else file_md5(obj)
        except OSError as exc:
            raise CacheError(f"{obj}: cannot read cache object: {exc.strerror}") from exc
        if actual == expected:
            if state is not None:
                state.put(obj, st, HashInfo(md5=expected, size=st.st_size))
            return st
        if not is_md5(md5):
            return None  # not a name but a path (from a hostile file): never delete it
        # Someone wrote through a link into the cache: this object lies.
        unlink_quiet(obj)
        if state is not None:
            state.forget(obj)
        self.removed_corrupt.append(Path(obj))
        return None

    def load_listing(self, info: HashInfo, state: HashState | None = None) -> list[tuple[str, str]]:
        """The ``(relpath, md5)`` pairs of a directory object; CacheError if absent or bad."""
        obj = self.obj_path(info.md5, info.legacy)
        if not self._verify(obj, info.md5, state, info.legacy):
            raise CacheError(f"cache object {info.md5} is missing or corrupt ({obj})")
        try:
            return parse_dir_listing(obj.read_bytes())
        except (OSError, ValueError) as exc:
            raise CacheError(f"{obj}: unreadable directory listing {info.md5}") from exc

    def exists(self, info: HashInfo, state: HashState | None = None) -> bool:
        """True when the object (for a folder: its listing and every file) is in the cache.

        Objects are verified; pass ``state`` so unchanged objects are not read again.
        """
        legacy = info.legacy
        if not info.isdir:
            return self._verify(self.obj_path(info.md5, legacy), info.md5, state, legacy)
        try:
            listing = self.load_listing(info, state)
        except CacheError:
            return False
        return self._verify_all(listing, state, legacy)

    def _verify_all(
        self, listing: list[tuple[str, str]], state: HashState | None, legacy: bool
    ) -> bool:
        """True when every object of a folder's listing is in the cache and sound."""
        if state is not None:  # one query for the rows of every object
            state.preload(self.cache_dir if legacy else self._objects_str)
        return all(
            self._verify(self._obj_str(md5, legacy), md5, state, legacy) for _, md5 in listing
        )

    # ------------------------------------------------------------------ save

    def save(self, path: Path | str, state: HashState) -> HashInfo:
        """Put a file or folder into the cache and link the workspace copy to it."""
        path = Path(os.path.abspath(path))
        try:
            st = os.stat(path)
        except FileNotFoundError as exc:
            raise CacheError(f"{path}: does not exist, cannot save it") from exc
        if stat.S_ISDIR(st.st_mode):
            return self._save_dir(path, state)
        if not stat.S_ISREG(st.st_mode):
            raise CacheError(f"{path}: neither a file nor a folder, cannot save it")
        apath = os.fspath(path)
        md5 = state.known_md5(apath, st)
        if md5 is None and self._ingests(apath)[is_exec(st.st_mode)]:
            return file_info(self._ingest(apath, st, state), st)
        info = hash_file(path, st, state)
        self._save_file(path, st, info, state)
        return info

    def _save_dir(self, path: Path, state: HashState) -> HashInfo:
        known, unknown = scan_dir(path, state)
        ingests = self._ingests(unknown[0][1]) if unknown else (False, False)
        if ingests[0]:  # (executable files are few: they follow the plain files' way)
            fresh = self._ingest_many(unknown, state, ingests)
            self._save_files(known, state)
        else:  # objects are links: hash what changed, then link every file
            fresh = hash_many(unknown, state)
            self._save_files(known + fresh, state)
        files = known + fresh
        dinfo, data = dir_hash((rel, md5, st.st_size) for rel, _, st, md5 in files)
        self.save_listing(dinfo.md5, data, state)
        return dinfo

    def _save_files(self, files: DirFiles, state: HashState) -> None:
        total = sum(st.st_size for _, _, st, _ in files)
        with progress.task("Caching", len(files), total) as shown:

            def one(item: tuple[str, str, os.stat_result, str]) -> None:
                self._save_file(item[1], item[2], file_info(item[3], item[2]), state)
                shown.advance(item[2].st_size)

            map_chunked(one, files, worth_threads(total, len(files)))

    # ---------------------------------------------------------------- ingest

    def _ingests(self, sample: str) -> tuple[bool, bool]:
        """Whether new objects are copies that leave the workspace file as it is, for
        plain and for executable files: then ``_ingest`` reads each new file once.

        ``sample`` is a file to try a reflink with, once, when reflinks may work here.
        """
        if "reflink" in self._order({"reflink"}):
            self._make_dirs(self.objects_dir)
            probe = tmp_beside(self.objects_dir / "reflink-probe")
            if self._link(sample, probe, {"reflink"}) is not None:
                unlink_quiet(probe)
        answer = []
        for isexec in (False, True):
            obj_kinds = self._order(
                {"reflink", "copy"} if isexec else {"reflink", "hardlink", "copy"}
            )
            ws_kinds = self._order(set(LINK_TYPES) - ({"hardlink", "symlink"} if isexec else set()))
            answer.append(obj_kinds[:1] in ([], ["copy"]) and ws_kinds[:1] in ([], ["copy"]))
        return answer[0], answer[1]

    def _ingest_many(
        self,
        files: list[tuple[str, str, os.stat_result]],
        state: HashState,
        ingests: tuple[bool, bool],
    ) -> DirFiles:
        """Hash and save files the state does not know, on a few threads; their md5s."""
        total = sum(st.st_size for _, _, st in files)
        with progress.task("Caching", len(files), total) as shown:

            def one(item: tuple[str, str, os.stat_result]) -> str:
                _, fpath, st = item
                if ingests[is_exec(st.st_mode)]:
                    md5 = self._ingest(fpath, st, state)
                else:
                    info = hash_file(fpath, st, state)
                    self._save_file(fpath, st, info, state)
                    md5 = info.md5
                shown.advance(st.st_size)
                return md5

            md5s = map_chunked(one, files, creating_threads(len(files)))
        return [(rel, fpath, st, md5) for (rel, fpath, st), md5 in zip(files, md5s, strict=True)]

    def _ingest(self, fpath: str, st: os.stat_result, state: HashState) -> str:
        """Hash a file and make its object from one read of it; its md5."""
        staged = None
        try:
            if st.st_size <= ingest.SMALL:
                data, after = ingest.read_whole(fpath, st.st_size)
                md5 = bytes_md5(data)
            else:
                self._make_dirs(self.objects_dir)
                staged = tmp_beside(self.objects_dir / "new")
                md5, after, staged_st = ingest.hash_while_copying(
                    fpath, staged, st.st_size, READ_ONLY
                )
        except OSError as exc:
            raise CacheError(f"{fpath}: cannot read: {exc.strerror}") from exc
        try:
            if not same_stat(st, after):
                raise CacheError(f"{fpath}: changed while it was being saved")
            info = file_info(md5, st)
            state.put_abs(fpath, st, info)
            obj = self._obj_str(md5)
            if self._verify(obj, md5, state):
                return md5  # already cached; the workspace keeps its own copy
            self._make_dirs(os.path.dirname(obj))
            if staged is None:
                staged = tmp_beside(obj)
                staged_st = ingest.write_new(staged, data, READ_ONLY)
            if stat.S_IMODE(staged_st.st_mode) != READ_ONLY:  # a umask took bits away
                os.chmod(staged, READ_ONLY)
            os.replace(staged, obj)
            staged = None
        except OSError as exc:
            raise CacheError(f"{fpath}: cannot write its cache object: {exc.strerror}") from exc
        finally:
            if staged is not None:
                unlink_quiet(staged)
        state.put_abs(obj, staged_st, info)
        return md5

    def _save_file(
        self, path: Path | str, st: os.stat_result, info: HashInfo, state: HashState
    ) -> None:
        obj = self._obj_str(info.md5)
        if self._verify(obj, info.md5, state):
            # Deduplicate: make the workspace file share the object, never by copying.
            self._place(obj, path, info, state, expect=st)
            return
        self._make_dirs(os.path.dirname(obj))
        tmp = tmp_beside(obj)
        # Never a symlink: the object itself must hold the bytes.
        allowed = {"reflink", "copy"} if info.isexec else {"reflink", "hardlink", "copy"}
        made = self._link_or_copy(path, tmp, allowed)
        try:
            if not same_stat(os.stat(path), st):
                raise CacheError(f"{path}: changed while it was being saved")
            os.chmod(tmp, READ_ONLY)  # for a hardlink this is the workspace file too
            os.replace(tmp, obj)
        except OSError as exc:
            unlink_quiet(tmp)
            raise CacheError(f"{obj}: cannot write cache object: {exc.strerror}") from exc
        except CacheError:
            unlink_quiet(tmp)
            raise
        state.put_abs(obj, os.stat(obj), info)
        wanted = self._order(set(LINK_TYPES) - ({"hardlink", "symlink"} if info.isexec else set()))
        if wanted and wanted[0] not in (made, "copy"):
            # The object was made the quickest way; the workspace file gets the
            # link type configured first (a symlink into the cache), as DVC does.
            self._place(obj, path, info, state, expect=os.stat(path))

    def save_listing(self, md5: str, data: bytes, state: HashState) -> None:
        """Keep a folder's listing (``data``, named ``md5``) as its ``.dir`` object."""
        obj = self.obj_path(md5)
        if self._verify(obj, md5, state):
            return
        self._make_dirs(obj.parent)
        tmp = tmp_beside(obj)
        try:
            Path(tmp).write_bytes(data)
            os.chmod(tmp, READ_ONLY)
            os.replace(tmp, obj)
        except OSError as exc:
            unlink_quiet(tmp)
            raise CacheError(f"{obj}: cannot write directory listing: {exc.strerror}") from exc
        state.put(obj, os.stat(obj), HashInfo(md5=md5.removesuffix(DIR_SUFFIX), size=len(data)))

    # ----------------------------------------------------------- placement

    def _place(
        self,
        obj: Path | str,
        path: Path | str,
        info: HashInfo,
        state: HashState,
        *,
        expect: os.stat_result | None = None,
    ) -> None:
        """Make ``path`` a link to (or copy of) ``obj``, atomically.

        With ``expect`` this is a relink of a workspace file known to hold the
        same bytes: it only happens through a real link (never a copy), only
        if the file is not already the object, and only if ``path`` still has
        stat ``expect``.
        """
        allowed = {"reflink", "copy"} if info.isexec else set(LINK_TYPES)
        tmp = tmp_beside(path)
        if expect is None:
            kind = self._link_or_copy(obj, tmp, allowed)
        else:
            if self._already_linked(obj, path, expect):
                return
            found = self._link(obj, tmp, allowed - {"copy"})
            if found is None:
                return  # no cheap link here: keeping the workspace copy is fine
            kind = found
        try:
            self._fix_mode(tmp, kind, info, expect)
            if expect is not None and not same_stat(os.stat(path), expect):
                unlink_quiet(tmp)
                return  # the workspace file changed under us: leave it alone
            os.replace(tmp, path)
        except OSError as exc:
            unlink_quiet(tmp)
            raise CacheError(f"{path}: cannot link from cache: {exc.strerror}") from exc
        if not info.legacy:  # the state DB holds DVC 3 hashes only
            state.put_abs(os.fspath(path), os.stat(path), HashInfo(md5=info.md5, size=info.size))

    def _place_new(self, obj: str, target: str, info: HashInfo, state: HashState) -> None:
        """``_place`` into a folder this checkout made: straight to ``target``, no temp name.

        Nothing stood at ``target``, so nothing whole is replaced by something
        half-made; a checkout stopped part way leaves a short file without a
        state row, which the next status reports as changed and the next
        checkout replaces.
        """
        allowed = {"reflink", "copy"} if info.isexec else set(LINK_TYPES)
        try:
            if self._order(allowed)[:1] in ([], ["copy"]):
                st = copy_new(obj, target, info.size, 0o777 if info.isexec else 0o666)
                if self.shared or not st.st_mode & stat.S_IWUSR:
                    self._fix_mode(target, "copy", info, None)
            else:
                kind = self._link_or_copy(obj, target, allowed)
                self._fix_mode(target, kind, info, None)
                st = os.stat(target)
        except OSError as exc:
            unlink_quiet(target)
            raise CacheError(f"{target}: cannot link from cache: {exc.strerror}") from exc
        if not info.legacy:  # the state DB holds DVC 3 hashes only
            state.put_abs(target, st, HashInfo(md5=info.md5, size=info.size))

    @staticmethod
    def _already_linked(obj: Path | str, path: Path | str, expect: os.stat_result) -> bool:
        if os.path.islink(path):
            return os.path.realpath(path) == os.path.realpath(obj)
        try:
            return os.stat(obj).st_ino == expect.st_ino
        except OSError:
            return False

    def _fix_mode(
        self, tmp: Path | str, kind: str, info: HashInfo, expect: os.stat_result | None
    ) -> None:
        if kind in ("hardlink", "symlink"):
            return  # shares the object's inode and mode
        fresh_ok = expect is None and not info.isexec and not self.shared
        if fresh_ok and os.stat(tmp).st_mode & stat.S_IWUSR:
            return  # a fresh copy already has the umask's mode, writable by its owner
        # A relink keeps the workspace file's mode; a fresh copy has the umask's.
        mode = stat.S_IMODE((expect or os.stat(tmp)).st_mode)
        if info.isexec:
            mode |= (mode & 0o444) >> 2
        os.chmod(tmp, mode | stat.S_IWUSR | (SHARED_FILE_BITS if self.shared else 0))

    # -------------------------------------------------------------- checkout

    def checkout(self, path: Path | str, info: HashInfo, state: HashState) -> None:
        """Restore a file or folder from the cache; CacheError when an object is missing."""
        path = Path(os.path.abspath(path))
        if info.isdir:
            self._checkout_dir(path, info, state)
            return
        if self._matches(path, info, state):
            return
        obj = self.obj_path(info.md5, info.legacy)
        if not self._verify(obj, info.md5, state, info.legacy):
            raise CacheError(f"{path}: cache object {info.md5} is missing or corrupt")
        if os.path.isdir(path) and not os.path.islink(path):
            remove_out(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._place(obj, path, info, state)

    @staticmethod
    def _matches(path: Path, info: HashInfo, state: HashState) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode):
            return False
        if info.legacy:
            return legacy_md5(path) == info.md5
        return hash_file(path, st, state).md5 == info.md5

    def _checkout_dir(self, path: Path, info: HashInfo, state: HashState) -> None:
        current: dict[str, tuple[str, str]] = {}
        legacy = info.legacy
        if os.path.isdir(path) and not os.path.islink(path):
            found, _, files = (
                legacy_dir_entries(path, state.root) if legacy else hash_dir_entries(path, state)
            )
            if found.md5 == info.md5:
                return
            current = {rel: (os.fspath(fpath), md5) for rel, fpath, _, md5 in files}
        try:
            listing = self.load_listing(info, state)
        except CacheError as exc:
            raise CacheError(f"{path}: cache object {info.md5} is missing or corrupt") from exc
        todo = [(rel, md5) for rel, md5 in listing if current.get(rel, (None, None))[1] != md5]
        sizes = self._sizes_of(path, todo, state, legacy)
        if os.path.lexists(path) and (os.path.islink(path) or not os.path.isdir(path)):
            remove_out(path)
        fresh_top = not os.path.isdir(path)
        path.mkdir(parents=True, exist_ok=True)
        wanted = dict(listing)
        for rel in sorted(set(current) - set(wanted)):
            remove_out(current[rel][0])
            _prune_empty(Path(current[rel][0]).parent, path)
        self._restore_files(path, todo, sizes, legacy, state, fresh_top)

    def _restore_files(
        self,
        path: Path,
        todo: list[tuple[str, str]],
        sizes: dict[str, int],
        legacy: bool,
        state: HashState,
        fresh_top: bool,
    ) -> None:
        """Place each ``(relpath, md5)`` of ``todo`` below ``path``, on a few threads.

        Folders are made first, here, once each; then the files are made in
        parallel: making a file is kernel work that releases the GIL.
        """
        folders = _Folders(str(path), fresh_top)
        jobs = [(*folders.prepare(rel), md5) for rel, md5 in todo]
        total = sum(sizes[md5] for _, md5 in todo)
        with progress.task("Restoring", len(todo), total) as shown:

            def one(job: tuple[str, bool, str]) -> None:
                target, fresh, md5 = job
                found = HashInfo(md5=md5, size=sizes[md5], legacy=legacy)
                obj = self._obj_str(md5, legacy)
                if fresh:
                    self._place_new(obj, target, found, state)
                else:
                    self._place(obj, target, found, state)
                shown.advance(found.size)

            map_chunked(one, jobs, creating_threads(len(jobs)))

    def _sizes_of(
        self, path: Path, todo: list[tuple[str, str]], state: HashState, legacy: bool
    ) -> dict[str, int]:
        """Check every needed object before the workspace is touched (refuse, never
        half-restore); answer each object's size."""
        state.preload(self.cache_dir if legacy else self._objects_str)
        sizes: dict[str, int] = {}
        for rel, md5 in todo:
            if md5 not in sizes:
                st = self._verified_stat(self._obj_str(md5, legacy), md5, state, legacy)
                if st is None:
                    raise CacheError(f"{path / rel}: cache object {md5} is missing or corrupt")
                sizes[md5] = st.st_size
        return sizes

    # ------------------------------------------------------------- unprotect

    def unprotect(self, path: Path | str, state: HashState | None = None) -> None:
        """Turn linked, read-only workspace files into private writable copies."""
        path = Path(path)
        if os.path.isdir(path) and not os.path.islink(path):
            for folder, _, names in os.walk(path):
                for name in names:
                    _unprotect_file(Path(folder) / name, state, self.shared)
        elif os.path.lexists(path):
            _unprotect_file(path, state, self.shared)


def _unprotect_file(path: Path, state: HashState | None, group: bool = False) -> None:
    try:
        st = os.stat(path)
        lst = os.lstat(path)
    except FileNotFoundError:
        return  # broken symlink: nothing to protect
    shared = st.st_nlink > 1 or stat.S_ISLNK(lst.st_mode)
    if not shared and st.st_mode & stat.S_IWUSR:
        if group and st.st_mode & SHARED_FILE_BITS != SHARED_FILE_BITS:
            with contextlib.suppress(OSError):
                os.chmod(path, stat.S_IMODE(st.st_mode) | SHARED_FILE_BITS)
        return
    known = state.get(path, st) if state is not None else None
    tmp = tmp_beside(path)
    try:
        copy_file(path, tmp)
        os.chmod(tmp, stat.S_IMODE(st.st_mode) | stat.S_IWUSR | (SHARED_FILE_BITS if group else 0))
        os.replace(tmp, path)
    except OSError as exc:
        unlink_quiet(tmp)
        raise CacheError(f"{path}: cannot unprotect: {exc.strerror}") from exc
    if known is not None and state is not None:
        state.put(path, os.stat(path), known)


class _Folders:
    """The folders of a checkout below ``top``, each made (or cleared of a file) once."""

    def __init__(self, top: str, fresh_top: bool = False) -> None:
        self.top = top
        self._ready: set[str] = {top}
        # made here, so empty: nothing in them to clear, no file of the same name to replace
        self._fresh: set[str] = {top} if fresh_top else set()

    def prepare(self, rel: str) -> tuple[str, bool]:
        """Make ``rel``'s parent folders, replacing files in the way; its absolute path,
        and whether its folder was made here (then nothing stands at that path)."""
        parent = rel.rpartition("/")[0]
        folder = self._folder(parent) if parent else self.top
        target = f"{self.top}/{rel}"
        if folder in self._fresh:
            return target, True
        if os.path.isdir(target) and not os.path.islink(target):
            remove_out(target)
        return target, False

    def _folder(self, rel: str) -> str:
        path = f"{self.top}/{rel}"
        if path in self._ready:
            return path
        head = rel.rpartition("/")[0]
        parent = self._folder(head) if head else self.top
        if parent not in self._fresh:
            if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
                remove_out(path)
        if parent in self._fresh or not os.path.isdir(path):
            os.mkdir(path)
            self._fresh.add(path)
        self._ready.add(path)
        return path


def _prune_empty(folder: Path, top: Path) -> None:
    """Remove folders left empty below ``top``, walking upwards from ``folder``."""
    while folder != top and top in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
