"""The pure parts of a study: its options, its space, its points, its metric."""

from __future__ import annotations

import pytest

from exq.engine.errors import ParamsError
from exq.engine.experiments.study_spec import (
    MetricMissing,
    Objective,
    StudySpec,
    frozen_texts,
    metric_value,
    overrides_of,
    parse_objective,
    probe_point,
    space_of,
    study_of,
)

pytest.importorskip("hydra")


def spec(optimize: str | None = "scores.json:auc", **kw: object) -> StudySpec | None:
    args: dict[str, object] = {"maximize": True, "trials": "5", "draw_seed": 11}
    args.update(kw)
    return study_of(optimize, **args)  # type: ignore[arg-type]


def test_a_study_keeps_what_was_asked_and_draws_a_seed_when_none_is_given() -> None:
    got = spec(sampler="Random", seed="4")
    assert got == StudySpec(Objective("scores.json", "auc", True), 5, "random", 4)
    assert StudySpec.from_json(got.to_json()) == got
    default = spec(maximize=False, minimize=True)
    assert default is not None
    assert (default.sampler, default.seed, default.objective.direction) == ("tpe", 11, "minimize")


@pytest.mark.parametrize(
    ("optimize", "kw", "message"),
    [
        ("scores.json", {}, "--optimize 'scores.json': write the metric as FILE:KEY"),
        ("scores.json:", {}, "write the metric as FILE:KEY"),
        (":auc", {}, "write the metric as FILE:KEY"),
        ("../s.json:auc", {}, "the metrics file must be inside the project"),
        ("scores.csv:auc", {}, "'scores.csv' is not a metrics file"),
        ("s.json:a..b", {}, "'a..b' is not a dotted key"),
        ("s.json:auc", {"minimize": True}, "--maximize and --minimize exclude each other"),
        ("s.json:auc", {"maximize": False}, "say --maximize or --minimize"),
        ("s.json:auc", {"trials": None}, "say how many runs with --trials N"),
        ("s.json:auc", {"trials": "0"}, "--trials '0': give a whole number of runs"),
        ("s.json:auc", {"trials": "x"}, "--trials 'x'"),
        ("s.json:auc", {"sampler": "bayes"}, "--sampler 'bayes': use one of tpe, random"),
        ("s.json:auc", {"seed": "x"}, "--seed 'x': give a whole number"),
        ("s.json:auc", {"samples": "4"}, "--samples is a random search, --optimize a study"),
        (None, {"maximize": True, "trials": None}, "--maximize is the direction of a study"),
        (None, {"maximize": False, "minimize": True, "trials": None}, "--minimize is the"),
        (None, {"maximize": False}, "--trials belongs to a study: add --optimize"),
        (None, {"maximize": False, "trials": None, "sampler": "tpe"}, "--sampler belongs"),
    ],
)
def test_bad_study_options_are_one_line_naming_the_option(
    optimize: str | None, kw: dict[str, object], message: str
) -> None:
    with pytest.raises(ParamsError) as err:
        spec(optimize, **kw)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_no_optimize_and_no_study_option_is_no_study() -> None:
    assert spec(None, maximize=False, trials=None) is None


def test_objective_keeps_a_folder_and_a_dotted_key() -> None:
    assert parse_objective("eval/scores.yaml:train.loss") == ("eval/scores.yaml", "train.loss")
    assert parse_objective("./m.json:auc") == ("m.json", "auc")


SPACE = ["lr=tag(log, interval(1e-4, 1e-1))", "bs=choice(16, 32)", "n=tag(int, interval(1, 9))"]


def test_space_reads_distributions_choices_and_fixed_values() -> None:
    space = space_of([*SPACE, "opt=adam", "f.json:shape=choice([1, 2], [3])"], "tpe")
    lr, bs, n, opt, shape = space
    assert (lr.dimension.log, lr.dimension.low, lr.dimension.high) == (True, 1e-4, 1e-1)
    assert bs.choices() == [16, 32] and not bs.as_text
    assert n.dimension.integer and opt.fixed and not lr.fixed
    assert shape.as_text and shape.choices() == ["[1, 2]", "[3]"]
    point = {"lr": 0.01, "bs": 32, "n": 4, "f.json:shape": "[3]"}
    assert overrides_of(space, point) == [
        "lr=0.01",
        "bs=32",
        "n=4",
        "opt=adam",
        "f.json:shape=[3]",
    ]
    assert probe_point(space) == ["lr=0.0001", "bs=16", "n=1", "opt=adam", "f.json:shape=[1, 2]"]


@pytest.mark.parametrize(
    ("texts", "sampler", "message"),
    [
        (["lr=0.1", "bs=32"], "tpe", "give at least one -S with a distribution"),
        ([], "tpe", "give at least one -S with a distribution"),
        (["lr=interval(0, 1)"], "grid", "the grid sampler needs values to pick from"),
        (["lr=choice(1,2)", "lr=choice(3,4)"], "tpe", "'lr' is set twice in the study"),
        (["lr=interval(1, 0)"], "tpe", "interval() needs low < high"),
    ],
)
def test_a_space_a_study_cannot_search_is_refused(
    texts: list[str], sampler: str, message: str
) -> None:
    with pytest.raises(ParamsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        space_of(texts, sampler)


OBJ = Objective("scores.json", "eval.auc", True)


@pytest.mark.parametrize(
    ("file", "data", "value"),
    [
        ("scores.json", b'{"eval": {"auc": 0.75}}', 0.75),
        ("scores.json", b'{"eval.auc": 3}', 3.0),
        ("scores.yaml", b"eval:\n  auc: 0.5\n", 0.5),
        ("scores.toml", b"[eval]\nauc = 0.25\n", 0.25),
    ],
)
def test_metric_value_reads_the_key_in_each_format(file: str, data: bytes, value: float) -> None:
    assert metric_value(data, Objective(file, "eval.auc", True)) == value


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "scores.json:eval.auc: the run's commit has no scores.json"),
        (b"{", "scores.json:eval.auc: cannot read scores.json"),
        (b'{"eval": {}}', "scores.json:eval.auc: no key 'eval.auc' in scores.json"),
        (b'{"eval": {"auc": "high"}}', "'high' is not a number"),
        (b'{"eval": {"auc": true}}', "True is not a number"),
        (b'{"eval": {"auc": NaN}}', "nan is not a finite number"),
    ],
)
def test_metric_value_says_why_it_has_none(data: bytes | None, message: str) -> None:
    with pytest.raises(MetricMissing) as err:
        metric_value(data, OBJ)
    assert message in str(err.value)


def test_a_glob_is_kept_as_the_choice_of_the_options_it_found() -> None:
    texts = ["mode=glob(*, exclude=adamw)", "lr=interval(0.1, 1)"]
    space = space_of(texts, "tpe", lambda key: ["adam", "adamw", "sgd"])
    frozen = frozen_texts(texts, space)
    assert frozen == ["mode=choice(adam, sgd)", "lr=interval(0.1, 1)"]
    again = space_of(frozen, "tpe")  # read back without the params groups
    assert again[0].dimension.values == ["adam", "sgd"]
