"""Checkpoint experiments: chains of commits, and whether a run resumes one.

A checkpoint run commits at every checkpoint signal: the first commit's parent
is the baseline (or, when the run continues an earlier chain, that chain's
last commit), each later one's parent is the previous checkpoint, and the
experiment ref moves along (compare-and-set). Every commit of a chain carries
the trailer ``Exq-Checkpoint-Of: <experiment ref>`` (``Exq-Step: <n>`` too
when the script reported its step), so a chain is read back from git alone:
``chain_of`` follows first parents while the trailer is there.

Which run a new ``exp run`` makes (``plan_chain``, pure):

* the workspace holds an applied checkpoint experiment of this baseline, at
  its tip, and nothing but outputs changed since: *resume* it (same ref,
  ``EXQ_RESUME=1``);
* it holds one, but code or params changed (or it is not the ref's tip): a
  *modified* chain, a new experiment whose first commit continues from it;
* otherwise, or with ``--reset``: a *new* chain from the baseline.

"Holds an applied checkpoint experiment" is decided by a marker file,
``.dvc/tmp/exq/checkpoint.json`` (DVC 2 kept an ``EXEC_CHECKPOINT`` ref for
the same purpose), written at each checkpoint of a workspace run and by
``exp apply`` of a chain commit: it names the commit, its ref and its
baseline. The marker counts only while HEAD is still that baseline and the
workspace's checkpoint outs have the hashes that commit's ``dvc.lock``
records, so a stale marker (HEAD moved, model replaced) is ignored.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from exq.engine.errors import GitError
from exq.engine.experiments.refs import ExpRef, list_experiments, parse_exp_ref
from exq.engine.git import CommitInfo, Git
from exq.engine.spec.graph import repo_path
from exq.engine.spec.loading import Pipeline, lock_name
from exq.engine.spec.lockfile import parse_lock
from exq.engine.writes import atomic_write_text

if TYPE_CHECKING:  # exp show reads chains: the workspace's hashing and cache it needs not
    from exq.engine.run.workspace import StageIO

CHAIN_TRAILER = "Exq-Checkpoint-Of"
STEP_TRAILER = "Exq-Step"
MARKER_RELPATH = ".dvc/tmp/exq/checkpoint.json"
RESUME_ENV = {"EXQ_RESUME": "1", "DVCLIVE_RESUME": "1"}

ChainKind = Literal["new", "resume", "modified"]


# -- commit messages ---------------------------------------------------------


def chain_message(name: str, ref: str, *, step: int | None = None, final: bool = False) -> str:
    """The message of a chain commit: a subject, then the trailers."""
    if final:
        subject = f"exq: experiment {name}"
    else:
        subject = f"exq: checkpoint {name}" + ("" if step is None else f" step {step}")
    trailers = [f"{CHAIN_TRAILER}: {ref}"]
    if step is not None and not final:
        trailers.append(f"{STEP_TRAILER}: {step}")
    return subject + "\n\n" + "\n".join(trailers) + "\n"


def parse_trailers(message: str) -> dict[str, str]:
    """``Key: value`` lines of the message's last paragraph."""
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    if len(paragraphs) < 2:
        return {}
    found: dict[str, str] = {}
    for line in paragraphs[-1].splitlines():
        key, sep, value = line.partition(": ")
        if sep and key and " " not in key:
            found[key] = value.strip()
    return found


def chain_ref(message: str) -> str | None:
    """The experiment ref a chain commit was made for; None for other commits."""
    return parse_trailers(message).get(CHAIN_TRAILER) or None


# -- deciding the run --------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """The checkpoint experiment the workspace holds (see the module docstring)."""

    sha: str  # the chain commit whose outs are in the workspace
    ref: str
    name: str
    baseline: str
    at_tip: bool  # the commit is where the ref points now


@dataclass(frozen=True)
class ChainPlan:
    """What an ``exp run`` of a checkpoint pipeline makes."""

    kind: ChainKind
    name: str
    parent: str | None  # the first commit's parent; None: the baseline
    resume: bool  # EXQ_RESUME=1 for the checkpoint stages
    message: str | None  # printed before the run

    @property
    def env(self) -> dict[str, str]:
        return dict(RESUME_ENV) if self.resume else {}


def plan_chain(
    held: Held | None,
    *,
    modified: bool,
    reset: bool,
    new_name: str,
    explicit_name: str | None = None,
) -> ChainPlan:
    """Resume, continue in a new experiment, or start from scratch (pure).

    ``new_name`` is the name a new experiment gets (``-n`` or the automatic
    one); ``explicit_name`` is ``-n`` when given.
    """
    if held is None or reset:
        return ChainPlan("new", new_name, None, False, None)
    same_name = explicit_name is None or explicit_name == held.name
    if held.at_tip and not modified and same_name:
        message = f"Existing checkpoint experiment '{held.name}' will be resumed"
        return ChainPlan("resume", held.name, held.sha, True, message)
    if modified or explicit_name is None:
        message = f"Modified checkpoint experiment based on '{held.name}' will be created"
    else:
        message = f"Checkpoint experiment '{new_name}' based on '{held.name}' will be created"
    return ChainPlan("modified", new_name, held.sha, True, message)


def is_logger_report(path: str) -> bool:
    """Where live loggers keep their report (dvclive 0.7+ and exq.live: ``<dir>/report.html``;
    DVC 2's render: ``<dir>_dvc_plots/index.html``): a file the logger rewrites when it
    ends, no input and no reason for a commit of its own."""
    return path.endswith(("/report.html", "_dvc_plots/index.html")) or path == "report.html"


def input_changes(changed: Iterable[str], outs: Iterable[str]) -> list[str]:
    """The changed paths that are inputs: not a ``dvc.lock``, not an out or inside one,
    not a live logger's report (pure)."""
    out_list = [o.rstrip("/") for o in outs]
    kept = []
    for path in changed:
        if posixpath.basename(path) == "dvc.lock" or is_logger_report(path):
            continue
        if any(path == out or path.startswith(out + "/") for out in out_list):
            continue
        kept.append(path)
    return sorted(kept)


def has_checkpoint_stages(pipeline: Pipeline, targets: list[str], cwd: str = ".") -> bool:
    """Whether a stage ``repro`` would consider has checkpoint outs."""
    return any(stage.has_checkpoints for stage in pipeline.graph.select(targets, cwd=cwd))


def out_paths(pipeline: Pipeline) -> list[str]:
    """Repo-relative paths of every out of every stage."""
    return [repo_path(stage, out.path) for stage in pipeline.stages for out in stage.outs]


def inputs_modified(
    git: Git, held_sha: str, inputs_sha: str, pipeline: Pipeline, prefix: str = ""
) -> bool:
    """True when code, params or data differ between the held checkpoint and the new inputs."""
    outs = [posixpath.join(prefix, path) if prefix else path for path in out_paths(pipeline)]
    return bool(input_changes(git.changed_paths(held_sha, inputs_sha), outs))


# -- the marker --------------------------------------------------------------


@dataclass(frozen=True)
class Marker:
    """``.dvc/tmp/exq/checkpoint.json``: the chain commit the workspace holds."""

    sha: str
    ref: str
    baseline: str


def read_marker(root: Path) -> Marker | None:
    try:
        data = json.loads((root / MARKER_RELPATH).read_text(encoding="utf-8"))
        return Marker(sha=str(data["sha"]), ref=str(data["ref"]), baseline=str(data["baseline"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_marker(root: Path, marker: Marker) -> None:
    data = {"sha": marker.sha, "ref": marker.ref, "baseline": marker.baseline}
    atomic_write_text(root / MARKER_RELPATH, json.dumps(data, indent=2) + "\n")


def clear_marker(root: Path) -> None:
    try:
        os.unlink(root / MARKER_RELPATH)
    except FileNotFoundError:
        pass


def held_checkpoint(git: Git, pipeline: Pipeline, io: StageIO, prefix: str = "") -> Held | None:
    """The checkpoint experiment the workspace holds, if the marker still holds."""
    marker = read_marker(pipeline.root)
    if marker is None or marker.baseline != git.head_sha() or not git.has_commit(marker.sha):
        return None
    parsed = parse_exp_ref(marker.ref)
    if parsed is None or parsed[0] != marker.baseline:
        return None
    if not _outs_match(git, marker.sha, pipeline, io, prefix):
        return None
    return Held(
        sha=marker.sha,
        ref=marker.ref,
        name=parsed[1],
        baseline=marker.baseline,
        at_tip=git.get_ref(marker.ref) == marker.sha,
    )


def _outs_match(git: Git, sha: str, pipeline: Pipeline, io: StageIO, prefix: str) -> bool:
    """The workspace's checkpoint outs are the ones commit ``sha`` records."""
    checked = False
    for stage in pipeline.stages:
        if not stage.has_checkpoints:
            continue
        raw = git.read_blob(sha, posixpath.join(prefix, lock_name(stage.dvcfile)))
        entry = parse_lock(raw.decode("utf-8", "replace")).get(stage.name) if raw else None
        if entry is None:
            return False
        for out in stage.outs:
            if not out.checkpoint:
                continue
            recorded, now = entry.out(out.path), io.hash_of(repo_path(stage, out.path))
            if recorded is None or now is None or recorded.md5 != now.md5:
                return False
            checked = True
    return checked


# -- reading chains ------------------------------------------------------------


@dataclass(frozen=True)
class ChainCommit:
    """One commit of a chain, newest first in ``chain_of``."""

    info: CommitInfo
    ref: str  # the experiment the commit was made for
    step: int | None


def chain_of(
    git: Git,
    tip: str,
    baseline: str,
    *,
    first: CommitInfo | None = None,
    ref: str | None = None,
) -> list[ChainCommit]:
    """The chain ending at ``tip``, newest first; [] when ``tip`` is no chain commit.

    Follows first parents while the commits carry the chain trailer, stopping
    at the baseline. With ``ref`` (the experiment ref pointing at ``tip``), a
    checkpoint experiment made by DVC 2 is read too: its commits carry no
    trailer, and its first parents lead from the tip down to the baseline.
    """
    chain: list[ChainCommit] = []
    info = first or git.commit_info(tip)
    seen: set[str] = set()
    while info.sha != baseline and info.sha not in seen:
        trailers = parse_trailers(info.message)
        ref_of = trailers.get(CHAIN_TRAILER)
        if not ref_of:
            break
        seen.add(info.sha)
        step = trailers.get(STEP_TRAILER, "")
        chain.append(ChainCommit(info, ref_of, int(step) if step.isdigit() else None))
        if not info.parents:
            break
        try:
            info = git.commit_info(info.parents[0])
        except GitError:
            break  # a shallow or pruned history: the chain ends here
    if not chain and ref is not None:
        return _dvc2_chain(git, info, baseline, ref)
    return chain


# DVC 2 checkpoint runs were hundreds of commits at most; a walk this long has
# left the experiment (a ref whose baseline is not on its first-parent line).
_DVC2_CHAIN_LIMIT = 100_000


def _dvc2_chain(git: Git, tip: CommitInfo, baseline: str, ref: str) -> list[ChainCommit]:
    """DVC 2's checkpoint experiment: the first-parent line from ``tip`` to the
    baseline, when it is longer than one commit (a plain experiment)."""
    chain: list[ChainCommit] = []
    info = tip
    while info.sha != baseline:
        chain.append(ChainCommit(info, ref, None))
        if not info.parents or len(chain) > _DVC2_CHAIN_LIMIT:
            return []
        try:
            info = git.commit_info(info.parents[0])
        except GitError:
            return []
    return chain if len(chain) > 1 else []


def find_chain_commit(git: Git, rev: str) -> ExpRef | None:
    """The chain commit whose sha starts with ``rev`` (4+ hex digits), as an ``ExpRef``
    named by its short sha; None when no experiment's chain holds one."""
    rev = rev.lower()
    if len(rev) < 4 or any(c not in "0123456789abcdef" for c in rev):
        return None
    found: dict[str, ExpRef] = {}
    for exp in list_experiments(git):
        for commit in chain_of(git, exp.sha, exp.baseline, ref=exp.ref):
            if commit.info.sha.startswith(rev):
                found[commit.info.sha] = ExpRef(
                    ref=commit.ref,
                    baseline=exp.baseline,
                    name=commit.info.sha[:7],
                    sha=commit.info.sha,
                )
    return next(iter(found.values())) if len(found) == 1 else None


def remember_applied(root: Path, git: Git, sha: str, baseline: str) -> None:
    """After ``exp apply``: mark a chain commit as held by the workspace, or forget the mark."""
    ref = chain_ref(git.commit_info(sha).message)
    if ref is None:
        clear_marker(root)
    else:
        write_marker(root, Marker(sha=sha, ref=ref, baseline=baseline))
