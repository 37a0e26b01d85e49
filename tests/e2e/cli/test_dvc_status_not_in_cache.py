"""``status`` of tracked data whose object left the cache says what ``dvc status`` says.

As DVC, an output whose recorded object the cache lacks is ``not in cache``
whatever the workspace holds: the file deleted, or edited, too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.e2e.conftest import exq, write
from tests.e2e.exp_helpers import init_repo


def test_not_in_cache_comes_before_the_workspace(tmp_path: Path, dvc_bin: str) -> None:
    root = init_repo(tmp_path / "repo")
    write(root / "model.bin", "weights\n")
    write(root / "data" / "a.txt", "alpha\n")
    write(root / "edited.txt", "first\n")
    exq("add", "model.bin", "data", "edited.txt", cwd=root)
    shutil.rmtree(root / ".dvc" / "cache")
    (root / "model.bin").unlink()
    (root / "edited.txt").unlink()
    write(root / "edited.txt", "second\n")

    dvc = subprocess.run(
        [dvc_bin, "status", "--json"], cwd=root, capture_output=True, text=True, check=True
    )
    _, ours, _ = exq("status", "--json", cwd=root)
    assert json.loads(ours) == json.loads(dvc.stdout)
    assert json.loads(ours)["model.bin.dvc"] == [{"changed outs": {"model.bin": "not in cache"}}]


def test_tracked_data_kept_out_of_the_cache(tmp_path: Path, dvc_bin: str) -> None:
    # 'cache: false' in a .dvc file: the hash is recorded, no object is kept, so
    # nothing is 'not in cache', pushed, pulled or checked out, as with DVC.
    root = init_repo(tmp_path / "repo")
    write(root / "f.txt", "hi\n")
    write(
        root / "f.txt.dvc",
        "outs:\n- md5: 764efa883dda1e11db47671c4a3bbd9e\n  size: 3\n  hash: md5\n"
        "  cache: false\n  path: f.txt\n",
    )
    exq("remote", "add", "-d", "store", str(tmp_path / "store"), cwd=root)
    for command in (["status"], ["push"], ["pull"], ["checkout"]):
        exq(*command, cwd=root)
    _, ours, _ = exq("status", "--json", cwd=root)
    assert json.loads(ours) == {}
    assert not (tmp_path / "store").exists()
    write(root / "f.txt", "changed\n")
    dvc = subprocess.run(
        [dvc_bin, "status", "--json"], cwd=root, capture_output=True, text=True, check=True
    )
    _, ours, _ = exq("status", "--json", cwd=root)
    assert json.loads(ours) == json.loads(dvc.stdout) != {}
