"""The real ``dvc exp show --json`` lists the experiments exq made, with the same values.

Experiments are made two ways: by ``exq exp run -S`` (the CLI), and by exq's git
API as the benchmark makes them. Needs the real dvc (``EXQ_TEST_DVC``); skipped
when it is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from exq.engine.experiments.refs import exp_ref
from exq.engine.git import Git
from exq.engine.spec.paramfiles import flatten

pytestmark = pytest.mark.dvc

EXQ = str(Path(sys.executable).parent / "exq")
PY = sys.executable

TRAIN = """\
import json
from pathlib import Path
import yaml
lr = yaml.safe_load(Path("params.yaml").read_text())["train"]["lr"]
Path("metrics.json").write_text(json.dumps({"acc": round(0.5 + lr, 4)}))
Path("scores.yaml").write_text(f"nested:\\n  f1: {round(lr * 3, 4)}\\n")
"""

DVCYAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    deps:
    - train.py
    params:
    - train.lr
    - extra.json:
    metrics:
    - metrics.json:
        cache: false
    - scores.yaml
"""


def run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATER": "1"}
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def project(git_repo: Path) -> Path:
    (git_repo / "params.yaml").write_text("train:\n  lr: 0.1\n  epochs: 3\nseed: 7\n")
    (git_repo / "extra.json").write_text('{"opt": {"beta": 0.9}}')
    (git_repo / "train.py").write_text(TRAIN)
    (git_repo / "dvc.yaml").write_text(DVCYAML)
    run([EXQ, "init"], git_repo)
    run([EXQ, "repro"], git_repo)
    run(["git", "add", "-A"], git_repo)
    run(["git", "commit", "-qm", "baseline"], git_repo)
    return git_repo


def dvc_experiments(dvc: str, root: Path) -> dict[str, dict[str, Any]]:
    """name -> {rev, params, metrics} (flattened) as dvc exp show --json lists them."""
    rows = json.loads(run([dvc, "exp", "show", "--json"], root))
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        for group in row.get("experiments") or []:
            for rev in group["revs"]:
                data = rev["data"]
                found[rev["name"]] = {
                    "rev": rev["rev"],
                    "params": {f: flatten(v["data"]) for f, v in data["params"].items()},
                    "metrics": {
                        f: flatten(v["data"]) for f, v in data["metrics"].items() if "data" in v
                    },
                }
    return found


def exq_experiments(root: Path) -> dict[str, dict[str, Any]]:
    rows = json.loads(run([EXQ, "exp", "show", "--json"], root))
    return {
        row["name"]: {"rev": row["rev"], "params": row["params"], "metrics": row["metrics"]}
        for row in rows
        if row["kind"] == "experiment"
    }


def test_dvc_lists_experiments_made_by_exq_exp_run(dvc_bin: str, project: Path) -> None:
    run([EXQ, "exp", "run", "-S", "train.lr=0.2"], project)
    run([EXQ, "exp", "run", "-S", "train.lr=0.3", "-n", "third"], project)
    ours = exq_experiments(project)
    assert len(ours) == 2 and "third" in ours
    assert ours["third"]["metrics"] == {
        "metrics.json": {"acc": 0.8},
        "scores.yaml": {"nested.f1": 0.9},
    }
    assert dvc_experiments(dvc_bin, project) == ours


def test_dvc_lists_experiments_made_through_the_api(dvc_bin: str, project: Path) -> None:
    """What the benchmark does: commits with new params, metrics and lock, under refs/exps."""
    git = Git.open(project)
    baseline = git.head_sha()
    assert baseline is not None
    lock = (project / "dvc.lock").read_text()
    for i in range(3):
        lr = 0.01 * (i + 1)
        params = f"train:\n  lr: {lr}\n  epochs: 3\nseed: 7\n"
        sha = git.snapshot_workspace(
            "exq: experiment",
            parent=baseline,
            extra={
                "params.yaml": params.encode(),
                "metrics.json": json.dumps({"acc": i}).encode(),
                "dvc.lock": lock.replace("train.lr: 0.1", f"train.lr: {lr}").encode(),
            },
        )
        git.set_ref(exp_ref(baseline, f"api-{i}"), sha)
    ours = exq_experiments(project)
    assert set(ours) == {"api-0", "api-1", "api-2"}
    assert ours["api-2"]["params"]["params.yaml"]["train.lr"] == 0.03
    assert dvc_experiments(dvc_bin, project) == ours
