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
import json
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exq.engine.errors import ExqError
from exq.engine.git import GitObject

MAGIC = b"EXQPACK1\n"
FRAME_MARK = "\x1eexq1 "
FRAME_WIDTH = 16384  # base64 characters per frame line
READ_ONLY = 0o444
DIR_SUFFIX = ".dir"


class ShipmentError(ExqError):
    """A pack or a frame arrived damaged."""


@dataclass
class Pack:
    meta: dict[str, Any]
    objects: list[GitObject] = field(default_factory=list)
    cache: list[tuple[str, bytes]] = field(default_factory=list)  # (md5 name, content)


def encode_pack(pack: Pack) -> bytes:
    header = {
        "meta": pack.meta,
        "objects": [[sha, kind, len(data)] for sha, kind, data in pack.objects],
        "cache": [[name, len(data)] for name, data in pack.cache],
    }
    body = [json.dumps(header).encode() + b"\n"]
    body += [data for _, _, data in pack.objects]
    body += [data for _, data in pack.cache]
    return MAGIC + zlib.compress(b"".join(body), 1)


def decode_pack(blob: bytes) -> Pack:
    if not blob.startswith(MAGIC):
        raise ShipmentError("not an exq pack")
    try:
        raw = zlib.decompress(blob[len(MAGIC) :])
        head, _, body = raw.partition(b"\n")
        header = json.loads(head)
    except (zlib.error, ValueError) as exc:
        raise ShipmentError(f"damaged pack: {exc}") from exc
    pack, offset = Pack(meta=header["meta"]), 0
    for sha, kind, size in header["objects"]:
        pack.objects.append((sha, kind, body[offset : offset + size]))
        offset += size
    for name, size in header["cache"]:
        data = body[offset : offset + size]
        if _md5_name(name, data) != name:
            raise ShipmentError(f"cache object {name} arrived damaged")
        pack.cache.append((name, data))
        offset += size
    if offset != len(body):
        raise ShipmentError("damaged pack: its size does not match its header")
    return pack


def _md5_name(name: str, data: bytes) -> str:
    digest = hashlib.md5(data).hexdigest()  # DVC's object names are md5s
    return digest + DIR_SUFFIX if name.endswith(DIR_SUFFIX) else digest


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


def read_cache(objects_dir: Path, names: Iterable[str]) -> list[tuple[str, bytes]]:
    """The content of the named objects that the cache holds."""
    out = []
    for name in sorted(set(names)):
        try:
            out.append((name, object_path(objects_dir, name).read_bytes()))
        except FileNotFoundError:
            continue  # not cached here: its stage runs again
    return out


def write_cache(objects_dir: Path, files: Iterable[tuple[str, bytes]]) -> int:
    """Add objects to a cache, read-only as the cache keeps them; how many were new."""
    added = 0
    for name, data in files:
        path = object_path(objects_dir, name)
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.chmod(tmp, READ_ONLY)
        os.replace(tmp, path)
        added += 1
    return added


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
    text = base64.b64encode(pack).decode()
    parts = [text[i : i + width] for i in range(0, len(text), width)] or [""]
    return "".join(
        f"{FRAME_MARK}{seq} {index} {len(parts)} {part}\n" for index, part in enumerate(parts)
    )


class FrameReader:
    """Splits a run's output, fed in chunks of any size, into text and packs."""

    def __init__(self) -> None:
        self._partial = ""
        self._parts: dict[int, list[str]] = {}

    def feed(self, chunk: str) -> tuple[str, list[tuple[int, bytes]]]:
        """The plain output in ``chunk`` and the packs it completed (seq, bytes)."""
        lines = (self._partial + chunk).split("\n")
        self._partial = lines.pop()
        text: list[str] = []
        packs: list[tuple[int, bytes]] = []
        for line in lines:
            at = line.find(FRAME_MARK)
            if at < 0:
                text.append(line + "\n")
                continue
            if at > 0:  # output that did not end its line before the frame
                text.append(line[:at] + "\n")
            done = self._frame(line[at + len(FRAME_MARK) :])
            if done is not None:
                packs.append(done)
        return "".join(text), packs

    def flush(self) -> str:
        """Output left without a final newline."""
        rest, self._partial = self._partial, ""
        return rest

    def _frame(self, body: str) -> tuple[int, bytes] | None:
        try:
            seq_text, index_text, count_text, part = body.split(" ", 3)
            seq, index, count = int(seq_text), int(index_text), int(count_text)
        except ValueError as exc:
            raise ShipmentError(f"damaged frame: {body[:40]!r}") from exc
        parts = self._parts.setdefault(seq, [])
        if index != len(parts):  # a replay from the start: begin this pack again
            if index != 0:
                raise ShipmentError(f"frame {index} of pack {seq} arrived out of order")
            parts.clear()
        parts.append(part)
        if len(parts) < count:
            return None
        del self._parts[seq]
        try:
            return seq, base64.b64decode("".join(parts), validate=True)
        except ValueError as exc:
            raise ShipmentError(f"damaged pack {seq}: {exc}") from exc
