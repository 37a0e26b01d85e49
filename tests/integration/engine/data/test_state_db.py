"""The state DB: hits only for unchanged files, survives restarts, recovers from corruption."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from exq.engine.data.hashdb import STATE_RELPATH, HashState
from exq.engine.data.hashing import HashInfo, hash_path


def test_put_get_round_trip_and_persists(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("abc")
    info = HashInfo("900150983cd24fb0d6963f7d28e17f72", 3)
    with HashState(tmp_path) as state:
        assert state.get(f, os.stat(f)) is None
        state.put(f, os.stat(f), info)
        assert state.get(f, os.stat(f)) == info  # visible before the flush
    assert (tmp_path / STATE_RELPATH).is_file()
    with HashState(tmp_path) as again:
        assert again.get(f, os.stat(f)) == info
        assert (again.hits, again.misses) == (1, 0)


def test_changed_stat_is_a_miss(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("abc")
    with HashState(tmp_path) as state:
        state.put(f, os.stat(f), HashInfo("x" * 32, 3))
        st = os.stat(f)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        assert state.get(f, os.stat(f)) is None
        f.write_text("abcd")
        assert state.get(f, os.stat(f)) is None


def test_corrupt_db_is_recreated_silently(tmp_path: Path) -> None:
    db = tmp_path / STATE_RELPATH
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a sqlite database" * 100)
    f = tmp_path / "f"
    f.write_text("abc")
    with HashState(tmp_path) as state:
        assert state.get(f, os.stat(f)) is None
        state.put(f, os.stat(f), HashInfo("y" * 32, 3))
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT md5 FROM hashes").fetchall() == [("y" * 32,)]


def test_db_path_can_be_shared(tmp_path: Path) -> None:
    shared = tmp_path / "main" / "state.db"
    f = tmp_path / "f"
    f.write_text("abc")
    with HashState(tmp_path / "worktree1", db_path=shared) as one:
        one.put(f, os.stat(f), HashInfo("z" * 32, 3))
    with HashState(tmp_path / "worktree2", db_path=shared) as two:
        assert two.get(f, os.stat(f)) == HashInfo("z" * 32, 3)


def test_second_hash_of_2000_files_reads_none_of_them(tmp_path: Path) -> None:
    top = tmp_path / "many"
    for i in range(2000):
        sub = top / f"d{i % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:04d}.txt").write_text(f"content {i}\n")
    with HashState(tmp_path) as state:
        first = hash_path(top, state)
        assert (state.hits, state.misses) == (0, 2000)
    with HashState(tmp_path) as state:
        second = hash_path(top, state)
        assert (state.hits, state.misses) == (2000, 0)
    assert first == second and first.nfiles == 2000
    (top / "d07" / "f0007.txt").write_text("changed, and longer\n")
    with HashState(tmp_path) as state:
        third = hash_path(top, state)
        assert (state.hits, state.misses) == (1999, 1)
    assert third.md5 != first.md5


def test_threads_may_share_one_state(tmp_path: Path) -> None:
    files = []
    for i in range(200):
        f = tmp_path / f"f{i}"
        f.write_text(str(i))
        files.append(f)
    errors: list[BaseException] = []
    with HashState(tmp_path) as state:

        def work(chunk: list[Path]) -> None:
            try:
                for f in chunk:
                    state.put(f, os.stat(f), HashInfo(f"{int(f.name[1:]):032d}", 0))
                    state.get(f, os.stat(f))
                    state.flush()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(files[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    with HashState(tmp_path) as state:
        assert state.get(files[123], os.stat(files[123])) == HashInfo(f"{123:032d}", 3)


def test_reading_hashes_writes_nothing(tmp_path: Path) -> None:
    # status only reads: no write transaction, so closing has no WAL to checkpoint
    f = tmp_path / "f"
    f.write_text("abc")
    info = HashInfo("900150983cd24fb0d6963f7d28e17f72", 3)
    with HashState(tmp_path) as state:
        state.put(f, os.stat(f), info)
    db = tmp_path / STATE_RELPATH
    keeper = sqlite3.connect(db)  # held open: the WAL outlives the others' closes
    try:
        keeper.execute("SELECT count(*) FROM hashes").fetchone()
        wal = db.with_name(db.name + "-wal")
        before = wal.stat().st_size if wal.exists() else 0
        with HashState(tmp_path) as reader:
            assert reader.get(f, os.stat(f)) == info
        assert (wal.stat().st_size if wal.exists() else 0) == before
    finally:
        keeper.close()
