"""Projects in sub-folders of one git repository (``dvc init --subdir``), as a monorepo has them.

Every revision is keyed by paths relative to the project, as the workspace
is, and a project reads only its own files: not its sibling projects', nor
those of a project inside it.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import PY, exq, write
from tests.e2e.exp_helpers import commit_all
from tests.support import git

TRAIN = """\
import json
from pathlib import Path
lr = float(Path("params.yaml").read_text().split("lr:")[1])
Path("m.json").write_text(json.dumps({"acc": round(lr * 2, 4)}))
"""

DVCYAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    deps: [train.py]
    params: [train.lr]
    metrics:
    - m.json:
        cache: false
"""


def make_project(folder: Path, lr: float, *, subdir: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    exq("init", *(["--subdir"] if subdir else []), cwd=folder)
    write(folder / "train.py", TRAIN)
    write(folder / "params.yaml", f"train:\n  lr: {lr}\n")
    write(folder / "dvc.yaml", DVCYAML)
    exq("repro", cwd=folder)


def test_a_project_in_a_sub_folder_keys_and_reads_only_its_own_files(git_repo: Path) -> None:
    make_project(git_repo / "p1", 0.1)
    make_project(git_repo / "p2", 0.4)
    commit_all(git_repo, "two projects")
    p1 = git_repo / "p1"

    _, out, _ = exq("params", "diff", "--json", cwd=p1)
    assert json.loads(out) == {}  # nothing changed
    _, out, _ = exq("metrics", "show", "-a", "--json", cwd=p1)
    assert json.loads(out) == {
        "workspace": {"m.json": {"acc": 0.2}},
        "main": {"m.json": {"acc": 0.2}},
    }

    exq("exp", "run", "-S", "train.lr=0.3", cwd=p1)
    _, out, _ = exq("exp", "show", "--json", cwd=p1)
    rows = json.loads(out)
    assert [row["kind"] for row in rows] == ["workspace", "baseline", "experiment"]
    for row in rows:
        assert set(row["params"]) == {"params.yaml"} and set(row["metrics"]) == {"m.json"}
    assert [row["metrics"]["m.json"]["acc"] for row in rows] == [0.6, 0.2, 0.6]
    _, out, _ = exq("params", "diff", "--json", cwd=p1)
    [(file, changes)] = json.loads(out).items()
    assert file == "params.yaml" and list(changes) == ["train.lr"]


def test_a_project_does_not_read_the_projects_inside_it(git_repo: Path) -> None:
    make_project(git_repo, 0.5, subdir=False)
    make_project(git_repo / "inner", 0.1)
    commit_all(git_repo, "a project with another inside")
    (git_repo / "inner" / "params.yaml").write_text("train:\n  lr: 0.2\n")

    _, out, _ = exq("status", "--json", cwd=git_repo)
    assert json.loads(out) == {}  # the inner project's change is not the outer's
    _, out, _ = exq("metrics", "show", "-a", "--json", cwd=git_repo)
    assert json.loads(out) == {
        "workspace": {"m.json": {"acc": 1.0}},
        "main": {"m.json": {"acc": 1.0}},
    }
    _, out, _ = exq("repro", cwd=git_repo)
    assert "inner" not in out
    assert "inner/dvc.yaml" not in git(git_repo, "status", "--porcelain")
