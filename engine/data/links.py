"""One file from one place to another: reflinks, hard and symbolic links, kernel copies.

These are the cache's per-file primitives (``cache`` decides which to use and
where); a folder may hold a million files, so each costs as few system calls
as it can: paths are plain strings, copies run in the kernel, and a file
made where nothing was (``copy_new``) needs no temp name and no second stat.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import sys
from collections.abc import Callable
from pathlib import Path

FICLONE = 0x40049409  # Linux ioctl: share the source's extents (btrfs, xfs, ...)

# errnos that mean "this link type cannot work here", not "this one file failed"
UNSUPPORTED = {
    errno.EOPNOTSUPP,
    errno.ENOTSUP,
    errno.EXDEV,
    errno.ENOTTY,
    errno.EINVAL,
    errno.ENOSYS,
    errno.EPERM,
}
# errnos of a kernel copy call that the file system does not offer (try the next way)
_NO_KERNEL_COPY = {errno.EINVAL, errno.ENOSYS, errno.EXDEV, errno.EOPNOTSUPP, errno.ENOTSUP}
_CHUNK = 1 << 30


def reflink(src: Path | str, dst: Path | str) -> None:
    """Make ``dst`` share ``src``'s extents (copy-on-write); OSError where unsupported."""
    if not sys.platform.startswith("linux"):
        raise OSError(errno.ENOTSUP, "reflink is only implemented on Linux")
    import fcntl

    fd_src = os.open(src, os.O_RDONLY)
    try:
        fd_dst = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            fcntl.ioctl(fd_dst, FICLONE, fd_src)
        except OSError:
            os.close(fd_dst)
            os.unlink(dst)
            raise
        os.close(fd_dst)
    finally:
        os.close(fd_src)


def hardlink(src: Path | str, dst: Path | str) -> None:
    os.link(src, dst)


def symlink(src: Path | str, dst: Path | str) -> None:
    os.symlink(os.path.abspath(src), dst)


def copy(src: Path | str, dst: Path | str) -> None:
    """Copy a file's bytes in the kernel (no user-space buffer, no extra stats)."""
    fd_src = os.open(src, os.O_RDONLY)
    try:
        fd_dst = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            copy_fds(fd_src, fd_dst)
        finally:
            os.close(fd_dst)
    finally:
        os.close(fd_src)


def copy_new(src: str, dst: str, size: int, mode: int = 0o666) -> os.stat_result:
    """Copy ``size`` bytes of ``src`` to ``dst``, which must not exist yet; its stat after.

    ``mode`` is the new file's (the umask applies). One open each, one kernel
    copy for a small file, and the stat taken on the open file.
    """
    fd_src = os.open(src, os.O_RDONLY)
    try:
        fd_dst = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            copy_fds(fd_src, fd_dst, size)
            return os.fstat(fd_dst)
        finally:
            os.close(fd_dst)
    finally:
        os.close(fd_src)


def copy_fds(fd_src: int, fd_dst: int, size: int | None = None) -> None:
    """Copy from the start of ``fd_src`` to ``fd_dst`` in the kernel, user space if it must.

    With ``size`` known, no last call is spent to learn that the end was reached.
    """
    if size == 0:
        return
    offset = 0
    for call in (_copy_range, _sendfile):
        try:
            while sent := call(fd_src, fd_dst, offset):
                offset += sent
                if size is not None and offset >= size:
                    return
            return
        except OSError as exc:
            if exc.errno not in _NO_KERNEL_COPY or offset:
                raise
    with open(fd_src, "rb", closefd=False) as fsrc, open(fd_dst, "wb", closefd=False) as fdst:
        import shutil  # the last resort: commands that only read never come here

        shutil.copyfileobj(fsrc, fdst, 1 << 20)


def _copy_range(fd_src: int, fd_dst: int, offset: int) -> int:
    # copy_file_range: a page-cache copy in the kernel, and on btrfs or xfs the
    # file system may share extents instead of copying bytes.
    return os.copy_file_range(fd_src, fd_dst, _CHUNK, offset, offset)


def _sendfile(fd_src: int, fd_dst: int, offset: int) -> int:
    # writes at fd_dst's own position: only ever after this call's earlier writes
    return os.sendfile(fd_dst, fd_src, offset, _CHUNK)


LINKERS: dict[str, Callable[[Path | str, Path | str], None]] = {
    "reflink": reflink,
    "hardlink": hardlink,
    "symlink": symlink,
    "copy": copy,
}

# Temp names: one random token per process and a counter, not a random draw per file.
# (os.urandom, as secrets.token_hex does: secrets would load OpenSSL into every command.)
_token = os.urandom(6).hex()
_counter = itertools.count()


def _new_token() -> None:
    global _token
    _token = os.urandom(6).hex()


if hasattr(os, "register_at_fork"):  # a forked child must not reuse its parent's names
    os.register_at_fork(after_in_child=_new_token)


def tmp_beside(path: Path | str) -> str:
    """A name in ``path``'s folder that no other process or thread will pick."""
    head, name = os.path.split(path)
    return os.path.join(head, f".{name}.exq-{_token}-{next(_counter)}.tmp")


def unlink_quiet(path: Path | str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
