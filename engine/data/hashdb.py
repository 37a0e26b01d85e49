"""The hash database (``state.db``, as DVC calls it): remember file hashes so
unchanged files are not read again.

A row maps an absolute path to the ``(inode, mtime_ns, size)`` it had when it
was hashed, and the md5 found. A lookup is a hit only when all three still
match. Directories are not stored: their hash is rebuilt from their files'
rows, which costs one ``stat`` and one lookup a file.

The DB lives at ``<repo>/.dvc/tmp/exq/state.db`` (or where ``db_path`` says,
e.g. the main repo's DB shared by its worktrees: rows are keyed by absolute
path). It is only a cache: an unreadable or corrupt DB is deleted and
recreated without a word, and a write that cannot happen is dropped.

Writes are buffered and committed at once by ``flush()`` (also on ``close()``
and at the end of a ``with`` block). One instance may be shared by threads.

Like DVC and git, this trusts that a file rewritten with the same size inside
one tick of the file system's clock also gets a new inode or mtime; an
in-place rewrite of the same size in the same tick would go unseen.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path
from types import TracebackType

from exq.engine.data.hashing import HashInfo, is_exec

SCHEMA_VERSION = 1
STATE_RELPATH = Path(".dvc") / "tmp" / "exq" / "state.db"
_AUTOFLUSH = 20_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hashes (
    path TEXT PRIMARY KEY,
    inode INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL
) WITHOUT ROWID
"""

_Row = tuple[int, int, int, str]


def _signed(inode: int) -> int:
    """SQLite integers are signed 64-bit; inodes are unsigned."""
    return inode - (1 << 64) if inode >= (1 << 63) else inode


def _key(st: os.stat_result) -> tuple[int, int, int]:
    return _signed(st.st_ino), st.st_mtime_ns, st.st_size


class HashState:
    """Hashes of files remembered by ``(inode, mtime_ns, size)`` per absolute path."""

    def __init__(self, root: Path | str, db_path: Path | str | None = None) -> None:
        self.root = Path(root).absolute()
        self.db_path = Path(db_path) if db_path is not None else self.root / STATE_RELPATH
        self.hits = 0
        self.misses = 0
        self._conn: sqlite3.Connection | None = None
        self._pending: dict[str, _Row] = {}
        # Rows read in bulk by ``preload``: one query per folder instead of one per file.
        self._loaded: dict[str, _Row] = {}
        self._preloaded: list[str] = []
        self._lock = threading.RLock()

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> HashState:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Commit pending rows and close the DB."""
        with self._lock:
            self.flush()
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connect(self) -> sqlite3.Connection | None:
        """Open (or recreate) the DB; None when it cannot be used at all."""
        if self._conn is not None:
            return self._conn
        for attempt in range(2):
            try:
                self.db_path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.db_path, timeout=10, check_same_thread=False)
                try:
                    self._init_schema(conn)
                except sqlite3.Error:
                    conn.close()
                    raise
                self._conn = conn
                return conn
            except sqlite3.DatabaseError:
                if attempt == 0:
                    self._delete_db()
            except OSError:
                return None
        return None

    @staticmethod
    def _init_schema(conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA synchronous=NORMAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        # Only a new or outdated file is written here: a command that only reads
        # hashes (status) then writes nothing, and its close has no WAL to checkpoint.
        if version != SCHEMA_VERSION:
            conn.execute("PRAGMA journal_mode=WAL")  # kept in the file from now on
            if version != 0:
                conn.execute("DROP TABLE IF EXISTS hashes")
            conn.execute(_SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.commit()
        # Touch the table so a corrupt file fails here, not in the middle of a run.
        conn.execute("SELECT count(*) FROM hashes WHERE path = ''").fetchone()

    def _delete_db(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(OSError):
                os.unlink(f"{self.db_path}{suffix}")

    def _recover(self) -> None:
        """The DB broke under us: start over with an empty one."""
        self._delete_db()
        self._loaded.clear()
        self._preloaded.clear()

    # ----------------------------------------------------------- get / put

    def get(self, path: Path | str, st: os.stat_result) -> HashInfo | None:
        """The remembered hash of the file at ``path`` if ``st`` still matches."""
        return self.get_abs(os.path.abspath(path), st)

    def get_abs(self, apath: str, st: os.stat_result) -> HashInfo | None:
        """``get`` for a path already absolute and normalized (no ``abspath`` per file)."""
        md5 = self.known_md5(apath, st)
        if md5 is None:
            return None
        return HashInfo(md5=md5, size=st.st_size, isexec=is_exec(st.st_mode))

    def known_md5(self, apath: str, st: os.stat_result) -> str | None:
        """The remembered md5 alone (no HashInfo: the per-file loops of big folders)."""
        with self._lock:
            row = self._pending.get(apath) or self._loaded.get(apath)
            if row is None and not self._is_preloaded(apath):
                row = self._select(apath)
            if row is None or row[:3] != _key(st):
                self.misses += 1
                return None
            self.hits += 1
            return row[3]

    def preload(self, folder: Path | str) -> None:
        """Read every row below ``folder`` at once, so lookups under it need no query."""
        prefix = os.path.abspath(folder).rstrip("/") + "/"
        with self._lock:
            if self._is_preloaded(prefix):
                return
            conn = self._connect()
            if conn is None:
                return
            try:
                rows = conn.execute(
                    "SELECT path, inode, mtime_ns, size, md5 FROM hashes"
                    " WHERE path >= ? AND path < ?",
                    (prefix, prefix[:-1] + chr(ord("/") + 1)),
                ).fetchall()
            except sqlite3.DatabaseError:
                self._recover()
                return
            self._loaded.update((r[0], (r[1], r[2], r[3], r[4])) for r in rows)
            self._preloaded.append(prefix)

    def _is_preloaded(self, apath: str) -> bool:
        return any(apath.startswith(prefix) for prefix in self._preloaded)

    def _select(self, apath: str) -> _Row | None:
        conn = self._connect()
        if conn is None:
            return None
        try:
            found = conn.execute(
                "SELECT inode, mtime_ns, size, md5 FROM hashes WHERE path = ?", (apath,)
            ).fetchone()
        except sqlite3.DatabaseError:
            self._recover()
            return None
        return None if found is None else (found[0], found[1], found[2], found[3])

    def put(self, path: Path | str, st: os.stat_result, info: HashInfo) -> None:
        """Remember that the file at ``path`` with stat ``st`` hashes to ``info``."""
        self.put_abs(os.path.abspath(path), st, info)

    def put_abs(self, apath: str, st: os.stat_result, info: HashInfo) -> None:
        """``put`` for a path already absolute and normalized."""
        if info.isdir:
            return  # directory hashes are rebuilt from their files' rows
        with self._lock:
            self._pending[apath] = (*_key(st), info.md5)
            if len(self._pending) >= _AUTOFLUSH:
                self.flush()

    def forget(self, path: Path | str) -> None:
        """Drop what is remembered about ``path`` (e.g. a deleted cache object)."""
        apath = os.path.abspath(path)
        with self._lock:
            self._pending.pop(apath, None)
            self._loaded.pop(apath, None)
            conn = self._connect()
            if conn is None:
                return
            try:
                with conn:
                    conn.execute("DELETE FROM hashes WHERE path = ?", (apath,))
            except sqlite3.OperationalError:
                pass  # busy: a later stat mismatch still protects us
            except sqlite3.DatabaseError:
                self._recover()

    def flush(self) -> None:
        """Commit the buffered rows in one transaction (dropped if the DB is unusable)."""
        with self._lock:
            if not self._pending:
                return
            rows = [(p, *row) for p, row in self._pending.items()]
            if self._preloaded:  # preloaded folders are not queried again: keep their rows
                self._loaded.update(self._pending)
            self._pending.clear()
            conn = self._connect()
            if conn is None:
                return
            try:
                with conn:
                    conn.executemany(
                        "INSERT OR REPLACE INTO hashes (path, inode, mtime_ns, size, md5)"
                        " VALUES (?, ?, ?, ?, ?)",
                        rows,
                    )
            except sqlite3.OperationalError:
                pass  # locked for too long by another process: it is only a cache
            except sqlite3.DatabaseError:
                self._recover()
