"""The pure decisions behind exp apply/list/gc/push/pull, on plain data."""

from __future__ import annotations

import pytest

from exq.engine.errors import ExperimentError
from exq.engine.experiments.manage import (
    GcScope,
    describe,
    first_few,
    gc_warning,
    group_by_baseline,
    humanize_join,
    out_clashes,
    plan_gc,
    render_list,
)
from exq.engine.experiments.refs import ExpRef, exp_ref
from exq.engine.experiments.sync import (
    SyncResult,
    SyncStatus,
    pull_messages,
    push_messages,
    resolve_remote_names,
    sync_status,
)

B1, B2, B3 = "1" * 40, "2" * 40, "3" * 40


def exp(baseline: str, name: str, sha: str = "f" * 40) -> ExpRef:
    return ExpRef(ref=exp_ref(baseline, name), baseline=baseline, name=name, sha=sha)


@pytest.mark.parametrize(
    ("words", "text"),
    [([], ""), (["a"], "a"), (["a", "b"], "a and b"), (["a", "b", "c"], "a, b and c")],
)
def test_humanize_join(words: list[str], text: str) -> None:
    assert humanize_join(words) == text


def test_first_few() -> None:
    assert first_few(["a", "b"]) == "a, b"
    assert first_few(["a", "b", "c", "d", "e"]) == "a, b, c and 2 more"


@pytest.mark.parametrize(
    ("old", "new", "now", "clashes"),
    [
        ({"m": "1"}, {"m": "2"}, {"m": "1"}, []),  # the baseline's: fine
        ({"m": "1"}, {"m": "2"}, {"m": "2"}, []),  # already the experiment's
        ({"m": "1"}, {"m": "2"}, {"m": None}, []),  # deleted: nothing to lose
        ({"m": "1"}, {"m": "2"}, {"m": "3"}, ["m"]),  # edited by hand
        ({"m": "1"}, {"m": "1"}, {"m": "3"}, ["m"]),  # unchanged out, but edited
        ({}, {"m": "2"}, {"m": "3"}, ["m"]),  # new out over a file of the user's
        ({"m": "1", "n": "1"}, {"m": "2", "n": "2"}, {"n": "9", "m": "9"}, ["m", "n"]),
    ],
)
def test_out_clashes(
    old: dict[str, str], new: dict[str, str], now: dict[str, str | None], clashes: list[str]
) -> None:
    assert out_clashes(old, new, now) == clashes


def test_plan_gc_keeps_experiments_of_kept_baselines() -> None:
    exps = [exp(B1, "a"), exp(B2, "b"), exp(B3, "c")]
    plan = plan_gc(exps, {}, {B1, B3}, keep_queued=False)
    assert [e.name for e in plan.experiments] == ["b"]
    assert plan.queued == []


@pytest.mark.parametrize(
    ("keep_queued", "removed"),
    [
        (False, ["refs/exq/queue/1", "refs/exq/queue/2", "refs/exq/queue/3"]),
        (True, ["refs/exq/queue/2", "refs/exq/queue/3"]),
    ],
)
def test_plan_gc_queue(keep_queued: bool, removed: list[str]) -> None:
    queued = {"refs/exq/queue/1": B1, "refs/exq/queue/2": B2, "refs/exq/queue/3": None}
    plan = plan_gc([], queued, {B1}, keep_queued=keep_queued)
    assert plan.queued == removed
    assert not plan.empty()


@pytest.mark.parametrize(
    ("scope", "middle"),
    [
        (GcScope(workspace=True), "the workspace of"),
        (GcScope(all_branches=True), "the workspace and all git branches of"),
        (GcScope(all_tags=True), "the workspace and all git tags of"),
        (GcScope(all_branches=True, all_tags=True), "and all git branches and tags of"),
        (GcScope(all_commits=True, all_branches=True), "the workspace and all git commits of"),
    ],
)
def test_gc_warning(scope: GcScope, middle: str) -> None:
    text = gc_warning(scope)
    assert text.startswith("This will remove all experiments except those derived from ")
    assert middle in text
    assert text.endswith("Run queued experiments will be removed.")
    assert gc_warning(GcScope(workspace=True, queued=True)).endswith("will be preserved.")


def test_describe_prefers_heads_branch_then_tags_then_branches() -> None:
    names = describe(
        [B1, B2, B3, "4" * 40],
        head=B1,
        head_branch="main",
        tags={"v1": B1, "v2": B2},
        branches={"main": B1, "dev": B2, "old": B3},
    )
    assert names == {B1: "main", B2: "v2", B3: "old", "4" * 40: "4444444"}
    assert describe([B1], head=B1, head_branch=None, tags={}, branches={}) == {B1: "1111111"}


def test_group_and_render_list() -> None:
    exps = [exp(B2, "z", "a" * 40), exp(B1, "b", "b" * 40), exp(B1, "a", "c" * 40)]
    groups = group_by_baseline(exps, head=B2)
    assert list(groups) == [B2, B1]
    names = {B2: "main", B1: "1111111"}
    assert render_list(groups, names) == [
        "main:",
        "\taaaaaaa [z]",
        "1111111:",
        "\tccccccc [a]",
        "\tbbbbbbb [b]",
    ]
    assert render_list(groups, names, "names") == ["z", "a", "b"]
    assert render_list(groups, names, "shas") == ["a" * 40, "c" * 40, "b" * 40]
    assert render_list(groups, names, with_sha=False)[1] == "\tz"


@pytest.mark.parametrize(
    ("dst", "ancestor", "status"),
    [
        (None, False, SyncStatus.NEW),
        ("s", False, SyncStatus.UP_TO_DATE),
        ("o", True, SyncStatus.FAST_FORWARD),
        ("o", False, SyncStatus.DIVERGED),
    ],
)
def test_sync_status(dst: str | None, ancestor: bool, status: SyncStatus) -> None:
    assert sync_status("s", dst, ancestor) is status


def test_sync_messages() -> None:
    assert push_messages(SyncResult("origin")) == ["No experiments to push."]
    assert pull_messages(SyncResult("origin")) == ["No experiments to pull."]
    result = SyncResult("origin", done=["a", "b"], up_to_date=["c"])
    assert push_messages(result) == [
        "Experiment c is up to date on Git remote 'origin'.",
        "Pushed experiment a and b to Git remote 'origin'.",
    ]
    assert pull_messages(result)[1] == "Pulled experiment a and b from Git remote 'origin'."


def test_resolve_remote_names() -> None:
    theirs = [exp(B1, "a"), exp(B2, "a"), exp(B2, "b")]
    assert resolve_remote_names(theirs, ["b"], "origin", None) == [theirs[2]]
    assert resolve_remote_names(theirs, ["a"], "origin", B2) == [theirs[1]]
    assert resolve_remote_names(theirs, [theirs[0].ref], "origin", B2) == [theirs[0]]
    with pytest.raises(ExperimentError, match="ambiguous"):
        resolve_remote_names(theirs, ["a"], "origin", B3)
    with pytest.raises(ExperimentError, match="'x; y' does not exist in 'origin'"):
        resolve_remote_names(theirs, ["x", "b", "y"], "origin", None)
