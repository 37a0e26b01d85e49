"""Metrics and params inside a cached output folder, as the DVC tutorial has them.

``outs: [eval]`` with ``metrics: [eval/metrics.json]``: in a commit the file
is not in git, only the folder's hash in ``dvc.lock``; DVC reads it from the
cache through the folder's ``.dir`` listing, and so does exq.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.e2e.conftest import PY, exq, write
from tests.e2e.exp_helpers import commit_all, init_repo, reported_name

EVALUATE = """\
import json, os
from pathlib import Path
lr = float(Path("params.yaml").read_text().split("lr:")[1].split()[0])
os.makedirs("eval/plots", exist_ok=True)
Path("eval/metrics.json").write_text(json.dumps({"acc": round(lr * 2, 4)}))
Path("eval/params.yaml").write_text(f"seen_lr: {lr}\\n")
Path("eval/plots/roc.csv").write_text("fpr,tpr\\n0,0\\n1,1\\n")
"""

DVCYAML = f"""\
stages:
  evaluate:
    cmd: {PY} evaluate.py
    deps: [evaluate.py]
    params: [train.lr]
    outs: [eval]
metrics:
- eval/metrics.json
params:
- eval/params.yaml
"""


def make_project(root: Path) -> tuple[Path, str]:
    """Baseline lr 0.1 made by exq repro, and an experiment with lr 0.3; its name."""
    init_repo(root)
    write(root / "evaluate.py", EVALUATE)
    write(root / "params.yaml", "train:\n  lr: 0.1\n")
    write(root / "dvc.yaml", DVCYAML)
    exq("repro", cwd=root)
    commit_all(root, "baseline")
    _, out, _ = exq("exp", "run", "-S", "train.lr=0.3", cwd=root)
    return root, reported_name(out)


def test_metrics_and_params_in_a_cached_folder_are_read_from_the_cache(tmp_path: Path) -> None:
    root, name = make_project(tmp_path / "repo")
    _, out, _ = exq("metrics", "show", "-a", "--json", cwd=root)
    shown = json.loads(out)
    assert shown["main"] == {"eval/metrics.json": {"acc": 0.2}}

    _, out, _ = exq("exp", "show", "--json", cwd=root)
    rows = {row["kind"]: row for row in json.loads(out)}
    assert rows["baseline"]["metrics"] == {"eval/metrics.json": {"acc": 0.2}}
    assert rows["baseline"]["params"]["eval/params.yaml"] == {"seen_lr": 0.1}
    assert rows["experiment"]["metrics"] == {"eval/metrics.json": {"acc": 0.6}}
    assert rows["experiment"]["params"]["eval/params.yaml"] == {"seen_lr": 0.3}

    _, out, _ = exq("exp", "diff", "main", name, "--json", cwd=root)
    diff = json.loads(out)
    assert diff["metrics"]["eval/metrics.json"]["acc"]["new"] == 0.6
    assert diff["params"]["eval/params.yaml"]["seen_lr"]["old"] == 0.1

    # nothing changed since the experiment was applied: no params differ from it
    _, out, _ = exq("params", "diff", name, "--json", cwd=root)
    assert json.loads(out) == {}


def test_the_values_are_the_ones_the_real_dvc_reads(tmp_path: Path, dvc_bin: str) -> None:
    root, _ = make_project(tmp_path / "repo")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATER": "1"}
    done = subprocess.run(
        [dvc_bin, "metrics", "show", "-a", "--json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    dvc_revs = {rev: data for rev, data in json.loads(done.stdout).items() if rev != "workspace"}
    [dvc_main] = dvc_revs.values()
    assert dvc_main["data"]["eval/metrics.json"]["data"] == {"acc": 0.2}
    _, out, _ = exq("metrics", "show", "-a", "--json", cwd=root)
    assert (
        json.loads(out)["main"]["eval/metrics.json"]
        == dvc_main["data"]["eval/metrics.json"]["data"]
    )
