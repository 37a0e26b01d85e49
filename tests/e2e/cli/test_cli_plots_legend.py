"""``exq plots diff --legend params``: each line named by its revision and the
params that differ between the revisions drawn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import PY, exq, write
from tests.e2e.exp_helpers import assert_refused, commit_all, init_repo

TRAIN = """\
import yaml
p = yaml.safe_load(open("params.yaml"))
with open("loss.csv", "w") as f:
    f.write("step,loss\\n")
    for step in range(3):
        f.write(f"{step},{p['train']['lr'] * (3 - step)}\\n")
"""


@pytest.fixture(scope="module")
def proj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = init_repo(tmp_path_factory.mktemp("legend") / "repo")
    write(root / "params.yaml", "train:\n  lr: 0.1\n  epochs: 3\nseed: 7\n")
    write(root / "train.py", TRAIN)
    write(
        root / "dvc.yaml",
        f"stages:\n  train:\n    cmd: {PY} train.py\n    params: [train, seed]\n"
        "    plots:\n    - loss.csv:\n        cache: false\n        x: step\n",
    )
    commit_all(root, "baseline")
    exq("exp", "run", "-S", "train.lr=0.2", "-n", "fast", cwd=root)
    exq("exp", "run", "-S", "train.lr=0.05", "-S", "seed=8", "-n", "slow", cwd=root)
    return root


def test_legend_params_names_lines_by_what_differs(proj: Path) -> None:
    _, out, _ = exq("plots", "diff", "fast", "slow", "--legend", "params", "--json", cwd=proj)
    data = json.loads(out)
    assert data["revisions"] == ["fast (train.lr=0.2, seed=7)", "slow (train.lr=0.05, seed=8)"]
    (chart,) = data["plots"]
    assert [line["rev"] for line in chart["lines"]] == data["revisions"]
    # epochs is 3 in both: not named
    _, out, _ = exq("plots", "diff", "fast", "--legend", "params", "-e", "-o", "page", cwd=proj)
    page = (proj / "page" / "index.html").read_text()
    # the baseline (named by its short sha, as plots diff -e names it) and the experiment
    assert "fast (train.lr=0.2)" in page and " (train.lr=0.1)" in page
    assert "epochs" not in page.split("exq-plot-specs")[1]


def test_legend_rev_is_the_default(proj: Path) -> None:
    _, out, _ = exq("plots", "diff", "fast", "slow", "--json", cwd=proj)
    assert json.loads(out)["revisions"] == ["fast", "slow"]


def test_an_unknown_legend_is_one_line(proj: Path) -> None:
    code, _, err = exq("plots", "diff", "fast", "--legend", "names", cwd=proj, check=False)
    assert_refused(code, err, "--legend", "'names'")
