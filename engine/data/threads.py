"""Per-file work on a few threads: hashing and copying release the GIL in their syscalls.

Items go to the threads in contiguous chunks, not one task each: a task per
file costs more in the executor than a small file costs to hash.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

CORES = os.cpu_count() or 1
WORKERS = min(8, 2 * CORES)
_MIN_PER_THREAD = 64
# Below this mean file size, per-file Python work outweighs the syscalls that
# release the GIL, and threads only fight over it.
_MIN_MEAN_BYTES = 256 * 1024


def worth_threads(total_bytes: int, count: int) -> int:
    """How many threads suit ``count`` files of ``total_bytes``: 1 when they are small."""
    return WORKERS if count and total_bytes / count >= _MIN_MEAN_BYTES else 1


def map_chunked(fn: Callable[[T], R], items: Sequence[T], workers: int = WORKERS) -> list[R]:
    """``[fn(x) for x in items]``, run on up to ``workers`` threads; the first error propagates."""
    n_threads = min(workers, len(items) // _MIN_PER_THREAD)
    if n_threads < 2:
        return [fn(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    size = -(-len(items) // n_threads)
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    with ThreadPoolExecutor(n_threads) as pool:
        parts = list(pool.map(lambda chunk: [fn(item) for item in chunk], chunks))
    return [result for part in parts for result in part]


def creating_threads(count: int) -> int:
    """How many threads suit making ``count`` files: one per core.

    Making a file is kernel work whatever its size (a new inode, a folder
    entry) and folders apart do not wait on each other; but each of its short
    system calls gives the GIL back and takes it again, and more threads than
    cores turn that into a convoy (on 2 cores, 4 threads made 40 futex calls a
    file where 2 made 0.3).
    """
    return min(CORES, 8) if count >= 2 * _MIN_PER_THREAD else 1
