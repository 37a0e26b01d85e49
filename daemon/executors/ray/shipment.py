"""What travels between the daemon and a run on another machine: packs and frames.

A *pack* is one self-checking bundle of git objects and cache files with a
JSON header (``meta``). The daemon sends one with a run (its snapshot commit
and the cached inputs it needs); the worker sends one back at each checkpoint
and at the end (the new commits and the new cache objects).

Packs come back inside the run's own output, as *frames*: lines that start
with :data:`FRAME_MARK` (an ASCII record separator, which no training script
prints at the start of a line) and carry a slice of the base64 of a pack. A
cluster keeps a job's output and replays it from the start on request, so a
daemon that restarts mid-run reads every pack again, and no port is opened on
either side. :class:`FrameReader` splits a stream of output back into plain
text and packs.

Layout of a pack: ``MAGIC``, then zlib of: one JSON line (the header: ``meta``
and the list of entries with their sizes), then the entries' bytes one after
another. Each entry's name is checked on the way in: git objects by their
hash (in :meth:`exq.engine.git.Git.import_objects`), cache files by their md5.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from exq.engine.errors import ExqError
from exq.engine.git import GitObject

MAGIC = b"EXQPACK1\n"
FRAME_MARK = "\x1eexq1 "
FRAME_WIDTH = 16384  # base64 characters per frame line
READ_ONLY = 0o444
DIR_SUFFIX = ".dir"
PIECE = 1 << 20  # bytes read, inflated or written at once: a pack is never whole in memory
SPOOL_IN_MEMORY = 8 << 20  # a pack being received stays in memory up to this size, then on disk


class ShipmentError(ExqError):
    """A pack or a frame arrived damaged."""


@dataclass
class Pack:
    meta: dict[str, Any]
    objects: list[GitObject] = field(default_factory=list)
    cache: list[tuple[str, bytes]] = field(default_factory=list)  # (md5 name, content)


# A cache entry to pack: its content, or the file holding it (read in pieces).
CacheSource = bytes | Path


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


def write_pack(
    out: Writable,
    meta: dict[str, Any],
    objects: Iterable[GitObject],
    cache: Iterable[tuple[str, CacheSource]],
) -> int:
    """Write a pack to ``out``, reading cache files in pieces; the bytes written."""
    objects, cache = list(objects), list(cache)
    header = {
        "meta": meta,
        "objects": [[sha, kind, len(data)] for sha, kind, data in objects],
        "cache": [[name, _source_size(source)] for name, source in cache],
    }
    squeeze = zlib.compressobj(1)
    written = out.write(MAGIC)

    def put(data: bytes) -> None:
        nonlocal written
        written += out.write(squeeze.compress(data))

    put(json.dumps(header).encode() + b"\n")
    for _, _, data in objects:
        put(data)
    for _, source in cache:
        for piece in _source_pieces(source):
            put(piece)
    written += out.write(squeeze.flush())
    return written


def _source_size(source: CacheSource) -> int:
    return len(source) if isinstance(source, bytes) else source.stat().st_size


def _source_pieces(source: CacheSource) -> Iterator[bytes]:
    if isinstance(source, bytes):
        yield source
        return
    with open(source, "rb") as stream:
        while piece := stream.read(PIECE):
            yield piece


def encode_pack(pack: Pack) -> bytes:
    out = io.BytesIO()
    write_pack(out, pack.meta, pack.objects, pack.cache)
    return out.getvalue()


class _Inflater:
    """The uncompressed body of a pack, read from ``stream`` in bounded pieces."""

    def __init__(self, stream: BinaryIO) -> None:
        if stream.read(len(MAGIC)) != MAGIC:
            raise ShipmentError("not an exq pack")
        self._stream = stream
        self._zlib = zlib.decompressobj()
        self._buffer = b""

    def _fill(self) -> bool:
        """Inflate one more piece into the buffer; False at the end of the pack."""
        try:
            if self._zlib.unconsumed_tail:
                data = self._zlib.decompress(self._zlib.unconsumed_tail, PIECE)
            else:
                raw = self._stream.read(PIECE)
                if not raw:
                    if not self._zlib.eof:
                        raise ShipmentError("damaged pack: it ends early")
                    return False
                data = self._zlib.decompress(raw, PIECE)
        except zlib.error as exc:
            raise ShipmentError(f"damaged pack: {exc}") from exc
        self._buffer += data
        return True

    def line(self) -> bytes:
        while b"\n" not in self._buffer:
            if not self._fill():
                raise ShipmentError("damaged pack: no header")
        head, _, self._buffer = self._buffer.partition(b"\n")
        return head

    def pieces(self, size: int) -> Iterator[bytes]:
        """The next ``size`` bytes, in pieces of at most ``PIECE``."""
        while size > 0:
            if not self._buffer and not self._fill():
                raise ShipmentError("damaged pack: its size does not match its header")
            piece, self._buffer = self._buffer[:size], self._buffer[size:]
            size -= len(piece)
            yield piece

    def at_end(self) -> bool:
        return not self._buffer and not self._fill()


CacheTaker = Callable[[str, Iterator[bytes]], object]


def read_pack(stream: BinaryIO, take_cache: CacheTaker) -> Pack:
    """Read a pack from ``stream`` in bounded pieces. Cache entries go to
    ``take_cache(name, pieces)``, which must consume the pieces; the pack
    returned holds the meta and the git objects."""
    body = _Inflater(stream)
    try:
        header = json.loads(body.line())
        pack = Pack(meta=header["meta"])
        for sha, kind, size in header["objects"]:
            pack.objects.append((sha, kind, b"".join(body.pieces(size))))
        for name, size in header["cache"]:
            take_cache(name, _checked(name, body.pieces(size)))
    except (ValueError, KeyError, TypeError) as exc:
        raise ShipmentError(f"damaged pack: {exc}") from exc
    if not body.at_end():
        raise ShipmentError("damaged pack: its size does not match its header")
    return pack


def _checked(name: str, pieces: Iterator[bytes]) -> Iterator[bytes]:
    """The pieces, raising at the end if they are not the object ``name``."""
    digest = hashlib.md5()  # DVC's object names are md5s
    for piece in pieces:
        digest.update(piece)
        yield piece
    got = digest.hexdigest() + (DIR_SUFFIX if name.endswith(DIR_SUFFIX) else "")
    if got != name:
        raise ShipmentError(f"cache object {name} arrived damaged")


def decode_pack(blob: bytes) -> Pack:
    """A pack held in memory, its cache objects with it."""
    cache: list[tuple[str, bytes]] = []
    pack = read_pack(io.BytesIO(blob), lambda name, pieces: cache.append((name, b"".join(pieces))))
    pack.cache = cache
    return pack


# -- cache files ----------------------------------------------------------------


def object_path(objects_dir: Path, name: str) -> Path:
    """Where the cache keeps the object named ``name`` (``<md5>`` or ``<md5>.dir``)."""
    return objects_dir / name[:2] / name[2:]


def cache_names(objects_dir: Path) -> set[str]:
    """The objects in a cache's ``files/md5`` folder, as md5 names."""
    names: set[str] = set()
    if objects_dir.is_dir():
        for sub in os.scandir(objects_dir):
            if sub.is_dir() and len(sub.name) == 2:
                names.update(
                    sub.name + entry.name
                    for entry in os.scandir(sub.path)
                    if not entry.name.startswith(".")
                )
    return names


def write_cache(objects_dir: Path, files: Iterable[tuple[str, bytes]]) -> int:
    """Add objects to a cache, read-only as the cache keeps them; how many were new."""
    return sum(store_cache_object(objects_dir, name, iter([data])) for name, data in files)


def store_cache_object(objects_dir: Path, name: str, pieces: Iterator[bytes]) -> bool:
    """Add the object ``name`` to a cache from its content in pieces (consumed
    whole either way); whether it was new. Nothing is left half-written."""
    path = object_path(objects_dir, name)
    if path.exists():
        for _ in pieces:
            pass
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            for piece in pieces:
                out.write(piece)
        os.chmod(tmp, READ_ONLY)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def listed_names(listing: bytes) -> list[str]:
    """The md5 names a ``.dir`` listing points at."""
    try:
        entries = json.loads(listing)
    except ValueError:
        return []
    return [entry["md5"] for entry in entries if isinstance(entry, dict) and "md5" in entry]


def hashes_in(document: Any) -> Iterator[str]:
    """Every ``md5`` value in a parsed ``dvc.lock`` or ``.dvc`` file."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "md5" and isinstance(value, str):
                yield value
            else:
                yield from hashes_in(value)
    elif isinstance(document, list):
        for item in document:
            yield from hashes_in(item)


# -- frames ---------------------------------------------------------------------


def frame_lines(seq: int, pack: bytes, width: int = FRAME_WIDTH) -> str:
    """Pack number ``seq`` as frame lines, ready to print in one write."""
    return "".join(frame_file(seq, io.BytesIO(pack), len(pack), width))


def frame_file(seq: int, pack: BinaryIO, size: int, width: int = FRAME_WIDTH) -> Iterator[str]:
    """Pack number ``seq``, ``size`` bytes read from ``pack`` in pieces, as frame
    lines, a few KB in memory at a time."""
    piece = width // 4 * 3  # bytes that make ``width`` base64 characters
    count = max(1, -(-size // piece))
    for index in range(count):
        part = base64.b64encode(pack.read(piece)).decode()
        yield f"{FRAME_MARK}{seq} {index} {count} {part}\n"


class FrameReader:
    """Splits a run's output, fed in chunks of any size, into text and packs.

    Packs are decoded frame by frame into a spool (in memory while small, then
    a temporary file in ``spool_dir``), so a pack of any size takes a few
    frames of memory. Positions count characters of the whole output: a
    reader that resumes at ``start`` (a restarted daemon) must start at a
    :attr:`settled` position, and leaves out the text of lines that end at or
    before ``written`` (it was written before the restart).
    """

    def __init__(self, start: int = 0, written: int = 0, spool_dir: Path | None = None) -> None:
        self._partial = ""
        self._spool_dir = spool_dir
        self._open: dict[int, _Spool] = {}  # packs whose frames are coming
        self.start = start
        self.position = start  # the end of the last whole line read
        self.settled = start  # the end of the last whole line read with no pack open
        self.written = max(written, start)

    @property
    def read(self) -> int:
        """Characters of output taken so far (the last line may be partial)."""
        return self.position + len(self._partial)

    def feed(self, chunk: str) -> tuple[str, list[tuple[int, BinaryIO]]]:
        """The plain output in ``chunk`` and the packs it completed (seq, the
        pack as a file positioned at its start: the caller closes it)."""
        lines = (self._partial + chunk).split("\n")
        self._partial = lines.pop()
        text: list[str] = []
        packs: list[tuple[int, BinaryIO]] = []
        for line in lines:
            self.position += len(line) + 1
            fresh = self.position > self.written
            at = line.find(FRAME_MARK)
            if at < 0:
                text.append(line + "\n" if fresh else "")
            else:
                if at > 0 and fresh:  # output that did not end its line before the frame
                    text.append(line[:at] + "\n")
                done = self._frame(line[at + len(FRAME_MARK) :])
                if done is not None:
                    packs.append(done)
            if not self._open:
                self.settled = self.position
        self.written = max(self.written, self.position)
        return "".join(text), packs

    def flush(self) -> str:
        """Output left without a final newline."""
        rest, self._partial = self._partial, ""
        return rest

    def close(self) -> None:
        """Drop the packs still open (their spools)."""
        for spool in self._open.values():
            spool.file.close()
        self._open.clear()

    def _frame(self, body: str) -> tuple[int, BinaryIO] | None:
        try:
            seq_text, index_text, count_text, part = body.split(" ", 3)
            seq, index, count = int(seq_text), int(index_text), int(count_text)
        except ValueError as exc:
            raise ShipmentError(f"damaged frame: {body[:40]!r}") from exc
        if index == 0:  # a pack begins (again, on a replay from the start)
            if seq in self._open:
                self._open.pop(seq).file.close()
            self._open[seq] = _Spool(self._spool_dir)
        spool = self._open.get(seq)
        if spool is None or index != spool.frames:
            raise ShipmentError(f"frame {index} of pack {seq} arrived out of order")
        spool.add(part)
        if spool.frames < count:
            return None
        del self._open[seq]
        return seq, spool.done(seq)


class _Spool:
    """One pack being received: its base64 decoded frame by frame."""

    def __init__(self, folder: Path | None) -> None:
        self.file: BinaryIO = tempfile.SpooledTemporaryFile(  # type: ignore[assignment]
            max_size=SPOOL_IN_MEMORY,
            prefix="exq-pack-",
            dir=None if folder is None else str(folder),
        )
        self.frames = 0
        self._carry = ""  # base64 characters short of a 4-character group

    def add(self, part: str) -> None:
        text = self._carry + part
        whole = len(text) - len(text) % 4
        self._carry = text[whole:]
        try:
            self.file.write(base64.b64decode(text[:whole], validate=True))
        except ValueError as exc:
            raise ShipmentError(f"damaged frame: {exc}") from exc
        self.frames += 1

    def done(self, seq: int) -> BinaryIO:
        if self._carry:
            self.file.close()
            raise ShipmentError(f"damaged pack {seq}: its base64 is cut short")
        self.file.seek(0)
        return self.file
