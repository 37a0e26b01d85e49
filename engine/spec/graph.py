"""The pipeline graph: which stage feeds which, checked before anything runs.

Pure: it reads nothing from disk. Every dep, params file and out of every
stage is normalised to a repo-relative POSIX path (``wdir/path``); stage B
depends on stage A when one of B's deps (params files included, as in DVC) is
an out of A, lies inside an out folder of A, or is a folder holding an out of
A. Stages are keyed by their address (``name`` for the root ``dvc.yaml``,
``sub/dvc.yaml:name`` elsewhere), because ``Stage`` is not hashable.

Orders follow DVC: a depth-first post-order over the stages in file order, so
a sequential run visits (and writes ``dvc.lock`` in) the same order as
``dvc repro``. A frozen stage is cut off from its upstream when a selection is
expanded, as DVC's "active graph" does.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from exq.engine.errors import PipelineError, StageNotFound, did_you_mean
from exq.engine.spec.stage import Stage

PROJECT_FILE = "dvc.yaml"
StageRef = Stage | str


def repo_path(stage: Stage, path: str) -> str:
    """``path`` (as written, relative to the stage's wdir) made repo-relative.

    Raises PipelineError when it is absolute or climbs out of the repository.
    """
    if posixpath.isabs(path) or path.startswith("\\") or (len(path) > 1 and path[1] == ":"):
        raise PipelineError(
            f"stage '{stage.address}': path '{path}' is absolute; no path may escape the repository"
        )
    joined = posixpath.normpath(posixpath.join(stage.wdir or ".", path))
    if joined == ".." or joined.startswith("../") or posixpath.isabs(joined):
        raise PipelineError(
            f"stage '{stage.address}': path '{path}' leaves the repository; "
            "no path may escape the repository"
        )
    return joined


def _parents(path: str) -> list[str]:
    """The folders holding ``path``, innermost first, ending with ``.``."""
    result = []
    while path not in (".", ""):
        path = posixpath.dirname(path) or "."
        result.append(path)
    return result


def _inside(path: str, folder: str) -> bool:
    """True when ``path`` is ``folder`` itself or lies below it."""
    return folder == "." or path == folder or path.startswith(folder + "/")


@dataclass
class _Node:
    stage: Stage
    index: int
    deps: list[str]  # repo-relative deps, then params files
    outs: list[str]  # repo-relative outs, metrics and plots
    up: list[str] = field(default_factory=list)  # producers, in edge order
    down: list[str] = field(default_factory=list)


class Graph:
    """The checked DAG of a repository's stages; build it with ``build_graph``."""

    def __init__(self, stages: list[Stage]) -> None:
        self.stages: list[Stage] = list(stages)
        self._nodes: dict[str, _Node] = {}
        for index, stage in enumerate(self.stages):
            if stage.address in self._nodes:
                raise PipelineError(f"stage '{stage.address}' is defined twice")
            # remote deps (s3://..., https://...) are never produced by a stage
            deps = [repo_path(stage, d) for d in stage.deps if "://" not in d]
            deps += [repo_path(stage, p) for p in stage.params]
            outs = [repo_path(stage, o.path) for o in stage.outs]
            self._nodes[stage.address] = _Node(stage, index, deps, outs)
        self._check_outs()
        self._link()
        self._check_acyclic()

    # -- construction -----------------------------------------------------

    def _check_outs(self) -> None:
        # out path -> owner; overlaps are found by walking each out's parent folders
        self._owner: dict[str, str] = {}
        for addr, node in self._nodes.items():
            for out in node.outs:
                if out in self._owner:
                    raise PipelineError(_duplicate_message(out, self._owner[out], addr))
                self._owner[out] = addr
        self._under: dict[str, list[str]] = {}  # folder -> outs strictly inside it
        for out, addr in self._owner.items():
            for parent in _parents(out):
                if parent in self._owner:
                    raise PipelineError(
                        f"output '{out}' of stage '{addr}' is inside output "
                        f"'{parent}' of stage '{self._owner[parent]}'; outputs must not overlap"
                    )
                self._under.setdefault(parent, []).append(out)
        for addr, node in self._nodes.items():
            for folder in _parents(node.stage.dvcfile):
                if folder in self._owner:
                    raise PipelineError(
                        f"stage '{addr}': its file '{node.stage.dvcfile}' is inside "
                        f"output '{folder}' of stage '{self._owner[folder]}'"
                    )

    def _link(self) -> None:
        for addr, node in self._nodes.items():
            linked: set[str] = set()
            for dep in node.deps:
                # outs holding the dep (outermost first), then outs inside a dep folder
                holders = [p for p in reversed([dep, *_parents(dep)]) if p in self._owner]
                for out in holders + self._under.get(dep, []):
                    producer = self._owner[out]
                    if producer == addr:
                        raise PipelineError(
                            f"stage '{addr}' depends on its own output through '{dep}'"
                        )
                    if producer not in linked:
                        linked.add(producer)
                        node.up.append(producer)
                        self._nodes[producer].down.append(addr)
        for node in self._nodes.values():
            node.down.sort(key=lambda a: self._nodes[a].index)

    def _check_acyclic(self) -> None:
        state: dict[str, int] = {}  # 1 = on the DFS path, 2 = done
        for start in self._nodes:
            if state.get(start):
                continue
            path: list[str] = [start]
            stack: list[Iterator[str]] = [iter(self._nodes[start].up)]
            state[start] = 1
            while stack:
                nxt = next(stack[-1], None)
                if nxt is None:
                    state[path.pop()] = 2
                    stack.pop()
                elif state.get(nxt) == 1:
                    cycle = path[path.index(nxt) :]
                    # path runs consumer -> producer; show it in run order
                    names = " -> ".join(reversed([*cycle, nxt]))
                    raise PipelineError(f"pipeline has a cycle: {names}")
                elif not state.get(nxt):
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append(iter(self._nodes[nxt].up))

    # -- lookups ----------------------------------------------------------

    def _addr(self, ref: StageRef) -> str:
        addr = ref.address if isinstance(ref, Stage) else ref
        if addr not in self._nodes:
            raise StageNotFound(f"stage '{addr}' is not in the pipeline")
        return addr

    def stage(self, address: str) -> Stage:
        """The stage with this address (``name`` or ``path/dvc.yaml:name``)."""
        return self._nodes[self._addr(address)].stage

    def deps_of(self, ref: StageRef) -> list[str]:
        """Repo-relative deps of a stage (params files last)."""
        return list(self._nodes[self._addr(ref)].deps)

    def outs_of(self, ref: StageRef) -> list[str]:
        """Repo-relative outs (metrics and plots included) of a stage."""
        return list(self._nodes[self._addr(ref)].outs)

    def upstream(self, ref: StageRef, *, recursive: bool = False) -> list[Stage]:
        """Stages whose outs this stage depends on (all ancestors if recursive), file order."""
        return self._walk(ref, "up", recursive)

    def downstream(self, ref: StageRef, *, recursive: bool = False) -> list[Stage]:
        """Stages that depend on this stage's outs (all descendants if recursive), file order."""
        return self._walk(ref, "down", recursive)

    def _walk(self, ref: StageRef, side: str, recursive: bool) -> list[Stage]:
        start = self._addr(ref)
        seen: set[str] = set()
        todo = list(getattr(self._nodes[start], side))
        while todo:
            addr = todo.pop()
            if addr in seen:
                continue
            seen.add(addr)
            if recursive:
                todo.extend(getattr(self._nodes[addr], side))
        return [n.stage for a, n in self._nodes.items() if a in seen]

    def stage_for_out(self, path: str) -> Stage | None:
        """The stage whose out is ``path`` or holds it (repo-relative path), else None."""
        path = posixpath.normpath(path)
        for node in self._nodes.values():
            if any(_inside(path, out) for out in node.outs):
                return node.stage
        return None

    # -- selection and order ----------------------------------------------

    def _expand(self, roots: list[str], side: str) -> set[str]:
        """Roots plus everything reachable on ``side``, never through a frozen stage's upstream."""
        selected: set[str] = set()
        todo = list(roots)
        while todo:
            addr = todo.pop()
            if addr in selected:
                continue
            selected.add(addr)
            node = self._nodes[addr]
            if side == "up" and not node.stage.frozen:
                todo.extend(node.up)
            elif side == "down":
                todo.extend(d for d in node.down if not self._nodes[d].stage.frozen)
        return selected

    def _roots(self, targets: Iterable[StageRef], cwd: str, glob: bool) -> list[str]:
        roots: list[str] = []
        for target in targets:
            if isinstance(target, Stage):
                roots.append(self._addr(target))
            else:
                found = self.resolve_targets([target], cwd=cwd, glob=glob)
                roots.extend(stage.address for stage in found)
        return roots

    def select(
        self,
        targets: Iterable[StageRef] | None = None,
        *,
        single_item: bool = False,
        downstream: bool = False,
        cwd: str = ".",
        glob: bool = False,
    ) -> list[Stage]:
        """Stages to run, producers first, in the order ``dvc repro`` visits them.

        ``targets`` are Stages or DVC target strings (see ``resolve_targets``);
        None or empty selects every stage. Without ``single_item`` each target
        brings its upstream (or, with ``downstream``, its downstream) stages.
        """
        targets = list(targets or [])
        if not targets:
            return self._post_order(set(self._nodes))
        roots = self._roots(targets, cwd, glob)
        if single_item:
            return self._post_order(set(roots))
        return self._post_order(self._expand(roots, "down" if downstream else "up"))

    def _post_order(self, selected: set[str]) -> list[Stage]:
        """Depth-first post-order over the selection, starting points in file order."""
        order: list[str] = []
        done: set[str] = set()
        for start in self._nodes:
            if start not in selected or start in done:
                continue
            stack: list[tuple[str, Iterator[str]]] = [(start, iter(self._nodes[start].up))]
            done.add(start)
            while stack:
                addr, it = stack[-1]
                nxt = next((u for u in it if u in selected and u not in done), None)
                if nxt is None:
                    order.append(addr)
                    stack.pop()
                else:
                    done.add(nxt)
                    stack.append((nxt, iter(self._nodes[nxt].up)))
        return [self._nodes[a].stage for a in order]

    def predecessors(self, selected: Iterable[StageRef]) -> dict[str, set[str]]:
        """For each selected address, the nearest selected ancestors (through unselected ones).

        This is the map ``runner.run_dag`` takes: a stage starts once these are done.
        """
        chosen = {self._addr(s) for s in selected}
        result: dict[str, set[str]] = {}
        for addr in chosen:
            found: set[str] = set()
            seen: set[str] = set()
            todo = list(self._nodes[addr].up)
            while todo:
                up = todo.pop()
                if up in seen:
                    continue
                seen.add(up)
                if up in chosen:
                    found.add(up)
                else:
                    todo.extend(self._nodes[up].up)
            result[addr] = found
        return result

    # -- targets ----------------------------------------------------------

    def resolve_targets(
        self, targets: Iterable[str], *, cwd: str = ".", glob: bool = False
    ) -> list[Stage]:
        """Stages named by DVC-style targets, in target order, without repeats.

        Accepted: ``name``, ``name@key`` (one foreach/matrix item), a foreach
        group ``name`` (all its items), ``path/dvc.yaml`` (every stage of that
        file), ``path/dvc.yaml:name[@key]`` and, as an exq extension,
        ``folder:name``. Bare names refer to ``dvc.yaml`` in ``cwd`` (a
        repo-relative folder). With ``glob``, the name is an fnmatch pattern.
        """
        result: dict[str, Stage] = {}
        for target in targets:
            for stage in self._resolve_one(target, cwd, glob):
                result.setdefault(stage.address, stage)
        return list(result.values())

    def _resolve_one(self, target: str, cwd: str, glob: bool) -> list[Stage]:
        file, name = parse_target(target)
        dvcfile = posixpath.normpath(posixpath.join(cwd, file or PROJECT_FILE))
        files = {n.stage.dvcfile for n in self._nodes.values()}
        if dvcfile not in files and file and posixpath.basename(dvcfile) != PROJECT_FILE:
            dvcfile = posixpath.join(dvcfile, PROJECT_FILE)  # exq extension: folder:name
        in_file = [n.stage for n in self._nodes.values() if n.stage.dvcfile == dvcfile]
        if not in_file:
            raise StageNotFound(f"'{target}': no stages in '{dvcfile}'")
        if name is None:
            return in_file
        if glob:
            found = [s for s in in_file if fnmatch.fnmatchcase(s.name, name)]
        else:
            found = [s for s in in_file if s.name == name]
            found = found or [s for s in in_file if s.name.startswith(name + "@")]
        if not found:
            raise StageNotFound(
                f"stage '{name}' not found in '{dvcfile}' (target '{target}')",
                hint=did_you_mean(name, (s.name for s in in_file)),
            )
        return found


def parse_target(target: str) -> tuple[str | None, str | None]:
    """Split a DVC target into (dvc.yaml path or None, stage name or None).

    As DVC: the part before the first ``@`` may end in ``:name``; a target
    without ``:`` is a file when it names ``dvc.yaml``, else a stage name.
    """
    if not target:
        raise StageNotFound("an empty target names no stage")
    group, at, key = target.partition("@")
    path, colon, name = group.rpartition(":")
    if not colon or "/" in name or "\\" in name:
        path, name = group, ""
    if name and at:
        name = f"{name}@{key}"
    if path and not name:
        base = posixpath.basename(target)
        if base == "dvc.lock":
            raise StageNotFound(
                f"'{target}' is a lock file; did you mean '{target[: -len('dvc.lock')]}dvc.yaml'?"
            )
        return (target, None) if base == PROJECT_FILE else (None, target)
    return (path or None), (name or None)


def _duplicate_message(out: str, first: str, second: str) -> str:
    if first == second:
        return f"stage '{first}' lists output '{out}' twice"
    return f"output '{out}' is produced by two stages: '{first}' and '{second}'"


def build_graph(stages: list[Stage]) -> Graph:
    """Build and check the graph; raises PipelineError on any clash or cycle."""
    return Graph(stages)
