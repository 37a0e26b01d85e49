"""``${...}`` expressions, rendering, dict unpacking, context merge and tracking."""

from __future__ import annotations

from typing import Any

import pytest

from exq.engine.spec.interpolation import (
    Context,
    InterpolationError,
    Node,
    ParsingOptions,
    Resolver,
    Tracker,
    contains_interpolation,
    make_node,
    name_fragment,
    parse_expression,
    to_str,
    unpack_dict,
    unwrap,
)

VARS: dict[str, Any] = {
    "a": {"b": 1, "c": [10, {"d": "deep"}]},
    "lst": [1, "two"],
    "flag": True,
    "off": False,
    "num": 3,
    "pi": 0.5,
    "small": 1e-05,
    "none": None,
    "text": "x y",
    "empty": "",
    "models": {"us": {"thresh": 10}},
}


def _resolver(tracker: Tracker | None = None, **options: Any) -> Resolver:
    context = Context()
    context.merge(make_node(VARS, source="params.yaml", tracked=True))
    return Resolver(context, tracker, ParsingOptions(**options))


@pytest.mark.parametrize(
    ("inner", "parts"),
    [
        ("a", ["a"]),
        ("a.b", ["a", "b"]),
        ("a[0]", ["a", "0"]),
        ("a.0", ["a", "0"]),
        ("a[0].b[1]", ["a", "0", "b", "1"]),
        ("a[0][1]", ["a", "0", "1"]),
        ("a[0] .b", ["a", "0", "b"]),
        (" a[0] [1] ", [" a", "0", "1"]),
        (" ", [" "]),
        (" a . b ", [" a ", " b "]),
        ("a-b_c", ["a-b_c"]),
    ],
)
def test_parse_expression(inner: str, parts: list[str]) -> None:
    assert parse_expression(inner) == parts


@pytest.mark.parametrize("inner", ["", "a..b", "a.", ".a", "a[0]x", "a[0", "[0]", "a]", "a[]"])
def test_parse_expression_rejects_malformed(inner: str) -> None:
    with pytest.raises(InterpolationError, match=r"^Invalid interpolation '\$\{"):
        parse_expression(inner)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # exactly one ${...}: the value keeps its type
        ("${flag}", True),
        ("${num}", 3),
        ("${pi}", 0.5),
        ("${none}", None),
        ("${lst}", [1, "two"]),
        ("${a}", {"b": 1, "c": [10, {"d": "deep"}]}),
        ("${a.b}", 1),
        ("${a.c[1].d}", "deep"),
        ("${a.c.1.d}", "deep"),
        ("${ a.b }", 1),
        ("${ a . c [ 0 ] }", 10),
        ("${lst[-1]}", "two"),
        ("${empty}", ""),
        # embedded in text: rendered
        ("n=${num}", "n=3"),
        ("${flag}-${off}", "true-false"),
        ("${none}!", "None!"),
        ("${small}", 1e-05),
        ("s=${small}", "s=1e-05"),
        ("${num}${num}", "33"),
        ("$${num}", "$3"),
        ("${text}.txt", "x y.txt"),
        # escapes and non-matches
        ("\\${num}", "${num}"),
        ("\\${num} and ${num}", "${num} and 3"),
        ("${num", "${num"),
        ("plain", "plain"),
        ("", ""),
        ("$num {num}", "$num {num}"),
    ],
)
def test_resolve_str(template: str, expected: Any) -> None:
    assert _resolver().resolve_str(template, field=None) == expected


@pytest.mark.parametrize(
    ("template", "missing"),
    [
        ("${models.foobar}", "models.foobar"),
        ("x ${nope} y", "nope"),
        ("${a.b.c}", "a.b.c"),  # a.b is a scalar
        ("${lst[5]}", "lst.5"),
        ("${lst.x}", "lst.x"),
        ("${a[0]}", "a.0"),
    ],
)
def test_missing_key_reason(template: str, missing: str) -> None:
    with pytest.raises(InterpolationError) as info:
        _resolver().resolve_str(template, field="cmd")
    assert str(info.value) == f"Could not find '{missing}'"


@pytest.mark.parametrize(
    ("template", "field", "kind"),
    [
        ("${a}", "outs", "dict"),
        ("x-${a}", "deps", "dict"),
        ("${lst}", "outs", "list"),
        ("${lst}", "cmd", "list"),
        ("run ${lst}", "cmd", "list"),
        ("${a}", "wdir", "dict"),
    ],
)
def test_containers_cannot_be_interpolated(template: str, field: str, kind: str) -> None:
    with pytest.raises(InterpolationError) as info:
        _resolver().resolve_str(template, field=field)
    assert str(info.value) == f"Cannot interpolate data of type '{kind}'"


@pytest.mark.parametrize("field", [None, "foreach"])
def test_containers_are_free_outside_stage_fields(field: str | None) -> None:
    assert _resolver().resolve_str("${lst}", field=field) == [1, "two"]


def test_dict_in_cmd_is_unpacked_in_text() -> None:
    resolved = _resolver().resolve_str("python train.py ${models}", field="cmd")
    assert resolved == "python train.py --us.thresh 10"


def test_resolve_recurses_into_keys_and_values() -> None:
    data = {"${text}.csv": {"cache": "${flag}"}, "list": ["${num}", "k${num}", 7]}
    assert _resolver().resolve(data, field="x") == {
        "x y.csv": {"cache": True},
        "list": [3, "k3", 7],
    }


def test_resolve_keeps_nodes_when_asked() -> None:
    resolved = _resolver().resolve(["${lst}", "lit"], keep_nodes=True)
    assert isinstance(resolved[0], Node)
    assert resolved[0].path == "lst"
    assert unwrap(resolved) == [[1, "two"], "lit"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "true"),
        (False, "false"),
        (None, "None"),
        (3, "3"),
        (0.1, "0.1"),
        (1e-05, "1e-05"),
        ("s", "s"),
        ({"a": 1}, "--a 1"),
    ],
)
def test_to_str(value: Any, expected: str) -> None:
    assert to_str(value) == expected


@pytest.mark.parametrize(
    ("data", "options", "expected"),
    [
        ({"lr": 0.1, "epochs": 5}, {}, "--lr 0.1 --epochs 5"),
        ({"opt": {"name": "adam", "beta": {"b1": 0.9}}}, {}, "--opt.name adam --opt.beta.b1 0.9"),
        ({"on": True, "off": False}, {}, "--on"),
        ({"on": True, "off": False}, {"bool_flags": "boolean_optional"}, "--on --no-off"),
        ({"s": "a b", "q": "it's"}, {}, "--s 'a b' --q 'it'\"'\"'s'"),
        ({"empty": ""}, {}, "--empty ''"),
        ({"l": [1, "x y", True, None]}, {}, "--l 1 'x y' True None"),
        ({"l": [1, 2]}, {"list_flags": "append"}, "--l 1 --l 2"),
        ({"l": []}, {}, ""),
        ({"n": None}, {}, "--n None"),
        ({"nested": {}}, {}, ""),
        ({}, {}, ""),
    ],
)
def test_unpack_dict(data: dict, options: dict, expected: str) -> None:
    assert unpack_dict(data, ParsingOptions(**options)) == expected


@pytest.mark.parametrize("data", [{"l": [[1]]}, {"l": [{"a": 1}]}])
def test_unpack_dict_refuses_nested_iterables(data: dict) -> None:
    with pytest.raises(InterpolationError, match="^Cannot interpolate nested iterable in 'l'$"):
        unpack_dict(data)


def test_merge_joins_nested_mappings_from_different_sources() -> None:
    context = Context()
    context.merge(make_node({"a": {"x": 1}}, source="params.yaml", tracked=True))
    context.merge(make_node({"a": {"y": 2}, "b": 3}, source="vars[0]"))
    assert unwrap(context.data["a"]) == {"x": 1, "y": 2}
    assert context.select(["a", "x"]).source == "params.yaml"
    assert context.select(["a", "y"]).source == "vars[0]"


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        (
            {"a": 1},
            {"a": 2},
            "cannot redefine 'a' from 'vars[1]' as it already exists in 'params.yaml'",
        ),
        (
            {"a": {"b": 1}},
            {"a": {"b": 2}},
            "cannot redefine 'a.b' from 'vars[1]' as it already exists in 'params.yaml'",
        ),
        (
            {"a": {"b": 1}},
            {"a": 5},
            "cannot redefine 'a' from 'vars[1]' as it already exists in 'params.yaml'",
        ),
        (
            {"a": 1},
            {"a": {"b": 1}},
            "cannot redefine 'a' from 'vars[1]' as it already exists in 'params.yaml'",
        ),
    ],
)
def test_merge_conflicts_name_both_sources(first: dict, second: dict, message: str) -> None:
    context = Context()
    context.merge(make_node(first, source="params.yaml", tracked=True))
    with pytest.raises(InterpolationError) as info:
        context.merge(make_node(second, source="vars[1]"))
    assert str(info.value) == message


def test_child_merge_does_not_touch_parent() -> None:
    parent = Context()
    parent.merge(make_node({"a": {"x": 1}}, source="params.yaml"))
    child = parent.child()
    child.merge(make_node({"a": {"y": 2}, "b": 1}, source="s.vars[0]"))
    assert unwrap(parent.data["a"]) == {"x": 1}
    assert "b" not in parent.data
    assert unwrap(child.data["a"]) == {"x": 1, "y": 2}


@pytest.mark.parametrize(
    ("update", "origin", "message"),
    [
        ({"item": 1}, None, "attempted to modify reserved key item"),
        (
            {"item": 1, "key": 2},
            "o.yaml",
            "attempted to modify reserved keys item and key in 'o.yaml'",
        ),
    ],
)
def test_reserved_keys_cannot_be_merged(update: dict, origin: str | None, message: str) -> None:
    context = Context().child({"item": make_node(0), "key": make_node("k")}, reserve=True)
    with pytest.raises(InterpolationError) as info:
        context.merge(make_node(update, source="s.vars[0]"), origin=origin)
    assert str(info.value) == message


def test_unreserved_child_keeps_parent_reservations() -> None:
    context = Context().child({"item": make_node(0)}, reserve=True).child()
    with pytest.raises(InterpolationError, match="reserved key item"):
        context.merge(make_node({"item": 1}))


def test_make_node_drops_non_string_keys_like_dvc() -> None:
    node = make_node({1: "x", "y": 2, None: 3})
    assert unwrap(node) == {"y": 2}


def test_tracker_records_file_scalars_and_lists_in_first_use_order() -> None:
    tracker = Tracker()
    resolver = _resolver(tracker)
    resolver.resolve_str("${num} ${a.c[1].d} ${models} ${num}", field="cmd")
    resolver.resolve_str("${lst}", field=None)
    resolver.resolve_str("${a}", field=None)
    assert tracker.used == {"params.yaml": {"num": 3, "a.c.1.d": "deep", "lst": [1, "two"]}}


def test_tracker_ignores_values_not_from_files() -> None:
    context = Context()
    context.merge(make_node({"inline": 1}, source="vars[0]"))
    tracker = Tracker()
    Resolver(context, tracker).resolve_str("${inline}", field="cmd")
    assert tracker.used == {}


def test_tracker_uses_canonical_paths_for_negative_and_spaced_indexes() -> None:
    tracker = Tracker()
    _resolver(tracker).resolve_str("${lst[-1]} ${ a . b }", field="cmd")
    assert list(tracker.used["params.yaml"]) == ["lst.1", "a.b"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "true"),
        (make_node(True), "True"),  # DVC names values that came through ${...} with str()
        (None, "None"),
        (0.5, "0.5"),
        (make_node("us"), "us"),
        (2, "2"),
    ],
)
def test_name_fragment(value: Any, expected: str) -> None:
    assert name_fragment(value) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("${a}", True),
        ("\\${a}", False),
        ({"k": ["x", "${a}"]}, True),
        ({"${a}": 1}, True),
        ({"k": [1, "plain"]}, False),
        (5, False),
    ],
)
def test_contains_interpolation(data: Any, expected: bool) -> None:
    assert contains_interpolation(data) is expected
