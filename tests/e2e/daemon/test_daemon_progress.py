"""``exq queue status`` shows how far a running checkpoint run has got, under a
real ``exq daemon``: its step of the declared total, its latest metrics, when
they changed, the time left, and when the queue drains."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from exq.daemon.states import RunState
from tests.e2e.daemon.conftest import exq
from tests.e2e.daemon_helpers import runs, start, terminate, wait_until
from tests.support import DVCYAML, HOLD_TRAIN, git, init_project, write_training_project

EPOCHS = 5
# The holding script, declaring its total as a script using exq.live would.
SCRIPT = HOLD_TRAIN.replace('Live("logs")', 'Live("logs", total_steps=int(params["epochs"]))')


def _project(root: Path) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    init_project(root)
    params = f"train:\n  epochs: {EPOCHS}\n  lr: 0.5\n"
    write_training_project(root, dvcyaml=DVCYAML, script=SCRIPT, params=params)
    return root


def _status(env: dict[str, str], repo: Path) -> dict[str, object]:
    done = exq(env, repo, "queue", "status", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_status_shows_the_step_metrics_and_time_left_of_a_running_run(
    env: dict[str, str], tmp_path: Path
) -> None:
    repo = _project(tmp_path / "train")
    assert 'Live("logs", total_steps=' in SCRIPT
    # HOLD_AT goes with the run: it runs in the environment it was queued from.
    assert exq({**env, "HOLD_AT": "2"}, repo, "exp", "run", "--queue", "-n", "ck").returncode == 0
    queued = _status(env, repo)
    assert queued["runs"][0]["progress"] is None  # queued: nothing to show yet
    assert queued["queue"] == {"eta_seconds": None}  # no daemon, no slots

    rdv = Path(env["RDV"])
    daemon = start(env)
    try:
        wait_until(lambda: list(rdv.glob("held-*")), "the script to hold after step 2")
        data = _status(env, repo)
        (run,) = data["runs"]
        assert run["state"] == "running"
        progress = run["progress"]
        assert list(progress) == ["step", "total_steps", "metrics", "updated", "eta_seconds"]
        assert (progress["step"], progress["total_steps"]) == (2, EPOCHS)
        assert progress["metrics"] == {"loss": round(1 / (1 + 1.5), 6)}  # the weight at step 2
        updated = datetime.fromisoformat(progress["updated"])
        assert updated <= datetime.now(UTC) and updated >= datetime.fromisoformat(run["started"])
        # 3 of 5 steps done: 2 to go take 2/3 of the time so far
        assert progress["eta_seconds"] > 0
        assert data["queue"]["eta_seconds"] == progress["eta_seconds"]  # one run, one slot

        table = exq(env, repo, "queue", "status")
        assert table.returncode == 0, table.stderr
        row = next(line for line in table.stdout.splitlines() if " ck " in line)
        assert "step 2/5" in row and " left" in row and "loss=0.4" in row
        assert "the queue drains in about" in table.stdout.splitlines()[-1]

        # queue show: the run whole, its worktree and live report named
        shown = exq(env, repo, "queue", "show", "ck", "--json")
        assert shown.returncode == 0, shown.stderr
        whole = json.loads(shown.stdout)
        worktree = Path(whole["worktree"])
        assert worktree.is_dir() and (worktree / "dvc.yaml").is_file()
        assert whole["live_reports"] == [str(worktree / "logs_dvc_plots" / "index.html")]
        assert whole["progress"]["step"] == 2 and len(whole["baseline"]) == 40
        assert whole["log"] and any("Running stage 'train'" in x for x in whole["last_lines"])
        text = exq(env, repo, "queue", "show", "ck").stdout
        assert "Live report:  " + str(worktree / "logs_dvc_plots" / "index.html") in text
        assert "Progress:     step 2/5, " in text

        # exp show lists the running run with the metrics its worktree holds now
        listed = exq(env, repo, "exp", "show", "--json")
        assert listed.returncode == 0, listed.stderr
        assert '"loss": 0.4' in listed.stdout and '"running"' in listed.stdout, listed.stdout
        row = next(
            line for line in exq(env, repo, "exp", "show").stdout.splitlines() if "ck" in line
        )
        assert "0.4" in row and "Running" in row

        (rdv / "go").write_text("")
        wait_until(lambda: runs(env)[0].state is RunState.SUCCESS, "the run to succeed")
        done = _status(env, repo)
        assert done["runs"][0]["progress"] is None
        assert done["queue"] == {"eta_seconds": 0.0}
        ended = json.loads(exq(env, repo, "queue", "show", "ck", "--json").stdout)
        assert (ended["worktree"], ended["progress"]) == (None, None)
        assert ended["metrics"]["logs.json"]["loss"] == round(1 / (1 + 2.5), 6)
        assert terminate(daemon) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()


HOLD = """\
import os, time
from pathlib import Path
rdv = Path(os.environ["RDV"])
(rdv / "held-prep").write_text("")
while not (rdv / "go-prep").exists():
    time.sleep(0.02)
Path("prep.txt").write_text("ready\\n")
"""

TWO_STAGES = """\
stages:
  prep:
    cmd: {py} hold.py
    deps: [hold.py]
    outs: [prep.txt]
  train:
    cmd: {py} train.py
    deps: [prep.txt, train.py]
    metrics:
    - metrics.json:
        cache: false
"""


def test_status_shows_none_of_the_metrics_the_run_started_with(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The snapshot holds the results committed with the baseline (a metrics file
    kept in git, as DVC keeps them): until the run writes its own, queue status
    showed those as the running run's step and metrics ('step 7, loss=9.5' while
    its first stage was still preparing the data)."""
    import sys

    repo = tmp_path / "train"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test")
    git(repo, "config", "user.email", "test@example.com")
    init_project(repo)
    (repo / "hold.py").write_text(HOLD)
    (repo / "train.py").write_text("open('metrics.json', 'w').write('{\"loss\": 0.5}')\n")
    (repo / "dvc.yaml").write_text(TWO_STAGES.format(py=sys.executable))
    (repo / "metrics.json").write_text('{"step": 7, "loss": 9.5}')  # the baseline's result
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a pipeline and its last results")
    assert exq(env, repo, "exp", "run", "--queue", "-n", "fresh").returncode == 0
    rdv = Path(env["RDV"])
    daemon = start(env)
    try:
        wait_until(lambda: (rdv / "held-prep").exists(), "the first stage to run")
        (run,) = _status(env, repo)["runs"]
        assert run["state"] == "running"
        assert (run["progress"]["step"], run["progress"]["metrics"]) == (None, {}), run
        table = exq(env, repo, "queue", "status").stdout
        assert "loss=9.5" not in table and "step 7" not in table, table
        (rdv / "go-prep").write_text("")
        wait_until(lambda: runs(env)[0].state is RunState.SUCCESS, "the run to end")
        assert terminate(daemon) == 0
    finally:
        (rdv / "go-prep").write_text("")
        if daemon.poll() is None:
            daemon.kill()
