"""``--json`` of enqueue (``exp run --queue --json``, by the fast path and by
typer's) and of ``queue logs`` (one object; with ``-f``, JSON lines)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import exq
from tests.e2e.exp_helpers import assert_refused
from tests.e2e.queue_helpers import QueueEnv, make_project, runs_by_id, wait_states


@pytest.mark.parametrize(
    "args",
    [
        ["--queue", "--json", "-S", "lr=0.2,0.3", "-n", "sweep"],  # the fast path
        ["--queue", "--temp", "--json", "-S", "lr=0.2,0.3", "-n", "sweep"],  # typer's path
    ],
)
def test_enqueue_json_names_the_queued_runs(
    queue_env: QueueEnv, tmp_path: Path, args: list[str]
) -> None:
    root = make_project(tmp_path / "repo")
    _, out, err = exq("exp", "run", *args, cwd=root)
    queued = json.loads(out)
    runs = runs_by_id(root)
    assert queued == [{"id": run_id, "name": runs[run_id]["name"]} for run_id in sorted(runs)]
    assert len(queued) == 2 and all(run["name"].startswith("sweep") for run in queued)
    assert err == ""


def test_json_without_queue_is_refused(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    for args in (["--json"], ["--queue", "--run-all", "--json"]):
        code, out, err = exq("exp", "run", *args, cwd=root, check=False)
        assert_refused(code, err, "--json", "--queue")
        assert out == ""
    assert runs_by_id(root) == {}


def test_queue_logs_json(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    _, out, _ = exq("exp", "run", "--queue", "--json", "-n", "good", cwd=root)
    (good,) = (run["id"] for run in json.loads(out))
    (root / "params.yaml").write_text("mode: fail\nlr: 0.1\n")
    _, out, _ = exq("exp", "run", "--queue", "--json", "-n", "bad", cwd=root)
    (bad,) = (run["id"] for run in json.loads(out))

    _, out, _ = exq("queue", "logs", "good", "--json", cwd=root)
    assert json.loads(out) == {
        "id": good,
        "name": "good",
        "state": "queued",
        "attempt": 0,
        "exit_code": None,
        "error": None,
        "log": None,
        "lines": [],
    }

    exq("queue", "start", "-j", "1", cwd=root)
    # -f: a line per line of output as it comes, then the run as it ended
    code, out, _ = exq("queue", "logs", str(bad), "-f", "--json", cwd=root, check=False)
    assert code == 1
    *lines, end = [json.loads(line) for line in out.splitlines()]
    assert all(list(line) == ["line"] for line in lines)
    assert {"line": "[work] failing on purpose"} in lines
    assert (end["id"], end["state"], end["exit_code"]) == (bad, "failed", 3)
    assert "lines" not in end and end["log"]

    wait_states(root, [good, bad], {"success", "failed"})
    _, out, _ = exq("queue", "logs", "good", "--json", cwd=root)
    shown = json.loads(out)
    assert (shown["state"], shown["exit_code"], shown["attempt"]) == ("success", 0, 1)
    text = Path(shown["log"]).read_text()
    assert shown["lines"] == text.splitlines() and len(shown["lines"]) > 2
    _, out, _ = exq("queue", "logs", "good", "--json", "-n", "2", cwd=root)
    assert json.loads(out)["lines"] == text.splitlines()[-2:]
    _, out, _ = exq("queue", "logs", "good", "-f", "--json", cwd=root)
    assert [json.loads(line) for line in out.splitlines()][:-1] == [
        {"line": line} for line in text.splitlines()
    ]
