"""-S sweeps against hydra-core's own expansion, and random search's draws."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest

from exq.engine.errors import ParamsError
from exq.engine.experiments.queue_snapshot import search_of
from exq.engine.params.edit import parse_set_params
from exq.engine.params.hydra_sweeps import conf_groups, draw_samples, flow
from exq.engine.params.values import expand_sweeps, parse_value

hydra_parser = pytest.importorskip("hydra.core.override_parser.overrides_parser")
basic_sweeper = pytest.importorskip("hydra._internal.core_plugins.basic_sweeper")


def hydra_grid(texts: list[str], groups: dict[str, list[str]]) -> list[list[object]]:
    """Hydra's basic sweeper on the same overrides: its rows, each value as Hydra
    parsed it (its own text form escapes quotes it cannot read back).

    glob() is resolved as Hydra's config loader does: the group's options filtered.
    """
    parser = hydra_parser.OverridesParser.create()
    overrides = []
    for text in texts:
        override = parser.parse_override(text)
        if override.value_type.name == "GLOB_CHOICE_SWEEP":
            names = override.value().filter(groups[override.key_or_group])
            override = parser.parse_override(f"{override.key_or_group}=choice({','.join(names)})")
        overrides.append(override)
    (batch,) = basic_sweeper.BasicSweeper.split_arguments(overrides, None)
    values = [list(o.sweep_iterator()) if o.is_sweep_override() else [o.value()] for o in overrides]
    rows = [list(row) for row in itertools.product(*values)]
    assert [[item.partition("=")[0] for item in row] for row in batch] == [
        [o.key_or_group for o in overrides] for _ in rows
    ]
    return rows


@pytest.mark.parametrize(
    "texts",
    [
        ["a=1,2,3"],
        ["a=choice(1, 2.5, x, 'y z', true)"],
        ["a=choice([1,2], 'x,y', {p: 1})"],
        ["a=range(5)"],
        ["a=range(2, 11, 3)"],
        ["a=range(5, 0, -2)"],
        ["a=range(0.1, 0.5, 0.1)"],
        ["a=range(1.0, 2.0, 0.25)"],
        ["opt=glob(*)"],
        ["opt=glob([a*, s*], exclude=adamw)"],
        ["n=range(50, 200, 30)", "d=choice(10, 20)", "e=x,y"],
        ['a=choice("it\'s", \'say "hi"\', 1e-3)'],
    ],
)
def test_grid_matches_hydra(texts: list[str], tmp_path: Path) -> None:
    for name in ("adam", "adamw", "sgd"):
        (tmp_path / "conf" / "opt").mkdir(parents=True, exist_ok=True)
        (tmp_path / "conf" / "opt" / f"{name}.yaml").write_text("lr: 1\n")
    groups = conf_groups(tmp_path)
    mine = expand_sweeps(texts, groups)
    theirs = hydra_grid(texts, {"opt": groups("opt")})
    assert len(mine) == len(theirs) > 1
    for row, expected in zip(mine, theirs, strict=True):
        parse_set_params(row)  # every expanded override is a valid single edit
        assert [parse_value(text.partition("=")[2]) for text in row] == expected


@pytest.mark.parametrize(
    "value",
    [0.1, 1e-300, -2, "plain", "a b", "it's", "x,y", "1e-3", "", None, [1, "a,b"], {"k": [1]}],
)
def test_flow_reads_back(value: object) -> None:
    assert parse_value(flow(value)) == value


SPACE = [
    "train.lr=tag(log, interval(1e-4, 1e-1))",
    "train.bs=choice(16,32,64)",
    "train.layers=range(1, 4)",
    "train.drop=interval(0, 0.5)",
    "train.units=tag(int, interval(8, 64))",
    "train.act=relu,tanh",
    "train.epochs=3",
]


def test_draws_are_reproducible_by_seed() -> None:
    first = draw_samples(SPACE, 40, seed=7)
    assert draw_samples(SPACE, 40, seed=7) == first
    assert draw_samples(SPACE, 40, seed=8) != first
    assert len(first) == 40 and len({tuple(p) for p in first}) == 40
    for point in first:
        values = dict(text.split("=", 1) for text in parse_set_params_texts(point))
        lr = float(values["train.lr"])
        assert 1e-4 <= lr <= 1e-1
        assert values["train.bs"] in {"16", "32", "64"}
        assert values["train.layers"] in {"1", "2", "3"}
        assert 0 <= float(values["train.drop"]) <= 0.5
        assert 8 <= int(values["train.units"]) <= 64
        assert values["train.act"] in {"relu", "tanh"}
        assert values["train.epochs"] == "3"
    # log scale: about as many draws below 1e-2.5 as above
    low = sum(math.log10(float(dict(t.split("=") for t in p)["train.lr"])) < -2.5 for p in first)
    assert 8 <= low <= 32


def parse_set_params_texts(point: list[str]) -> list[str]:
    parse_set_params(point)
    return point


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("a=interval(1, 1)", "interval() needs low < high"),
        ("a=tag(log, interval(0, 1))", "a log interval needs low > 0"),
        ("a=tag(cube, interval(1, 2))", "unknown tag 'cube'"),
        ("a=interval(1,", "no viable alternative"),
        ("a", "write KEY=VALUE"),
    ],
)
def test_bad_distributions(text: str, why: str) -> None:
    with pytest.raises(ParamsError) as info:
        draw_samples([text], 3, seed=1)
    message = str(info.value)
    assert "\n" not in message and f"'{text}'" in message and why in message


def test_samples_beyond_what_a_queue_takes_at_once_are_refused() -> None:
    # a billion draws were listed in memory before anything was checked
    with pytest.raises(ParamsError, match=r"^--samples '20000': at most 10000 runs at once"):
        search_of("20000", "1")
    assert search_of("10000", "1").samples == 10000


def test_random_search_draws_from_a_range_too_long_to_list() -> None:
    # a range is a set of values to draw from, however long: it was listed whole first
    (point,) = draw_samples(["a=range(5, 1000000000, 7)", "b=range(0.0, 1e6, 0.5)"], 1, seed=3)
    a, b = (text.partition("=")[2] for text in point)
    assert (int(a) - 5) % 7 == 0 and 5 <= int(a) < 10**9
    assert float(b) * 2 == int(float(b) * 2) and 0 <= float(b) < 1e6
    assert draw_samples(["a=range(5, 1000000000, 7)"], 2, seed=3) == draw_samples(
        ["a=range(5, 1000000000, 7)"], 2, seed=3
    )
