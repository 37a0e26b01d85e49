"""Managing experiments once they ran: ``apply``, ``branch``, ``remove``, ``list``, ``gc``.

Decisions (which outs an apply would clobber, which experiments a gc drops,
how a listing reads) are pure functions over plain data; the functions around
them read refs and files through ``Git`` and ``StageIO`` and then act.
Nothing is changed when a check fails: every refusal happens before the
first write.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from exq.engine.data.hashing import HashInfo
from exq.engine.errors import CacheError, ExperimentError, GitError, did_you_mean
from exq.engine.experiments.chains import find_chain_commit, read_marker, remember_applied
from exq.engine.experiments.refs import (
    EXPS_PREFIX,
    ExpRef,
    find_experiment,
    list_experiments,
    parse_exp_ref,
)
from exq.engine.git import Git
from exq.engine.run.commands import checkout
from exq.engine.run.project import Project
from exq.engine.run.workspace import StageIO
from exq.engine.spec.gitsource import DvcfileFinder, GitSource
from exq.engine.spec.graph import repo_path
from exq.engine.spec.loading import lock_name
from exq.engine.spec.lockfile import parse_lock
from exq.engine.spec.templating import load_dvcfile

QUEUE_PREFIX = "refs/exq/queue/"
"""Queued snapshots (see DESIGN.md); their commit's parent is their baseline."""

_SHOWN = 3  # paths named in a refusal before "and N more"


def first_few(paths: list[str], shown: int = _SHOWN) -> str:
    """``a, b, c and 4 more``: paths for a one-line message."""
    more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
    return ", ".join(paths[:shown]) + more


def humanize_join(words: Iterable[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``: how DVC lists names in a sentence."""
    items = list(words)
    if len(items) < 2:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def require_experiment(git: Git, name: str) -> ExpRef:
    """The experiment ``name`` names (a name, a full ref, or its commit sha)."""
    exp = find_experiment(git, name)
    if exp is None and len(name) >= 4 and all(c in "0123456789abcdef" for c in name.lower()):
        by_sha = [e for e in list_experiments(git) if e.sha.startswith(name.lower())]
        exp = by_sha[0] if len({e.sha for e in by_sha}) == 1 else None
    if exp is None:
        exp = find_chain_commit(git, name)  # a checkpoint inside a chain, by its sha
    if exp is None:
        names = (e.name for e in list_experiments(git))
        raise ExperimentError(
            f"'{name}' does not appear to be an experiment",
            hint=did_you_mean(name, names) or "see 'exq exp list --all'",
        )
    return exp


# -- apply -------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyResult:
    """What ``apply`` changed: git-tracked files and outs restored from the cache."""

    name: str
    sha: str
    files: list[str]
    outs: list[str]


def committed_outs(git: Git, sha: str, prefix: str = "") -> dict[str, HashInfo]:
    """Cached outs recorded in the dvc.lock files of commit ``sha``: project path -> hash."""
    source = GitSource(git, sha, prefix)
    found: dict[str, HashInfo] = {}
    for dvcfile in DvcfileFinder(git).find(sha, prefix):
        raw_lock = source.read_bytes(lock_name(dvcfile))
        lock = parse_lock(raw_lock.decode("utf-8"), lock_name(dvcfile)) if raw_lock else {}
        for stage in load_dvcfile(source, dvcfile):
            entry = lock.get(stage.name)
            if entry is None:
                continue
            for out in stage.outs:
                recorded = entry.out(out.path)
                info = recorded.to_hash() if recorded else None
                if out.cache and info is not None:
                    found[repo_path(stage, out.path)] = info
    return found


def out_clashes(
    old: Mapping[str, str], new: Mapping[str, str], now: Mapping[str, str | None]
) -> list[str]:
    """Outs whose workspace content (``now``: md5 or None) is neither the baseline's
    (``old``) nor the experiment's (``new``): restoring them would lose work."""
    return sorted(
        rel
        for rel, md5 in new.items()
        if (ws := now.get(rel)) is not None and ws != md5 and ws != old.get(rel)
    )


def apply(project: Project, name: str, *, force: bool = False) -> ApplyResult:
    """Put the experiment's files and cached outs into the workspace; HEAD stays.

    Refuses, changing nothing, when that would overwrite uncommitted changes
    (unless ``force``) or when an out it needs is not in the cache.
    """
    git = Git.open(project.root)
    exp = require_experiment(git, name)
    prefix = git.prefix_of(project.root)
    head = git.head_sha()
    # The workspace may hold a checkpoint that is committed already (see
    # experiments/chains.py): what it saved is not lost, so it is no clash either.
    held = read_marker(project.root)
    saved = [rev for rev in (head, held.sha if held else None) if rev and git.has_commit(rev)]
    with StageIO(project) as io:
        new = committed_outs(git, exp.sha, prefix)
        now = {rel: _md5(io.hash_like(rel, info)) for rel, info in new.items()}
        clash_sets = []
        revs: list[str | None] = [*saved] or [None]
        for rev in revs:
            old = committed_outs(git, rev, prefix) if rev else {}
            found = set(git.would_overwrite(exp.sha, rev))
            found.update(
                posixpath.join(prefix, rel)
                for rel in out_clashes(
                    {k: v.md5 for k, v in old.items()}, {k: v.md5 for k, v in new.items()}, now
                )
            )
            clash_sets.append(found)
        clashes = sorted(set.intersection(*clash_sets))
        if clashes and not force:
            raise ExperimentError(
                f"applying '{exp.name}' would overwrite uncommitted changes in "
                f"{first_few(sorted(set(clashes)))}",
                hint="commit or remove them, or use --force",
            )
        missing = [
            rel
            for rel, info in new.items()
            if now[rel] != info.md5 and not io.cache.exists(info, io.state)
        ]
    if missing:
        raise CacheError(
            f"cannot apply '{exp.name}': the cache lacks the outs {first_few(sorted(missing))}",
            hint="pull them from a DVC remote, or re-run the experiment",
        )
    files = git.checkout_files(exp.sha, force=True)
    outs = checkout(project, [])
    remember_applied(project.root, git, exp.sha, exp.baseline)
    return ApplyResult(name=exp.name, sha=exp.sha, files=files, outs=outs)


def _md5(info: HashInfo | None) -> str | None:
    return None if info is None else info.md5


# -- branch ------------------------------------------------------------------


def branch(git: Git, name: str, branch_name: str | None = None) -> tuple[str, ExpRef]:
    """Create a git branch at the experiment's commit; (branch name, experiment)."""
    exp = require_experiment(git, name)
    branch_name = branch_name or f"{exp.name}-branch"
    if git.get_ref(f"refs/heads/{branch_name}") is not None:
        raise ExperimentError(
            f"Git branch '{branch_name}' already exists", hint="choose another branch name"
        )
    git.create_branch(branch_name, exp.sha)
    return branch_name, exp


def branch_message(branch_name: str, exp_name: str) -> str:
    """What ``exp branch`` prints, as DVC does."""
    return (
        f"Git branch '{branch_name}' has been created from experiment '{exp_name}'.\n"
        "To switch to the new branch run:\n\n"
        f"\tgit checkout {branch_name}"
    )


# -- selecting experiments by baseline --------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which experiments a command acts on, as DVC's ``-A``/``--rev``/``-n`` say."""

    all_commits: bool = False
    revs: tuple[str, ...] = ()
    num: int = 1


def selected_baselines(git: Git, selection: Selection) -> set[str] | None:
    """Baseline shas the selection names; None means every baseline (``-A``)."""
    if selection.all_commits:
        return None
    out: set[str] = set()
    for rev in selection.revs or ("HEAD",):
        if rev == "HEAD" and git.head_sha() is None:
            continue
        try:
            sha = git.resolve(rev)
        except GitError:
            raise ExperimentError(
                f"unknown revision '{rev}'", hint="use a branch, a tag or a commit sha"
            ) from None
        # A negative -n means the whole first-parent history, as with DVC and git log.
        out.update(git.log(sha, selection.num if selection.num >= 0 else 1 << 62))
    return out


def select_experiments(exps: Iterable[ExpRef], baselines: set[str] | None) -> list[ExpRef]:
    """The experiments whose baseline is in ``baselines`` (all when None)."""
    return [e for e in exps if baselines is None or e.baseline in baselines]


# -- list --------------------------------------------------------------------


def group_by_baseline(exps: Iterable[ExpRef], head: str | None) -> dict[str, list[ExpRef]]:
    """Experiments per baseline: HEAD's first, then by sha; names sorted in each."""
    groups: dict[str, list[ExpRef]] = {}
    for exp in sorted(exps, key=lambda e: (e.baseline != head, e.baseline, e.name)):
        groups.setdefault(exp.baseline, []).append(exp)
    return groups


def describe(
    baselines: Iterable[str],
    head: str | None,
    head_branch: str | None,
    tags: Mapping[str, str],
    branches: Mapping[str, str],
) -> dict[str, str]:
    """A name per baseline as DVC gives it: HEAD's branch, else a tag, else a
    branch, else the short sha. ``tags``/``branches`` map names to shas."""
    by_tag: dict[str, str] = {}
    for tag, sha in sorted(tags.items()):
        by_tag.setdefault(sha, tag)
    by_branch: dict[str, str] = {}
    for name, sha in sorted(branches.items()):
        by_branch.setdefault(sha, name)
    names = {}
    for sha in baselines:
        if sha == head and head_branch:
            names[sha] = head_branch
        else:
            names[sha] = by_tag.get(sha) or by_branch.get(sha) or sha[:7]
    return names


def render_list(
    groups: Mapping[str, list[ExpRef]],
    names: Mapping[str, str],
    mode: str = "full",
    *,
    with_sha: bool = True,
) -> list[str]:
    """Lines of ``exp list``: ``mode`` is ``full`` (baseline then tab-indented
    ``sha [name]``), ``names`` or ``shas``."""
    lines: list[str] = []
    for baseline, exps in groups.items():
        if mode == "full":
            lines.append(f"{names.get(baseline, baseline[:7])}:")
        for exp in exps:
            if mode == "names":
                lines.append(exp.name)
            elif mode == "shas":
                lines.append(exp.sha)
            elif with_sha:
                lines.append(f"\t{exp.sha[:7]} [{exp.name}]")
            else:
                lines.append(f"\t{exp.name}")
    return lines


def list_lines(
    git: Git, selection: Selection, mode: str = "full", remote: str | None = None
) -> list[str]:
    """``exp list``: local experiments, or those of the git ``remote`` when given."""
    if remote is not None and mode == "shas":
        raise ExperimentError("--sha-only is not supported with a git remote")
    exps = remote_experiments(git, remote) if remote is not None else list_experiments(git)
    chosen = select_experiments(exps, selected_baselines(git, selection))
    head = git.head_sha()
    groups = group_by_baseline(chosen, head)
    names = describe(groups, head, git.head_branch(), git.list_tags(), git.list_branches())
    return render_list(groups, names, mode, with_sha=remote is None)


def list_json(git: Git, selection: Selection, remote: str | None = None) -> list[dict[str, object]]:
    """``exp list --json``: per baseline (HEAD's first), its name and experiments."""
    exps = remote_experiments(git, remote) if remote is not None else list_experiments(git)
    chosen = select_experiments(exps, selected_baselines(git, selection))
    head = git.head_sha()
    groups = group_by_baseline(chosen, head)
    names = describe(groups, head, git.head_branch(), git.list_tags(), git.list_branches())
    return [
        {
            "baseline": baseline,
            "baseline_name": names.get(baseline, baseline[:7]),
            "experiments": [{"name": e.name, "rev": e.sha, "ref": e.ref} for e in group],
        }
        for baseline, group in groups.items()
    ]


def remote_experiments(git: Git, remote: str) -> list[ExpRef]:
    """The experiment refs of a git remote, with the remote's shas."""
    found = []
    for ref, sha in git.remote_refs(remote, EXPS_PREFIX).items():
        parsed = parse_exp_ref(ref)
        if parsed is not None:
            found.append(ExpRef(ref=ref, baseline=parsed[0], name=parsed[1], sha=sha))
    return found


# -- remove ------------------------------------------------------------------


def resolve_names(git: Git, names: Iterable[str]) -> list[ExpRef]:
    """Every name as an experiment; one error naming all unknown ones."""
    found: list[ExpRef] = []
    unknown: list[str] = []
    for name in names:
        exp = find_experiment(git, name)
        if exp is None:
            unknown.append(name)
        elif exp not in found:
            found.append(exp)
    if unknown:
        what = (
            "are not valid experiment names"
            if len(unknown) > 1
            else ("is not a valid experiment name")
        )
        known = [e.name for e in list_experiments(git)]
        close = [
            f"'{name}': {hint}" if len(unknown) > 1 else hint
            for name in unknown
            if (hint := did_you_mean(name, known))
        ]
        raise ExperimentError(
            f"'{'; '.join(unknown)}' {what}", hint="; ".join(close) or "see 'exq exp list --all'"
        )
    return found


def remove(git: Git, names: list[str], selection: Selection | None = None) -> list[ExpRef]:
    """Delete experiment refs named, or selected by baseline; the ones removed."""
    if bool(names) == (selection is not None):
        raise ExperimentError("either name experiments to remove, or use --all-commits or --rev")
    if names:
        targets = resolve_names(git, names)
    else:
        assert selection is not None
        targets = select_experiments(list_experiments(git), selected_baselines(git, selection))
    for exp in targets:
        git.delete_ref(exp.ref, expected_old=exp.sha)
    return targets


# -- gc ----------------------------------------------------------------------


@dataclass(frozen=True)
class GcScope:
    """What ``exp gc`` keeps: experiments of HEAD, plus branches, tags or all commits."""

    workspace: bool = False
    all_branches: bool = False
    all_tags: bool = False
    all_commits: bool = False
    queued: bool = False  # keep queued runs of kept baselines (DVC's meaning)

    def given(self) -> bool:
        return self.workspace or self.all_branches or self.all_tags or self.all_commits


@dataclass
class GcPlan:
    """The experiment refs and queued snapshot refs a gc will delete."""

    experiments: list[ExpRef] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not self.experiments and not self.queued


def gc_warning(scope: GcScope) -> str:
    """The warning shown before ``exp gc`` asks for confirmation (DVC's words)."""
    msg = "This will remove all experiments except those derived from the workspace"
    if scope.all_commits:
        msg += " and all git commits"
    elif scope.all_branches and scope.all_tags:
        msg += " and all git branches and tags"
    elif scope.all_branches:
        msg += " and all git branches"
    elif scope.all_tags:
        msg += " and all git tags"
    msg += " of the current repo."
    msg += " Run queued experiments will be " + ("preserved." if scope.queued else "removed.")
    return msg


def plan_gc(
    exps: Iterable[ExpRef], queued: Mapping[str, str | None], keep: set[str], keep_queued: bool
) -> GcPlan:
    """Experiments whose baseline is not kept; queued refs (ref -> baseline) unless
    ``keep_queued`` and their baseline is kept."""
    return GcPlan(
        experiments=[e for e in exps if e.baseline not in keep],
        queued=sorted(ref for ref, base in queued.items() if not keep_queued or base not in keep),
    )


def kept_baselines(git: Git, scope: GcScope) -> set[str]:
    """Commits whose experiments a gc keeps: HEAD, and branches/tags/all commits."""
    if not scope.given():
        raise ExperimentError(
            "either of -w/--workspace, -a/--all-branches, -T/--all-tags "
            "or -A/--all-commits needs to be set"
        )
    keep = {sha for sha in [git.head_sha()] if sha}
    if scope.all_commits:
        keep.update(git.all_commits())
    if scope.all_branches:
        keep.update(git.list_branches().values())
    if scope.all_tags:
        keep.update(git.list_tags().values())
    return keep


def gc_plan(git: Git, scope: GcScope) -> GcPlan:
    """What ``exp gc`` with this scope would delete."""
    keep = kept_baselines(git, scope)
    queued: dict[str, str | None] = {}
    for ref, sha in git.list_refs(QUEUE_PREFIX).items():
        parents = git.commit_info(sha).parents
        queued[ref] = parents[0] if parents else None
    return plan_gc(list_experiments(git), queued, keep, scope.queued)


def gc(git: Git, scope: GcScope, confirm: Callable[[GcPlan], bool] | None = None) -> GcPlan:
    """Delete what ``gc_plan`` lists, once ``confirm`` (if given) agrees; the plan."""
    plan = gc_plan(git, scope)
    if plan.empty():
        return plan
    if confirm is not None and not confirm(plan):
        raise ExperimentError("cancelled: no experiment was removed")
    for exp in plan.experiments:
        git.delete_ref(exp.ref, expected_old=exp.sha)
    # plan.queued is left to the caller: queued runs leave through the queue's
    # store, which keeps running ones and drops their rows with their refs.
    return plan
