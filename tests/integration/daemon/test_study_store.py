"""The studies' rows on a real SQLite file: a trial is queued once, within the
study's budget, in one transaction with its run; what Optuna heard is recorded
once; each run's sweep reads back."""

from __future__ import annotations

from pathlib import Path

import pytest

from exq.daemon.store import NewRun
from exq.daemon.study_store import NewStudy, StudyStore
from exq.engine.errors import ExperimentError

STUDY = NewStudy(
    name="st",
    repo="/r",
    baseline="b" * 40,
    snapshot="s" * 40,
    space=["x=interval(0, 1)"],
    spec={"file": "m.json", "key": "loss", "maximize": False, "trials": 2, "sampler": "tpe"},
    template={"run": {}, "replace": False},
    budget=2,
)


def run(name: str) -> NewRun:
    return NewRun(repo="/r", baseline="b" * 40, snapshot="t" * 40, name=name, params=["x=0.5"])


def test_a_trial_is_queued_once_and_never_past_the_budget(tmp_path: Path) -> None:
    refs: list[int] = []
    with StudyStore(tmp_path / "q.db") as store:
        study = store.create_study(STUDY, on_id=lambda _: None)
        first = store.enqueue_trial(study.id, 0, 10, run("st-1"), on_id=refs.append)
        assert first is not None and refs == [first]
        # The same trial again (a step that read the study before this one queued it).
        assert store.enqueue_trial(study.id, 0, 10, run("st-1"), on_id=refs.append) is None
        second = store.enqueue_trial(study.id, 2, 12, run("st-2"), on_id=refs.append)
        assert second is not None
        assert store.enqueue_trial(study.id, 3, 13, run("st-3"), on_id=refs.append) is None
        assert refs == [first, second]  # no ref for what was not queued
        after = store.study(study.id)
        assert after is not None and (after.queued, after.last_trial) == (2, 2)
        assert [r.name for r in store.list_runs()] == ["st-1", "st-2"]
        trials = store.trials(study.id)
        assert [(t.trial, t.optuna_id, t.run_id) for t in trials] == [
            (0, 10, first),
            (2, 12, second),
        ]
        assert store.trial_of_run(second) == trials[1]
        assert store.trial_of_run(first + 100) is None


def test_a_failing_ref_queues_nothing_and_counts_nothing(tmp_path: Path) -> None:
    def fail(_: int) -> None:
        raise OSError("disk full")

    with StudyStore(tmp_path / "q.db") as store:
        study = store.create_study(STUDY, on_id=lambda _: None)
        with pytest.raises(OSError):
            store.enqueue_trial(study.id, 0, 10, run("st-1"), on_id=fail)
        after = store.study(study.id)
        assert after is not None and (after.queued, after.last_trial) == (0, -1)
        assert store.list_runs() == [] and store.trials(study.id) == []


def test_what_optuna_heard_is_recorded_once_and_names_are_kept_apart(tmp_path: Path) -> None:
    with StudyStore(tmp_path / "q.db") as store:
        study = store.create_study(STUDY, on_id=lambda _: None)
        with pytest.raises(ExperimentError, match="study 'st' is already under way"):
            store.create_study(STUDY, on_id=lambda _: None)
        unnamed = store.create_study(
            NewStudy(**{**STUDY.__dict__, "name": None}), on_id=lambda _: None
        )
        assert unnamed.name == f"study-{unnamed.id}"
        run_id = store.enqueue_trial(study.id, 0, 10, run("st-1"), on_id=lambda _: None)
        assert store.told(study.id, 0, "complete", 0.25)
        assert not store.told(study.id, 0, "fail", None)  # told before: kept
        (trial,) = store.trials(study.id)
        assert (trial.outcome, trial.value, trial.run_id) == ("complete", 0.25, run_id)
        assert store.end_study(study.id, "done")
        assert [s.name for s in store.studies(active=True)] == [unnamed.name]
        # A finished study's name is free again.
        assert store.create_study(STUDY, on_id=lambda _: None).name == "st"


def test_each_run_of_a_sweep_or_study_reads_back_its_sweep(tmp_path: Path) -> None:
    with StudyStore(tmp_path / "q.db") as store:
        grid = store.enqueue_many([NewRun(**{**run("g-1").__dict__, "sweep": "g"})])
        auto = store.enqueue_many(
            [NewRun(**{**run(f"exp-{i}").__dict__, "sweep": ""}) for i in range(2)]
        )
        store.enqueue_many([run("alone")])
        study = store.create_study(STUDY, on_id=lambda _: None)
        trial = store.enqueue_trial(study.id, 0, 10, run("st-1"), on_id=lambda _: None)
        assert store.run_sweeps("/r") == [
            (grid[0], "b" * 40, "g-1", "g"),
            (auto[0], "b" * 40, "exp-0", f"sweep-{auto[0]}"),
            (auto[1], "b" * 40, "exp-1", f"sweep-{auto[0]}"),
            (trial, "b" * 40, "st-1", "st"),
        ]
        assert store.run_sweeps("/elsewhere") == []
        assert len(store.run_sweeps()) == 4
