"""DVC's cache settings, honoured by every command that places an output.

``cache.type = symlink``: outputs that ``repro`` makes and data that ``add``
tracks become symlinks into the cache, not only what ``checkout`` restores.
``cache.shared = group``: cache folders are made 2775 (group-writable,
setgid) and files made writable again are group-writable, as DVC makes them.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from tests.e2e.conftest import PY, exq, write
from tests.e2e.exp_helpers import commit_all, init_repo

DVCYAML = f"""\
stages:
  build:
    cmd: {PY} -c "open('out.txt', 'a').write('x')"
    deps: [data.txt]
    outs:
    - out.txt:
        persist: true
"""


def make_project(root: Path) -> Path:
    init_repo(root)
    with (root / ".dvc" / "config").open("a") as config:
        config.write("[cache]\n    type = symlink\n    shared = group\n")
    write(root / "data.txt", "data\n")
    write(root / "dvc.yaml", DVCYAML)
    return root


def test_repro_and_add_link_as_configured_and_share_the_cache(tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    exq("add", "data.txt", cwd=root)
    exq("repro", cwd=root)
    cache = root / ".dvc" / "cache"
    for name in ("data.txt", "out.txt"):
        path = root / name
        assert path.is_symlink(), name
        assert Path(os.readlink(path)).is_relative_to(cache / "files" / "md5")
    folders = [cache, *(p for p in cache.rglob("*") if p.is_dir())]
    assert {stat.S_IMODE(p.stat().st_mode) for p in folders} == {0o2775}
    objects = [p for p in cache.rglob("*") if p.is_file()]
    assert objects and {stat.S_IMODE(p.stat().st_mode) for p in objects} == {0o444}
    _, out, _ = exq("status", cwd=root)
    assert "up to date" in out

    # a persist out is made a private writable copy before the stage runs again
    write(root / "data.txt", "more data\n")
    exq("add", "data.txt", cwd=root)
    exq("repro", cwd=root)
    assert (root / "out.txt").read_text() == "xx"
    assert (root / "out.txt").is_symlink()  # saved again, linked again
    commit_all(root, "built")


def test_the_real_dvc_reads_the_linked_outputs_as_clean(tmp_path: Path, dvc_bin: str) -> None:
    root = make_project(tmp_path / "repo")
    exq("add", "data.txt", cwd=root)
    exq("repro", cwd=root)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATER": "1"}
    done = subprocess.run(
        [dvc_bin, "status"], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    assert "up to date" in done.stdout


def test_unprotected_files_are_group_writable_in_a_shared_cache(tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    (root / ".dvc" / "config").write_text(
        (root / ".dvc" / "config").read_text().replace("type = symlink", "type = copy")
    )
    exq("repro", cwd=root)
    write(root / "data.txt", "changed\n")
    exq("repro", cwd=root)
    mode = stat.S_IMODE((root / "out.txt").stat().st_mode)
    assert mode & stat.S_IWGRP and mode & stat.S_IWUSR, oct(mode)


def test_settings_dvc_config_writes_quoted_are_read(tmp_path: Path, dvc_bin: str) -> None:
    # DVC quotes a value with a comma or a '#' (configobj would read a list or a
    # comment), and a '#' after a value starts a comment.
    root = init_repo(tmp_path / "repo")
    cache = tmp_path / "my cache#1"
    for key, value in [("cache.type", "reflink,copy"), ("cache.dir", str(cache))]:
        subprocess.run([dvc_bin, "config", key, value], cwd=root, check=True)
    with (root / ".dvc" / "config").open("a") as config:
        config.write("    shared = group  # the team's\n")
    write(root / "data.txt", "data\n")
    exq("add", "data.txt", cwd=root)
    objects = [p for p in cache.rglob("*") if p.is_file()]
    assert len(objects) == 1 and stat.S_IMODE(objects[0].stat().st_mode) == 0o444
    assert not (root / "data.txt").is_symlink()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o2775
