"""The real ``dvc exp apply`` restores experiments that exq made, and ``exq exp
apply`` restores those dvc made (skipped without dvc)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import exq
from tests.support import git

pytestmark = pytest.mark.dvc

TRAIN = """\
from pathlib import Path
import yaml
p = yaml.safe_load(Path("params.yaml").read_text())["train"]
Path("model.txt").write_text(f"lr={p['lr']}\\n")
Path("models").mkdir(exist_ok=True)
for i in range(p["n"]):
    Path(f"models/part{i}.txt").write_text(f"{i} {p['lr']}\\n")
Path("metrics.json").write_text('{"acc": %s}' % (p["lr"] * 2))
"""

DVCYAML = f"""\
stages:
  train:
    cmd: {sys.executable} train.py
    deps:
    - train.py
    params:
    - train
    outs:
    - model.txt
    - models
    metrics:
    - metrics.json:
        cache: false
"""


def dvc(dvc_bin: str, repo: Path, *args: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(
        [dvc_bin, *args], cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"dvc {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def repo(git_repo: Path) -> Path:
    """A committed exq project: one stage with a file out, a folder out and a metric."""
    exq("init", cwd=git_repo)
    (git_repo / "params.yaml").write_text("train:\n  lr: 0.1  # rate\n  n: 2\n")
    (git_repo / "train.py").write_text(TRAIN)
    (git_repo / "dvc.yaml").write_text(DVCYAML)
    exq("repro", cwd=git_repo)
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "baseline")
    return git_repo


def outputs(root: Path) -> dict[str, str]:
    """What the experiment decides: params, lock, metric and the cached outs."""
    files = ["params.yaml", "dvc.lock", "metrics.json", "model.txt"]
    files += sorted(p.relative_to(root).as_posix() for p in (root / "models").glob("*"))
    return {rel: (root / rel).read_text() for rel in files}


def reset(root: Path, dvc_bin: str) -> None:
    """Back to the baseline: tracked files from HEAD, outs from the cache."""
    git(root, "checkout", "--", ".")
    dvc(dvc_bin, root, "checkout", "--force")


def test_dvc_exp_apply_restores_an_exq_experiment(repo: Path, dvc_bin: str) -> None:
    baseline = outputs(repo)
    _, out, _ = exq("exp", "run", "-S", "train.lr=0.5", "-S", "train.n=3", cwd=repo)
    name = out.split("Reproduced experiment(s): ")[1].split()[0]
    result = outputs(repo)
    assert result["model.txt"] == "lr=0.5\n" and "models/part2.txt" in result

    reset(repo, dvc_bin)
    assert outputs(repo) == baseline

    out = dvc(dvc_bin, repo, "exp", "apply", name)

    assert f"Changes for experiment '{name}' have been applied" in out
    assert outputs(repo) == result
    assert json.loads(dvc(dvc_bin, repo, "status", "--json")) == {}
    _, status, _ = exq("status", cwd=repo)
    assert status.strip() == "Data and pipelines are up to date."


def test_dvc_exp_apply_of_a_temp_exq_experiment(repo: Path, dvc_bin: str) -> None:
    baseline = outputs(repo)
    _, out, _ = exq("exp", "run", "--temp", "-n", "tmp-run", "-S", "train.lr=0.7", cwd=repo)
    assert outputs(repo) == baseline

    dvc(dvc_bin, repo, "exp", "apply", "tmp-run")

    applied = outputs(repo)
    assert applied["model.txt"] == "lr=0.7\n"
    assert applied["models/part1.txt"] == "1 0.7\n"
    assert "lr: 0.7  # rate" in applied["params.yaml"]
    assert json.loads(dvc(dvc_bin, repo, "status", "--json")) == {}


def test_exq_exp_apply_restores_a_dvc_experiment(repo: Path, dvc_bin: str) -> None:
    dvc(dvc_bin, repo, "exp", "run", "-n", "from-dvc", "-S", "train.lr=0.3")
    result = outputs(repo)
    reset(repo, dvc_bin)

    _, out, _ = exq("exp", "apply", "from-dvc", cwd=repo)

    assert "Changes for experiment 'from-dvc' have been applied" in out
    assert outputs(repo) == result
    assert json.loads(dvc(dvc_bin, repo, "status", "--json")) == {}
