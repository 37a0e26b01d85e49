"""What a process killed outright leaves behind never blocks the next run.

A daemon killed with SIGKILL may leave a ref's ``.lock`` file (killed while
git moved the ref), its checkpoint handshake folder, and a checkpoint count
one too low (killed between moving the ref and writing the row). A CLI killed
inside the enqueue transaction leaves ``refs/exq/queue/<id>.lock`` for an id
that the next enqueue gets again. The real ``exq`` processes, real git.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from exq.daemon.states import RunState
from exq.engine.experiments.refs import exp_ref
from exq.engine.git import Git
from tests.e2e.daemon.conftest import exq
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
    alive,
    chain_steps,
    computed,
    make_project,
    make_training_project,
)

EPOCHS = 5


def held_pid(rdv: Path) -> int:
    (held,) = rdv.glob("held-*")
    return int(held.name.split("-")[1])


def test_a_killed_daemons_ref_lock_and_checkpoint_folder_are_gone_at_the_next_start(
    env: dict[str, str], tmp_path: Path
) -> None:
    repo, baseline = make_training_project(tmp_path / "train", epochs=EPOCHS)
    # HOLD_AT goes with the run: it runs in the environment it was queued from.
    assert exq({**env, "HOLD_AT": "1"}, repo, "exp", "run", "--queue", "-n", "ck").returncode == 0
    rdv = Path(env["RDV"])
    daemon = start(env)
    try:
        wait_until(lambda: list(rdv.glob("held-*")), "the script to hold after step 1")
        script = held_pid(rdv)
        daemon.kill()
        daemon.wait(timeout=10)
        # What a kill inside git's ref update leaves: the experiment ref's lock.
        ref = exp_ref(baseline, "ck")
        lock = repo / ".git" / f"{ref}.lock"
        lock.write_text("")
        # And a kill while adding a worktree: its throwaway branch, or that lock.
        gone = subprocess.Popen(["true"])
        gone.wait()
        git = Git.open(repo)
        git.set_ref(f"refs/heads/exq-worktree-tmp/{gone.pid}-a1", baseline)
        temp_lock = repo / ".git" / "refs" / "heads" / "exq-worktree-tmp" / f"{gone.pid}-b2.lock"
        temp_lock.write_text("")
        assert len(ckpt_folders(env)) == 1  # the dead daemon's handshake folder
        daemon = start(env)
        wait_until(lambda: not alive(script), "the old script to be reaped")
        (rdv / "go").write_text("")
        wait_until(
            lambda: runs(env)[0].state in (RunState.SUCCESS, RunState.FAILED), "the run to end"
        )
        assert terminate(daemon) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    (done,) = runs(env)
    assert done.state is RunState.SUCCESS, done.error
    assert ref_locks(repo) == []
    assert ckpt_folders(env) == []
    removed = [
        e for e in events(config_of(env).daemon_log) if e["event"] == "recovery.lock_removed"
    ]
    assert sorted(e["ref"] for e in removed) == sorted(
        [
            ref,
            f"refs/heads/exq-worktree-tmp/{gone.pid}-a1",
            f"refs/heads/exq-worktree-tmp/{gone.pid}-b2",
        ]
    )
    assert Git.open(repo).list_refs("refs/heads/exq-worktree-tmp/") == {}
    steps = [s for s in chain_steps(repo, done.experiment_sha or "", baseline) if s is not None]
    assert steps == list(range(EPOCHS))


def test_the_checkpoint_count_is_exact_after_a_kill_between_the_ref_and_the_row(
    env: dict[str, str], tmp_path: Path
) -> None:
    repo, baseline = make_training_project(tmp_path / "train", epochs=EPOCHS)
    # HOLD_AT goes with the run: it runs in the environment it was queued from.
    assert exq({**env, "HOLD_AT": "1"}, repo, "exp", "run", "--queue", "-n", "ck").returncode == 0
    rdv = Path(env["RDV"])
    ref = exp_ref(baseline, "ck")
    daemon = start(env)
    try:
        wait_until(lambda: list(rdv.glob("held-*")), "the script to hold after step 1")
        assert runs(env)[0].checkpoints == 2
        # Hold the database's write lock: the daemon moves the ref for step 2,
        # then waits to count it. Killed then, the row says 2, the chain has 3.
        blocker = sqlite3.connect(config_of(env).db_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            (rdv / "go").write_text("")
            git = Git.open(repo)
            wait_until(
                lambda: len(chain_steps(repo, git.get_ref(ref) or "", baseline)) == 3, "step 2"
            )
            daemon.kill()
            daemon.wait(timeout=10)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert runs(env)[0].checkpoints == 2
        daemon = start(env)
        wait_until(
            lambda: runs(env)[0].state in (RunState.SUCCESS, RunState.FAILED), "the run to end"
        )
        assert terminate(daemon) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    (done,) = runs(env)
    assert done.state is RunState.SUCCESS, done.error
    assert computed(rdv) == list(range(EPOCHS))  # step 2 was not computed again
    assert done.checkpoints == EPOCHS


def test_an_enqueue_killed_inside_its_transaction_blocks_no_later_enqueue(
    env: dict[str, str], tmp_path: Path
) -> None:
    repo = make_project(tmp_path / "repo")
    # What a CLI killed inside the enqueue transaction leaves: the rolled-back
    # id's queue ref (with its lock), and that id comes again.
    git = Git.open(repo)
    git.set_ref("refs/exq/queue/1", git.head_sha() or "")
    (repo / ".git" / "refs" / "exq" / "queue" / "1.lock").write_text("")
    queued = exq(env, repo, "exp", "run", "--queue", "-S", "lr=0.5")
    assert queued.returncode == 0, queued.stderr
    (record,) = runs(env)
    assert record.id == 1
    assert git.get_ref("refs/exq/queue/1") == record.snapshot
    assert ref_locks(repo) == []


def test_a_daemon_whose_queue_database_is_moved_away_stops_and_says_so(
    env: dict[str, str], tmp_path: Path
) -> None:
    repo = make_project(tmp_path / "repo")
    daemon = start(env)
    try:
        db = config_of(env).db_path
        db.rename(db.with_name("queue-old.db"))
        assert daemon.wait(timeout=60) == 1
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.stderr is not None
    assert "queue database" in daemon.stderr.read() and "was moved or deleted" in (
        config_of(env).daemon_log.read_text()
    )
    lost = [e for e in events(config_of(env).daemon_log) if e["event"] == "store.lost"]
    assert len(lost) == 1
    queued = exq(env, repo, "exp", "run", "--queue")  # a fresh queue, and a daemon for it
    assert queued.returncode == 0, queued.stderr
    daemon = start(env)
    try:
        wait_until(lambda: runs(env)[0].state is RunState.SUCCESS, "the run in the new queue")
        assert terminate(daemon) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
