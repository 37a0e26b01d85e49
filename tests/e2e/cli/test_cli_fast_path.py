"""The commands answered before typer print what typer's commands print.

``exq status``, ``dag``, ``stage list``, ``metrics show`` and ``queue status``
go from ``main`` straight to the function the typer command calls when their
command line is a plain one. Each case here runs the installed ``exq`` (that
way) and the same command line through the typer app
(``exq.cli.main.through_typer``), in the same folder and environment, and
compares stdout, stderr and the exit status byte for byte: on normal runs and
on errors (no project, no dvc.yaml, a malformed one, an unknown stage, no git
repository, options that do not go together).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from exq.cli.main import fast_call
from tests.e2e.conftest import exq, write
from tests.e2e.queue_helpers import QueueEnv
from tests.support import git

DVC_YAML = """\
stages:
  prep:
    cmd: echo prep > prep.txt
    deps: [data.txt]
    outs: [prep.txt]
  train:
    cmd: >-
      printf '{"acc": 0.9, "loss": {"train": 0.25}}' > metrics.json
    deps: [prep.txt]
    params: [train.lr]
    metrics:
      - metrics.json:
          cache: false
  other:
    cmd: echo other > other.txt
    outs: [other.txt]
"""

THROUGH_TYPER = "import sys; from exq.cli.main import through_typer; through_typer(sys.argv[1:])"


def typer_path(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """``exq ARGS`` through the typer app, as ``main`` runs it for other command lines."""
    done = subprocess.run(
        [sys.executable, "-c", THROUGH_TYPER, *args],
        cwd=cwd,
        env={k: v for k, v in os.environ.items() if k != "EXQ_CACHE_TYPE"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


def assert_same_both_ways(args: list[str], cwd: Path) -> tuple[int, str, str]:
    assert fast_call(args) is not None  # the installed exq takes the fast path
    fast = exq(*args, cwd=cwd, check=False)
    assert fast == typer_path(args, cwd), args
    return fast


@pytest.fixture
def pipeline(project: Path) -> Path:
    """A committed three-stage pipeline with metrics, a tag, and a changed data file."""
    write(project / "dvc.yaml", DVC_YAML)
    write(project / "params.yaml", "train:\n  lr: 0.1\n")
    write(project / "data.txt", "one\n")
    write(project / "metrics.json", '{"acc": 0.5, "loss": {"train": 1.25}}\n')
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "pipeline")
    git(project, "tag", "v1")
    write(project / "metrics.json", '{"acc": 0.75, "loss": {"train": 0.5}}\n')
    return project


OK_CASES = [
    ["status"],
    ["status", "--json"],
    ["status", "train"],
    ["status", "-q"],
    ["status", "--quiet", "--json"],
    ["dag"],
    ["dag", "--dot"],
    ["dag", "--mermaid"],
    ["dag", "--json", "train"],
    ["dag", "-v"],
    ["stage", "list"],
    ["stage", "list", "--all"],
    ["stage", "list", "--json"],
    ["stage", "list", "--name-only", "prep"],
    ["stage", "list", "--names-only", "-v"],
    ["metrics", "show"],
    ["metrics", "show", "--json"],
    ["metrics", "show", "--md"],
    ["metrics", "show", "-a"],
    ["metrics", "show", "--all-tags", "--json"],
    ["metrics", "show", "-A", "--md"],
    ["metrics", "show", "metrics.json", "-q"],
]


@pytest.mark.parametrize("args", OK_CASES, ids=" ".join)
def test_normal_runs_print_the_same(pipeline: Path, args: list[str]) -> None:
    code, out, _ = assert_same_both_ways(args, pipeline)
    assert code == 0
    assert (out == "") == ("-q" in args or "--quiet" in args)


ERROR_CASES = [
    ["status", "nosuch"],
    ["dag", "nosuch"],
    ["stage", "list", "nosuch"],
    ["status", "trian", "--json"],  # did you mean
    ["metrics", "show", "--json", "--md"],
]


@pytest.mark.parametrize("args", ERROR_CASES, ids=" ".join)
def test_user_errors_are_the_same_line(pipeline: Path, args: list[str]) -> None:
    code, out, err = assert_same_both_ways(args, pipeline)
    assert code != 0 and out == ""
    assert err.startswith("ERROR: ") and err.count("\n") == 1


COMMANDS = [["status"], ["dag"], ["stage", "list"], ["metrics", "show"], ["status", "--json"]]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_outside_a_project(tmp_path: Path, args: list[str]) -> None:
    code, _, err = assert_same_both_ways(args, tmp_path)
    assert code == 1 and "not an exq/DVC project" in err


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_without_a_dvc_yaml(project: Path, args: list[str]) -> None:
    assert_same_both_ways(args, project)


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_malformed_dvc_yaml(project: Path, args: list[str]) -> None:
    write(project / "dvc.yaml", "stages:\n  a:\n    cmd: [x\n")
    write(project / "metrics.json", "{not json\n")
    code, _, err = assert_same_both_ways(args, project)
    if args != ["metrics", "show"]:
        assert code == 1 and "dvc.yaml" in err


@pytest.mark.parametrize("args", [["metrics", "show", "-a"], ["metrics", "show", "-T", "--json"]])
def test_metrics_of_revisions_without_git(tmp_path: Path, args: list[str]) -> None:
    exq("init", "--no-scm", cwd=tmp_path)
    write(tmp_path / "dvc.yaml", DVC_YAML)
    write(tmp_path / "metrics.json", '{"acc": 1}\n')
    code, _, err = assert_same_both_ways(args, tmp_path)
    assert code != 0 and err.startswith("ERROR: ")


def test_verbose_errors_end_with_the_same_line(pipeline: Path) -> None:
    # the traceback's frames differ (click's are in typer's); its last line and the error do not
    args = ["status", "-v", "nosuch"]
    assert fast_call(args) is not None
    fast = exq(*args, cwd=pipeline, check=False)
    slow = typer_path(args, pipeline)
    assert fast[:2] == slow[:2] == (1, "")
    for err in (fast[2], slow[2]):
        assert err.startswith("Traceback (most recent call last)")
    assert fast[2].splitlines()[-2:] == slow[2].splitlines()[-2:]


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_queue_status_prints_the_same(
    pipeline: Path, queue_env: QueueEnv, json_flag: list[str]
) -> None:
    args = ["queue", "status", *json_flag]
    _, empty, _ = assert_same_both_ways(args, pipeline)
    exq("exp", "run", "--queue", "-S", "train.lr=0.2", "-n", "queued-one", cwd=pipeline)
    _, out, _ = assert_same_both_ways(args, pipeline)
    assert "queued-one" in out and "queued-one" not in empty


def test_queue_status_with_a_bad_config_file(
    tmp_path: Path, queue_env: QueueEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path / "config.toml", "[queue\n")
    monkeypatch.setenv("EXQ_CONFIG", str(config))
    code, _, err = assert_same_both_ways(["queue", "status"], tmp_path)
    assert code == 1 and str(config) in err


EXP_SHOW_CASES = [
    ["exp", "show", "--json"],
    ["exp", "show", "--csv"],
    ["exp", "show", "--md", "--no-timestamp"],
    ["exp", "show"],
    ["exp", "show", "--only-changed", "--hide-queued", "--hide-failed"],
    ["exp", "show", "-A", "--json", "--param-deps"],
    ["exp", "show", "-a", "-T", "--no-pager", "-q"],
    ["exp", "show", "--json", "--csv"],  # refused: one format
]


def test_exp_show_prints_the_same(pipeline: Path, queue_env: QueueEnv) -> None:
    write(pipeline / "data.txt", "one\n")
    exq("exp", "run", "-S", "train.lr=0.2", "-n", "lr-two", cwd=pipeline)
    exq("exp", "run", "--queue", "-S", "train.lr=0.3", "-n", "lr-three", cwd=pipeline)
    for args in EXP_SHOW_CASES:
        code, out, err = assert_same_both_ways(args, pipeline)
        if "--csv" in args and "--json" in args:
            assert code == 1 and err.startswith("ERROR: ")
        elif "-q" not in args:
            assert code == 0 and "lr-two" in out


@pytest.mark.parametrize("where", ["outside a project", "no git"])
def test_exp_show_errors_are_the_same(tmp_path: Path, where: str) -> None:
    if where == "no git":
        exq("init", "--no-scm", cwd=tmp_path)
    code, _, err = assert_same_both_ways(["exp", "show", "--json"], tmp_path)
    assert code != 0 and err.startswith("ERROR: ")
