"""Crash loops: the daemon killed with SIGKILL again and again during a sweep of
checkpoint runs, and the CLI killed again and again inside ``exp run --queue``.

Both end with every run succeeded exactly once, and nothing left behind: no
ref lock file, no orphan queue ref, no worktree, no checkpoint folder, no
process. The moments of the kills are random (a fixed seed per test, but the
moments a run reaches vary from one machine to the next); the rounds are sized
to take well under a minute each.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from pathlib import Path

from exq.daemon.states import MAX_ATTEMPTS, RunRecord, RunState
from exq.engine.git import Git
from tests.e2e.conftest import EXQ_BIN
from tests.e2e.daemon_helpers import (
    ckpt_folders,
    config_of,
    events,
    ref_locks,
    runs,
    start,
    terminate,
    wait_until,
)
from tests.support import (
    chain_steps,
    make_project,
    make_training_project,
    tsv_steps,
)

EPOCHS = 6
SWEEP = ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6"]
DAEMON_KILLS = 20
CLI_KILLS = 20


def ended(records: list[RunRecord]) -> bool:
    return all(r.state in (RunState.SUCCESS, RunState.FAILED) for r in records)


def killable(records: list[RunRecord]) -> bool:
    """No run still to run is on its last attempt: a run interrupted that often is
    failed on purpose (it may be what kills the daemon), not what this loop tests."""
    pending = (RunState.QUEUED, RunState.RUNNING, RunState.INTERRUPTED)
    return all(r.attempts < MAX_ATTEMPTS - 1 for r in records if r.state in pending)


def processes_with(text: str) -> list[int]:
    """Our processes whose environment holds ``text`` (a run's stages carry RDV)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def assert_nothing_left(environ: dict[str, str], repo: Path, records: list[RunRecord]) -> None:
    git = Git.open(repo)
    assert ref_locks(repo) == []
    assert sorted((repo / ".git").rglob("*.lock")) == []  # nor any other git lock
    assert git.list_refs("refs/heads/exq-worktree-tmp/") == {}
    queue_refs = git.list_refs("refs/exq/queue/")
    assert sorted(queue_refs) == sorted(r.snapshot_ref for r in records)  # no orphan
    assert all(queue_refs[r.snapshot_ref] == r.snapshot for r in records)
    worktrees = config_of(environ).worktrees_dir
    assert [w for w in git.list_worktrees() if str(w.path).startswith(str(worktrees))] == []
    assert not worktrees.exists() or list(worktrees.iterdir()) == []
    assert ckpt_folders(environ) == []
    wait_until(lambda: processes_with(f"RDV={environ['RDV']}") == [], "no process of a run left")


def test_daemon_kill_9_loop_during_a_sweep_of_checkpoint_runs(
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    repo, baseline = make_training_project(tmp_path / "train", epochs=EPOCHS)
    batches = 0

    def queue_sweep() -> None:
        nonlocal batches
        batches += 1
        sweep = ",".join(SWEEP)
        args = ["exp", "run", "--queue", "-n", f"b{batches}", "-S", f"train.lr={sweep}"]
        queued = subprocess.run(
            [str(EXQ_BIN), *args], cwd=repo, env=env, capture_output=True, text=True, timeout=60
        )
        assert queued.returncode == 0, queued.stderr

    queue_sweep()
    chance = random.Random(11)
    daemon = start(env, jobs=2)
    kills = 0
    try:
        while kills < DAEMON_KILLS:
            if ended(runs(env)):  # the sweep went faster than the kills: another one
                queue_sweep()
            time.sleep(chance.uniform(0.05, 0.5))
            if not killable(runs(env)):
                wait_until(
                    lambda: killable(runs(env)) or ended(runs(env)),
                    "a run on its last attempt to end",
                    seconds=120,
                )
                continue
            daemon.kill()
            daemon.wait(timeout=10)
            kills += 1
            daemon = start(env, jobs=2)
        wait_until(lambda: ended(runs(env)), "the sweeps to end", seconds=120)
        assert terminate(daemon) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    records = runs(env)
    assert len(records) == batches * len(SWEEP)
    assert [r.state for r in records] == [RunState.SUCCESS] * len(records), [
        r.error for r in records
    ]
    finished = [e for e in events(config_of(env).daemon_log) if e["event"] == "run.finished"]
    successes = sorted(e["run_id"] for e in finished if e["state"] == "success")
    # Each ran to success at most once (the queue's rows say every one did). A kill
    # -9 between a run's commit of its end and the log line may lose the line.
    assert len(successes) == len(set(successes)), successes
    assert set(successes) <= {r.id for r in records}
    refs = Git.open(repo).list_refs("refs/exps/")
    assert refs == {r.experiment_ref: r.experiment_sha for r in records}
    for record in records:
        sha = record.experiment_sha or ""
        steps = [s for s in chain_steps(repo, sha, baseline) if s is not None]
        assert steps == list(range(EPOCHS)), (record.name, steps)
        assert tsv_steps(repo, sha) == list(range(EPOCHS))
        assert record.checkpoints == EPOCHS
    assert_nothing_left(env, repo, records)


def test_cli_kill_9_loop_inside_enqueue(
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    repo = make_project(tmp_path / "repo")
    chance = random.Random(7)
    for round_ in range(CLI_KILLS):
        cli = subprocess.Popen(
            [str(EXQ_BIN), "exp", "run", "--queue", "-n", f"r{round_}", "-S", f"lr={round_}"],
            cwd=repo,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(chance.uniform(0.0, 0.4))
        cli.kill()
        _, err = cli.communicate(timeout=30)
        assert cli.returncode in (0, -9), err  # it ended on its own, or was killed
    # Whatever the kills left, the next enqueue works, and so does the queue.
    last = subprocess.run(
        [str(EXQ_BIN), "exp", "run", "--queue", "-n", "last"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert last.returncode == 0, last.stderr
    records = runs(env)
    assert records[-1].name == "last"
    assert len({r.name for r in records}) == len(records)
    daemon = start(env, jobs=2)
    try:
        wait_until(lambda: ended(runs(env)), "every queued run to end", seconds=120)
        assert terminate(daemon) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    records = runs(env)
    assert [r.state for r in records] == [RunState.SUCCESS] * len(records)
    assert [r.attempts for r in records] == [1] * len(records)
    shown = subprocess.run(
        [str(EXQ_BIN), "queue", "status", "--json"], env=env, capture_output=True, text=True
    )
    assert len(json.loads(shown.stdout)["runs"]) == len(records)
    assert_nothing_left(env, repo, records)
