"""The pipeline graph: edges, refusals, orders, selections and targets."""

from __future__ import annotations

import pytest

from exq.engine.errors import PipelineError, StageNotFound
from exq.engine.spec.graph import build_graph, parse_target
from exq.engine.spec.stage import Out, Stage


def st(
    name: str,
    deps: list[str] | None = None,
    outs: list[str] | None = None,
    *,
    dvcfile: str = "dvc.yaml",
    wdir: str = ".",
    params: dict[str, list[str]] | None = None,
    frozen: bool = False,
) -> Stage:
    return Stage(
        name=name,
        dvcfile=dvcfile,
        cmd=f"run {name}",
        wdir=wdir,
        deps=deps or [],
        outs=[Out(o) for o in outs or []],
        params=params or {},
        frozen=frozen,
    )


def names(stages: list[Stage]) -> list[str]:
    return [s.address for s in stages]


# -- edges --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dep", "out", "edge"),
    [
        ("data.csv", "data.csv", True),  # same path
        ("data/x.csv", "data", True),  # dep inside an out folder
        ("data", "data/x.csv", True),  # dep folder holding an out (DVC does this too)
        ("data2/x.csv", "data", False),  # a prefix of the name is not a folder
        ("./data/../data.csv", "data.csv", True),  # normalised
        ("other.csv", "data.csv", False),
    ],
)
def test_edge_rules(dep: str, out: str, edge: bool) -> None:
    graph = build_graph([st("b", deps=[dep]), st("a", outs=[out])])
    assert names(graph.upstream("b")) == (["a"] if edge else [])
    assert names(graph.downstream("a")) == (["b"] if edge else [])


def test_paths_are_joined_with_wdir_across_dvcfiles() -> None:
    producer = st("make", outs=["o.txt"], dvcfile="sub/dvc.yaml", wdir="sub/work")
    consumer = st("use", deps=["sub/work/o.txt"])
    other = st("near", deps=["work/o.txt"], dvcfile="sub/dvc.yaml", wdir="sub")
    graph = build_graph([producer, consumer, other])
    assert names(graph.downstream(producer)) == ["use", "sub/dvc.yaml:near"]
    assert graph.outs_of(producer) == ["sub/work/o.txt"]


def test_remote_deps_are_not_paths() -> None:
    graph = build_graph([st("get", deps=["https://example.com/x.csv", "s3://b/k"], outs=["x"])])
    assert graph.deps_of("get") == []


def test_params_file_is_a_dep() -> None:
    graph = build_graph(
        [st("gen", outs=["params.yaml"]), st("use", params={"params.yaml": ["lr"]})]
    )
    assert names(graph.upstream("use")) == ["gen"]


def test_recursive_upstream_and_downstream() -> None:
    graph = build_graph(
        [
            st("c", deps=["b"], outs=["c"]),
            st("b", deps=["a"], outs=["b"]),
            st("a", outs=["a"]),
            st("x"),
        ]
    )
    assert names(graph.upstream("c")) == ["b"]
    assert names(graph.upstream("c", recursive=True)) == ["b", "a"]
    assert names(graph.downstream("a", recursive=True)) == ["c", "b"]


# -- refusals -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([st("a", deps=["/etc/passwd"])], "stage 'a': path '/etc/passwd' is absolute"),
        ([st("a", outs=["../x"])], "stage 'a': path '../x' leaves the repository"),
        ([st("a", deps=["../../x"], wdir="sub")], "path '../../x' leaves the repository"),
        (
            [st("a", outs=["o"]), st("b", outs=["./o"])],
            "output 'o' is produced by two stages: 'a' and 'b'",
        ),
        ([st("a", outs=["o", "o"])], "stage 'a' lists output 'o' twice"),
        (
            [st("a", outs=["d"]), st("b", outs=["d/x"])],
            "output 'd/x' of stage 'b' is inside output 'd' of stage 'a'",
        ),
        (
            [st("a", outs=["d/x", "d"])],
            "output 'd/x' of stage 'a' is inside output 'd' of stage 'a'",
        ),
        ([st("a", deps=["o"], outs=["o"])], "stage 'a' depends on its own output through 'o'"),
        ([st("a", deps=["d"], outs=["d/m"])], "stage 'a' depends on its own output through 'd'"),
        (
            [
                st("a", deps=["c"], outs=["a"]),
                st("b", deps=["a"], outs=["b"]),
                st("c", deps=["b"], outs=["c"]),
            ],
            "pipeline has a cycle: ",
        ),
        (
            [st("s", outs=["sub"]), st("t", dvcfile="sub/dvc.yaml", wdir="sub")],
            "stage 'sub/dvc.yaml:t': its file 'sub/dvc.yaml' is inside output 'sub' of stage 's'",
        ),
        ([st("a"), st("a")], "stage 'a' is defined twice"),
    ],
)
def test_invalid_graphs_are_refused(stages: list[Stage], message: str) -> None:
    with pytest.raises(PipelineError) as info:
        build_graph(stages)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_cycle_names_its_stages_in_order() -> None:
    stages = [st("a", deps=["b"], outs=["a"]), st("b", deps=["a"], outs=["b"]), st("z")]
    with pytest.raises(PipelineError) as info:
        build_graph(stages)
    text = str(info.value)
    assert text in ("pipeline has a cycle: a -> b -> a", "pipeline has a cycle: b -> a -> b")


# -- order and selection ------------------------------------------------------


def diamond() -> list[Stage]:
    return [
        st("train", deps=["f1", "f2"], outs=["model"]),
        st("feat1", deps=["raw"], outs=["f1"]),
        st("feat2", deps=["raw"], outs=["f2"]),
        st("prep", outs=["raw"]),
        st("lonely", outs=["l"]),
        st("report", deps=["model"], outs=["r"]),
    ]


@pytest.mark.parametrize(
    ("targets", "kwargs", "expected"),
    [
        (None, {}, ["prep", "feat1", "feat2", "train", "lonely", "report"]),
        ([], {}, ["prep", "feat1", "feat2", "train", "lonely", "report"]),
        (["train"], {}, ["prep", "feat1", "feat2", "train"]),
        (["feat2"], {}, ["prep", "feat2"]),
        (["train", "lonely"], {"single_item": True}, ["train", "lonely"]),
        (["feat1"], {"downstream": True}, ["feat1", "train", "report"]),
        (["prep"], {"downstream": True}, ["prep", "feat1", "feat2", "train", "report"]),
    ],
)
def test_select_follows_dvc_post_order(
    targets: list[str] | None, kwargs: dict[str, bool], expected: list[str]
) -> None:
    graph = build_graph(diamond())
    assert names(graph.select(targets, **kwargs)) == expected
    assert names(graph.select(targets, **kwargs)) == expected


def test_frozen_stage_cuts_its_upstream_from_a_selection() -> None:
    stages = diamond()
    stages[1].frozen = True  # feat1
    graph = build_graph(stages)
    assert names(graph.select(["feat1"])) == ["feat1"]
    assert names(graph.select(["train"])) == ["prep", "feat1", "feat2", "train"]
    assert names(graph.select(["prep"], downstream=True)) == ["prep", "feat2", "train", "report"]


def test_predecessors_skip_unselected_stages() -> None:
    graph = build_graph(diamond())
    selected = graph.select(["report", "prep"], single_item=True)
    assert graph.predecessors(selected) == {"prep": set(), "report": {"prep"}}
    every = graph.predecessors(graph.select())
    assert every["train"] == {"feat1", "feat2"}
    assert every["lonely"] == set()


def test_stage_for_out() -> None:
    graph = build_graph(diamond() + [st("d", outs=["data"], dvcfile="sub/dvc.yaml", wdir="sub")])
    assert graph.stage_for_out("model").name == "train"
    assert graph.stage_for_out("sub/data/file.csv").address == "sub/dvc.yaml:d"
    assert graph.stage_for_out("./sub/data") is not None
    assert graph.stage_for_out("nothing") is None


# -- targets --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("train", (None, "train")),
        ("fe@us", (None, "fe@us")),
        ("dvc.yaml", ("dvc.yaml", None)),
        ("sub/dvc.yaml", ("sub/dvc.yaml", None)),
        ("sub/dvc.yaml:train", ("sub/dvc.yaml", "train")),
        ("sub/dvc.yaml:fe@us", ("sub/dvc.yaml", "fe@us")),
        ("../dvc.yaml:a", ("../dvc.yaml", "a")),
        ("sub:train", ("sub", "train")),
        ("a/b", (None, "a/b")),
    ],
)
def test_parse_target(target: str, expected: tuple[str | None, str | None]) -> None:
    assert parse_target(target) == expected


def targets_graph():
    return build_graph(
        [
            st("prep", outs=["raw"]),
            st("fe@us", deps=["raw"], outs=["us"]),
            st("fe@eu", deps=["raw"], outs=["eu"]),
            st("fex", outs=["fex"]),
            st("s1", outs=["o"], dvcfile="sub/dvc.yaml", wdir="sub"),
            st("fe@us", outs=["o2"], dvcfile="sub/dvc.yaml", wdir="sub"),
        ]
    )


@pytest.mark.parametrize(
    ("targets", "kwargs", "expected"),
    [
        (["prep"], {}, ["prep"]),
        (["fe"], {}, ["fe@us", "fe@eu"]),  # a foreach group selects all its items
        (["fe@eu"], {}, ["fe@eu"]),
        (["dvc.yaml"], {}, ["prep", "fe@us", "fe@eu", "fex"]),
        (["sub/dvc.yaml"], {}, ["sub/dvc.yaml:s1", "sub/dvc.yaml:fe@us"]),
        (["sub/dvc.yaml:fe@us"], {}, ["sub/dvc.yaml:fe@us"]),
        (["sub/dvc.yaml:fe"], {}, ["sub/dvc.yaml:fe@us"]),
        (["sub:s1"], {}, ["sub/dvc.yaml:s1"]),
        (["s1"], {"cwd": "sub"}, ["sub/dvc.yaml:s1"]),
        (["../dvc.yaml:prep"], {"cwd": "sub"}, ["prep"]),
        (["fe*"], {"glob": True}, ["fe@us", "fe@eu", "fex"]),
        (["fe@eu", "fe", "fe@us"], {}, ["fe@eu", "fe@us"]),  # no repeats
    ],
)
def test_resolve_targets(targets: list[str], kwargs: dict[str, str], expected: list[str]) -> None:
    assert names(targets_graph().resolve_targets(targets, **kwargs)) == expected


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nosuch", "stage 'nosuch' not found in 'dvc.yaml'"),
        ("fe@xx", "stage 'fe@xx' not found in 'dvc.yaml'"),
        ("other/dvc.yaml", "no stages in 'other/dvc.yaml'"),
        ("sub/dvc.yaml:prep", "stage 'prep' not found in 'sub/dvc.yaml'"),
        ("sub/dvc.lock", "'sub/dvc.lock' is a lock file"),
    ],
)
def test_unknown_targets(target: str, message: str) -> None:
    with pytest.raises(StageNotFound) as info:
        targets_graph().resolve_targets([target])
    assert message in str(info.value)


def test_select_takes_target_strings() -> None:
    graph = targets_graph()
    assert names(graph.select(["fe"])) == ["prep", "fe@us", "fe@eu"]
