"""``exq queue show``: one run whole, with a real daemon and a real checkpoint
run: params, baseline, snapshot, executor and where it runs, worktree, log,
live report, each attempt's end, the metrics at each checkpoint and per step,
the last lines of output; ``--json`` too."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.e2e.conftest import PY, exq, write
from tests.e2e.exp_helpers import commit_all, init_repo
from tests.e2e.queue_helpers import QueueEnv, queued_ids, wait_for, wait_states

# Four checkpoints; with ``fail`` it exits 5 once after them (a retry resumes
# and succeeds); with ``hold`` it waits for the file ``go`` after two steps.
TRAIN = """\
import os, sys, time
from pathlib import Path
import yaml
from exq.live import Live
params = yaml.safe_load(open("params.yaml"))
shared = Path(os.environ["QSHARED"])
live = Live("logs", total_steps=4)
for step in range(live.step, 4):
    Path("model.txt").write_text(str(step))
    live.log("loss", params["lr"] / (step + 1))
    live.next_step()
    if params["hold"] and step == 1:
        print("holding", flush=True)
        while not (shared / "go").exists():
            time.sleep(0.05)
if params["fail"] and not (shared / "failed-once").exists():
    (shared / "failed-once").write_text("")
    print("failing once", flush=True)
    sys.exit(5)
live.end()
"""

DVCYAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    deps: [train.py]
    params: [lr, fail, hold]
    outs:
      - model.txt:
          checkpoint: true
    live:
      logs: {{summary: true, html: true, cache: false}}
"""


def _project(root: Path) -> Path:
    init_repo(root)
    write(root / "train.py", TRAIN)
    write(root / "dvc.yaml", DVCYAML)
    write(root / "params.yaml", "lr: 0.8\nfail: false\nhold: false\n")
    write(root / ".gitignore", "/model.txt\n")
    commit_all(root, "project")
    return root


def show(root: Path, key: str) -> tuple[dict[str, Any], str]:
    _, out, _ = exq("queue", "show", key, "--json", cwd=root)
    _, text, _ = exq("queue", "show", key, cwd=root)
    return json.loads(out), text


def test_attempts_checkpoints_and_their_metrics(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = _project(tmp_path / "repo")
    _, out, _ = exq(
        "exp", "run", "--queue", "-n", "flaky", "-S", "fail=true", "--retries", "1",
        "--retry-delay", "0", cwd=root,
    )  # fmt: skip
    (run_id,) = queued_ids(out)
    exq("queue", "start", "-j", "1", cwd=root)
    wait_states(root, [run_id], {"success", "failed"}, seconds=120)
    shown, text = show(root, "flaky")
    assert shown["state"] == "success" and shown["attempt"] == 2
    first, second = shown["attempts"]
    assert (first["attempt"], first["state"], first["exit_code"]) == (1, "failed", 5)
    assert "code 5" in first["error"] and first["checkpoints"] == 4
    assert first["location"] == "local" and first["started"] <= first["finished"]
    assert (second["attempt"], second["state"], second["exit_code"]) == (2, "success", 0)
    assert second["error"] is None
    points = shown["history"]["checkpoints"]
    assert [p["step"] for p in points] == [0, 1, 2, 3]
    losses = [p["metrics"]["logs.json"]["loss"] for p in points]
    assert losses == [0.8, 0.4, 0.8 / 3, 0.2]
    # once it ended, the steps come from the logger's history in the experiment's commit
    assert shown["history"]["steps"] == {"loss": [[0, 0.8], [1, 0.4], [2, 0.8 / 3], [3, 0.2]]}
    assert "Metrics per step (the last 10):\n  step  loss\n  0     0.8\n" in text
    assert "Attempt 1:    failed after " in text and "(exit 5), 4 checkpoints: stage" in text
    assert "Attempt 2:    success after " in text
    assert "Metrics at each of 4 checkpoints:" in text
    assert f"  {points[1]['sha'][:7]} step 1  logs.json: step=1 loss=0.4" in text


def test_a_running_run_in_full(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = _project(tmp_path / "repo")
    _, out, _ = exq("exp", "run", "--queue", "-n", "held", "-S", "hold=true", cwd=root)
    (run_id,) = queued_ids(out)
    exq("queue", "start", "-j", "1", cwd=root)

    def held() -> tuple[dict[str, Any], str] | None:
        shown, text = show(root, str(run_id))
        steps = shown["history"]["steps"].get("loss", [])
        if len(shown["history"]["checkpoints"]) < 2:  # the row learns of it just after
            return None
        return (
            (shown, text)
            if len(steps) == 2 and shown["last_lines"][-1:] == ["[train] holding"]
            else None
        )

    shown, text = wait_for(held, "two steps logged and the run holding", seconds=120)
    assert shown["params"] == ["hold=true"] and "Params:       hold=true" in text
    assert shown["baseline"] and shown["snapshot"] and shown["executor"] is None
    assert shown["location"] == "local" and "Where:        local" in text
    worktree = Path(shown["worktree"])
    assert worktree.is_dir() and f"Worktree:     {worktree}" in text
    assert Path(shown["log"]).is_file() and f"Log:          {shown['log']}" in text
    (report,) = shown["live_reports"]
    assert Path(report).is_file() and Path(report).is_relative_to(worktree)
    assert f"Live report:  {report}" in text
    page = Path(report).read_text()  # the live report names the run and its -S edits
    assert "<h1>held: logs</h1>" in page and "<code>hold=true</code>" in page
    assert shown["attempts"] == []  # the current attempt has not ended
    assert shown["history"]["steps"] == {"loss": [[0, 0.8], [1, 0.4]]}
    assert [p["step"] for p in shown["history"]["checkpoints"]] == [0, 1]
    assert "Metrics per step (the last 10):" in text
    assert "  step  loss\n  0     0.8\n  1     0.4\n" in text
    assert "Last " in text and "  [train] holding" in text

    (Path(os.environ["QSHARED"]) / "go").write_text("")
    wait_states(root, [run_id], {"success"}, seconds=120)
    shown, _ = show(root, "held")
    assert [a["state"] for a in shown["attempts"]] == ["success"]
    assert [p["step"] for p in shown["history"]["checkpoints"]] == [0, 1, 2, 3]
