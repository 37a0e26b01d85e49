"""Hashes and listings from a cloned repository or a remote never name a path.

An md5 becomes a path in the cache and on the remote, and a ``.dir``
listing's relpaths become paths in the workspace: a ``.dvc`` file, a
``dvc.lock`` or a listing that says ``../../etc/passwd`` must be refused in
one line, with nothing read or written outside the project and the remote.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.e2e.conftest import exq, write
from tests.e2e.exp_helpers import init_repo


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_an_md5_that_is_a_path_is_refused(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "box" / "repo")
    write(tmp_path / "secret.txt", "not for the remote\n")
    write(root / "a.txt", "a\n")
    exq("add", "a.txt", cwd=root)
    store = tmp_path / "box" / "store"
    exq("remote", "add", "-d", "store", str(store), cwd=root)
    dvcfile = root / "a.txt.dvc"
    dvcfile.write_text(
        dvcfile.read_text().replace(
            dvcfile.read_text().split("md5: ")[1].split("\n")[0], "../../../../secret.txt"
        )
    )
    before = files_under(tmp_path)
    for command in (["push"], ["pull"], ["fetch"], ["status"], ["checkout"], ["status", "-c"]):
        code, _, err = exq(*command, cwd=root, check=False)
        assert code == 1, command
        assert err.strip() == "ERROR: a.txt.dvc: outs: '../../../../secret.txt' is not an md5"
    assert files_under(tmp_path) == before

    write(root / "dvc.yaml", "stages:\n  s:\n    cmd: echo\n    outs: [o.txt]\n")
    write(
        root / "dvc.lock",
        "schema: '2.0'\nstages:\n  s:\n    cmd: echo\n    outs:\n"
        "    - path: o.txt\n      hash: md5\n      md5: ../../x\n      size: 1\n",
    )
    dvcfile.unlink()
    code, _, err = exq("push", cwd=root, check=False)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert err.strip().endswith("dvc.lock: stages.s.outs[0]: '../../x' is not an md5"), err


def test_a_listing_whose_relpath_leaves_its_folder_is_not_checked_out(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "box" / "repo")
    store = tmp_path / "box" / "store"
    evil = b"written outside\n"
    evil_md5 = hashlib.md5(evil).hexdigest()
    listing = json.dumps([{"md5": evil_md5, "relpath": "../../escaped.txt"}]).encode()
    dir_md5 = hashlib.md5(listing).hexdigest() + ".dir"
    for name, data in ((evil_md5, evil), (dir_md5, listing)):
        obj = store / "files" / "md5" / name[:2] / name[2:]
        obj.parent.mkdir(parents=True, exist_ok=True)
        obj.write_bytes(data)
    write(root / "data.dvc", f"outs:\n- md5: {dir_md5}\n  nfiles: 1\n  hash: md5\n  path: data\n")
    exq("remote", "add", "-d", "store", str(store), cwd=root)
    code, _, err = exq("pull", cwd=root, check=False)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "outside the folder" in err
    assert not (tmp_path / "box" / "escaped.txt").exists()
    assert not (root / "data").exists()
