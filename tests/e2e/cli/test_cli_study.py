"""Optuna studies through ``exq exp run --queue --optimize`` and a real daemon."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import exq, write
from tests.e2e.queue_helpers import QueueEnv, status, wait_for
from tests.e2e.study_helpers import SPACE, loss_of, make_study_project, sweep_status

pytest.importorskip("optuna")
pytest.importorskip("hydra")


def test_a_study_queues_its_trials_as_slots_free_and_tells_optuna_each_metric(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    root = make_study_project(tmp_path / "repo")
    _, out, _ = exq(
        "exp", "run", "--queue", *SPACE, "--optimize", "scores.json:loss", "--minimize",
        "--trials", "4", "--seed", "5", "-n", "st", cwd=root,
    )  # fmt: skip
    assert out.startswith("Queued study 'st': 4 trials to minimize scores.json:loss")
    assert status(root)["runs"] == []  # the daemon asks Optuna: nothing is queued yet
    # The workspace changes after the study is queued: its trials do not see it.
    write(root / "train.py", "raise SystemExit('the workspace of later')\n")
    write(root / "params.yaml", "x: 0.0\nopt: sgd\nlate: 1\n")
    exq("queue", "start", "-j", "2", cwd=root)
    study = wait_for(
        lambda: (s := sweep_status(root, "st"))["state"] == "done" and s, "the study to end"
    )
    assert (study["budget"], study["done"], study["failed"], study["to_ask"]) == (4, 4, 0, 0)
    trials = study["trials"]
    assert [t["name"] for t in trials] == ["st-1", "st-2", "st-3", "st-4"]
    for trial in trials:  # each trial's value is its run's metric, from its own params
        assert trial["state"] == "success"
        assert trial["value"] == pytest.approx(loss_of(trial["params"]))
    best = min(trials, key=lambda t: t["value"])
    assert study["best"]["name"] == best["name"]
    assert study["best"]["experiment"].endswith("/" + best["name"])
    assert (queue_env.state / "studies.db").is_file()
    # The plain text says the same, the best with its params and experiment.
    _, text, _ = exq("sweep", "status", cwd=root)
    assert "Study st (done): minimize scores.json:loss, tpe sampler, seed 5" in text
    assert f"best: {best['value']:g} by {best['name']} ({' '.join(best['params'])})" in text
