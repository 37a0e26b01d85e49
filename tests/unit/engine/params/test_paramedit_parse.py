"""Parsing of -S/--set-param overrides: Hydra's override grammar with YAML values."""

from __future__ import annotations

import math
from typing import Any

import pytest

from exq.engine.errors import ParamsError
from exq.engine.params.edit import ParamEdit, expand_sweeps, parse_set_param, parse_set_params


@pytest.mark.parametrize(
    ("text", "file", "op", "key_path", "value"),
    [
        ("train.lr=0.01", "params.yaml", "set", ("train", "lr"), 0.01),
        ("lr=1e-3", "params.yaml", "set", ("lr",), 0.001),
        ("lr=1.5E+2", "params.yaml", "set", ("lr",), 150.0),
        ("lr=.5", "params.yaml", "set", ("lr",), 0.5),
        ("lr=5.", "params.yaml", "set", ("lr",), 5.0),
        ("n=10", "params.yaml", "set", ("n",), 10),
        ("n=-3", "params.yaml", "set", ("n",), -3),
        ("n=1_000", "params.yaml", "set", ("n",), 1000),
        ("flag=true", "params.yaml", "set", ("flag",), True),
        ("flag=False", "params.yaml", "set", ("flag",), False),
        ("x=null", "params.yaml", "set", ("x",), None),
        ("x=", "params.yaml", "set", ("x",), ""),
        ("x=  ", "params.yaml", "set", ("x",), ""),
        ("x=  padded  ", "params.yaml", "set", ("x",), "padded"),
        ("name=resnet50", "params.yaml", "set", ("name",), "resnet50"),
        ("name=two words", "params.yaml", "set", ("name",), "two words"),
        ("name='1'", "params.yaml", "set", ("name",), "1"),
        ('name="a, b"', "params.yaml", "set", ("name",), "a, b"),
        ("name=it's", "params.yaml", "set", ("name",), "it's"),
        ("name=x:y", "params.yaml", "set", ("name",), "x:y"),
        ("name=b#c", "params.yaml", "set", ("name",), "b#c"),
        ("name=/data/raw.csv", "params.yaml", "set", ("name",), "/data/raw.csv"),
        ("name=${other}", "params.yaml", "set", ("name",), "${other}"),
        # Hydra, unlike YAML 1.1, keeps these as strings
        ("s=yes", "params.yaml", "set", ("s",), "yes"),
        ("s=off", "params.yaml", "set", ("s",), "off"),
        ("s=2020-01-01", "params.yaml", "set", ("s",), "2020-01-01"),
        ("s=1:30", "params.yaml", "set", ("s",), "1:30"),
        ("s=0755", "params.yaml", "set", ("s",), "0755"),
        ("s=0x10", "params.yaml", "set", ("s",), "0x10"),
        ("s=~", "params.yaml", "set", ("s",), "~"),
        ("layers=[1, 2]", "params.yaml", "set", ("layers",), [1, 2]),
        ("layers=[1,[2,3],{x: y}]", "params.yaml", "set", ("layers",), [1, [2, 3], {"x": "y"}]),
        ("opt={a: 1, b: [x, yes]}", "params.yaml", "set", ("opt",), {"a": 1, "b": ["x", "yes"]}),
        ("opt={1: a}", "params.yaml", "set", ("opt",), {"1": "a"}),
        ("opt={}", "params.yaml", "set", ("opt",), {}),
        ("opt=[]", "params.yaml", "set", ("opt",), []),
        ("train.layers.0=64", "params.yaml", "set", ("train", "layers", 0), 64),
        ("a.b-c.$d=1", "params.yaml", "set", ("a", "b-c", "$d"), 1),
        ("+new=1", "params.yaml", "add", ("new",), 1),
        ("++new=1", "params.yaml", "force", ("new",), 1),
        ("~old=1", "params.yaml", "delete", ("old",), 1),
        ("~old=", "params.yaml", "delete", ("old",), ""),
        ("params.json:train.lr=0.1", "params.json", "set", ("train", "lr"), 0.1),
        ("conf/p.toml:+x=1", "conf/p.toml", "add", ("x",), 1),
        ("./params.yml:~x", "params.yml", "delete", ("x",), None),
        ("cfg.py:Train.lr=0.2", "cfg.py", "set", ("Train", "lr"), 0.2),
        ("params.YAML:x=1", "params.YAML", "set", ("x",), 1),
        ("url=http://host:80/x?a=b", "params.yaml", "set", ("url",), "http://host:80/x?a=b"),
    ],
)
def test_parse_good(text: str, file: str, op: str, key_path: tuple[Any, ...], value: Any) -> None:
    edit = parse_set_param(text)
    assert (edit.file, edit.op, edit.key_path) == (file, op, key_path)
    assert edit.value == value
    assert type(edit.value) is type(value)
    assert edit.text == text


@pytest.mark.parametrize(
    ("text", "value"),
    [("x=inf", math.inf), ("x=-inf", -math.inf), ("x=Inf", math.inf)],
)
def test_parse_infinities(text: str, value: float) -> None:
    assert parse_set_param(text).value == value


def test_parse_nan() -> None:
    assert math.isnan(parse_set_param("x=nan").value)


def test_bare_delete_has_no_value() -> None:
    edit = parse_set_param("~train.lr")
    assert edit == ParamEdit("params.yaml", "delete", ("train", "lr"), None, has_value=False)
    assert edit.key == "train.lr"


def test_default_file_is_used_without_prefix() -> None:
    assert parse_set_param("a=1", default_file="conf.json").file == "conf.json"
    assert parse_set_param("p.toml:a=1", default_file="conf.json").file == "p.toml"


def test_parse_set_params_keeps_order() -> None:
    edits = parse_set_params(["b=1", "a=2"])
    assert [e.key for e in edits] == ["b", "a"]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("train.lr", "expected key=value"),
        ("+train.lr", "expected key=value"),
        ("++x", "expected key=value"),
        ("=1", "bad key"),
        ("~", "bad key"),
        ("a.=1", "bad key"),
        ("a..b=1", "bad key"),
        (".a=1", "bad key"),
        ("a b=1", "bad key"),
        ("a[0]=1", "bad key"),
        ("+++a=1", "bad key"),
        (":a=1", "bad key"),
        ("params.txt:a=1", "bad key"),
        ("/etc/p.yaml:a=1", "bad key"),
        ("../p.yaml:a=1", "bad key"),
        ("+params.json:a=1", "bad key"),
        ("a=1,2", "bad value"),
        ("a=x, y", "bad value"),
        ("a=range(1,3)", "bad value"),
        ("a=choice(a,b)", "bad value"),
        ("a=#fff", "bad value"),
        ("a=b #c", "bad value"),
        ("a=[1, 2", "bad value"),
        ("a={a:1}", "bad value"),
        ("a='unclosed", "bad value"),
        ("a=!!binary aGk=", "bad value"),
        ("a=!!timestamp 2020-01-01", "bad value"),
        ("a={? [1]: 2}", "bad value"),
        # a call of no function Hydra knows: Hydra (and so DVC) refuses it; a typo of
        # choice() was set as the string 'choise(1,2)'
        ("a=choise(1,2)", "unknown function 'choise': did you mean 'choice'"),
        ("a=relu(x)", "unknown function 'relu'"),
        ("a=int(3.5)", "write the value itself"),
    ],
)
def test_parse_bad(text: str, why: str) -> None:
    with pytest.raises(ParamsError) as info:
        parse_set_param(text)
    message = str(info.value)
    assert f"'{text}'" in message
    assert why in message


def test_prefix_on_file_gets_a_hint() -> None:
    with pytest.raises(ParamsError, match=r"params.json:\+"):
        parse_set_param("+params.json:a=1")


@pytest.mark.parametrize(
    ("texts", "grid"),
    [
        (["a=1"], [["a=1"]]),
        (["a=1,2"], [["a=1"], ["a=2"]]),
        (["a=1,2", "b=x,y"], [["a=1", "b=x"], ["a=1", "b=y"], ["a=2", "b=x"], ["a=2", "b=y"]]),
        (["a=[1,2],3"], [["a=[1,2]"], ["a=3"]]),
        (["a='p,q'", "~b"], [["a='p,q'", "~b"]]),
        (["f.json:a=1, 2"], [["f.json:a=1"], ["f.json:a=2"]]),
        ([], [[]]),
        # Hydra's choice() and range(), as the bank-churn demo's grid search writes them
        (
            ["n=range(50, 200, 30)", "d=choice(10, 20)"],
            [[f"n={n}", f"d={d}"] for n in (50, 80, 110, 140, 170) for d in (10, 20)],
        ),
        (["n=range(3)"], [["n=0"], ["n=1"], ["n=2"]]),
        (["n=range(5, 0, -2)"], [["n=5"], ["n=3"], ["n=1"]]),
        # decimal steps from the floats' exact values, as Hydra counts
        (
            ["lr=range(0.1, 0.5, 0.1)"],
            [["lr=0.1"], ["lr=0.2"], ["lr=0.30000000000000004"], ["lr=0.4"]],
        ),
        (["a=choice([1,2], 'x,y')"], [["a=[1, 2]"], ["a='x,y'"]]),
    ],
)
def test_expand_sweeps(texts: list[str], grid: list[list[str]]) -> None:
    assert expand_sweeps(texts) == grid
    for row in grid:
        parse_set_params(row)  # every expanded override parses


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("a=range()", "missing a required argument"),
        ("a=range(1, x)", "mismatch type argument stop"),
        ("a=range(1, 5, 0)", "must not be zero"),
        ("a=choice()", "empty choice is not legal"),
        ("a=choice(1,", "no viable alternative"),
        ("a=interval(1, 2)", "interval() is a distribution: draw from it with --samples N"),
        ("a=glob(*)", "no conf/a/*.yaml"),
        ("a=choise(1, 2)", "unknown function 'choise': did you mean 'choice'"),
        ("a=Range(3)", "unknown function 'Range': did you mean 'range'"),
        # an empty item of a comma list, which Hydra refuses, was queued as ''
        ("a=1,,2", "an empty value in a comma list"),
        ("a=1,", "an empty value in a comma list"),
        ("a=,1", "an empty value in a comma list"),
        # sweeps too big to queue are refused before they are listed (this one
        # took all the memory it could, for ever)
        ("a=range(0, 1e9)", "a sweep of 1000000000 values: more than 10000 runs"),
        ("a=range(1000000)", "a sweep of 1000000 values: more than 10000 runs"),
        ("a=shuffle(range(0, 1000000000))", "more than 10000 runs"),
        ("a=sort(range(0, 20000), reverse=true)", "more than 10000 runs"),
        # a zero float step reached Hydra's iterator: its HydraException, a traceback
        ("a=range(0.0, 1.0, 0.0)", "range() step must not be zero"),
    ],
)
def test_bad_sweep_functions(text: str, why: str) -> None:
    with pytest.raises(ParamsError) as info:
        expand_sweeps([text])
    assert f"'{text}'" in str(info.value) and why in str(info.value)


def test_a_grid_too_big_to_queue_names_the_s_that_makes_it_so() -> None:
    with pytest.raises(ParamsError) as info:
        expand_sweeps(["a=range(200)", "b=1,2", "c=range(100)"])
    message = str(info.value)
    assert "-S 'c=range(100)'" in message and "a grid of 40000 runs" in message
    assert len(expand_sweeps(["a=range(100)", "b=range(100)"])) == 10000
