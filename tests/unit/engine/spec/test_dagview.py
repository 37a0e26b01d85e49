"""``exq dag``'s view: stages and ``.dvc``-tracked data, in the orders ``dvc dag`` prints."""

from __future__ import annotations

from exq.engine.spec.dagview import (
    TrackedNode,
    build_view,
    render_dot,
    render_mermaid,
    render_text,
    view_json,
)
from exq.engine.spec.graph import build_graph
from exq.engine.spec.stage import Out, Stage


def st(name: str, deps: list[str] | None = None, outs: list[str] | None = None, **kw: str) -> Stage:
    return Stage(
        name=name,
        dvcfile=kw.get("dvcfile", "dvc.yaml"),
        cmd=f"run {name}",
        wdir=kw.get("wdir", "."),
        deps=deps or [],
        outs=[Out(o) for o in outs or []],
        params={},
    )


def project():
    graph = build_graph(
        [
            st("train", deps=["prepared"], outs=["model"]),
            st("prep", deps=["data/raw.csv"], outs=["prepared"]),
            st("solo", outs=["s"]),
            st("s1", deps=["../images/cat.png"], outs=["o"], dvcfile="sub/dvc.yaml", wdir="sub"),
            st("s2", deps=["o", "../model"], outs=["o2"], dvcfile="sub/dvc.yaml", wdir="sub"),
        ]
    )
    tracked = [
        TrackedNode("images.dvc", ("images",)),  # a folder holding a stage's dep
        TrackedNode("data/raw.csv.dvc", ("data/raw.csv",)),
        TrackedNode("sub/notes.dvc", ("sub/notes",)),  # fed to nobody
    ]
    return graph, tracked


def test_dot_lists_tracked_data_and_points_from_producer_to_consumer() -> None:
    graph, tracked = project()
    assert render_dot(build_view(graph, tracked)) == (
        "strict digraph {\n"
        '"train";\n"prep";\n"solo";\n"images.dvc";\n"data/raw.csv.dvc";\n'
        '"sub/dvc.yaml:s1";\n"sub/dvc.yaml:s2";\n"sub/notes.dvc";\n'
        '"train" -> "sub/dvc.yaml:s2";\n'
        '"prep" -> "train";\n'
        '"images.dvc" -> "sub/dvc.yaml:s1";\n'
        '"data/raw.csv.dvc" -> "prep";\n'
        '"sub/dvc.yaml:s1" -> "sub/dvc.yaml:s2";\n'
        "}\n"
    )


def test_mermaid_text_and_json() -> None:
    graph, tracked = project()
    view = build_view(graph, tracked)
    assert render_mermaid(view) == (
        "flowchart TD\n"
        '\tnode1["data/raw.csv.dvc"]\n\tnode2["images.dvc"]\n\tnode3["prep"]\n'
        '\tnode4["sub/dvc.yaml:s1"]\n\tnode5["sub/dvc.yaml:s2"]\n\tnode6["train"]\n'
        "\tnode1-->node3\n\tnode2-->node4\n\tnode3-->node6\n\tnode4-->node5\n\tnode6-->node5\n"
        '\tnode7["solo"]\n\tnode8["sub/notes.dvc"]'
    )
    assert render_text(view) == (
        "data/raw.csv.dvc\nprep  <- data/raw.csv.dvc\ntrain  <- prep\nimages.dvc\n"
        "sub/dvc.yaml:s1  <- images.dvc\n"
        "sub/dvc.yaml:s2  <- train, sub/dvc.yaml:s1\n\nsolo\n\nsub/notes.dvc\n"
    )
    assert view_json(build_view(graph, tracked, ["train", "prep"])) == {
        "nodes": ["train", "prep", "data/raw.csv.dvc"],
        "edges": [
            {"from": "prep", "to": "train"},
            {"from": "data/raw.csv.dvc", "to": "prep"},
        ],
    }


def test_a_selection_keeps_the_data_feeding_it() -> None:
    graph, tracked = project()
    view = build_view(graph, tracked, graph.select(["sub/dvc.yaml:s1"]))
    assert view.nodes == ("images.dvc", "sub/dvc.yaml:s1")
    assert render_mermaid(view, markdown=True) == (
        '```mermaid\nflowchart TD\n\tnode1["images.dvc"]\n\tnode2["sub/dvc.yaml:s1"]\n'
        "\tnode1-->node2\n```"
    )
