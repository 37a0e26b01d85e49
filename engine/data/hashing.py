"""Content hashes exactly as DVC 3 computes them (``hash: md5``).

A file's hash is the plain md5 of its bytes: DVC 3 no longer turns CRLF into
LF for text files, so neither do we. Entries DVC 2 wrote (no ``hash: md5``)
are compared as DVC 3 compares them, with DVC 2's md5 (``legacy_md5``).

A directory's hash is the md5 of its *listing object* followed by ``.dir``.
The listing is ``json.dumps`` (default separators ``", "`` and ``": "``,
``ensure_ascii`` on, no trailing newline) of a list of
``{"md5": ..., "relpath": ...}`` sorted by ``relpath`` as a plain string with
``/`` separators; its ``size`` is the sum of the file sizes and ``nfiles``
the number of files. Empty directories do not appear; ``[]`` is the listing of
a directory without files.

What a directory walk skips, as DVC 3.67 does (checked against the real dvc):

- paths matched by ``.dvcignore`` files (gitignore syntax) in the repo root
  or in any folder between the root and the file;
- entries named ``.git`` (file or folder) and folders named ``.hg``;
- folders holding a ``.dvc`` folder (DVC treats them as sub-repos);
- symlinks to folders (files behind symlinks are hashed; a broken symlink is
  an error), and anything that is not a regular file (fifos, sockets).

``.gitignore`` files are ordinary files and are hashed like any other.

``hash_path`` (and ``hash_file``/``hash_dir_entries``) go through a
``HashState`` so that files whose ``(inode, mtime, size)`` did not change are
not read again.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from pathlib import Path
from typing import TYPE_CHECKING

from exq.engine.data import progress
from exq.engine.data.threads import map_chunked, worth_threads
from exq.engine.errors import CacheError

if TYPE_CHECKING:  # state imports HashInfo from here
    from exq.engine.data.hashdb import HashState

DIR_SUFFIX = ".dir"
IGNORE_FILE = ".dvcignore"


@dataclass(frozen=True)
class HashInfo:
    """The hash of a file or directory as written in ``dvc.lock``.

    ``isexec`` is metadata (DVC writes ``isexec: true`` for executable files)
    and takes no part in equality: two outputs with the same bytes match.
    """

    md5: str
    size: int
    nfiles: int | None = None
    isexec: bool = field(default=False, compare=False)
    # DVC 2's md5 (an entry written without ``hash: md5``): text files hashed
    # with CRLF turned into LF, objects in the cache's old layout (see ``legacy_md5``).
    legacy: bool = field(default=False, compare=False)

    @property
    def isdir(self) -> bool:
        """True for a directory hash (``<md5>.dir``)."""
        return self.md5.endswith(DIR_SUFFIX)


def file_md5(path: Path | str) -> str:
    """Return the hex md5 of a file's bytes, read in large chunks."""
    # Unbuffered: the digest reads into its own buffer, and a raw file skips the
    # isatty and seek calls a buffered one makes at open (a folder may hold a million).
    import hashlib  # here, as below: commands that hash nothing do not load OpenSSL

    with open(path, "rb", buffering=0) as fobj:
        return hashlib.file_digest(fobj, "md5").hexdigest()


# DVC 2's text test and chunking, which DVC 3 keeps for its legacy entries:
# each 1 MiB chunk whose first 512 bytes look like text has its CRLFs hashed as LF.
LEGACY_CHUNK = 2**20
_TEXT_BLOCK = 512
_TEXT_CHARS = bytes(range(32, 127)) + b"\n\r\t\f\b"


def looks_like_text(block: bytes) -> bool:
    """No NUL byte and at most 30% of bytes outside printable ASCII and common controls."""
    if not block:
        return True
    if b"\x00" in block:
        return False
    return len(block.translate(None, _TEXT_CHARS)) / len(block) <= 0.30


def legacy_md5(path: Path | str) -> str:
    """The md5 DVC 2 gave a file (``md5-dos2unix`` to DVC 3)."""
    import hashlib

    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fobj:
        while chunk := fobj.read(LEGACY_CHUNK):
            text = looks_like_text(chunk[:_TEXT_BLOCK])
            digest.update(chunk.replace(b"\r\n", b"\n") if text else chunk)
    return digest.hexdigest()


def bytes_md5(data: bytes) -> str:
    """Return the hex md5 of ``data``."""
    import hashlib

    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def is_exec(mode: int) -> bool:
    """True when a file mode has the owner's execute bit, as DVC's isexec."""
    return bool(mode & stat.S_IXUSR)


def same_stat(a: os.stat_result, b: os.stat_result) -> bool:
    """True when two stats show the same inode, mtime and size (what the state DB keys on)."""
    return (a.st_ino, a.st_mtime_ns, a.st_size) == (b.st_ino, b.st_mtime_ns, b.st_size)


def dir_listing_bytes(entries: Iterable[tuple[str, str]]) -> bytes:
    """Serialize ``(relpath, md5)`` pairs into DVC's ``.dir`` object bytes.

    The bytes of ``json.dumps([{"md5": ..., "relpath": ...}, ...], sort_keys=True)``,
    made by joining strings that json's own escaping quoted: three times
    quicker than building a dict per file for a folder of 100,000.
    """
    quote = encode_basestring_ascii
    items = [f'{{"md5": {quote(md5)}, "relpath": {quote(rel)}}}' for rel, md5 in sorted(entries)]
    return ("[" + ", ".join(items) + "]").encode("ascii")


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def is_md5(name: str) -> bool:
    """Whether ``name`` can name an object: 32 hex digits, then ``.dir`` for a folder.

    A name becomes a path in the cache and on remotes, and names come from
    files anyone can write (``.dvc``, ``dvc.lock``, listings): nothing else passes.
    """
    digits = name[:-4] if name.endswith(DIR_SUFFIX) else name
    return len(digits) == 32 and _HEX_DIGITS.issuperset(digits)


def listing_problem(pairs: Iterable[tuple[str, str]]) -> str | None:
    """What makes a listing from elsewhere (a remote) unsafe to check out: a file
    outside its folder, or an object named by something other than an md5."""
    for rel, md5 in pairs:
        if not rel or rel[0] == "/" or "/../" in f"/{rel}/" or "\x00" in rel:
            return f"{rel!r} is outside the folder"
        if not is_md5(md5):
            return f"{rel!r} names the object {md5!r}"
    return None


def parse_dir_listing(data: bytes) -> list[tuple[str, str]]:
    """Parse a ``.dir`` object into sorted ``(relpath, md5)`` pairs.

    Raises ``ValueError`` when the bytes are not a DVC listing.
    """
    items = json.loads(data.decode("utf-8"))
    if not isinstance(items, list):
        raise ValueError("a .dir listing must be a JSON list")
    pairs = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("relpath"), str):
            raise ValueError("a .dir listing entry needs a relpath")
        md5 = item.get("md5")
        if not isinstance(md5, str):
            raise ValueError(f"entry {item['relpath']!r} has no md5")
        pairs.append((item["relpath"], md5))
    return sorted(pairs)


def dir_hash(entries: Iterable[tuple[str, str, int]]) -> tuple[HashInfo, bytes]:
    """Hash a directory from ``(relpath, md5, size)`` of its files.

    Returns the directory's HashInfo and the listing object's bytes.
    """
    items = list(entries)
    data = dir_listing_bytes((rel, md5) for rel, md5, _ in items)
    info = HashInfo(
        md5=bytes_md5(data) + DIR_SUFFIX,
        size=sum(size for _, _, size in items),
        nfiles=len(items),
    )
    return info, data


# --------------------------------------------------------------- .dvcignore


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def _glob_to_regex(pattern: str) -> str:
    """Translate one gitignore glob (already unanchored/anchored) to a regex."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        if i == 0 and pattern.startswith("**/"):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**/", i):
            out.append("/(?:.*/)?")
            i += 4
        elif pattern.startswith("/**", i) and i + 3 == n:
            out.append("/.*")
            i += 3
        elif pattern == "**":
            out.append(".*")
            i = n
        elif pattern[i] == "*":
            out.append("[^/]*")
            while i < n and pattern[i] == "*":
                i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out.append(re.escape("["))
                i += 1
                continue
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        elif pattern[i] == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def _parse_rule(line: str) -> _Rule | None:
    line = line.rstrip("\r\n")
    # Trailing spaces are dropped unless the last one is escaped.
    line = line.rstrip(" ") + " " if line.endswith("\\ ") else line.rstrip(" ")
    if not line or line.startswith("#"):
        return None
    negate = line.startswith("!")
    if negate or line.startswith(("\\!", "\\#")):
        line = line[1:]
    dir_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    if "/" in line:  # a slash at the start or middle anchors the pattern
        line = line.lstrip("/")
    else:
        line = "**/" + line
    return _Rule(re.compile(_glob_to_regex(line), re.DOTALL), negate, dir_only)


class IgnoreRules:
    """``.dvcignore`` rules: gitignore syntax, deeper files override shallower."""

    def __init__(self) -> None:
        # (folder relative to the repo root, "" for the root; its rules)
        self._scopes: list[tuple[str, list[_Rule]]] = []

    def add_file(self, base: str, path: Path) -> None:
        """Read a ``.dvcignore`` at repo-relative folder ``base``, if present."""
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise CacheError(f"{path}: cannot read ignore file: {exc.strerror}") from exc
        self.add_lines(base, text.splitlines())

    def add_lines(self, base: str, lines: Iterable[str]) -> None:
        """Add gitignore-syntax ``lines`` that apply below repo-relative folder ``base``."""
        rules = [r for r in map(_parse_rule, lines) if r is not None]
        if rules:
            self._scopes.append((base, rules))

    @classmethod
    def for_path(cls, root: Path, top: Path) -> IgnoreRules:
        """Rules from the ``.dvcignore`` files in ``root`` and the folders down to ``top``."""
        rules = cls()
        rules.add_file("", root / IGNORE_FILE)
        try:
            parts = top.relative_to(root).parts
        except ValueError:
            return rules
        for depth in range(1, len(parts) + 1):
            rel = "/".join(parts[:depth])
            rules.add_file(rel, root / rel / IGNORE_FILE)
        return rules

    @property
    def active(self) -> bool:
        """False when there are no rules at all: nothing needs matching."""
        return bool(self._scopes)

    def ignored(self, rel: str, isdir: bool) -> bool:
        """True when repo-relative ``rel`` is ignored (its parents are not checked)."""
        verdict = False
        for base, rules in self._scopes:
            if base:
                if not rel.startswith(base + "/"):
                    continue
                sub = rel[len(base) + 1 :]
            else:
                sub = rel
            for rule in rules:
                if rule.dir_only and not isdir:
                    continue
                if rule.regex.fullmatch(sub):
                    verdict = not rule.negate
        return verdict


# ------------------------------------------------------------------- walking


def _is_special_dir(entry: os.DirEntry[str]) -> bool:
    """``.git``/``.hg`` folders and sub-repos (folders holding ``.dvc``)."""
    if entry.name in (".git", ".hg"):
        return True
    return os.path.isdir(os.path.join(entry.path, ".dvc"))


def walk_files(
    top: Path | str, root: Path | None = None
) -> Iterator[tuple[str, str, os.stat_result]]:
    """Yield ``(relpath, path, stat)`` for each file DVC would hash under ``top``.

    ``root`` is the repo root whose ``.dvcignore`` files apply; relpaths are
    relative to ``top`` with ``/`` separators, in no particular order; paths
    are absolute strings (no ``Path`` per file: a folder may hold a million).
    """
    top = Path(os.path.abspath(top))
    root = root if root is not None else top
    rules = IgnoreRules.for_path(root, top)
    try:
        top_rel = top.relative_to(root).as_posix()
    except ValueError:
        top_rel = ""
    top_rel = "" if top_rel == "." else top_rel
    if os.path.isdir(top / ".dvc"):
        return  # DVC sees a folder holding .dvc as a sub-repo: nothing inside counts
    yield from _walk(str(top), "", top_rel, rules)


def _walk(
    folder: str, rel: str, repo_rel: str, rules: IgnoreRules
) -> Iterator[tuple[str, str, os.stat_result]]:
    if rel:  # nested .dvcignore files apply below their folder
        rules.add_file(repo_rel, Path(folder) / IGNORE_FILE)
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        raise CacheError(f"{folder}: cannot list folder: {exc.strerror}") from exc
    check = rules.active
    for entry in entries:
        child_rel = f"{rel}/{entry.name}" if rel else entry.name
        child_repo = f"{repo_rel}/{entry.name}" if repo_rel else entry.name
        if entry.is_dir(follow_symlinks=False):
            if _is_special_dir(entry) or (check and rules.ignored(child_repo, True)):
                continue
            yield from _walk(entry.path, child_rel, child_repo, rules)
            continue
        if entry.name == ".git":
            continue
        try:
            st = entry.stat(follow_symlinks=True)
        except FileNotFoundError as exc:
            raise CacheError(f"{entry.path}: broken symlink, cannot hash it") from exc
        if not stat.S_ISREG(st.st_mode) or (check and rules.ignored(child_repo, False)):
            continue  # symlinks to folders, fifos, sockets: DVC skips them
        yield child_rel, entry.path, st


# ------------------------------------------------------- hashing with state


def hash_file(path: Path | str, st: os.stat_result, state: HashState) -> HashInfo:
    """Hash one regular file, through the state DB when it is unchanged."""
    return _hash_abs(os.path.abspath(path), st, state)


def _hash_abs(apath: str, st: os.stat_result, state: HashState) -> HashInfo:
    known = state.get_abs(apath, st)
    if known is not None:
        return known
    return _read_hash(apath, st, state)


def _read_hash(apath: str, st: os.stat_result, state: HashState) -> HashInfo:
    try:
        md5 = file_md5(apath)
        after = os.stat(apath)
    except OSError as exc:
        raise CacheError(f"{apath}: cannot read: {exc.strerror}") from exc
    info = HashInfo(md5=md5, size=st.st_size, isexec=is_exec(st.st_mode))
    if same_stat(st, after):  # do not remember the hash of a file being written
        state.put_abs(apath, st, info)
    return info


# ``(relpath, path, stat, md5)`` per file of a folder: plain values, since a
# folder may hold a million files (``file_info`` makes a file's HashInfo).
DirFiles = list[tuple[str, str, os.stat_result, str]]


def file_info(md5: str, st: os.stat_result, legacy: bool = False) -> HashInfo:
    """The HashInfo of a folder's file from its md5 and stat."""
    return HashInfo(md5=md5, size=st.st_size, isexec=is_exec(st.st_mode), legacy=legacy)


def hash_dir_entries(path: Path | str, state: HashState) -> tuple[HashInfo, bytes, DirFiles]:
    """Hash a folder: its HashInfo, listing bytes, and ``(relpath, path, stat, md5)`` per file.

    The state rows of the whole folder are read in one query; files whose stat
    changed are read on a few threads at once.
    """
    known, unknown = scan_dir(path, state)
    known.extend(hash_many(unknown, state))
    dinfo, data = dir_hash((rel, md5, st.st_size) for rel, _, st, md5 in known)
    return dinfo, data, known


def scan_dir(
    path: Path | str, state: HashState
) -> tuple[DirFiles, list[tuple[str, str, os.stat_result]]]:
    """The files of a folder: those the state knows (with their md5), and the others."""
    state.preload(path)
    known: DirFiles = []
    unknown: list[tuple[str, str, os.stat_result]] = []
    for rel, fpath, st in walk_files(path, state.root):
        md5 = state.known_md5(fpath, st)
        if md5 is None:
            unknown.append((rel, fpath, st))
        else:
            known.append((rel, fpath, st, md5))
    return known, unknown


def hash_many(files: list[tuple[str, str, os.stat_result]], state: HashState) -> DirFiles:
    """Read and hash ``(relpath, path, stat)`` files, recording them in the state."""
    total = sum(st.st_size for _, _, st in files)
    with progress.task("Hashing", len(files), total) as shown:

        def one(item: tuple[str, str, os.stat_result]) -> str:
            info = _read_hash(item[1], item[2], state)
            shown.advance(item[2].st_size)
            return info.md5

        md5s = map_chunked(one, files, worth_threads(total, len(files)))
    return [(rel, fpath, st, md5) for (rel, fpath, st), md5 in zip(files, md5s, strict=True)]


def legacy_dir_entries(path: Path, root: Path) -> tuple[HashInfo, bytes, DirFiles]:
    """``hash_dir_entries`` with DVC 2's file md5s (no state DB: it keeps DVC 3 hashes)."""
    files: DirFiles = []
    triples = []
    try:
        for rel, fpath, st in walk_files(path, root):
            md5 = legacy_md5(fpath)
            files.append((rel, fpath, st, md5))
            triples.append((rel, md5, st.st_size))
    except OSError as exc:
        raise CacheError(f"{path}: cannot read: {exc.strerror}") from exc
    dinfo, data = dir_hash(triples)
    return replace(dinfo, legacy=True), data, files


def legacy_hash_path(path: Path | str, root: Path) -> HashInfo:
    """Hash a file or folder as DVC 2 did, to compare with an entry without ``hash: md5``."""
    path = Path(path)
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            return legacy_dir_entries(path, root)[0]
        if stat.S_ISREG(st.st_mode):
            return HashInfo(
                md5=legacy_md5(path), size=st.st_size, isexec=is_exec(st.st_mode), legacy=True
            )
    except FileNotFoundError as exc:
        raise CacheError(f"{path}: does not exist") from exc
    except OSError as exc:
        raise CacheError(f"{path}: cannot read: {exc.strerror}") from exc
    raise CacheError(f"{path}: neither a file nor a folder")


def hash_path(path: Path | str, state: HashState) -> HashInfo:
    """Hash a file or folder as DVC 3 does; raise CacheError when it is missing."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise CacheError(f"{path}: does not exist") from exc
    except OSError as exc:
        raise CacheError(f"{path}: cannot stat: {exc.strerror}") from exc
    if stat.S_ISDIR(st.st_mode):
        return hash_dir_entries(path, state)[0]
    if stat.S_ISREG(st.st_mode):
        return hash_file(path, st, state)
    raise CacheError(f"{path}: neither a file nor a folder")
