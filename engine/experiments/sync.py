"""``exp push`` and ``exp pull``: exchanging experiment refs with a git remote.

The remote is a configured git remote name, a URL or a path (a bare repository
on disk works). Pushing a ref sends the experiment commit and whatever of its
history (the baseline) the remote lacks. Both directions first classify every
ref (new, up to date, fast-forward, diverged) and refuse, changing nothing, if
any has diverged, unless forced. Cached outputs are not exchanged: exq has no
the DVC remote's side is :mod:`exq.engine.experiments.sync_cache`.

Pull fetches into a private staging namespace, decides with the objects at
hand, then moves the local refs by compare-and-set, so a refused pull leaves
every local ref as it was.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from exq.engine.errors import ExperimentError
from exq.engine.experiments.manage import (
    Selection,
    humanize_join,
    remote_experiments,
    resolve_names,
    select_experiments,
    selected_baselines,
)
from exq.engine.experiments.refs import EXPS_PREFIX, ExpRef, list_experiments
from exq.engine.git import Git

STAGING_PREFIX = "refs/exq/pull/"


class SyncStatus(enum.Enum):
    """How the destination ref relates to the source ref."""

    NEW = "new"
    UP_TO_DATE = "up to date"
    FAST_FORWARD = "fast-forward"
    DIVERGED = "diverged"


def sync_status(src: str, dst: str | None, dst_in_src_history: bool) -> SyncStatus:
    """Classify one ref update from ``src`` (sha) onto ``dst`` (sha or None)."""
    if dst is None:
        return SyncStatus.NEW
    if dst == src:
        return SyncStatus.UP_TO_DATE
    return SyncStatus.FAST_FORWARD if dst_in_src_history else SyncStatus.DIVERGED


@dataclass
class SyncResult:
    """Names moved (``done``; by force too) and already equal (``up_to_date``)."""

    remote: str
    done: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    shas: list[str] = field(default_factory=list)  # commits of every experiment selected


def push_messages(result: SyncResult) -> list[str]:
    """What ``exp push`` prints (DVC's sentences)."""
    lines = []
    if result.up_to_date:
        verb = "are" if len(result.up_to_date) > 1 else "is"
        lines.append(
            f"Experiment {humanize_join(result.up_to_date)} {verb} up to date "
            f"on Git remote '{result.remote}'."
        )
    if result.done:
        lines.append(
            f"Pushed experiment {humanize_join(result.done)} to Git remote '{result.remote}'."
        )
    return lines or ["No experiments to push."]


def pull_messages(result: SyncResult) -> list[str]:
    """What ``exp pull`` prints."""
    lines = []
    if result.up_to_date:
        verb = "are" if len(result.up_to_date) > 1 else "is"
        lines.append(f"Experiment {humanize_join(result.up_to_date)} {verb} already up to date.")
    if result.done:
        lines.append(
            f"Pulled experiment {humanize_join(result.done)} from Git remote '{result.remote}'."
        )
    return lines or ["No experiments to pull."]


def _contains(git: Git, newer: str, older: str | None) -> bool:
    """True when ``older`` is in ``newer``'s history (an unknown commit is not)."""
    return older is not None and git.has_commit(older) and git.is_ancestor(older, newer)


def _refuse_diverged(exps: list[ExpRef], where: str, force: bool) -> None:
    if exps and not force:
        names = humanize_join(f"'{e.name}'" for e in exps)
        raise ExperimentError(
            f"local experiment {names} has diverged from the experiment of the same name "
            f"in '{where}'",
            hint="re-run with --force to replace it",
        )


def push(
    git: Git, remote: str, names: list[str], selection: Selection, *, force: bool = False
) -> SyncResult:
    """Push experiment refs (named, else selected by baseline) to ``remote``."""
    if names:
        exps = resolve_names(git, names)
    else:
        exps = select_experiments(list_experiments(git), selected_baselines(git, selection))
    theirs = git.remote_refs(remote, EXPS_PREFIX) if exps else {}
    status = {
        e.ref: sync_status(e.sha, theirs.get(e.ref), _contains(git, e.sha, theirs.get(e.ref)))
        for e in exps
    }
    diverged = [e for e in exps if status[e.ref] is SyncStatus.DIVERGED]
    _refuse_diverged(diverged, remote, force)
    todo = [e for e in exps if status[e.ref] is not SyncStatus.UP_TO_DATE]
    refspecs = [f"{'+' if e in diverged else ''}{e.ref}:{e.ref}" for e in todo]
    git.push_refs(remote, refspecs)
    return SyncResult(
        remote=remote,
        done=[e.name for e in todo],
        up_to_date=[e.name for e in exps if status[e.ref] is SyncStatus.UP_TO_DATE],
        shas=[e.sha for e in exps],
    )


def pull(
    git: Git, remote: str, names: list[str], selection: Selection, *, force: bool = False
) -> SyncResult:
    """Fetch experiment refs (named, else selected by baseline) from ``remote``."""
    theirs = remote_experiments(git, remote)
    if names:
        exps = resolve_remote_names(theirs, names, remote, git.head_sha())
    else:
        exps = select_experiments(theirs, selected_baselines(git, selection))
    ours = {e.ref: git.get_ref(e.ref) for e in exps}
    result = SyncResult(remote=remote, up_to_date=[e.name for e in exps if ours[e.ref] == e.sha])
    result.shas = [e.sha for e in exps if ours[e.ref] == e.sha]
    todo = [e for e in exps if ours[e.ref] != e.sha]
    if not todo:
        return result
    staging = f"{STAGING_PREFIX}{uuid.uuid4().hex}/"
    diverged: list[ExpRef] = []
    try:
        git.fetch_refs(remote, [f"+{e.ref}:{staging}{e.ref[5:]}" for e in todo], force=True)
        fetched = git.list_refs(staging)
        # The remote may have moved since it was listed: go by what was fetched.
        todo = [
            ExpRef(e.ref, e.baseline, e.name, fetched[f"{staging}{e.ref[5:]}"])
            for e in todo
            if f"{staging}{e.ref[5:]}" in fetched
        ]
        diverged = [
            e
            for e in todo
            if sync_status(e.sha, ours[e.ref], _contains(git, e.sha, ours[e.ref]))
            is SyncStatus.DIVERGED
        ]
        _refuse_diverged(diverged, remote, force)
        for e in todo:
            git.set_ref(
                e.ref,
                e.sha,
                expected_old=ours[e.ref],
                message=f"exq: pulled experiment {e.name} from {remote}",
            )
    finally:
        for ref in git.list_refs(staging):
            git.delete_ref(ref)
    result.done = [e.name for e in todo]
    result.shas += [e.sha for e in todo]
    return result


def resolve_remote_names(
    theirs: Iterable[ExpRef], names: list[str], remote: str, head: str | None
) -> list[ExpRef]:
    """The remote experiments the names give; one of HEAD's baseline wins a tie."""
    pool = list(theirs)
    found: list[ExpRef] = []
    unknown: list[str] = []
    for name in names:
        matches = [e for e in pool if name in (e.name, e.ref)]
        if len(matches) > 1:
            here = [e for e in matches if e.baseline == head]
            if len(here) != 1:
                refs = ", ".join(e.ref for e in matches)
                raise ExperimentError(
                    f"experiment name '{name}' is ambiguous in '{remote}': {refs}",
                    hint="name the full ref",
                )
            matches = here
        if not matches:
            unknown.append(name)
        elif matches[0] not in found:
            found.append(matches[0])
    if unknown:
        raise ExperimentError(f"experiment '{'; '.join(unknown)}' does not exist in '{remote}'")
    return found
