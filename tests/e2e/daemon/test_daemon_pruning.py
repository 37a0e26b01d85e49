"""Early stopping at checkpoints under a real ``exq daemon``: a grid sweep queued
with ``--prune asha`` has its worst run stopped at the checkpoint the pruner
judged; it ends ``pruned`` with its chain kept, its slot goes to the next run,
every view shows it, and ``exq queue retry`` resumes it from its last
checkpoint. A sweep that cannot be pruned is refused at enqueue, one line,
nothing queued."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from exq.daemon.states import RunState
from exq.engine.run.project import init_project
from tests.e2e.daemon.conftest import exq
from tests.e2e.daemon_helpers import runs, start, terminate, wait_until
from tests.support import chain_steps, git, write_training_project

STEPS = 6
# The loss falls with the steps; the further lr is from 1.0 the higher it stays,
# so the runs rank the same at every step. Each step computed is noted in
# $RDV/computed as "<lr> <step>" (a step computed twice shows).
TRAIN = """\
import os
from pathlib import Path
from exq.live import Live

params = {}
for line in Path("params.yaml").read_text().splitlines():
    if line.startswith("  ") and ":" in line:
        key, value = line.strip().split(":", 1)
        params[key] = float(value)
live = Live("logs")
for step in range(live.step, int(params["steps"])):
    with open(Path(os.environ["RDV"]) / "computed", "a") as out:
        out.write(f"{params['lr']} {step}\\n")
    Path("model.txt").write_text(f"{step}\\n")
    live.log("loss", round(1.0 + abs(params["lr"] - 1.0) + 1.0 / (1 + step), 6))
    live.next_step()
live.end()
"""

DVCYAML = f"""\
stages:
  train:
    cmd: {sys.executable} train.py
    deps:
    - train.py
    params:
    - train
    outs:
    - model.txt:
        checkpoint: true
    live:
      logs:
        summary: true
        html: false
        cache: false
"""

PLAIN_DVCYAML = f"""\
stages:
  train:
    cmd: {sys.executable} train.py
    params:
    - train
    metrics:
    - logs.json:
        cache: false
"""


def project(root: Path, dvcyaml: str = DVCYAML) -> tuple[Path, str]:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    init_project(root)
    params = f"train:\n  lr: 1.0\n  steps: {STEPS}\n"
    return root, write_training_project(root, dvcyaml=dvcyaml, script=TRAIN, params=params)


def computed(rdv: Path, lr: str) -> list[int]:
    lines = (rdv / "computed").read_text().splitlines()
    return [int(step) for value, step in (line.split() for line in lines) if value == lr]


PRUNE = ("--optimize", "logs.json:loss", "--minimize", "--prune", "asha")


def test_the_worst_run_of_a_grid_ends_pruned_with_its_chain_and_resumes_on_retry(
    env: dict[str, str], tmp_path: Path
) -> None:
    repo, baseline = project(tmp_path / "train")
    rdv = Path(env["RDV"])
    queued = exq(env, repo, "exp", "run", "--queue", "-S", "train.lr=1.0,0.9,0.5", *PRUNE)
    assert queued.returncode == 0, queued.stderr
    daemon = start(env, jobs=1)
    try:
        wait_until(
            lambda: (
                all(r.state in (RunState.SUCCESS, RunState.PRUNED) for r in runs(env))
                and len(runs(env)) == 3
            ),
            "the three runs to end",
        )
        first, second, worst = runs(env)
        # One slot: the first two ran whole; ASHA's first rung (step 1) judged the third
        # against the second's value there, and stopped it at that checkpoint.
        assert (first.state, second.state) == (RunState.SUCCESS, RunState.SUCCESS)
        assert worst.state is RunState.PRUNED, worst.error
        assert worst.error is not None and worst.error.startswith("pruned at step 1: ")
        assert "logs.json:loss" in worst.error and "(asha)" in worst.error
        assert worst.checkpoints == 2 and worst.experiment_sha is not None
        assert chain_steps(repo, worst.experiment_sha, baseline) == [0, 1]
        assert computed(rdv, "0.5")[:2] == [0, 1] and len(computed(rdv, "0.5")) <= 3
        # Every view says pruned.
        status = json.loads(exq(env, repo, "queue", "status", "--json").stdout)
        assert [r["state"] for r in status["runs"]] == ["success", "success", "pruned"]
        table = exq(env, repo, "queue", "status").stdout
        assert "pruned" in table and "pruned at step 1" in table
        shown = json.loads(exq(env, repo, "exp", "show", "--json").stdout)
        states = {row["name"]: row["state"] for row in shown if row.get("name")}
        assert states[worst.name] == "pruned"
        report = json.loads(exq(env, repo, "queue", "report", "--json").stdout)
        assert report["counts"] == {"pruned": 1, "success": 2}
        # The user disagrees: the retry resumes from step 1's checkpoint, and the
        # run, its trial ended, is judged no more.
        retried = exq(env, repo, "queue", "retry", worst.name)
        assert retried.returncode == 0, retried.stderr
        wait_until(lambda: runs(env)[2].state is RunState.SUCCESS, "the retried run to end")
        assert terminate(daemon) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    done = runs(env)[2]
    assert (done.resume_sha, done.checkpoints) == (worst.experiment_sha, STEPS)
    assert chain_steps(repo, done.experiment_sha or "", baseline)[:STEPS] == list(range(STEPS))
    assert computed(rdv, "0.5")[-(STEPS - 2) :] == list(range(2, STEPS))


@pytest.mark.parametrize(
    ("dvcyaml", "args", "message"),
    [
        (
            PLAIN_DVCYAML,
            PRUNE,
            "--prune: no stage of the pipeline takes checkpoints",
        ),
        (DVCYAML, ("--prune", "asha"), "--prune needs the metric it judges"),
        (
            DVCYAML,
            ("--optimize", "logs.json:loss", "--minimize", "--prune", "ashaa"),
            "--prune 'ashaa': not a pruner, did you mean 'asha'?",
        ),
    ],
)
def test_a_sweep_that_cannot_be_pruned_is_refused_with_one_line_and_nothing_queued(
    env: dict[str, str], tmp_path: Path, dvcyaml: str, args: tuple[str, ...], message: str
) -> None:
    repo, _ = project(tmp_path / "train", dvcyaml)
    refused = exq(env, repo, "exp", "run", "--queue", "-S", "train.lr=1.0,0.5", *args)
    assert refused.returncode != 0
    assert message in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "Traceback" not in refused.stderr
    assert runs(env) == []
    assert git(repo, "for-each-ref", "refs/exq", "refs/exps").strip() == ""


LRS = "1.0,0.2,0.9,0.1,0.5,0.05"


@pytest.mark.parametrize(
    "search",
    [
        # An optimized study: Optuna's grid sampler picks each point once (its order
        # fixed by the seed).
        ("-S", f"train.lr=choice({LRS})", "--trials", "6", "--sampler", "grid", "--seed", "3"),
        # A random search: exq's own draws, carried by a study for the pruner.
        ("-S", f"train.lr=choice({LRS})", "--samples", "6", "--seed", "3"),
    ],
    ids=["optimized", "random"],
)
def test_optimized_and_random_sweeps_are_pruned_and_their_study_counts_it(
    env: dict[str, str], tmp_path: Path, search: tuple[str, ...]
) -> None:
    repo, baseline = project(tmp_path / "train")
    queued = exq(env, repo, "exp", "run", "--queue", "-n", "sw", *search, *PRUNE)
    assert queued.returncode == 0, queued.stderr
    daemon = start(env, jobs=1)
    try:

        def ended() -> list[dict[str, object]] | None:
            studies = json.loads(exq(env, repo, "sweep", "status", "--json").stdout)
            return studies if studies and studies[0]["state"] == "done" else None

        wait_until(ended, "the sweep's study to end", seconds=120)
        assert terminate(daemon) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    (study,) = json.loads(exq(env, repo, "sweep", "status", "--json").stdout)
    assert study["name"] == "sw"
    records = runs(env)
    pruned = [r for r in records if r.state is RunState.PRUNED]
    assert len(records) == 6 and pruned, [(r.params, r.state) for r in records]
    assert all(r.state in (RunState.SUCCESS, RunState.PRUNED) for r in records)
    # Optuna heard each pruned run as pruned; the best is a run that ran whole.
    assert (study["pruned"], study["done"] + study["pruned"]) == (len(pruned), 6)
    assert study["best"]["name"] in {r.name for r in records if r.state is RunState.SUCCESS}
    for record in pruned:  # each stopped at the step it was judged, its chain whole
        assert record.error is not None
        step = int(record.error.split("pruned at step ", 1)[1].split(":")[0])
        assert record.checkpoints == step + 1 < STEPS
        assert chain_steps(repo, record.experiment_sha or "", baseline) == list(range(step + 1))


def test_a_pruned_run_takes_no_checkpoint_after_its_stop_was_sent(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The SIGINT of a prune goes out once the judged checkpoint's snapshot is done;
    a checkpoint the script asks for after that is refused, so the chain ends at the
    judged step. A script quick to its next step (here one that does not stop at
    SIGINT at all) had every later checkpoint committed: 'pruned at step 1' with
    three, or all six, checkpoints."""
    repo, baseline = project(tmp_path / "train")
    script = repo / "train.py"
    script.write_text("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n" + TRAIN)
    git(repo, "commit", "-qam", "a script that goes on at SIGINT")
    baseline = git(repo, "rev-parse", "HEAD").strip()
    queued = exq(env, repo, "exp", "run", "--queue", "-S", "train.lr=1.0,0.9,0.5", *PRUNE)
    assert queued.returncode == 0, queued.stderr
    daemon = start(env, jobs=1)
    try:
        wait_until(
            lambda: len(runs(env)) == 3 and runs(env)[2].state is RunState.PRUNED,
            "the worst run to end pruned",
        )
        assert terminate(daemon) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    worst = runs(env)[2]
    assert worst.error is not None and worst.error.startswith("pruned at step 1: ")
    assert worst.checkpoints == 2 and worst.experiment_sha is not None
    assert chain_steps(repo, worst.experiment_sha, baseline) == [0, 1]
    # Its log ends saying so: its last line was the runner's 'exq: failed: ... code -2'.
    logged = exq(env, repo, "queue", "logs", worst.name, "-n", "1")
    assert logged.stdout == f"exq: ended pruned: {worst.error}\n", logged.stdout
