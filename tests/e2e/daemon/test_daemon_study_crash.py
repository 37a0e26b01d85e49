"""A study under a real ``exq daemon`` that is killed with SIGKILL: no trial is
lost or run twice, and the study's count stays right."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from exq.daemon.study import optuna_name, storage_url
from tests.e2e.conftest import exq
from tests.e2e.daemon_helpers import config_of, start, terminate, wait_until
from tests.e2e.study_helpers import SPACE, loss_of, make_study_project, sweep_status

optuna = pytest.importorskip("optuna")
pytest.importorskip("hydra")


def queue_study(root: Path, env: dict[str, str], trials: int, *extra: str) -> None:
    exq(
        "exp", "run", "--queue", *SPACE, "--optimize", "scores.json:loss", "--minimize",
        "--trials", str(trials), "-n", "st", *extra, cwd=root, env=env,
    )  # fmt: skip


def moves(db: Path) -> int:
    """How far the study got: trials queued, runs ended, ends told."""
    with closing(sqlite3.connect(db)) as conn:
        queued, told = conn.execute("SELECT COUNT(*), COUNT(outcome) FROM trials").fetchone()
        (ended,) = conn.execute(
            "SELECT COUNT(*) FROM runs WHERE state NOT IN ('queued', 'running')"
        ).fetchone()
    return queued + told + ended


def finish(env: dict[str, str], root: Path) -> dict[str, Any]:
    """Run a daemon until the study is done; its status."""
    daemon = start(env, jobs=2)
    try:
        wait_until(
            lambda: sweep_status(root, "st", env)["state"] == "done", "the study to end", 120
        )
    finally:
        terminate(daemon)
    return sweep_status(root, "st", env)


def check_ledger(env: dict[str, str], root: Path, study: dict[str, Any], budget: int) -> Any:
    """Every trial queued once, run once and told once; Optuna agrees. Its study."""
    trials = study["trials"]
    assert [t["name"] for t in trials] == [f"st-{k}" for k in range(1, budget + 1)]
    assert (study["budget"], study["done"], study["failed"], study["to_ask"]) == (
        budget,
        budget,
        0,
        0,
    )
    assert len({t["trial"] for t in trials}) == len({t["run_id"] for t in trials}) == budget
    for trial in trials:
        assert trial["state"] == "success"
        assert trial["value"] == pytest.approx(loss_of(trial["params"]))
    _, out, _ = exq("queue", "status", "--json", cwd=root, env=env)
    assert len(json.loads(out)["runs"]) == budget  # no run of a trial twice
    handle = optuna.load_study(study_name=optuna_name(1), storage=storage_url(config_of(env)))
    states = {t.number: t.state.name for t in handle.get_trials(deepcopy=False)}
    complete = {n for n, s in states.items() if s == "COMPLETE"}
    assert complete == {t["trial"] for t in trials}
    assert set(states.values()) <= {"COMPLETE", "FAIL"}  # none left running
    values = {t.number: t.value for t in handle.get_trials(deepcopy=False)}
    for trial in trials:
        assert values[trial["trial"]] == pytest.approx(trial["value"])
    return handle


def test_a_study_survives_kill_9_at_any_point(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "QSHARED": str(tmp_path / "rdv")}
    root = make_study_project(tmp_path / "repo")
    queue_study(root, env, 6, "--seed", "2")
    db = config_of(env).db_path
    where = random.Random(4)
    for _ in range(5):
        before = moves(db)
        daemon = start(env, jobs=2)
        wait_until(
            lambda before=before: (
                moves(db) > before or sweep_status(root, "st", env)["state"] == "done"
            ),
            "the study to move on",
        )
        time.sleep(where.uniform(0, 0.4))  # land anywhere in what comes next
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
    check_ledger(env, root, finish(env, root), 6)


def test_a_trial_asked_but_never_queued_is_queued_at_the_next_start(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The state a daemon killed between Optuna's ask and the enqueue leaves: a
    trial Optuna holds as running that no run is. One killed while the params
    were drawn has some missing: it is told failed, and another is asked."""
    env = {**env, "QSHARED": str(tmp_path / "rdv")}
    root = make_study_project(tmp_path / "repo")
    queue_study(root, env, 3, "--seed", "9")
    handle = optuna.create_study(
        storage=storage_url(config_of(env)), study_name=optuna_name(1), direction="minimize"
    )
    handle.ask()  # trial 0: killed before its params were drawn
    asked = handle.ask(
        {
            "x": optuna.distributions.FloatDistribution(-1, 1),
            "opt": optuna.distributions.CategoricalDistribution(["sgd", "adam"]),
        }
    )  # trial 1: all drawn, then killed before the enqueue
    handle = check_ledger(env, root, finish(env, root), 3)
    study = sweep_status(root, "st", env)
    first = study["trials"][0]
    assert first["trial"] == 1
    assert first["params"] == [f"x={asked.params['x']!r}", f"opt={asked.params['opt']}"]
    assert [t["trial"] for t in study["trials"]] == [1, 2, 3]
    assert handle.trials[0].state.name == "FAIL"
