"""``checkout`` and ``pull`` never throw away what the cache does not hold.

As DVC's, they refuse to overwrite or delete a workspace file whose bytes are
in no cache object (an edit, a new file in a tracked folder) unless told
``--force``: one line naming the file, a non-zero exit, the workspace as it
was. What the cache holds (a deleted file, an older version) is restored
without asking.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import exq, write
from tests.e2e.exp_helpers import commit_all, init_repo

DATA = {"data/a.txt": "alpha\n", "data/sub/b.txt": "beta\n", "model.bin": "weights\n"}


def make_project(root: Path) -> Path:
    init_repo(root)
    for rel, text in DATA.items():
        write(root / rel, text)
    exq("add", "data", "model.bin", cwd=root)
    commit_all(root, "data")
    return root


def edit(path: Path, text: str) -> None:
    """A new file in place of the old (which may be a read-only link into the cache)."""
    path.unlink(missing_ok=True)
    write(path, text)


def contents(root: Path) -> dict[str, str]:
    files = [*(root / "data").rglob("*"), root / "model.bin"]
    return {p.relative_to(root).as_posix(): p.read_text() for p in files if p.is_file()}


def assert_refused(root: Path, *args: str) -> str:
    before = contents(root)
    code, out, err = exq(*args, cwd=root, check=False)
    assert code != 0, (args, out)
    assert len(err.strip().splitlines()) == 1 and "--force" in err, err
    assert contents(root) == before, args
    return err


def test_checkout_refuses_to_lose_unsaved_files(tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    edit(root / "data/a.txt", "my edit\n")
    assert "data/a.txt" in assert_refused(root, "checkout")
    assert "data/a.txt" in assert_refused(root, "checkout", "data")
    edit(root / "data/a.txt", "alpha\n")
    edit(root / "data/sub/new.txt", "a file of mine\n")
    assert "data/sub/new.txt" in assert_refused(root, "checkout")
    (root / "data/sub/new.txt").unlink()
    edit(root / "model.bin", "retrained\n")
    assert "model.bin" in assert_refused(root, "checkout", "model.bin")

    # bytes the cache holds (here those of another file) may be replaced
    edit(root / "model.bin", "beta\n")
    (root / "data/sub/b.txt").unlink()
    exq("checkout", cwd=root)
    assert contents(root) == DATA

    edit(root / "data/a.txt", "my edit\n")
    edit(root / "data/new.txt", "mine\n")
    exq("checkout", "--force", cwd=root)
    assert contents(root) == DATA


def test_pull_refuses_to_lose_unsaved_files(tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    exq("remote", "add", "-d", "store", str(tmp_path / "store"), cwd=root)
    exq("push", cwd=root)
    edit(root / "data/a.txt", "my edit\n")
    assert "data/a.txt" in assert_refused(root, "pull")
    exq("pull", "-f", cwd=root)
    assert contents(root) == DATA
