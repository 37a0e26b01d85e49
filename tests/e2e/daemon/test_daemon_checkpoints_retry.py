"""``exq queue retry`` of a killed checkpoint run resumes from its last checkpoint
(``--reset``: starts over), under a real ``exq daemon``."""

from __future__ import annotations

from pathlib import Path

from exq.daemon.config import DaemonConfig
from exq.daemon.states import RunState
from exq.daemon.store import SyncStore
from tests.e2e.daemon.conftest import exq
from tests.e2e.daemon_helpers import runs, start, terminate, wait_until
from tests.support import (
    chain_steps,
    computed,
    make_training_project,
)

EPOCHS = 5


def test_retry_of_a_killed_checkpoint_run_resumes_from_its_last_checkpoint(
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    repo, baseline = make_training_project(tmp_path / "train", epochs=EPOCHS)
    # HOLD_AT goes with the run: it runs in the environment it was queued from.
    assert exq({**env, "HOLD_AT": "1"}, repo, "exp", "run", "--queue", "-n", "ck").returncode == 0
    rdv = Path(env["RDV"])
    daemon = start(env)
    try:
        wait_until(lambda: list(rdv.glob("held-*")), "the script to hold after step 1")
        killed = exq(env, repo, "queue", "kill", "ck")
        assert killed.returncode == 0, killed.stderr
        wait_until(lambda: runs(env)[0].state is RunState.FAILED, "the run to end killed")
        (record,) = runs(env)
        assert (record.error, record.checkpoints) == ("killed", 2)
        (rdv / "go").write_text("")
        retried = exq(env, repo, "queue", "retry", "ck")
        assert retried.returncode == 0, retried.stderr
        wait_until(
            lambda: runs(env)[0].state in (RunState.SUCCESS, RunState.FAILED), "the retry to end"
        )
        assert terminate(daemon) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    (done,) = runs(env)
    assert done.state is RunState.SUCCESS, done.error
    assert (done.attempts, done.resume_sha, done.checkpoints) == (2, record.experiment_sha, EPOCHS)
    assert computed(rdv) == list(range(EPOCHS))  # steps 0 and 1 were not computed again
    steps = [s for s in chain_steps(repo, done.experiment_sha or "", baseline) if s is not None]
    assert steps == list(range(EPOCHS))


def test_retry_reset_starts_a_checkpoint_run_over(
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    repo, _ = make_training_project(tmp_path / "train", epochs=EPOCHS)
    # HOLD_AT goes with the run: it runs in the environment it was queued from.
    assert exq({**env, "HOLD_AT": "1"}, repo, "exp", "run", "--queue", "-n", "ck").returncode == 0
    rdv = Path(env["RDV"])
    daemon = start(env)
    try:
        wait_until(lambda: list(rdv.glob("held-*")), "the script to hold after step 1")
        assert exq(env, repo, "queue", "kill", "ck").returncode == 0
        wait_until(lambda: runs(env)[0].state is RunState.FAILED, "the run to end killed")
        assert terminate(daemon) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert exq(env, repo, "queue", "retry", "--reset", "ck").returncode == 0
    with SyncStore(DaemonConfig.from_env(env).db_path) as store:
        (record,) = store.list_runs()
    assert (record.state, record.resume_sha) == (RunState.QUEUED, None)
