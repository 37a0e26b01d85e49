"""Folders of many files: saved reading each file once, restored into fresh folders on
threads, with the modes, link types and state rows a file-by-file restore gives."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from exq.engine.data import links
from exq.engine.data.cache import Cache, remove_out
from exq.engine.data.hashdb import HashState
from exq.engine.data.hashing import bytes_md5, hash_path
from exq.engine.data.ingest import SMALL

COUNT = 600  # past the thread thresholds: files are made on several threads


@pytest.fixture
def state(tmp_path: Path) -> Iterator[HashState]:
    with HashState(tmp_path) as st:
        yield st


def make_folder(top: Path, count: int = COUNT) -> dict[str, bytes]:
    files = {}
    for i in range(count):
        rel = f"d{i % 12:02d}/sub{i % 3}/f{i}.txt"
        files[rel] = f"file {i}\n".encode() * (i % 9)  # empty files among them
    files["big.bin"] = os.urandom(SMALL * 2 + 12345)  # read by one thread, copied by another
    files["top.txt"] = b"at the top\n"
    for rel, data in files.items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).write_bytes(data)
    return files


def tree_of(top: Path) -> dict[str, bytes]:
    return {p.relative_to(top).as_posix(): p.read_bytes() for p in top.rglob("*") if p.is_file()}


def objects_of(cache: Cache) -> list[Path]:
    return [p for p in cache.objects_dir.rglob("*") if p.is_file()]


def test_a_copied_folder_is_cached_from_one_read_with_read_only_objects(
    tmp_path: Path, state: HashState
) -> None:
    files = make_folder(tmp_path / "data")
    cache = Cache(tmp_path / ".dvc" / "cache", ["copy"])
    info = cache.save(tmp_path / "data", state)
    assert info.nfiles == len(files)
    for rel, data in files.items():
        obj = cache.obj_path(bytes_md5(data))
        assert obj.read_bytes() == data
        assert stat.S_IMODE(obj.stat().st_mode) == 0o444
        # the workspace keeps its own writable copy
        assert (tmp_path / "data" / rel).stat().st_ino != obj.stat().st_ino
    assert not [p for p in objects_of(cache) if p.name.endswith(".tmp")]
    # both the workspace files and the objects are known: nothing is read again
    state.flush()
    with HashState(tmp_path) as fresh:
        assert hash_path(tmp_path / "data", fresh) == info
        assert fresh.misses == 0
        assert cache.exists(info, fresh)
        assert fresh.misses == 0


def test_an_executable_file_saved_by_copy_keeps_its_bit(tmp_path: Path, state: HashState) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    os.chmod(script, 0o755)
    cache = Cache(tmp_path / ".dvc" / "cache", ["copy"])
    info = cache.save(script, state)
    assert info.isexec
    assert stat.S_IMODE(cache.obj_path(info.md5).stat().st_mode) == 0o444
    remove_out(script)
    cache.checkout(script, info, state)
    assert stat.S_IMODE(script.stat().st_mode) & 0o111 == 0o111


@pytest.mark.parametrize("link", ["copy", "hardlink", "symlink"])
def test_checkout_into_an_empty_workspace_restores_every_file(
    tmp_path: Path, state: HashState, link: str
) -> None:
    files = make_folder(tmp_path / "data")
    cache = Cache(tmp_path / ".dvc" / "cache", [link, "copy"])
    info = cache.save(tmp_path / "data", state)
    remove_out(tmp_path / "data")
    cache.checkout(tmp_path / "data", info, state)
    assert tree_of(tmp_path / "data") == files
    for sample in (tmp_path / "data" / "top.txt", tmp_path / "data" / "d03" / "sub0" / "f3.txt"):
        if link == "copy":
            assert sample.stat().st_mode & stat.S_IWUSR and sample.stat().st_nlink == 1
        elif link == "hardlink":
            assert sample.stat().st_nlink == 2
        else:
            assert sample.is_symlink()
    state.flush()
    with HashState(tmp_path) as fresh:  # every restored file has its state row
        assert hash_path(tmp_path / "data", fresh) == info
        assert fresh.misses == 0


def test_checkout_into_a_partly_present_folder_replaces_only_what_differs(
    tmp_path: Path, state: HashState
) -> None:
    files = make_folder(tmp_path / "data")
    cache = Cache(tmp_path / ".dvc" / "cache", ["copy"])
    info = cache.save(tmp_path / "data", state)
    remove_out(tmp_path / "data" / "d05")  # a whole sub-folder gone
    (tmp_path / "data" / "d01" / "sub1" / "f1.txt").write_text("edited")
    (tmp_path / "data" / "d02" / "sub2").rename(tmp_path / "data" / "d02" / "x")  # moved away
    (tmp_path / "data" / "d02" / "sub2").write_text("a file where a folder was")
    kept = (tmp_path / "data" / "d00" / "sub0" / "f0.txt").stat().st_ino
    cache.checkout(tmp_path / "data", info, state)
    assert tree_of(tmp_path / "data") == files
    assert (tmp_path / "data" / "d00" / "sub0" / "f0.txt").stat().st_ino == kept


def test_checkout_in_a_shared_cache_leaves_group_writable_files(
    tmp_path: Path, state: HashState
) -> None:
    make_folder(tmp_path / "data", 200)
    cache = Cache(tmp_path / ".dvc" / "cache", ["copy"], shared=True)
    info = cache.save(tmp_path / "data", state)
    remove_out(tmp_path / "data")
    cache.checkout(tmp_path / "data", info, state)
    sample = tmp_path / "data" / "d04" / "sub1" / "f4.txt"
    assert sample.stat().st_mode & stat.S_IWGRP


def test_a_umask_without_owner_write_still_restores_writable_copies(
    tmp_path: Path, state: HashState
) -> None:
    make_folder(tmp_path / "data", 200)
    cache = Cache(tmp_path / ".dvc" / "cache", ["copy"])
    info = cache.save(tmp_path / "data", state)
    remove_out(tmp_path / "data")
    old = os.umask(0o277)
    try:
        cache.checkout(tmp_path / "data", info, state)
    finally:
        os.umask(old)
    sample = tmp_path / "data" / "d04" / "sub1" / "f4.txt"
    assert sample.stat().st_mode & stat.S_IWUSR


def test_kernel_copies_fall_back_across_file_systems(tmp_path: Path) -> None:
    if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second file system (/dev/shm)")
    data = os.urandom(3 * SMALL + 7)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as other:
        src = Path(other) / "src.bin"
        src.write_bytes(data)
        st = links.copy_new(str(src), str(tmp_path / "copied.bin"), len(data))
        links.copy(src, tmp_path / "again.bin")
    assert (tmp_path / "copied.bin").read_bytes() == data == (tmp_path / "again.bin").read_bytes()
    assert st.st_size == len(data)


def test_temp_names_differ_between_calls_and_processes(tmp_path: Path) -> None:
    names = {links.tmp_beside(tmp_path / "x") for _ in range(100)}
    assert len(names) == 100
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child's names must not repeat the parent's
        os.close(read)
        os.write(write, links.tmp_beside(tmp_path / "x").encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 4096).decode()
    os.waitpid(pid, 0)
    mine = links.tmp_beside(tmp_path / "x")
    assert child.rsplit("-", 1)[0] != mine.rsplit("-", 1)[0]
