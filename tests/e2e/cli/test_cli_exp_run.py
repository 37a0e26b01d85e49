"""``exq exp run`` end to end: the experiment commit, its ref, and what is left alone."""

from __future__ import annotations

import json
import os
import re
import shutil
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import PY, exq, write
from tests.e2e.exp_helpers import (
    assert_refused,
    exp_refs,
    head,
    init_repo,
    reported_name,
    show,
    workspace_bytes,
)
from tests.support import git

PARAMS = "# training knobs\ntrain:\n  lr: 0.1  # learning rate\n  epochs: 3\nseed: 7\n"

TRAIN = """\
import json, os, sys
from pathlib import Path
import yaml
p = yaml.safe_load(Path("params.yaml").read_text())
if p["train"].get("fail"):
    sys.exit("asked to fail")
Path("model.txt").write_text(f"lr={p['train']['lr']}\\n")
Path("metrics.json").write_text(json.dumps({"acc": p["train"]["lr"] * 2}))
names = ["EXQ_EXP_NAME", "EXQ_EXP_BASELINE_REV", "EXQ_ROOT",
         "DVC_EXP_NAME", "DVC_EXP_BASELINE_REV", "DVC_ROOT"]
Path("env.json").write_text(json.dumps({n: os.environ.get(n) for n in names}))
"""

DVCYAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    deps:
    - train.py
    params:
    - train
    outs:
    - model.txt
    - env.json:
        cache: false
    metrics:
    - metrics.json:
        cache: false
"""


@pytest.fixture(scope="module")
def exp_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed project whose one stage reads params.yaml and records its env;
    built once, copied for each test (a git repo copies whole)."""
    root = init_repo(tmp_path_factory.mktemp("template") / "repo")
    write(root / "params.yaml", PARAMS)
    write(root / "train.py", TRAIN)
    write(root / "dvc.yaml", DVCYAML)
    exq("repro", cwd=root)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "baseline")
    return root


@pytest.fixture
def exp_repo(exp_template: Path, tmp_path: Path) -> Path:
    """A private copy of the template."""
    root = tmp_path / "repo"
    shutil.copytree(exp_template, root, symlinks=True)
    return root


def tree_files(root: Path, rev: str) -> set[str]:
    return set(git(root, "ls-tree", "-r", "--name-only", rev).split())


# -- the experiment commit -------------------------------------------------------


def test_run_commits_the_workspace_under_an_exp_ref(exp_repo: Path) -> None:
    baseline = head(exp_repo)
    branches = git(exp_repo, "for-each-ref", "refs/heads")
    write(exp_repo / "notes.txt", "an untracked, not ignored file\n")
    index = (exp_repo / ".git" / "index").read_bytes()

    _, out, _ = exq("exp", "run", "-S", "train.lr=0.5", cwd=exp_repo)

    # exq never writes .git/index: compare before any git command may refresh it
    assert (exp_repo / ".git" / "index").read_bytes() == index
    assert "Experiment results have been applied to your workspace." in out
    name = reported_name(out)
    assert re.fullmatch(r"exp-[0-9a-f]{5}", name)
    refs = exp_refs(exp_repo)
    assert list(refs) == [f"refs/exps/{baseline[:2]}/{baseline[2:]}/{name}"]
    sha = refs[next(iter(refs))]
    parents = git(exp_repo, "rev-list", "--parents", "-n", "1", sha).split()[1:]
    assert parents == [baseline]
    # the tree: edited params (comments kept), the new lock, the untracked file
    assert show(exp_repo, sha, "params.yaml") == PARAMS.replace("lr: 0.1", "lr: 0.5")
    assert show(exp_repo, sha, "dvc.lock") == (exp_repo / "dvc.lock").read_text()
    assert show(exp_repo, sha, "dvc.lock") != show(exp_repo, baseline, "dvc.lock")
    assert show(exp_repo, sha, "notes.txt") == "an untracked, not ignored file\n"
    assert json.loads(show(exp_repo, sha, "metrics.json")) == {"acc": 1.0}
    assert "model.txt" not in tree_files(exp_repo, sha)  # a cached out: git ignores it
    # the user's HEAD, branches and index did not move; the workspace has the result
    assert head(exp_repo) == baseline
    assert git(exp_repo, "for-each-ref", "refs/heads") == branches
    assert git(exp_repo, "diff", "--cached", "--name-only") == ""
    assert (exp_repo / "model.txt").read_text() == "lr=0.5\n"
    assert (exp_repo / "params.yaml").read_text() == show(exp_repo, sha, "params.yaml")


def test_stage_sees_the_experiment_environment(exp_repo: Path) -> None:
    baseline = head(exp_repo)
    _, out, _ = exq("exp", "run", "-S", "train.lr=0.2", cwd=exp_repo)
    name = reported_name(out)
    env = json.loads((exp_repo / "env.json").read_text())
    root = os.path.realpath(exp_repo)
    assert env == {
        "EXQ_EXP_NAME": name,
        "EXQ_EXP_BASELINE_REV": baseline,
        "EXQ_ROOT": root,
        "DVC_EXP_NAME": name,
        "DVC_EXP_BASELINE_REV": baseline,
        "DVC_ROOT": root,
    }


def test_same_inputs_give_the_same_name_and_new_inputs_another(exp_repo: Path) -> None:
    _, out1, _ = exq("exp", "run", "--temp", "-S", "train.lr=0.3", cwd=exp_repo)
    _, out2, _ = exq("exp", "run", "--temp", "-S", "train.lr=0.4", cwd=exp_repo)
    assert reported_name(out1) != reported_name(out2)
    assert len(exp_refs(exp_repo)) == 2


# -- --temp ----------------------------------------------------------------------


def test_temp_runs_in_a_worktree_and_leaves_the_workspace(exp_repo: Path) -> None:
    before = workspace_bytes(exp_repo)
    baseline = head(exp_repo)

    _, out, _ = exq("exp", "run", "--temp", "-S", "train.lr=0.9", cwd=exp_repo)

    assert workspace_bytes(exp_repo) == before
    assert head(exp_repo) == baseline
    name = reported_name(out)
    assert f"exq exp apply {name}" in out
    sha = exp_refs(exp_repo)[f"refs/exps/{baseline[:2]}/{baseline[2:]}/{name}"]
    assert "lr: 0.9" in show(exp_repo, sha, "params.yaml")
    # the worktree is gone, for git and on disk
    assert len(git(exp_repo, "worktree", "list").splitlines()) == 1
    worktrees = exp_repo / ".dvc" / "tmp" / "exq" / "worktrees"
    assert not worktrees.exists() or list(worktrees.iterdir()) == []
    # the out it made is in the shared cache
    lock = yaml.safe_load(show(exp_repo, sha, "dvc.lock"))
    md5 = next(o["md5"] for o in lock["stages"]["train"]["outs"] if o["path"] == "model.txt")
    cached = exp_repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    assert cached.read_text() == "lr=0.9\n"


# -- names -----------------------------------------------------------------------


def test_name_clash_is_refused_without_force_and_replaced_with_it(exp_repo: Path) -> None:
    exq("exp", "run", "-n", "first", "-S", "train.lr=0.5", cwd=exp_repo)
    refs = exp_refs(exp_repo)
    params = (exp_repo / "params.yaml").read_bytes()

    code, _, err = exq("exp", "run", "-n", "first", "-S", "train.lr=0.6", cwd=exp_repo, check=False)

    assert_refused(code, err, "first")
    assert exp_refs(exp_repo) == refs
    assert (exp_repo / "params.yaml").read_bytes() == params

    _, out, _ = exq("exp", "run", "-f", "-n", "first", "-S", "train.lr=0.6", cwd=exp_repo)
    assert reported_name(out) == "first"
    new = exp_refs(exp_repo)
    assert list(new) == list(refs) and new != refs
    assert "lr: 0.6" in show(exp_repo, next(iter(new.values())), "params.yaml")


@pytest.mark.parametrize("name", ["a..b", "x/y", "-x", "a~1"])
def test_invalid_names_are_refused(exp_repo: Path, name: str) -> None:
    params = (exp_repo / "params.yaml").read_bytes()
    code, _, err = exq(
        "exp", "run", f"--name={name}", "-S", "train.lr=0.5", cwd=exp_repo, check=False
    )
    assert_refused(code, err, "invalid experiment name", name)
    assert exp_refs(exp_repo) == {}
    assert (exp_repo / "params.yaml").read_bytes() == params


# -- -S --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        ("nokey=1", ["params.yaml", "nokey"]),
        ("train.lr.x=1", ["params.yaml", "train.lr"]),
        ("~nokey", ["params.yaml", "nokey"]),
        ("=1", ["=1"]),
        ("train.lr=[1", ["train.lr=[1"]),
        ("missing.yaml:a=1", ["missing.yaml"]),
    ],
)
def test_bad_set_param_fails_before_anything_changes(
    exp_repo: Path, edit: str, words: list[str]
) -> None:
    before = workspace_bytes(exp_repo)
    code, out, err = exq("exp", "run", "-S", edit, cwd=exp_repo, check=False)
    assert_refused(code, err, *words)
    assert "Running stage" not in out
    assert workspace_bytes(exp_repo) == before
    assert exp_refs(exp_repo) == {}


def test_plus_adds_and_tilde_deletes_keys(exp_repo: Path) -> None:
    _, out, _ = exq(
        "exp",
        "run",
        "--temp",
        "-S",
        "+train.momentum=0.9",
        "-S",
        "~seed",
        "-S",
        "train.epochs=[1, 2]",
        cwd=exp_repo,
    )
    sha = next(iter(exp_refs(exp_repo).values()))
    params = yaml.safe_load(show(exp_repo, sha, "params.yaml"))
    assert params == {"train": {"lr": 0.1, "epochs": [1, 2], "momentum": 0.9}}
    assert "# learning rate" in show(exp_repo, sha, "params.yaml")
    assert reported_name(out).startswith("exp-")


# -- failure ---------------------------------------------------------------------


def test_failing_stage_makes_no_experiment(exp_repo: Path) -> None:
    baseline = head(exp_repo)
    code, out, err = exq("exp", "run", "-S", "+train.fail=true", cwd=exp_repo, check=False)
    assert code != 0
    assert "train" in err and "Traceback" not in err
    assert "Reproduced experiment" not in out
    assert exp_refs(exp_repo) == {}
    assert head(exp_repo) == baseline


# -- other params files ----------------------------------------------------------


JSON_TOML_TRAIN = """\
import json, tomllib
from pathlib import Path
j = json.loads(Path("conf.json").read_text())
t = tomllib.loads(Path("conf.toml").read_text())
Path("out.txt").write_text(f"{j['model']['depth']} {t['opt']['lr']}\\n")
"""


def test_json_and_toml_params_files(project: Path) -> None:
    write(project / "conf.json", '{\n  "model": {"depth": 3, "name": "m"}\n}\n')
    write(project / "conf.toml", "# optimiser\n[opt]\nlr = 0.1 # rate\n")
    write(project / "train.py", JSON_TOML_TRAIN)
    write(
        project / "dvc.yaml",
        f"""\
stages:
  train:
    cmd: {PY} train.py
    deps: [train.py]
    params:
    - conf.json:
      - model.depth
    - conf.toml:
      - opt.lr
    outs: [out.txt]
""",
    )
    exq("repro", cwd=project)
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "baseline")

    exq("exp", "run", "-S", "conf.json:model.depth=5", "-S", "conf.toml:opt.lr=0.02", cwd=project)

    assert (project / "out.txt").read_text() == "5 0.02\n"
    sha = next(iter(exp_refs(project).values()))
    assert json.loads(show(project, sha, "conf.json")) == {"model": {"depth": 5, "name": "m"}}
    toml_text = show(project, sha, "conf.toml")
    assert tomllib.loads(toml_text) == {"opt": {"lr": 0.02}}
    assert "# optimiser" in toml_text and "# rate" in toml_text
    lock = yaml.safe_load(show(project, sha, "dvc.lock"))
    assert lock["stages"]["train"]["params"] == {
        "conf.json": {"model.depth": 5},
        "conf.toml": {"opt.lr": 0.02},
    }
