"""Which revisions ``exp show`` and ``metrics show`` list, in which order, under which names.

``exp_show_rows`` gives the rows of the experiments table: the workspace,
then each baseline (HEAD first; more with ``-a``/``-T``/``-A``/``-n``), each
followed by its experiments newest first. Baselines are named as DVC names
them: HEAD by its branch, other commits by a tag, else a branch pointing at
them, else the short sha. Values come from an ``experiments.collect.Collector``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache

from exq.engine.errors import ExperimentError
from exq.engine.experiments.chains import ChainCommit, chain_of
from exq.engine.experiments.collect import WORKSPACE, Collector, RevData, Values
from exq.engine.experiments.compare import Row, RowKind, RowState
from exq.engine.experiments.refs import ExpRef, list_experiments, resolve_rev
from exq.engine.git import Git


@dataclass(frozen=True)
class RevisionSet:
    """Which commits to list (``--rev``, ``-a``, ``-T``, ``-A``, ``-n``): ``num``
    first-parent commits from each of ``revs`` (HEAD when there is none), and
    every branch tip, tag or commit besides."""

    all_branches: bool = False
    all_tags: bool = False
    all_commits: bool = False
    num: int = 1
    revs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Revision:
    """A commit to show, and the name it shows under."""

    sha: str
    name: str


def namer(git: Git) -> Callable[[str], str]:
    """A function naming commits: HEAD's branch, else a tag, a branch, the short sha."""
    head, branch = git.head_sha(), git.head_branch()

    # Listed on first need only: listing refs reads every experiment's ref too.
    @cache
    def labels() -> dict[str, str]:
        by_sha: dict[str, str] = {}
        for names in (git.list_branches(), git.list_tags()):  # tags last: they win
            for label, sha in sorted(names.items(), reverse=True):
                by_sha[sha] = label
        return by_sha

    def name(sha: str) -> str:
        if sha == head and branch is not None:
            return branch
        return labels().get(sha, sha[:7])

    return name


def select_revisions(git: Git, selection: RevisionSet) -> list[Revision]:
    """HEAD, or each of ``--rev`` in order (each with its ``num - 1`` first-parent
    ancestors), then the other selected commits newest first, without repeats;
    [] when the repository has no commit. An unknown ``--rev`` is an error."""
    head = git.head_sha()
    if head is None:
        if selection.revs:
            raise ExperimentError(
                f"unknown revision '{selection.revs[0]}': the repository has no commit yet"
            )
        return []
    starts = [_rev_start(git, rev) for rev in selection.revs] or [head]
    shas = list(
        dict.fromkeys(sha for start in starts for sha in git.log(start, max(selection.num, 1)))
    )
    extra: set[str] = set()
    if selection.all_branches:
        extra.update(git.list_branches().values())
    if selection.all_tags:
        extra.update(git.list_tags().values())
    if selection.all_commits:
        extra.update(git.all_commits())
    rest = sorted(extra - set(shas), key=lambda sha: (-_timestamp(git, sha), sha))
    name = namer(git)
    return [Revision(sha, name(sha)) for sha in [*shas, *rest]]


def _rev_start(git: Git, rev: str) -> str:
    try:
        return resolve_rev(git, rev)
    except ExperimentError as exc:
        raise ExperimentError(f"--rev: {exc.message}", hint=exc.hint) from None


def _timestamp(git: Git, sha: str) -> float:
    return git.commit_info(sha).time.timestamp()


def workspace_row(git: Git, collector: Collector) -> Row:
    """The ``workspace`` row: values read from disk; its baseline is HEAD."""
    data = collector.workspace()
    return Row(
        name=WORKSPACE,
        rev=None,
        baseline=git.head_sha(),
        kind="workspace",
        params=data.params,
        metrics=data.metrics,
    )


def exp_show_rows(
    git: Git,
    collector: Collector,
    selection: RevisionSet | None = None,
    *,
    errors: list[str] | None = None,
) -> list[Row]:
    """Rows of ``exp show``: workspace, then each baseline and its experiments, newest first.

    Read errors of single revisions do not stop the listing: they are
    appended to ``errors`` (as ``name: message``) when it is given.
    """
    rows = [workspace_row(git, collector)]
    by_baseline: dict[str, list[ExpRef]] = {}
    revisions = select_revisions(git, selection or RevisionSet())
    if revisions:
        for exp in list_experiments(git):
            by_baseline.setdefault(exp.baseline, []).append(exp)
    for rev in revisions:
        info = git.commit_info(rev.sha)
        data = _collect(collector, rev.sha, rev.name, errors)
        rows.append(
            Row(
                name=rev.name,
                rev=rev.sha,
                baseline=rev.sha,
                kind="baseline",
                created=info.time,
                params=data.params,
                metrics=data.metrics,
            )
        )
        experiments = [(exp, git.commit_info(exp.sha)) for exp in by_baseline.get(rev.sha, [])]
        chains = {
            exp.sha: chain_of(git, exp.sha, rev.sha, first=info, ref=exp.ref)
            for exp, info in experiments
        }
        # A chain continued by a modified run is drawn under the newer experiment.
        inside = {commit.info.sha for chain in chains.values() for commit in chain[1:]}
        experiments = [(exp, info) for exp, info in experiments if exp.sha not in inside]
        experiments.sort(key=lambda pair: (-pair[1].time.timestamp(), pair[0].name))
        for exp, info in experiments:
            data = _collect(collector, exp.sha, exp.name, errors)
            chain = chains[exp.sha]
            rows.append(
                Row(
                    name=exp.name,
                    rev=exp.sha,
                    baseline=exp.baseline,
                    kind="experiment",
                    created=info.time,
                    parent=chain[1].info.sha if len(chain) > 1 else None,
                    params=data.params,
                    metrics=data.metrics,
                )
            )
            rows.extend(_checkpoint_rows(collector, exp, chain, errors))
    return rows


def _checkpoint_rows(
    collector: Collector, exp: ExpRef, chain: list[ChainCommit], errors: list[str] | None
) -> list[Row]:
    """A row per commit of the experiment's chain below its tip, newest first
    (the tip is the experiment's own row, as DVC 2 draws it).

    ``parent`` is the previous checkpoint (None for the chain's first commit);
    ``checkpoint_tip`` is the newest commit of the run that made the row's
    commit, so a chain continued from another draws where the older one ends.
    """
    rows: list[Row] = []
    segment_ref, segment_tip = None, exp.sha
    for index, commit in enumerate(chain):
        sha = commit.info.sha
        if commit.ref != segment_ref:
            segment_ref, segment_tip = commit.ref, sha if index else exp.sha
        if index == 0:
            continue  # the tip: the experiment's row
        parent = chain[index + 1].info.sha if index + 1 < len(chain) else None
        data = _collect(collector, sha, sha[:7], errors)
        rows.append(
            Row(
                name=sha[:7],
                rev=sha,
                baseline=exp.baseline,
                kind="checkpoint",
                created=commit.info.time,
                parent=parent,
                params=data.params,
                metrics=data.metrics,
                checkpoint_tip=segment_tip,
            )
        )
    return rows


@dataclass(frozen=True)
class PendingRun:
    """A queued, running or failed run of the queue, as ``exp show`` lists it."""

    name: str
    snapshot: str  # the commit it runs from: its params are the run's
    baseline: str
    state: RowState  # queued, running, failed, interrupted, pruned
    created: datetime
    # A running run's metrics as its worktree holds them now (None: not read).
    live_metrics: Values | None = None


def add_pending(
    rows: list[Row],
    pending: Sequence[PendingRun],
    collector: Collector,
    errors: list[str] | None = None,
) -> list[Row]:
    """``rows`` with each pending run at the top of its baseline's group, newest first.

    Their params come from the snapshot (the -S edits are in it); a running
    run's metrics are those its worktree holds now, others have none yet. A run that already committed (checkpoints of a running or
    interrupted run) is not listed twice: its experiment row takes its state.
    Runs of baselines not shown are left out.
    """
    result = list(rows)
    for run in sorted(pending, key=lambda r: r.created):
        at = next(
            (
                i
                for i, row in enumerate(result)
                if row.kind == "baseline" and row.rev == run.baseline
            ),
            None,
        )
        if at is None:
            continue
        made = next(
            (
                i
                for i, row in enumerate(result)
                if row.kind == "experiment"
                and row.baseline == run.baseline
                and row.name == run.name
            ),
            None,
        )
        if made is not None:
            # A running checkpoint run's files are newer than its last checkpoint's.
            metrics = run.live_metrics if run.live_metrics else result[made].metrics
            result[made] = replace(result[made], state=run.state, metrics=metrics)
            continue
        data = _collect(collector, run.snapshot, run.name, errors)
        kind: RowKind = "queued" if run.state == "queued" else "experiment"
        row = Row(
            name=run.name,
            rev=run.snapshot,
            baseline=run.baseline,
            kind=kind,
            state=run.state,
            created=run.created,
            params=data.params,
            metrics=run.live_metrics or {},
        )
        result.insert(at + 1, row)
    return result


def _collect(collector: Collector, sha: str, name: str, errors: list[str] | None) -> RevData:
    data = collector.commit(sha)
    if errors is not None:
        errors.extend(f"{name}: {message}" for message in data.errors)
    return data


def collect_rev(git: Git, collector: Collector, rev: str | None) -> RevData:
    """Values of ``rev`` (an experiment name, branch, tag or sha), or of the
    workspace when ``rev`` is None or ``workspace``."""
    if rev is None or rev == WORKSPACE:
        return collector.workspace()
    if git.head_sha() is None:
        raise ExperimentError(f"unknown revision '{rev}': the repository has no commit yet")
    return collector.commit(resolve_rev(git, rev))
