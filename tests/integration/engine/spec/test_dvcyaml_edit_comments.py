"""``stage add`` edits dvc.yaml as text: every byte the user wrote stays."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from exq.engine.errors import DvcFileError, ExqError
from exq.engine.spec.dvcyaml_edit import add_stage

USER_FILE = """\
# Pipeline of the churn model.   keep me
vars:
  - config.yaml   # shared settings

stages:
  prepare:   # first stage
    cmd: "python prepare.py"    # quoted on purpose
    deps:
      - data/raw.csv   # indented list style
    outs:
      - 'data/prepared'
  # a comment between stages
  train:
    cmd: >-
      python train.py
      --epochs 3

    params: [lr, 'seed']
    outs: [model.pkl]   # flow list

# plots are defined below
plots:
  - metrics.json: {x: step}
"""

NEW_STAGE = """\
  evaluate:
    cmd: python eval.py
    deps:
    - model.pkl
    metrics:
    - scores.json:
        cache: false
"""


def load(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text())


def test_new_stage_goes_after_the_stages_block(tmp_path: Path) -> None:
    path = tmp_path / "dvc.yaml"
    path.write_text(USER_FILE)
    action = add_stage(
        path, "evaluate", cmd="python eval.py", deps=["model.pkl"], metrics_no_cache=["scores.json"]
    )
    assert action == "added"
    head, tail = USER_FILE.split("\n# plots are defined below\n")
    # the blank line closing the block stays where the user put it
    assert (
        path.read_text()
        == head.rstrip("\n") + "\n" + NEW_STAGE + "\n" + "# plots are defined below\n" + tail
    )
    data = load(path)
    assert list(data["stages"]) == ["prepare", "train", "evaluate"]
    assert data["plots"] == [{"metrics.json": {"x": "step"}}]
    assert [p.name for p in tmp_path.iterdir()] == ["dvc.yaml"]


def test_existing_name_is_refused_and_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "dvc.yaml"
    path.write_text(USER_FILE)
    with pytest.raises(ExqError) as info:
        add_stage(path, "train", cmd="x")
    assert "stage 'train' already exists in" in str(info.value)
    assert str(path) in str(info.value)
    assert "--force" in str(info.value)
    assert path.read_text() == USER_FILE


def test_force_replaces_only_that_stage(tmp_path: Path) -> None:
    path = tmp_path / "dvc.yaml"
    path.write_text(USER_FILE)
    assert (
        add_stage(path, "prepare", cmd="python prep2.py", outs=["data/p2"], force=True)
        == "modified"
    )
    start = USER_FILE.index("  prepare:")
    end = USER_FILE.index("  # a comment between stages")
    expected = (
        USER_FILE[:start] + "  prepare:   # first stage\n    cmd: python prep2.py\n"
        "    outs:\n    - data/p2\n" + USER_FILE[end:]
    )
    assert path.read_text() == expected
    # the last stage, whose block ends in a blank line before a comment
    add_stage(path, "train", cmd="t", force=True)
    text = path.read_text()
    assert text.endswith(
        "  train:\n    cmd: t\n\n# plots are defined below\nplots:\n  - metrics.json: {x: step}\n"
    )
    assert list(load(path)["stages"]) == ["prepare", "train"]


def test_created_file_has_dvc_layout(tmp_path: Path) -> None:
    path = tmp_path / "dvc.yaml"
    add_stage(
        path,
        "train",
        cmd="python train.py --lr 0.1 && echo 'done: yes'",
        deps=["train.py", "data"],
        params=["lr", "conf.yaml:", "params.yaml:seed,epochs"],
        outs=["model.pkl"],
        outs_no_cache=["log.txt"],
        outs_persist=["ckpt"],
        metrics_no_cache=["metrics.json"],
        plots_no_cache=["plot.csv"],
    )
    # what `dvc stage add` 3.67.1 writes for the same options
    assert (
        path.read_text()
        == """\
stages:
  train:
    cmd: "python train.py --lr 0.1 && echo 'done: yes'"
    deps:
    - data
    - train.py
    params:
    - epochs
    - lr
    - seed
    - conf.yaml:
    outs:
    - ckpt:
        persist: true
    - log.txt:
        cache: false
    - model.pkl
    metrics:
    - metrics.json:
        cache: false
    plots:
    - plot.csv:
        cache: false
"""
    )


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # no trailing newline
        ("stages:\n  a:\n    cmd: x  # c", "stages:\n  a:\n    cmd: x  # c\n  b:\n    cmd: y\n"),
        # no stages key yet
        (
            "# only vars\nvars:\n- p.yaml\n",
            "# only vars\nvars:\n- p.yaml\nstages:\n  b:\n    cmd: y\n",
        ),
        # an empty stages key with a comment
        ("stages:   # todo\n\nvars: []\n", "stages:   # todo\n  b:\n    cmd: y\n\nvars: []\n"),
        # four-space indentation is kept for the new key
        (
            "stages:\n    a:\n        cmd: x\n",
            "stages:\n    a:\n        cmd: x\n    b:\n      cmd: y\n",
        ),
        # CRLF line ends
        (
            "stages:\r\n  a:\r\n    cmd: x\r\n",
            "stages:\r\n  a:\r\n    cmd: x\r\n  b:\r\n    cmd: y\r\n",
        ),
        # a comment-only file
        ("# hello\n", "# hello\nstages:\n  b:\n    cmd: y\n"),
    ],
)
def test_layouts(tmp_path: Path, before: str, after: str) -> None:
    path = tmp_path / "dvc.yaml"
    path.write_bytes(before.encode())
    add_stage(path, "b", cmd="y")
    assert path.read_bytes().decode() == after


def test_flow_style_stages_fall_back_to_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "dvc.yaml"
    path.write_text("# c\nstages: {a: {cmd: x}}\n")
    assert add_stage(path, "b", cmd="y") == "added"
    assert load(path) == {"stages": {"a": {"cmd": "x"}, "b": {"cmd": "y"}}}
    assert add_stage(path, "a", cmd="z", force=True) == "modified"
    assert path.read_text().startswith("# c\n")


@pytest.mark.parametrize(
    ("name", "kwargs", "error", "message"),
    [
        ("bad@name", {}, ExqError, "invalid stage name 'bad@name'"),
        ("a:b", {}, ExqError, "invalid stage name 'a:b'"),
        ("ok", {"cmd": ""}, ExqError, "stage 'ok': the command is empty"),
        ("ok", {"wdir": "nope"}, ExqError, "working directory 'nope' does not exist"),
    ],
)
def test_refusals(tmp_path: Path, name: str, kwargs: dict, error: type, message: str) -> None:
    path = tmp_path / "dvc.yaml"
    with pytest.raises(error) as info:
        add_stage(path, name, **{"cmd": "x", **kwargs})
    assert message in str(info.value)
    assert not path.exists()


def test_broken_yaml_is_a_dvcfile_error(tmp_path: Path) -> None:
    path = tmp_path / "dvc.yaml"
    path.write_text("stages: [\n")
    with pytest.raises(DvcFileError) as info:
        add_stage(path, "a", cmd="x")
    assert str(path) in str(info.value)
    path.write_text("- a\n")
    with pytest.raises(DvcFileError, match="top level must be a mapping"):
        add_stage(path, "a", cmd="x")


def test_wdir_is_written_relative(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = tmp_path / "dvc.yaml"
    add_stage(path, "a", cmd="x", wdir="sub", desc="first one", always_changed=True)
    assert path.read_text() == (
        "stages:\n  a:\n    desc: first one\n    cmd: x\n    wdir: sub\n    always_changed: true\n"
    )


@pytest.mark.dvc
def test_same_text_as_real_dvc_stage_add(git_repo: Path, dvc_bin: str) -> None:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([dvc_bin, "init", "-q"], cwd=git_repo, env=env, check=True)
    (git_repo / "w").mkdir()
    args = [
        "-d",
        "b.py",
        "-d",
        "a b.txt",
        "-p",
        "x,y",
        "-p",
        "o.yaml:k",
        "-o",
        "z.bin",
        "-O",
        "n.txt",
        "-m",
        "m.json",
        "--plots",
        "p.csv",
        "-w",
        "w",
    ]
    subprocess.run(
        [dvc_bin, "stage", "add", "-q", "-n", "s", *args, "python b.py: --flag"],
        cwd=git_repo,
        env=env,
        check=True,
    )
    ours = git_repo / "ours.yaml"
    add_stage(
        ours,
        "s",
        cmd="python b.py: --flag",
        deps=["b.py", "a b.txt"],
        params=["x,y", "o.yaml:k"],
        outs=["z.bin"],
        outs_no_cache=["n.txt"],
        metrics=["m.json"],
        plots=["p.csv"],
        wdir="w",
    )
    assert ours.read_text() == (git_repo / "dvc.yaml").read_text()


def test_empty_flow_stages_becomes_a_block(tmp_path: Path) -> None:
    dvcfile = tmp_path / "dvc.yaml"
    dvcfile.write_text("# my pipeline\nstages: {}  # none yet\nvars:\n  - x: 1\n")
    add_stage(dvcfile, "t", cmd="cp a b", deps=["a"], outs=["b"])
    assert dvcfile.read_text() == (
        "# my pipeline\nstages:  # none yet\n  t:\n    cmd: cp a b\n    deps:\n    - a\n"
        "    outs:\n    - b\nvars:\n  - x: 1\n"
    )
    assert YAML(typ="safe").load(dvcfile.read_text())["stages"]["t"]["cmd"] == "cp a b"
