"""One walk finds a project's dvc.yaml files and its .dvc files, in the order loading
and listing use, and stays out of what a project never searches."""

from __future__ import annotations

import os
from pathlib import Path

from exq.engine.run.tracked import find_tracked
from exq.engine.spec.loading import find_dvcfiles, find_project_files, load_pipeline


def touch(path: Path, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_dvcyaml_and_dvc_files_come_from_one_walk_in_order(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / ".dvc").mkdir(parents=True)
    for rel in ("dvc.yaml", "b/dvc.yaml", "a/z/dvc.yaml", "a/dvc.yaml"):
        touch(root / rel, "stages: {}\n")
    for rel in ("z.dvc", "data.dvc", "a/m.dvc", "a/z/k.dvc", "b/c.dvc"):
        touch(root / rel, "outs: []\n")
    for i in range(50):  # a tracked folder: passed over
        touch(root / "data" / f"d{i % 5}" / f"f{i}.txt")
    (root / "data" / "x.dvc").mkdir()  # a folder, whatever its name
    touch(root / "data" / "x.dvc" / "inside.dvc")
    touch(root / ".hidden" / "no.dvc")  # never searched: hidden,
    touch(root / "node_modules" / "no.dvc")  # a home of packages,
    touch(root / "venv" / "pyvenv.cfg")  # a virtualenv,
    touch(root / "venv" / "no.dvc")
    (root / "inner" / ".dvc").mkdir(parents=True)  # another project
    touch(root / "inner" / "dvc.yaml")
    touch(tmp_path / "elsewhere" / "no.dvc")
    os.symlink(tmp_path / "elsewhere", root / "link")  # a symlink to a folder

    dvcfiles, tracked = find_project_files(root)
    assert dvcfiles == ["dvc.yaml", "a/dvc.yaml", "b/dvc.yaml", "a/z/dvc.yaml"]
    assert tracked == [
        "data.dvc",
        "z.dvc",
        "a/m.dvc",
        "a/z/k.dvc",
        "b/c.dvc",
        "data/x.dvc/inside.dvc",
    ]
    assert find_dvcfiles(root) == dvcfiles
    assert find_tracked(root) == [root / rel for rel in tracked]
    assert load_pipeline(root).tracked == tracked
