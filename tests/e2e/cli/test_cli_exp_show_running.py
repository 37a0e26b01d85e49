"""``exq exp show`` lists a running run with the metrics its worktree holds now,
before the run has committed anything, as DVC shows running experiments."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import PY, exq, write
from tests.e2e.queue_helpers import QueueEnv, queued_ids, wait_for, wait_states
from tests.support import git

SCRIPT = """\
import json, os, time
from pathlib import Path

shared = Path(os.environ["QSHARED"])
Path("metrics.json").write_text(json.dumps({"acc": 0.625}))
(shared / "halfway").write_text("")
deadline = time.monotonic() + 60
while not (shared / "go").exists() and time.monotonic() < deadline:
    time.sleep(0.02)
Path("metrics.json").write_text(json.dumps({"acc": 0.875}))
"""
DVC_YAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    params:
    - lr
    metrics:
    - metrics.json:
        cache: false
"""


def test_a_running_run_shows_its_live_metrics(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    exq("init", cwd=root)
    write(root / "train.py", SCRIPT)
    write(root / "params.yaml", "lr: 0.1\n")
    write(root / "dvc.yaml", DVC_YAML)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "project")
    _, out, _ = exq("exp", "run", "--queue", "-n", "live", "-S", "lr=0.2", cwd=root)
    (run_id,) = queued_ids(out)
    exq("queue", "start", cwd=root)
    wait_for(lambda: (queue_env.shared / "halfway").exists(), "the run to write its metrics")
    try:
        _, shown, _ = exq("exp", "show", "--json", cwd=root)
        rows = json.loads(shown)
        text = json.dumps(rows)
        assert '"acc": 0.625' in text and '"running"' in text, text
        _, table, _ = exq("exp", "show", cwd=root)
        row = next(line for line in table.splitlines() if "live" in line)
        assert "0.625" in row and "Running" in row and "0.2" in row
    finally:
        (queue_env.shared / "go").write_text("")
    wait_states(root, [run_id], {"success", "failed"})
    _, table, _ = exq("exp", "show", cwd=root)
    assert "0.875" in next(line for line in table.splitlines() if "live" in line)


def test_hide_queued_and_hide_failed(queue_env: QueueEnv, tmp_path: Path) -> None:
    from tests.e2e.queue_helpers import make_project

    root = make_project(tmp_path / "repo")
    _, out, _ = exq("exp", "run", "--queue", "-n", "broken", "-S", "mode=fail", cwd=root)
    exq("queue", "start", cwd=root)
    wait_states(root, queued_ids(out), {"failed"})
    exq("queue", "stop", cwd=root)
    exq("exp", "run", "--queue", "-n", "later", cwd=root)

    def names(*flags: str) -> set[str]:
        _, shown, _ = exq("exp", "show", "--json", *flags, cwd=root)
        return {row["name"] for row in json.loads(shown)} - {"workspace", "main"}

    assert names() == {"broken", "later"}
    assert names("--hide-queued") == {"broken"}
    assert names("--hide-failed") == {"later"}
    assert names("--hide-queued", "--hide-failed") == set()
