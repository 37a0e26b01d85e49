"""``exq dag``, ``exq stage list`` and ``exq add`` print and write what the real dvc does.

Each test runs both tools on one real git repository (a copy each where a
command writes); skipped without dvc.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import git

pytestmark = pytest.mark.dvc

EXQ = str(Path(sys.executable).parent / "exq")

# prepare reads .dvc-tracked data; sub/dvc.yaml reads a file inside a tracked folder.
DVC_YAML = """\
stages:
  prepare:
    cmd: cp data/data.xml prepared.txt
    deps: [data/data.xml]
    outs: [prepared.txt]
  train:
    cmd: cp prepared.txt model.pkl
    deps: [prepared.txt]
    params: [train.lr]
    outs: [model.pkl]
  evaluate:
    desc: |

      Scores the model.
      (a second line)
    cmd: echo
    deps: [model.pkl]
    metrics: [eval/metrics.json]
    plots: [eval/prc.json]
  report:
    cmd: echo
    deps: [model.pkl]
    plots: [eval/roc.json]
    outs: [report.md]
  check:
    cmd: echo
    deps: [images/cat.txt]
  lonely:
    cmd: echo
"""

SUB_DVC_YAML = """\
stages:
  s1:
    cmd: echo
    deps: [../model.pkl, ../images]
    outs: [out]
"""


def run(cmd: list[str], cwd: Path) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, f"{cmd}: {done.stderr}"
    return done.stdout


@pytest.fixture
def project(git_repo: Path, dvc_bin: str) -> Path:
    root = git_repo
    run([dvc_bin, "init", "-q"], root)
    (root / "data").mkdir()
    (root / "data" / "data.xml").write_text("<xml/>\n")
    (root / "images").mkdir()
    (root / "images" / "cat.txt").write_text("meow\n")
    run([dvc_bin, "add", "-q", "data/data.xml", "images"], root)
    (root / "params.yaml").write_text("train:\n  lr: 0.1\n")
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "sub").mkdir()
    (root / "sub" / "dvc.yaml").write_text(SUB_DVC_YAML)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "project")
    return root


def both(dvc_bin: str, args: list[str], cwd: Path) -> tuple[str, str]:
    return run([EXQ, *args], cwd), run([dvc_bin, *args], cwd)


def test_dag_holds_tracked_data_with_dvcs_edges(project: Path, dvc_bin: str) -> None:
    mine, theirs = both(dvc_bin, ["dag", "--dot"], project)
    # Node lines come in the order the file system lists folders, so compare them as sets.
    assert sorted(mine.splitlines()) == sorted(theirs.splitlines())
    assert '"data/data.xml.dvc" -> "prepare";' in mine
    assert '"images.dvc" -> "sub/dvc.yaml:s1";' in mine
    mine, theirs = both(dvc_bin, ["dag", "--mermaid"], project)
    assert mine == theirs
    mine, theirs = both(dvc_bin, ["dag", "--dot", "train"], project)
    assert sorted(mine.splitlines()) == sorted(theirs.splitlines())
    text = run([EXQ, "dag"], project)
    assert "prepare  <- data/data.xml.dvc" in text and "images.dvc" in text
    # From a sub-folder, nodes are named from there.
    mine, theirs = both(dvc_bin, ["dag", "--dot"], project / "sub")
    assert sorted(mine.splitlines()) == sorted(theirs.splitlines())
    assert '"../data/data.xml.dvc" -> "../dvc.yaml:prepare";' in mine
    mine, theirs = both(dvc_bin, ["dag", "--mermaid"], project / "sub")
    assert mine == theirs


def test_stage_list_words_and_aligns_as_dvc(project: Path, dvc_bin: str) -> None:
    mine, theirs = both(dvc_bin, ["stage", "list"], project)
    assert mine == theirs
    assert "check     Depends on images/cat.txt\n" in mine
    assert "report    Outputs report.md; Reports eval/roc.json\n" in mine
    mine, theirs = both(dvc_bin, ["stage", "list"], project / "sub")
    assert mine == theirs == "s1  Outputs out\n"
    mine, theirs = both(dvc_bin, ["stage", "list", "--name-only"], project)
    assert mine == theirs
    # --all: every dvc.yaml and .dvc file, named from the current folder (the walk's
    # order follows the file system's listing, so compare the lines as sets).
    mine, theirs = both(dvc_bin, ["stage", "list", "--all"], project / "sub")
    assert sorted(mine.splitlines()) == sorted(theirs.splitlines())
    assert "../images.dvc         Outputs images" in mine.splitlines()


@pytest.mark.parametrize(
    "old",
    [
        # DVC 2's order, path first
        "outs:\n- path: d.txt\n  md5: b1946ac92492d2347c6235b4d2611184\n  size: 6\n",
        # comments and keys of the user's own
        "# my data\nouts:\n- md5: b1946ac92492d2347c6235b4d2611184\n  size: 6\n"
        "  path: d.txt\n  desc: the data  # keep\nmeta:\n  owner: me\n",
    ],
)
def test_re_adding_keeps_the_dvc_files_order(
    project: Path, dvc_bin: str, tmp_path: Path, old: str
) -> None:
    copies = {}
    for tool, binary in (("exq", EXQ), ("dvc", dvc_bin)):
        root = tmp_path / tool
        shutil.copytree(project, root, symlinks=True)
        (root / "d.txt.dvc").write_text(old)
        (root / "d.txt").write_text("changed\n")
        run([binary, "add", "d.txt"], root)
        copies[tool] = (root / "d.txt.dvc").read_text()
    assert copies["exq"] == copies["dvc"]
    assert "hash: md5\n" in copies["exq"]
