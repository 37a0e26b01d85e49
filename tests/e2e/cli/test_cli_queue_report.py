"""``exq queue report`` on a night with a failure: the runs of the window, their
durations and states, the failure with its error and last lines, the best runs."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path

from tests.e2e.conftest import PY, exq, write
from tests.e2e.queue_helpers import QueueEnv, queued_ids, wait_states
from tests.support import git

ENDED = {"success", "failed", "interrupted", "cancelled"}
SCRIPT = """\
import json, sys
from pathlib import Path

params = dict(l.split(": ", 1) for l in Path("params.yaml").read_text().splitlines())
lr = float(params["lr"])
for epoch in range(3):
    print(f"epoch {epoch} lr {lr}", flush=True)
if params["mode"].strip() == "fail":
    print("loss went to nan", flush=True)
    sys.exit(5)
Path("metrics.json").write_text(json.dumps({"acc": round(1 - abs(lr - 0.3), 3), "lr": lr}))
"""
DVC_YAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    params:
    - mode
    - lr
    metrics:
    - metrics.json:
        cache: false
"""


def _project(root: Path) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    exq("init", cwd=root)
    write(root / "train.py", SCRIPT)
    write(root / "params.yaml", "mode: ok\nlr: 0.1\n")
    write(root / "dvc.yaml", DVC_YAML)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "project")
    return root


def test_report_json_of_a_night_with_a_failure(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = _project(tmp_path / "repo")
    _, out, _ = exq("exp", "run", "--queue", "-n", "lr", "-S", "lr=0.2,0.3,0.5", cwd=root)
    _, bad, _ = exq("exp", "run", "--queue", "-n", "nan", "-S", "mode=fail", cwd=root)
    ids = queued_ids(out) + queued_ids(bad)
    exq("queue", "start", "-j", "2", cwd=root)
    wait_states(root, ids, ENDED)

    _, text, _ = exq("queue", "report", "--json", "--sort-by", "acc", cwd=root)
    data = json.loads(text)
    assert list(data) == [
        "since",
        "until",
        "counts",
        "total_seconds",
        "runs",
        "failures",
        "best",
    ]
    assert data["counts"] == {"failed": 1, "success": 3}
    by_name = {run["name"]: run for run in data["runs"]}
    assert sorted(by_name) == ["lr-1", "lr-2", "lr-3", "nan"]
    assert by_name["lr-2"]["metrics"] == {"metrics.json": {"acc": 1.0, "lr": 0.3}}
    assert by_name["lr-2"]["params"] == ["lr=0.3"]
    assert all(run["duration_seconds"] > 0 for run in data["runs"])
    assert data["total_seconds"] >= sum(run["duration_seconds"] for run in data["runs"]) - 0.5
    (failure,) = data["failures"]
    assert (failure["name"], failure["exit_code"]) == ("nan", 5)
    assert failure["error"] == "stage 'train': command exited with code 5"
    assert "[train] loss went to nan" in failure["last_lines"]  # the stage's own output
    assert len(failure["last_lines"]) <= 10
    assert data["best"]["metric"] == "metrics.json:acc"
    assert [(r["name"], r["value"]) for r in data["best"]["runs"]] == [
        ("lr-2", 1.0),
        ("lr-1", 0.9),
        ("lr-3", 0.8),
    ]
    assert data["best"]["runs"][0]["experiment_ref"].endswith("/lr-2")

    _, md, _ = exq("queue", "report", "--sort-by", "acc", "--sort-order", "asc", cwd=root)
    assert md.startswith("# Queue report: ")
    assert "4 runs (1 failed, 3 success)" in md
    assert "## Best runs by metrics.json:acc (asc)\n\n1. lr-3 (run " in md
    assert "## Failures\n\n### nan (run " in md and "[train] loss went to nan\n" in md

    # a window that the night is not in: nothing; a bad window or metric: one line
    last_end = max(datetime.fromisoformat(run["finished"]) for run in data["runs"])
    while datetime.now(last_end.tzinfo) < last_end + timedelta(seconds=1.5):
        time.sleep(0.05)  # until the last run ended more than the window ago
    _, empty, _ = exq("queue", "report", "--json", "--since", "1s", cwd=root)
    assert json.loads(empty)["runs"] == []
    code, _, err = exq("queue", "report", "--since", "soon", cwd=root, check=False)
    assert code != 0 and err.count("\n") == 1 and "--since 'soon' is not a duration" in err
    code, _, err = exq("queue", "report", "--sort-by", "f1", cwd=root, check=False)
    assert code != 0 and "no run in the report has the metric 'f1'" in err
