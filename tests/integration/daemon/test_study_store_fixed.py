"""A pruned grid or random sweep's study and runs go into the queue database in one
transaction, on a real SQLite file: all of them, or, when a step fails, nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from exq.daemon.states import RunState
from exq.daemon.store import NewRun
from exq.daemon.study_store import NewStudy, StudyStore

RUNS = [
    NewRun(repo="/r", baseline="b" * 40, snapshot="s" * 40, name=f"sw-{k}", params=[f"lr={k}"])
    for k in (1, 2, 3)
]
STUDY = NewStudy(
    name="sw",
    repo="/r",
    baseline="b" * 40,
    snapshot="s" * 40,
    space=[],
    spec={"file": "m.json", "key": "loss", "maximize": False, "trials": 3, "sampler": "fixed",
          "seed": 0, "pruner": "asha"},
    template={"run": {}, "replace": False},
    budget=3,
)  # fmt: skip


def test_the_study_and_every_run_with_its_trial(tmp_path: Path) -> None:
    pointed: list[int] = []
    with StudyStore(tmp_path / "queue.db") as store:
        ids = store.create_fixed_study(
            STUDY,
            RUNS,
            on_id=pointed.append,
            ask=lambda _study: [(0, 10), (1, 11), (2, 12)],
            on_run_id=pointed.append,
        )
        (study,) = store.studies()
        assert (study.name, study.queued, study.budget, study.last_trial) == ("sw", 3, 3, 2)
        trials = store.trials(study.id)
        assert [(t.trial, t.optuna_id, t.run_id) for t in trials] == list(
            zip((0, 1, 2), (10, 11, 12), ids, strict=True)
        )
        assert [t.run.state for t in trials if t.run] == [RunState.QUEUED] * 3
        assert store.trial_of_run(ids[1]) == trials[1]
    assert pointed == [study.id, *ids]


def test_a_failing_step_writes_nothing(tmp_path: Path) -> None:
    def ask(_study: int) -> list[tuple[int, int]]:
        raise RuntimeError("Optuna's database is locked")

    with StudyStore(tmp_path / "queue.db") as store:
        with pytest.raises(RuntimeError):
            store.create_fixed_study(
                STUDY, RUNS, on_id=lambda _id: None, ask=ask, on_run_id=lambda _id: None
            )
        assert (store.studies(), store.list_runs()) == ([], [])
