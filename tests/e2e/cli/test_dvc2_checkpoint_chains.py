"""Checkpoint experiments made by DVC 2 are read as chains, one row per checkpoint.

DVC 2 kept a checkpoint experiment as a chain of commits ("dvc: commit
experiment <hash>", no trailers) under ``refs/exps/<baseline[:2]>/<baseline[2:]>/<name>``,
the baseline the first parent of the first one, beside its ``refs/exps/exec/*``
bookkeeping refs. ``exp show`` draws such a chain as DVC 2 did: the tip is the
experiment's row, the older checkpoints follow (``╓``, ``╟``, ``╨``).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import exq, write
from tests.e2e.exp_helpers import commit_all, init_repo
from tests.support import git

DVCYAML = """\
stages:
  train:
    cmd: python train.py
    params: [lr]
    outs:
    - model.txt:
        checkpoint: true
    metrics:
    - metrics.json:
        cache: false
"""


def dvc2_chain(root: Path, baseline: str, steps: int) -> list[str]:
    """Commit ``steps`` checkpoints the way DVC 2 did, under an experiment ref; newest first."""
    git(root, "checkout", "-q", "--detach")
    shas = []
    for step in range(steps):
        write(root / "metrics.json", json.dumps({"step": step, "w": 0.5 * (step + 1)}))
        git(root, "add", "metrics.json")
        git(root, "commit", "-q", "-m", f"dvc: commit experiment {step:064x}")
        shas.append(git(root, "rev-parse", "HEAD").strip())
    git(root, "update-ref", f"refs/exps/{baseline[:2]}/{baseline[2:]}/exp-d2a1b", shas[-1])
    for name in ("EXEC_CHECKPOINT", "EXEC_APPLY"):
        git(root, "update-ref", f"refs/exps/exec/{name}", shas[-1])
    git(root, "update-ref", "refs/exps/exec/EXEC_HEAD", baseline)
    git(root, "checkout", "-q", "main")
    return shas[::-1]


def test_a_dvc2_checkpoint_experiment_shows_one_row_per_checkpoint(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "repo")
    write(root / "dvc.yaml", DVCYAML)
    write(root / "params.yaml", "lr: 0.5\n")
    baseline = commit_all(root, "baseline")
    chain = dvc2_chain(root, baseline, 3)

    _, out, _ = exq("exp", "show", "--json", cwd=root)
    rows = json.loads(out)
    assert [row["kind"] for row in rows] == [
        "workspace",
        "baseline",
        "experiment",
        "checkpoint",
        "checkpoint",
    ]
    assert [row["rev"] for row in rows[2:]] == chain
    assert [row["parent"] for row in rows[2:]] == [chain[1], chain[2], None]
    assert [row["metrics"]["metrics.json"]["step"] for row in rows[2:]] == [2, 1, 0]
    assert rows[2]["name"] == "exp-d2a1b"

    _, table, _ = exq("exp", "show", "--no-pager", "--no-timestamp", cwd=root)
    assert "│ ╓ exp-d2a1b" in table and f"│ ╟ {chain[1][:7]}" in table, table
    assert f"├─╨ {chain[2][:7]}" in table, table

    # a checkpoint in the middle of the chain is a revision like any other
    _, out, _ = exq("exp", "diff", chain[2][:7], "exp-d2a1b", "--json", cwd=root)
    assert json.loads(out)["metrics"]["metrics.json"]["step"] == {"old": 0, "new": 2, "diff": 2}
