"""Targets inside a tracked folder, as DVC takes them: ``pull data/sub``, ``checkout data/a.txt``.

push, fetch, pull and checkout move only the files the folder's listing holds
under the path (and the folder's ``.dir``, by which the files are found);
what is pushed so, the real DVC pulls the same way.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.e2e.conftest import exq, write
from tests.e2e.exp_helpers import commit_all, init_repo

DATA = {"data/a.txt": "alpha\n", "data/sub/b.txt": "beta\n", "data/sub/deep/c.txt": "gamma\n"}


def make_source(root: Path, store: Path) -> Path:
    init_repo(root)
    for rel, text in DATA.items():
        write(root / rel, text)
    exq("add", "data", cwd=root)
    exq("remote", "add", "-d", "store", str(store), cwd=root)
    commit_all(root, "data")
    return root


def fresh_copy(source: Path, dest: Path) -> Path:
    """The project's metadata in a new repository, with no cache and no data."""
    init_repo(dest)
    for name in ("data.dvc", ".dvc/config"):
        shutil.copy(source / name, dest / name)
    return dest


def files(root: Path) -> dict[str, str]:
    found = (root / "data").rglob("*") if (root / "data").exists() else []
    return {p.relative_to(root).as_posix(): p.read_text() for p in found if p.is_file()}


def objects(store: Path) -> int:
    return sum(1 for p in store.rglob("*") if p.is_file())


def test_pull_and_checkout_of_a_path_inside_a_folder(tmp_path: Path) -> None:
    source = make_source(tmp_path / "source", tmp_path / "store")
    exq("push", cwd=source)
    target = fresh_copy(source, tmp_path / "target")

    _, out, _ = exq("pull", "data/sub", cwd=target)
    assert "3 file(s) fetched" in out  # the folder's .dir, and the two files under sub/
    assert files(target) == {k: v for k, v in DATA.items() if k.startswith("data/sub/")}
    exq("pull", "data/a.txt", cwd=target)
    assert files(target) == DATA
    _, status, _ = exq("status", cwd=target)
    assert "up to date" in status

    shutil.rmtree(target / "data" / "sub")
    (target / "data" / "a.txt").unlink()
    write(target / "data" / "a.txt", "an edit outside the target\n")
    exq("checkout", "data/sub/", cwd=target)
    assert (target / "data/sub/deep/c.txt").read_text() == "gamma\n"
    assert (target / "data/a.txt").read_text() == "an edit outside the target\n"

    for command in (["checkout", "data/nope"], ["pull", "data/nope"]):
        code, _, err = exq(*command, cwd=target, check=False)
        assert code == 1 and len(err.strip().splitlines()) == 1, err
        assert "'data/nope' is not in the tracked folder 'data'" in err


def test_push_of_a_path_inside_a_folder_then_dvc_pull(tmp_path: Path, dvc_bin: str) -> None:
    store = tmp_path / "store"
    source = make_source(tmp_path / "source", store)
    _, out, _ = exq("push", "data/sub/deep", cwd=source)
    assert "2 file(s) pushed" in out and objects(store) == 2  # c.txt, then the folder's .dir
    target = fresh_copy(source, tmp_path / "target")
    subprocess.run([dvc_bin, "pull", "data/sub/deep"], cwd=target, check=True, capture_output=True)
    assert files(target) == {"data/sub/deep/c.txt": "gamma\n"}
