"""Pruning's pure parts: the pruner names, the study a pruned grid or random sweep
gets, the step a checkpoint is reported at, and the pruned run's reason."""

from __future__ import annotations

import pytest

from exq.daemon.pruning import Verdict, make_pruner, report_step
from exq.engine.errors import ParamsError
from exq.engine.experiments.study_spec import (
    FIXED,
    PRUNERS,
    Objective,
    StudySpec,
    check_pruner,
    fixed_study_of,
)

optuna = pytest.importorskip("optuna")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("median", optuna.pruners.MedianPruner),
        ("asha", optuna.pruners.SuccessiveHalvingPruner),
        ("hyperband", optuna.pruners.HyperbandPruner),
    ],
)
def test_each_pruner_is_optunas(name: str, kind: type) -> None:
    assert name in PRUNERS and check_pruner(name.upper()) == name
    assert isinstance(make_pruner(optuna, name), kind)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ashaa", "m.json:loss", False, True), "--prune 'ashaa': not a pruner, did you mean"),
        (("asha", None, False, True), "--prune needs the metric it judges"),
        (("asha", "m.json:loss", False, False), "say --maximize or --minimize"),
        (("asha", "m.txt:loss", False, True), "is not a metrics file"),
    ],
)
def test_a_fixed_study_needs_a_pruner_a_metric_and_a_direction(
    args: tuple[str, str | None, bool, bool], message: str
) -> None:
    prune, optimize, maximize, minimize = args
    with pytest.raises(ParamsError, match=message):
        fixed_study_of(optimize, prune, maximize=maximize, minimize=minimize)


def test_a_fixed_study_carries_the_pruner_through_its_json() -> None:
    spec = fixed_study_of("logs.json:loss", "asha", maximize=False, minimize=True)
    assert (spec.sampler, spec.pruner, spec.objective.direction) == (FIXED, "asha", "minimize")
    assert StudySpec.from_json(spec.to_json()) == spec
    # A study written before --prune existed has no pruner.
    old = {k: v for k, v in spec.to_json().items() if k != "pruner"}
    assert StudySpec.from_json(old).pruner is None


@pytest.mark.parametrize(("step", "count", "reported"), [(4, 9, 4), (None, 1, 0), (None, 3, 2)])
def test_the_step_a_checkpoint_is_reported_at(step: int | None, count: int, reported: int) -> None:
    assert report_step(step, count) == reported


def test_the_reason_names_the_step_the_metric_its_value_and_the_pruner() -> None:
    verdict = Verdict(step=3, value=0.123456789, metric="logs.json:loss", pruner="median")
    assert verdict.reason() == "pruned at step 3: logs.json:loss = 0.123457 (median)"
    assert str(Objective("logs.json", "loss", False)) == "logs.json:loss"
