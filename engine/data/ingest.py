"""Reading a file once to both hash it and copy it into the cache.

Where cache objects are copies (no reflinks on the file system, and hard
links not wanted: root's default, or ``cache.type = copy``), saving a file
the hash database does not know would read it twice: once to learn its hash,
once to copy it to the object that hash names. These primitives read it once:

- a small file is read whole into memory, hashed there, and written to its
  object from the same bytes (``read_whole``, then ``write_new``);
- a large one is hashed on the calling thread while the kernel copies it to a
  temp name in the cache on another (``hash_while_copying``): on two cores the
  copy costs no time beside the hashing, and no byte of it passes through
  user space. The temp file is renamed to its object once the hash is known.
"""

from __future__ import annotations

import os
import threading

from exq.engine.data.links import copy_fds, unlink_quiet

# Files up to this size are read whole into memory (one read, one write).
SMALL = 1 << 20
_BUFSIZE = 1 << 20


def read_whole(path: str, size: int) -> tuple[bytes, os.stat_result]:
    """The bytes of a file of about ``size`` bytes, and its stat once read.

    A stat that differs from the one ``size`` came from means the file changed
    while it was read.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        # A regular file reads short only at its end: one call reads it all, and
        # one byte more than expected shows a file that grew.
        data = os.read(fd, size + 1)
        return data, os.fstat(fd)
    finally:
        os.close(fd)


def write_new(path: str, data: bytes, mode: int) -> os.stat_result:
    """Write ``data`` to a new file ``path`` made with ``mode`` (the umask applies); its stat."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        return os.fstat(fd)
    finally:
        os.close(fd)


def file_md5_fd(fd: int) -> str:
    """The md5 of what ``fd`` reads from its position on, through one reused buffer."""
    import hashlib  # only when bytes are hashed: status on an unchanged workspace hashes none

    digest = hashlib.md5(usedforsecurity=False)
    buf = bytearray(_BUFSIZE)
    view = memoryview(buf)
    if hasattr(os, "posix_fadvise"):  # read ahead generously: the file is read once, in order
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    while n := os.readv(fd, [buf]):
        digest.update(view[:n])
    return digest.hexdigest()


def hash_while_copying(
    src: str, dst: str, size: int, mode: int
) -> tuple[str, os.stat_result, os.stat_result]:
    """Hash ``src`` while the kernel copies it to the new file ``dst`` on another thread.

    Answers the md5, ``src``'s stat once read and ``dst``'s stat. ``dst`` is
    removed when anything fails.
    """
    failure: list[BaseException] = []
    fd_copy = os.open(src, os.O_RDONLY)
    try:
        fd_dst = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except BaseException:
        os.close(fd_copy)
        raise

    def copy() -> None:
        try:
            copy_fds(fd_copy, fd_dst, size)
        except BaseException as exc:  # re-raised on the calling thread
            failure.append(exc)

    copier = threading.Thread(target=copy, name="exq-copy", daemon=True)
    copier.start()
    try:
        fd_hash = os.open(src, os.O_RDONLY)
        try:
            md5 = file_md5_fd(fd_hash)
            after = os.fstat(fd_hash)
        finally:
            os.close(fd_hash)
        copier.join()
        if failure:
            raise failure[0]
        return md5, after, os.fstat(fd_dst)
    except BaseException:
        copier.join()
        unlink_quiet(dst)
        raise
    finally:
        os.close(fd_dst)
        os.close(fd_copy)
