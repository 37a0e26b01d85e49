"""A worker's run folder: removed at its end, and by the next worker when it was killed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from exq.daemon.executors.ray.run_dirs import OWNER_FILE, PREFIX, remove_orphans, run_dir


def _folder(root: Path, name: str, owner: int | None) -> Path:
    path = root / f"{PREFIX}{name}"
    (path / "repo").mkdir(parents=True)
    if owner is not None:
        (path / OWNER_FILE).write_text(f"{owner}\n")
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: its number names no process
    return proc.pid


def test_only_the_folders_of_gone_workers_are_removed(tmp_path: Path) -> None:
    dead = _folder(tmp_path, "dead", _dead_pid())
    live = _folder(tmp_path, "live", os.getpid())
    being_made = _folder(tmp_path, "new", None)  # mkdtemp done, owner not yet written
    garbled = _folder(tmp_path, "garbled", None)
    (garbled / OWNER_FILE).write_text("not a pid")
    other = tmp_path / "exq-pack-1"
    other.mkdir()
    (other / OWNER_FILE).write_text(f"{_dead_pid()}\n")

    assert remove_orphans(tmp_path) == [dead]
    assert not dead.exists()
    assert all(p.is_dir() for p in (live, being_made, garbled, other))


def test_a_run_folder_names_its_worker_sweeps_the_dead_and_goes_at_the_end(
    tmp_path: Path,
) -> None:
    dead = _folder(tmp_path, "dead", _dead_pid())
    with run_dir(tmp_path) as path:
        assert path.parent == tmp_path and path.name.startswith(PREFIX)
        assert int((path / OWNER_FILE).read_text()) == os.getpid()
        assert not dead.exists()
        (path / "model.bin").write_bytes(b"x" * 1024)
    assert not path.exists()
