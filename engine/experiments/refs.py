"""Experiment refs: ``refs/exps/<baseline[:2]>/<baseline[2:]>/<name>``, and
resolving what a user types (an experiment name, a branch, a tag, a sha).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from exq.engine.errors import ExperimentError, GitError, did_you_mean
from exq.engine.git import Git, check_ref_component

EXPS_PREFIX = "refs/exps/"
_HEX40 = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class ExpRef:
    """One experiment: its ref, baseline commit, name and commit."""

    ref: str
    baseline: str
    name: str
    sha: str


def exp_ref(baseline: str, name: str) -> str:
    return f"{EXPS_PREFIX}{baseline[:2]}/{baseline[2:]}/{name}"


def parse_exp_ref(ref: str) -> tuple[str, str] | None:
    """(baseline sha, name) of an experiment ref, None for any other ref under refs/exps."""
    if not ref.startswith(EXPS_PREFIX):
        return None
    parts = ref[len(EXPS_PREFIX) :].split("/")
    if len(parts) != 3 or len(parts[0]) != 2 or len(parts[1]) != 38:
        return None
    baseline = parts[0] + parts[1]
    if not _HEX40.fullmatch(baseline):
        return None
    return baseline, parts[2]


# A ref is a file named after the experiment, and git writes "<name>.lock" beside
# it: a file name holds 255 bytes on common file systems.
MAX_NAME_BYTES = 255 - len(".lock")


def check_exp_name(name: str) -> None:
    """Refuse names git cannot hold in one ref component (and DVC's reserved ones)."""
    if not name or not check_ref_component(name) or name.startswith("-"):
        raise ExperimentError(
            f"invalid experiment name '{name}'", hint="it must be a valid git ref name without '/'"
        )
    if len(name.encode()) > MAX_NAME_BYTES:
        raise ExperimentError(
            f"experiment name '{name[:40]}...' is too long ({len(name.encode())} bytes)",
            hint=f"git stores a name of at most {MAX_NAME_BYTES} bytes",
        )


def expected_tip(git: Git, ref: str, *, own: str | None, replace: bool) -> str | None:
    """What a run's first move of experiment ``ref`` must find there: nothing, or
    the run's own chain (at or after its commit ``own``), or, when it was asked to
    ``replace`` the experiment (``-f``), whatever is there now. Raises when the
    ref holds an experiment this run did not make: it is never overwritten."""
    tip = git.get_ref(ref)
    if tip is None or replace:
        return tip
    if own is not None and git.is_ancestor(own, tip):
        return tip
    name = ref.rsplit("/", 1)[-1]
    raise ExperimentError(
        f"experiment '{name}' already exists ({ref}) and this run did not make it:"
        " it is not replaced",
        hint="queue the run again with -f to replace it, or with another -n",
    )


def list_experiments(git: Git, baseline: str | None = None) -> list[ExpRef]:
    """Every experiment (of one baseline, when given), in ref order."""
    prefix = exp_ref(baseline, "") if baseline else EXPS_PREFIX
    found = []
    for ref, sha in git.list_refs(prefix).items():
        parsed = parse_exp_ref(ref)
        if parsed is not None:
            found.append(ExpRef(ref=ref, baseline=parsed[0], name=parsed[1], sha=sha))
    return found


def find_experiment(git: Git, name: str) -> ExpRef | None:
    """The experiment called ``name``, or a full ``refs/exps/...`` ref.

    One of the current baseline wins; otherwise the name must be unique
    across baselines, and an ambiguous one is an error listing the refs.
    """
    if name.startswith(EXPS_PREFIX):
        sha = git.get_ref(name)
        parsed = parse_exp_ref(name)
        if sha is None or parsed is None:
            return None
        return ExpRef(ref=name, baseline=parsed[0], name=parsed[1], sha=sha)
    matches = [exp for exp in list_experiments(git) if exp.name == name]
    if len(matches) > 1:
        head = git.head_sha()
        here = [exp for exp in matches if exp.baseline == head]
        if len(here) == 1:
            return here[0]
        refs = ", ".join(exp.ref for exp in matches)
        raise ExperimentError(
            f"experiment name '{name}' is ambiguous: {refs}", hint="name the full ref"
        )
    return matches[0] if matches else None


def resolve_rev(git: Git, rev: str) -> str:
    """The commit sha for an experiment name, branch, tag, sha or git revision."""
    exp = find_experiment(git, rev) if "~" not in rev and "^" not in rev else None
    if exp is not None:
        return exp.sha
    try:
        return git.resolve(rev)
    except GitError:
        known = [*(e.name for e in list_experiments(git)), *git.list_branches(), *git.list_tags()]
        raise ExperimentError(
            f"unknown revision or experiment '{rev}'",
            hint=did_you_mean(rev, known)
            or "use an experiment name, a branch, a tag or a commit sha",
        ) from None
