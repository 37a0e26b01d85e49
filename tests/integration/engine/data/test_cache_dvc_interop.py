"""The real dvc reads exq's cache, and exq reads dvc's (skipped without dvc)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from exq.engine.data.cache import Cache, hash_path, remove_out
from exq.engine.data.hashdb import HashState
from exq.engine.data.hashing import HashInfo

pytestmark = pytest.mark.dvc


def dvc(dvc_bin: str, repo: Path, *args: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(
        [dvc_bin, *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


TREE = {"a.txt": b"hello\n", "sub/crlf": b"x\r\ny\r\n", "sub/d/e": b"", "b": b"bee"}


def make_tree(top: Path) -> None:
    for rel, data in TREE.items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).write_bytes(data)


def dvcfile(info: HashInfo, path: str) -> str:
    extra = f"  nfiles: {info.nfiles}\n" if info.isdir else ""
    return f"outs:\n- md5: {info.md5}\n  size: {info.size}\n{extra}  hash: md5\n  path: {path}\n"


@pytest.mark.parametrize("link", ["hardlink", "copy"])
def test_dvc_reads_what_exq_saved(git_repo: Path, dvc_bin: str, link: str) -> None:
    dvc(dvc_bin, git_repo, "init", "-q")
    make_tree(git_repo / "data")
    (git_repo / "model.bin").write_bytes(b"weights")
    cache = Cache(git_repo / ".dvc" / "cache", [link])
    with HashState(git_repo) as state:
        for name in ("data", "model.bin"):
            info = cache.save(git_repo / name, state)
            (git_repo / f"{name}.dvc").write_text(dvcfile(info, name))
    assert json.loads(dvc(dvc_bin, git_repo, "status", "--json")) == {}
    remove_out(git_repo / "data")
    remove_out(git_repo / "model.bin")
    dvc(dvc_bin, git_repo, "checkout", "-q")
    with HashState(git_repo) as state:
        assert hash_path(git_repo / "data", state) == info_of(git_repo / "data.dvc")
        assert (git_repo / "model.bin").read_bytes() == b"weights"


def info_of(dvc_path: Path) -> HashInfo:
    fields = dict(line.strip("- ").split(": ", 1) for line in dvc_path.read_text().splitlines()[1:])
    nfiles = int(fields["nfiles"]) if "nfiles" in fields else None
    return HashInfo(fields["md5"], int(fields["size"]), nfiles)


def test_exq_checks_out_what_dvc_added(git_repo: Path, dvc_bin: str, tmp_path: Path) -> None:
    dvc(dvc_bin, git_repo, "init", "-q")
    make_tree(git_repo / "data")
    dvc(dvc_bin, git_repo, "add", "-q", "data")
    expected = info_of(git_repo / "data.dvc")
    remove_out(git_repo / "data")
    cache = Cache(git_repo / ".dvc" / "cache")
    with HashState(git_repo) as state:
        assert cache.exists(expected, state)
        cache.checkout(git_repo / "data", expected, state)
        assert hash_path(git_repo / "data", state) == expected
    assert json.loads(dvc(dvc_bin, git_repo, "status", "--json")) == {}


def make_big_tree(top: Path, count: int = 1500) -> None:
    for i in range(count):
        path = top / f"d{i % 15:02d}" / f"f{i:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"file {i}\n".encode() * (i % 11))
    (top / "big.bin").write_bytes(os.urandom(3 << 20))  # hashed while the kernel copies it


@pytest.mark.parametrize("link", ["copy", "hardlink"])
def test_dvc_reads_a_big_folder_exq_saved(git_repo: Path, dvc_bin: str, link: str) -> None:
    dvc(dvc_bin, git_repo, "init", "-q")
    make_big_tree(git_repo / "data")
    cache = Cache(git_repo / ".dvc" / "cache", [link])
    with HashState(git_repo) as state:
        info = cache.save(git_repo / "data", state)
    (git_repo / "data.dvc").write_text(dvcfile(info, "data"))
    assert json.loads(dvc(dvc_bin, git_repo, "status", "--json")) == {}
    remove_out(git_repo / "data")
    dvc(dvc_bin, git_repo, "checkout", "-q")
    with HashState(git_repo) as state:
        assert hash_path(git_repo / "data", state) == info


def test_exq_restores_a_big_folder_dvc_added(git_repo: Path, dvc_bin: str) -> None:
    dvc(dvc_bin, git_repo, "init", "-q")
    make_big_tree(git_repo / "data")
    dvc(dvc_bin, git_repo, "add", "-q", "data")
    expected = info_of(git_repo / "data.dvc")
    remove_out(git_repo / "data")
    cache = Cache(git_repo / ".dvc" / "cache", ["copy"])
    with HashState(git_repo) as state:
        cache.checkout(git_repo / "data", expected, state)
        assert hash_path(git_repo / "data", state) == expected
    assert json.loads(dvc(dvc_bin, git_repo, "status", "--json")) == {}
