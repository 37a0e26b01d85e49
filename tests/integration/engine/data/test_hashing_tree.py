"""Hashing real files and folders; expected values come from the real dvc 3.67.1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exq.engine.data.hashdb import HashState
from exq.engine.data.hashing import HashInfo, file_md5, hash_path
from exq.engine.errors import CacheError


def write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def make_dvc_tree(top: Path) -> None:
    """The tree behind DVC_TREE_LISTING in tests/unit/engine/data/test_hashing_formats.py."""
    write(top / "a.txt", "hello\n")
    write(top / "sub" / "crlf.txt", b"crlf\r\nline\r\n")
    write(top / "empty", "")
    write(top / "b" / "x", "x")
    write(top / "sub" / "deeper" / "d.bin", "deep")
    write(top / "\u00fc name.txt", "u")
    write(top / "a-b", "a-b")
    write(top / "a" / "z", "slash")
    write(top / "a0", "zero")
    (top / "emptydir" / "nested").mkdir(parents=True)  # empty folders do not count


@pytest.fixture
def state(tmp_path: Path) -> HashState:
    with HashState(tmp_path) as st:
        yield st


def test_dir_hash_matches_dvc(tmp_path: Path, state: HashState) -> None:
    make_dvc_tree(tmp_path / "tree")
    assert hash_path(tmp_path / "tree", state) == HashInfo(
        "2dc3c8996af29199a383aafb9d2ba894.dir", 36, 9
    )


def test_file_md5_keeps_crlf_bytes(tmp_path: Path, state: HashState) -> None:
    # DVC 2 turned CRLF into LF before hashing text; DVC 3 hashes raw bytes.
    write(tmp_path / "single.txt", b"hello\r\n")
    info = hash_path(tmp_path / "single.txt", state)
    assert info == HashInfo("af5597c29467a96523a70787c319f4db", 7)
    assert info.nfiles is None and not info.isdir


def test_exec_bit_is_reported(tmp_path: Path, state: HashState) -> None:
    write(tmp_path / "exe.sh", "x")
    os.chmod(tmp_path / "exe.sh", 0o755)
    info = hash_path(tmp_path / "exe.sh", state)
    assert (info.md5, info.isexec) == ("9dd4e461268c8034f5c8564e155c67a6", True)


def test_git_hg_and_subrepos_are_skipped(tmp_path: Path, state: HashState) -> None:
    top = tmp_path / "d5"
    write(top / "s1" / ".dvc" / "x", "1")  # a folder holding .dvc is a sub-repo
    write(top / "s1" / "f", "2")
    write(top / "s2" / ".git" / "y", "3")
    write(top / "s2" / "f", "4")
    write(top / "s3" / ".git", "5")
    write(top / "s3" / "f", "6")
    write(top / ".hg" / "z", "9")
    write(top / ".gitignore", "8")
    write(top / ".dvcignore_not", "9")
    assert hash_path(top, state) == HashInfo("88e82fb66d9d64a18f8086f6310869c0.dir", 4, 4)


def test_dvcignore_in_root_and_in_parent_folders(tmp_path: Path, state: HashState) -> None:
    write(tmp_path / ".dvcignore", "*.log\n!keep.log\ncache/\n")
    write(tmp_path / "p" / ".dvcignore", "k\n!k/keep\n")
    top = tmp_path / "p" / "d8"
    write(top / "k" / "keep", "1")  # its folder is ignored: "!k/keep" cannot bring it back
    write(top / "k" / "x", "2")
    write(top / "y", "3")
    write(top / "k.log", "4")
    write(top / "cache" / "c", "5")
    assert hash_path(top, state) == HashInfo("cd10a77bd4d4cea91b04e98148470f34.dir", 1, 1)


def test_symlinked_files_followed_folders_skipped(tmp_path: Path, state: HashState) -> None:
    top = tmp_path / "d6"
    write(top / "real" / "f", "1")
    os.symlink("real", top / "linkdir")
    assert hash_path(top, state) == HashInfo("4cb15c6aaaa6d17f9142ba28008ded00.dir", 1, 1)
    os.symlink("real/f", top / "linkfile")
    assert hash_path(top, state).nfiles == 2


def test_broken_symlink_and_missing_path_raise(tmp_path: Path, state: HashState) -> None:
    write(tmp_path / "d" / "f", "1")
    os.symlink("nowhere", tmp_path / "d" / "broken")
    with pytest.raises(CacheError, match="broken"):
        hash_path(tmp_path / "d", state)
    with pytest.raises(CacheError, match="absent"):
        hash_path(tmp_path / "absent", state)


def test_large_file_md5_is_streamed_correctly(tmp_path: Path) -> None:
    import hashlib

    data = os.urandom(3 * 1024 * 1024 + 17)
    write(tmp_path / "big", data)
    assert file_md5(tmp_path / "big") == hashlib.md5(data).hexdigest()
