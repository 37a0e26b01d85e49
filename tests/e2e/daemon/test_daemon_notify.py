"""``[notify]``: the user's command at each run's end and once when the queue drains,
with the run's variables, under a real daemon started by ``exq queue start``; a
command that fails or hangs is logged and changes no run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PY, exq, write
from tests.e2e.queue_helpers import QueueEnv, make_project, queued_ids, wait_for, wait_states

ENDED = {"success", "failed", "interrupted", "cancelled"}
# Appends the notify variables to calls.jsonl as one JSON line.
RECORD = """\
import json, os, sys
names = ["EXQ_EVENT", "EXQ_RUN_ID", "EXQ_RUN_NAME", "EXQ_RUN_STATE", "EXQ_EXIT_CODE",
         "EXQ_EXPERIMENT_REF", "EXQ_REPO"]
with open(sys.argv[1], "a") as out:
    out.write(json.dumps({n: os.environ.get(n) for n in names}) + "\\n")
print("told", os.environ["EXQ_EVENT"])
"""


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str) -> Path:
    path = write(tmp_path / "config.toml", f"[notify]\n{table}")
    monkeypatch.setenv("EXQ_CONFIG", str(path))
    return path


def _events(state: Path) -> list[dict[str, object]]:
    log = state / "daemon.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(line) for line in lines if line.startswith("{")]


def _calls(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_command_runs_once_per_run_end_and_once_when_the_queue_drains(
    queue_env: QueueEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls.jsonl"
    write(tmp_path / "record.py", RECORD)
    _config(tmp_path, monkeypatch, f'command = "{PY} {tmp_path}/record.py {calls}"\n')
    root = make_project(tmp_path / "repo")
    _, out, _ = exq("exp", "run", "--queue", "-n", "good", cwd=root)
    _, bad, _ = exq("exp", "run", "--queue", "-n", "bad", "-S", "mode=fail", cwd=root)
    ids = queued_ids(out) + queued_ids(bad)
    exq("queue", "start", "-j", "1", cwd=root)
    runs = wait_states(root, ids, ENDED)
    wait_for(lambda: len(_calls(calls)) >= 3, "three notifications")
    good, failed = runs[ids[0]], runs[ids[1]]
    assert (good["state"], failed["state"]) == ("success", "failed")
    by_event = sorted(_calls(calls), key=lambda c: (c["EXQ_EVENT"], c["EXQ_RUN_ID"]))
    assert by_event == [
        {
            "EXQ_EVENT": "queue-drained",
            "EXQ_RUN_ID": "",
            "EXQ_RUN_NAME": "",
            "EXQ_RUN_STATE": "",
            "EXQ_EXIT_CODE": "",
            "EXQ_EXPERIMENT_REF": "",
            "EXQ_REPO": "",
        },
        {
            "EXQ_EVENT": "run-end",
            "EXQ_RUN_ID": str(ids[0]),
            "EXQ_RUN_NAME": "good",
            "EXQ_RUN_STATE": "success",
            "EXQ_EXIT_CODE": "0",
            "EXQ_EXPERIMENT_REF": good["experiment_ref"],
            "EXQ_REPO": str(root),
        },
        {
            "EXQ_EVENT": "run-end",
            "EXQ_RUN_ID": str(ids[1]),
            "EXQ_RUN_NAME": "bad",
            "EXQ_RUN_STATE": "failed",
            "EXQ_EXIT_CODE": "3",
            "EXQ_EXPERIMENT_REF": "",
            "EXQ_REPO": str(root),
        },
    ]
    assert good["experiment_ref"].endswith("/good")
    # the drain is the last word, and the command's output is in the daemon log
    assert _calls(calls)[-1]["EXQ_EVENT"] == "queue-drained"

    def ran() -> list[dict[str, Any]]:
        return [e for e in _events(queue_env.state) if e["event"] == "notify.ran"]

    # The daemon logs a command's output once it has exited, after it wrote its call.
    wait_for(lambda: len(ran()) >= 3, "three notify.ran events")
    assert sorted(e["output"] for e in ran()) == ["told queue-drained\n", *["told run-end\n"] * 2]

    # a second night drains again: one more drain, one more run end
    _, again, _ = exq("exp", "run", "--queue", "-n", "later", cwd=root)
    wait_states(root, queued_ids(again), ENDED)
    wait_for(lambda: len(_calls(calls)) >= 5, "two more notifications")
    assert [c["EXQ_EVENT"] for c in _calls(calls)[3:]] == ["run-end", "queue-drained"]


def test_on_filters_and_a_hanging_command_is_cut_off_and_changes_no_run(
    queue_env: QueueEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marks = tmp_path / "marks"
    table = (
        f'command = "echo $EXQ_EVENT-$EXQ_RUN_STATE >> {marks}; sleep 60"\n'
        'on = ["failed", "queue-drained"]\n'
        "timeout = 1\n"
    )
    _config(tmp_path, monkeypatch, table)
    root = make_project(tmp_path / "repo")
    _, out, _ = exq("exp", "run", "--queue", "-n", "fine", cwd=root)
    _, bad, _ = exq("exp", "run", "--queue", "-n", "broken", "-S", "mode=fail", cwd=root)
    ids = queued_ids(out) + queued_ids(bad)
    exq("queue", "start", "-j", "1", cwd=root)
    runs = wait_states(root, ids, ENDED)
    assert [runs[i]["state"] for i in ids] == ["success", "failed"]
    failed = wait_for(
        lambda: [e for e in _events(queue_env.state) if e["event"] == "notify.failed"][1:],
        "both commands to be cut off",
    )
    assert all(e["error"] == "timed out after 1 s" for e in failed)
    assert sorted(marks.read_text().split()) == ["queue-drained-", "run-end-failed"]


def test_a_bad_notify_table_is_one_line_naming_the_file_and_key(
    queue_env: QueueEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _config(tmp_path, monkeypatch, 'command = "true"\non = ["sucess"]\n')
    code, out, err = exq("queue", "start", cwd=tmp_path, check=False)
    assert code != 0 and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"ERROR: {path}: [notify] on must be a list of run-end, queue-drained,"
        " success, failed, interrupted, cancelled, timeout, pruned"
    ]


def test_desktop_notifications_go_through_notify_send(
    queue_env: QueueEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    said = tmp_path / "said"
    sender = write(bin_dir / "notify-send", f'#!/bin/sh\nprintf "%s|%s\\n" "$1" "$2" >> {said}\n')
    sender.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(PY).parent}:/usr/bin:/bin")
    _config(tmp_path, monkeypatch, 'desktop = true\non = ["run-end"]\n')
    root = make_project(tmp_path / "repo")
    _, out, _ = exq("exp", "run", "--queue", "-n", "seen", cwd=root)
    (run_id,) = queued_ids(out)
    exq("queue", "start", cwd=root)
    wait_states(root, [run_id], ENDED)
    wait_for(lambda: said.exists() and said.read_text(), "the desktop notification")
    assert said.read_text() == f"exq|run {run_id} 'seen' ended success\n"
