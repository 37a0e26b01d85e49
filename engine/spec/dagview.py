"""What ``exq dag`` draws: the stages and the ``.dvc``-tracked data feeding them.

Pure: built from the checked ``Graph`` and the outs of each ``.dvc`` file.
A ``.dvc`` file is a node of its own (named by its path, as DVC names it),
with an edge to every stage that depends on its data, a file inside it or a
folder holding it.

Orders follow ``dvc dag``: nodes in the order DVC walks the project (in each
folder its files by name, ``dvc.yaml``'s stages in file order, then its
sub-folders by name); edges grouped by producer in that order; pipelines
(weakly connected parts) in the order of their first node.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from exq.engine.spec.graph import Graph, StageRef


@dataclass(frozen=True)
class TrackedNode:
    """One ``.dvc`` file: its repo-relative path and the repo-relative paths it tracks."""

    dvcfile: str
    outs: tuple[str, ...]


@dataclass(frozen=True)
class DagView:
    """Nodes in DVC's order and (producer, consumer) edges, grouped by producer."""

    nodes: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]


def walk_key(path: str) -> tuple[tuple[int, str], ...]:
    """Sort key of a file in a top-down walk: a folder's files before its sub-folders."""
    *folders, name = path.split("/")
    return (*((1, folder) for folder in folders), (0, name))


def _overlaps(dep: str, out: str) -> bool:
    return dep == out or dep.startswith(out + "/") or out.startswith(dep + "/")


def build_view(
    graph: Graph,
    tracked: Sequence[TrackedNode] = (),
    stages: Iterable[StageRef] | None = None,
) -> DagView:
    """The view of the whole project, or of ``stages`` and the data that feeds them."""
    files = {stage.address: stage.dvcfile for stage in graph.stages}
    files.update({node.dvcfile: node.dvcfile for node in tracked})
    chosen = set(files) if stages is None else {graph.stage(_addr(s)).address for s in stages}
    edges: set[tuple[str, str]] = set()
    for stage in graph.stages:
        consumer = stage.address
        edges.update((up.address, consumer) for up in graph.upstream(stage))
        deps = graph.deps_of(stage)
        edges.update(
            (node.dvcfile, consumer)
            for node in tracked
            if any(_overlaps(dep, out) for dep in deps for out in node.outs)
        )
    if stages is not None:
        chosen |= {producer for producer, consumer in edges if consumer in chosen}
    position = {addr: i for i, addr in enumerate(files)}  # file order inside one dvc.yaml
    nodes = sorted(
        (addr for addr in files if addr in chosen),
        key=lambda addr: (walk_key(files[addr]), position[addr]),
    )
    rank = {addr: i for i, addr in enumerate(nodes)}
    kept = sorted(
        (e for e in edges if e[0] in rank and e[1] in rank),
        key=lambda e: (rank[e[0]], rank[e[1]]),
    )
    return DagView(tuple(nodes), tuple(kept))


def relabel(view: DagView, names: dict[str, str]) -> DagView:
    """The view with nodes renamed (addresses as seen from another folder); order kept."""
    return DagView(
        tuple(names.get(n, n) for n in view.nodes),
        tuple((names.get(a, a), names.get(b, b)) for a, b in view.edges),
    )


def _addr(ref: StageRef) -> str:
    return ref if isinstance(ref, str) else ref.address


def _pipelines(view: DagView) -> list[list[str]]:
    """Weakly connected parts, each in node order, in the order of their first node."""
    links: dict[str, set[str]] = {node: set() for node in view.nodes}
    for a, b in view.edges:
        links[a].add(b)
        links[b].add(a)
    seen: set[str] = set()
    parts: list[list[str]] = []
    for start in view.nodes:
        if start in seen:
            continue
        part: set[str] = set()
        todo = [start]
        while todo:
            node = todo.pop()
            if node not in part:
                part.add(node)
                todo.extend(links[node])
        seen |= part
        parts.append([n for n in view.nodes if n in part])
    return parts


def _run_order(view: DagView, part: list[str]) -> list[str]:
    """Producers before consumers, otherwise in node order (depth-first post-order)."""
    ups: dict[str, list[str]] = {n: [] for n in part}
    for a, b in view.edges:
        if b in ups:
            ups[b].append(a)
    order: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> None:
        if node in done:
            return
        done.add(node)
        for up in ups[node]:
            visit(up)
        order.append(node)

    for node in part:
        visit(node)
    return order


def render_text(view: DagView) -> str:
    """One block per pipeline, each node with ``<-`` the nodes it depends on."""
    blocks = []
    for part in _pipelines(view):
        lines = []
        for node in _run_order(view, part):
            ups = [a for a, b in view.edges if b == node]
            lines.append(node + (f"  <- {', '.join(ups)}" if ups else ""))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n" if blocks else ""


def render_dot(view: DagView) -> str:
    """Graphviz text as ``dvc dag --dot`` prints it (edges producer -> consumer)."""
    lines = ["strict digraph {"]
    lines += [f"{json.dumps(n)};" for n in view.nodes]
    lines += [f"{json.dumps(a)} -> {json.dumps(b)};" for a, b in view.edges]
    return "\n".join(lines) + "\n}\n"


def render_mermaid(view: DagView, *, markdown: bool = False) -> str:
    """Mermaid ``flowchart TD`` as ``dvc dag --mermaid`` prints it (``--md`` fences it)."""
    out = ["flowchart TD"]
    count = 0
    for part in _pipelines(view):
        ids: dict[str, str] = {}
        for node in sorted(part):
            count += 1
            ids[node] = f"node{count}"
            out.append(f'\t{ids[node]}["{node}"]')
        for a, b in sorted(e for e in view.edges if e[0] in ids):
            out.append(f"\t{ids[a]}-->{ids[b]}")
    text = "\n".join(out)
    return f"```mermaid\n{text}\n```" if markdown else text


def view_json(view: DagView) -> dict[str, Any]:
    """``{"nodes": [...], "edges": [{"from": producer, "to": consumer}]}``."""
    return {
        "nodes": list(view.nodes),
        "edges": [{"from": a, "to": b} for a, b in view.edges],
    }
