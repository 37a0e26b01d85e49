"""The cache: save, link, checkout, and never trusting an object edited through a link."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from exq.engine.data.cache import Cache, hash_path, remove_out
from exq.engine.data.hashdb import HashState
from exq.engine.data.hashing import HashInfo, parse_dir_listing
from exq.engine.errors import CacheError, ConfigError

HELLO_MD5 = "b1946ac92492d2347c6235b4d2611184"  # md5 of b"hello\n"


@pytest.fixture
def state(tmp_path: Path) -> Iterator[HashState]:
    with HashState(tmp_path) as st:
        yield st


def cache_at(tmp_path: Path, *types: str) -> Cache:
    return Cache(tmp_path / ".dvc" / "cache", list(types) if types else None)


TREE = {"a.txt": "hello\n", "sub/b.txt": "bee", "sub/deep/c": "sea", "dup": "bee"}


def make_dir(top: Path) -> None:
    for rel, text in TREE.items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).write_text(text)


def test_save_file_by_copy(tmp_path: Path, state: HashState) -> None:
    cache = cache_at(tmp_path, "copy")
    f = tmp_path / "out.txt"
    f.write_text("hello\n")
    info = cache.save(f, state)
    obj = tmp_path / ".dvc/cache/files/md5/b1/946ac92492d2347c6235b4d2611184"
    assert info == HashInfo(HELLO_MD5, 6)
    assert obj.read_text() == "hello\n"
    assert stat.S_IMODE(obj.stat().st_mode) == 0o444
    assert obj.stat().st_ino != f.stat().st_ino
    assert f.stat().st_mode & stat.S_IWUSR  # the workspace copy stays writable
    assert cache.exists(info, state)
    assert [p.name for p in obj.parent.iterdir()] == [obj.name]  # no temp files left


def test_save_file_by_hardlink_shares_the_inode(tmp_path: Path, state: HashState) -> None:
    cache = cache_at(tmp_path, "hardlink", "copy")
    f = tmp_path / "out.txt"
    f.write_text("hello\n")
    info = cache.save(f, state)
    assert cache.obj_path(info.md5).stat().st_ino == f.stat().st_ino
    assert f.stat().st_nlink == 2
    assert cache.last_link_type == "hardlink"


def test_default_order_falls_back_from_reflink(tmp_path: Path, state: HashState) -> None:
    cache = cache_at(tmp_path)
    assert cache.link_types == ["reflink", "hardlink", "copy"]
    f = tmp_path / "out.txt"
    f.write_text("hello\n")
    cache.save(f, state)
    assert cache.last_link_type in ("reflink", "hardlink")  # reflink only on btrfs/xfs...


def test_save_dir_writes_dvc_listing_and_dedupes(tmp_path: Path, state: HashState) -> None:
    cache = cache_at(tmp_path, "hardlink", "copy")
    top = tmp_path / "data"
    make_dir(top)
    info = cache.save(top, state)
    assert info.isdir and (info.size, info.nfiles) == (15, 4)
    listing = parse_dir_listing(cache.obj_path(info.md5).read_bytes())
    assert [rel for rel, _ in listing] == ["a.txt", "dup", "sub/b.txt", "sub/deep/c"]
    assert cache.obj_path(info.md5).name.endswith(".dir")
    # "dup" and "sub/b.txt" hold the same bytes: one object, both names link to it
    bee = cache.obj_path(dict(listing)["dup"]).stat().st_ino
    assert (top / "dup").stat().st_ino == bee == (top / "sub/b.txt").stat().st_ino
    assert cache.exists(info, state)
    os.unlink(cache.obj_path(dict(listing)["sub/deep/c"]))
    assert not cache.exists(info, state)


def test_checkout_file_restores_and_records_state(tmp_path: Path, state: HashState) -> None:
    cache = cache_at(tmp_path, "copy")
    f = tmp_path / "out.txt"
    f.write_text("hello\n")
    info = cache.save(f, state)
    f.write_text("edited")
    cache.checkout(f, info, state)
    assert f.read_text() == "hello\n"
    f.unlink()
    cache.checkout(f, info, state)
    assert f.read_text() == "hello\n"
    before = state.misses
    assert hash_path(f, state) == info
    assert state.misses == before  # checkout remembered the new file's hash


def test_checkout_skips_a_matching_workspace(tmp_path: Path, state: HashState) -> None:
    cache = cache_at(tmp_path, "copy")
    top = tmp_path / "data"
    make_dir(top)
    info = cache.save(top, state)
    inodes = {p: p.stat().st_ino for p in top.rglob("*") if p.is_file()}
    cache.checkout(top, info, state)
    assert {p: p.stat().st_ino for p in top.rglob("*") if p.is_file()} == inodes


def test_checkout_dir_restores_removes_extras_and_fixes_shapes(
    tmp_path: Path, state: HashState
) -> None:
    cache = cache_at(tmp_path, "copy")
    top = tmp_path / "data"
    make_dir(top)
    info = cache.save(top, state)
    (top / "a.txt").write_text("changed")
    remove_out(top / "sub" / "deep")
    (top / "sub" / "deep").write_text("a file where a folder was")
    (top / "extra" / "inner").mkdir(parents=True)
    (top / "extra" / "inner" / "x").write_text("x")
    cache.checkout(top, info, state)
    assert hash_path(top, state) == info
    assert not (top / "extra").exists()
    assert (top / "sub" / "deep" / "c").read_text() == "sea"
    remove_out(top)
    (tmp_path / "data").write_text("a file where the folder was")
    cache.checkout(top, info, state)
    assert hash_path(top, state) == info


def test_checkout_refuses_before_touching_when_object_missing(
    tmp_path: Path, state: HashState
) -> None:
    cache = cache_at(tmp_path, "copy")
    top = tmp_path / "data"
    make_dir(top)
    info = cache.save(top, state)
    listing = dict(cache.load_listing(info, state))
    os.unlink(cache.obj_path(listing["sub/deep/c"]))
    (top / "a.txt").write_text("changed")
    (top / "sub" / "deep" / "c").write_text("also changed")
    with pytest.raises(CacheError, match=f"sub/deep/c: cache object {listing['sub/deep/c']}"):
        cache.checkout(top, info, state)
    assert (top / "a.txt").read_text() == "changed"  # nothing half-restored
    with pytest.raises(CacheError, match=f"missing.txt: cache object {HELLO_MD5[:-1]}0"):
        cache.checkout(tmp_path / "missing.txt", HashInfo(HELLO_MD5[:-1] + "0", 6), state)


@pytest.mark.parametrize("same_size", [False, True])
def test_in_place_edit_of_hardlinked_file_is_not_trusted(
    tmp_path: Path, state: HashState, same_size: bool
) -> None:
    cache = cache_at(tmp_path, "hardlink")
    f = tmp_path / "model.bin"
    f.write_text("hello\n")
    info = cache.save(f, state)
    obj = cache.obj_path(info.md5)
    assert obj.stat().st_ino == f.stat().st_ino
    # We run as root in tests: 0o444 does not stop this write into the shared inode.
    with open(f, "r+b") as handle:
        handle.write(b"HELLO\n" if same_size else b"hello, world, longer now\n")
    if same_size:  # make sure the clock moved even on a coarse-grained file system
        st = f.stat()
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000))
    assert obj.read_bytes() != b"hello\n"  # the cache object is corrupt now
    assert not cache.exists(info, state)
    assert not obj.exists()  # the lying object was deleted
    assert cache.removed_corrupt == [obj]
    with pytest.raises(CacheError, match=f"model.bin: cache object {info.md5}"):
        cache.checkout(f, info, state)
    new = cache.save(f, state)  # recovering: the edited content is saved as itself
    assert new != info and cache.exists(new, state)


def test_corrupt_object_found_by_checkout_in_fresh_state(tmp_path: Path) -> None:
    cache = cache_at(tmp_path, "hardlink")
    f = tmp_path / "f"
    f.write_text("hello\n")
    with HashState(tmp_path) as state:
        info = cache.save(f, state)
    with open(f, "ab") as handle:
        handle.write(b"more")
    f2 = tmp_path / "restored"
    with HashState(tmp_path) as state, pytest.raises(CacheError, match="restored"):
        cache.checkout(f2, info, state)
    assert not f2.exists()


def test_corrupt_dir_listing_is_missing(tmp_path: Path, state: HashState) -> None:
    cache = cache_at(tmp_path, "copy")
    top = tmp_path / "data"
    make_dir(top)
    info = cache.save(top, state)
    obj = cache.obj_path(info.md5)
    os.chmod(obj, 0o644)
    obj.write_bytes(b"[]")
    assert not cache.exists(info, state)
    with pytest.raises(CacheError, match=info.md5):
        cache.checkout(tmp_path / "other", info, state)


def test_executable_files_keep_their_bit_and_are_not_hardlinked(
    tmp_path: Path, state: HashState
) -> None:
    cache = cache_at(tmp_path, "hardlink", "copy")
    f = tmp_path / "run.sh"
    f.write_text("#!/bin/sh\n")
    os.chmod(f, 0o755)
    info = cache.save(f, state)
    assert info.isexec
    assert f.stat().st_ino != cache.obj_path(info.md5).stat().st_ino
    assert stat.S_IMODE(f.stat().st_mode) == 0o755
    f.unlink()
    cache.checkout(f, info, state)
    assert f.stat().st_mode & stat.S_IXUSR


def test_symlink_checkout_and_unprotect(tmp_path: Path, state: HashState) -> None:
    cache = cache_at(tmp_path, "symlink", "copy")
    f = tmp_path / "f"
    f.write_text("hello\n")
    info = cache.save(f, state)
    obj = cache.obj_path(info.md5)
    assert not obj.is_symlink()  # the object is a real copy, not a link to the workspace
    assert f.is_symlink() and f.resolve() == obj  # as DVC links what it saves
    f.unlink()
    cache.checkout(f, info, state)
    assert f.is_symlink() and f.read_text() == "hello\n"
    cache.unprotect(f, state)
    assert not f.is_symlink()
    f.write_text("now private")
    assert cache.exists(info, state)


def test_unprotect_breaks_hardlinks(tmp_path: Path, state: HashState) -> None:
    cache = cache_at(tmp_path, "hardlink")
    top = tmp_path / "data"
    make_dir(top)
    info = cache.save(top, state)
    cache.unprotect(top, state)
    assert all(p.stat().st_nlink == 1 for p in top.rglob("*") if p.is_file())
    (top / "a.txt").write_text("edited after unprotect")
    assert cache.exists(info, state)


def test_remove_out_handles_read_only_trees(tmp_path: Path, state: HashState) -> None:
    top = tmp_path / "data"
    make_dir(top)
    Cache(tmp_path / "c", ["hardlink"]).save(top, state)
    os.chmod(top / "sub", 0o555)
    remove_out(top)
    assert not top.exists()
    remove_out(top)  # absent: no error


def test_unknown_link_type_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cache.type"):
        Cache(tmp_path, ["teleport"])


def test_a_name_that_is_a_path_never_deletes_outside_the_cache(
    tmp_path: Path, state: HashState
) -> None:
    # A corrupt object is deleted; a "name" that leads out of the cache is no object.
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    cache = cache_at(tmp_path)
    # objects live at <cache>/files/md5/<md5[:2]>/<md5[2:]>
    for md5 in (".." + str(victim), "..x/../../../victim.txt"):
        assert not cache.exists(HashInfo(md5=md5, size=9), state)
        assert victim.read_text() == "precious\n", md5
