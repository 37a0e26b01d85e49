"""Checkpoint runs in worktrees, as the daemon drives them: progress reports, stop, resume."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from exq.engine.experiments.refs import exp_ref
from exq.engine.experiments.run import SnapshotRun, exp_env, resume_run, run_snapshot
from exq.engine.git import Git
from exq.engine.run.callbacks import CheckpointEvent, RunCallbacks
from exq.engine.run.project import init_project, open_project
from exq.engine.run.runner import OutputSink
from tests.support import chain, git, step_of, write_training_project

pytestmark = pytest.mark.anyio


@pytest.fixture
def sink(tmp_path: Path):
    with open(tmp_path / "run.log", "wb") as stream:
        yield OutputSink(stream=stream)


@pytest.fixture
def baseline(git_repo: Path) -> str:
    init_project(git_repo)
    return write_training_project(git_repo)


def snapshot_run(
    baseline: str, name: str, events: list[CheckpointEvent], **env: str
) -> SnapshotRun:
    async def report(event: CheckpointEvent) -> None:
        events.append(event)

    return SnapshotRun(
        snapshot=baseline,
        baseline=baseline,
        name=name,
        env={**exp_env(name, baseline), **env},
        callbacks=RunCallbacks(on_checkpoint=report),
    )


def loss_steps_at(root: Path, sha: str) -> list[int]:
    lines = git(root, "show", f"{sha}:logs/loss.tsv").splitlines()[1:]
    return [int(line.split("\t")[1]) for line in lines]


async def test_each_checkpoint_is_reported_with_its_commit(
    git_repo: Path, baseline: str, sink: OutputSink
) -> None:
    project = open_project(git_repo)
    events: list[CheckpointEvent] = []
    folder = git_repo / ".dvc" / "tmp" / "exq" / "worktrees" / "w1"
    result = await run_snapshot(project, snapshot_run(baseline, "ck", events), folder, sink)
    assert result.repro is not None and result.repro.failed is None
    commits = chain(git_repo, result.sha or "", baseline)
    assert [event.sha for event in events] == [sha for sha, _ in reversed(commits)]
    assert [event.count for event in events] == [1, 2, 3, 4, 5]
    assert [event.step for event in events] == [0, 1, 2, 3, 4]
    assert {event.ref for event in events} == {exp_ref(baseline, "ck")}
    assert Git.open(git_repo).get_ref(exp_ref(baseline, "ck")) == result.sha == events[-1].sha
    assert not folder.exists()


async def test_a_stopped_run_resumes_from_its_last_checkpoint(
    git_repo: Path, baseline: str, sink: OutputSink
) -> None:
    project = open_project(git_repo)
    events: list[CheckpointEvent] = []
    folder = git_repo / ".dvc" / "tmp" / "exq" / "worktrees" / "w2"
    run = snapshot_run(baseline, "ck", events, PAUSE_AT="1")
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_snapshot, project, run, folder, sink)
            with anyio.fail_after(60):
                while not (folder / "paused").exists():
                    await anyio.sleep(0.02)
            scope.cancel()  # the daemon stopping
    ref = exp_ref(baseline, "ck")
    tip = Git.open(git_repo).get_ref(ref)
    assert tip == events[-1].sha and [event.step for event in events] == [0, 1]
    assert not folder.exists()

    resumed: list[CheckpointEvent] = []
    again = resume_run(project, tip, snapshot_run(baseline, "ck", resumed))
    assert (again.baseline, again.name, again.resume) == (baseline, "ck", True)
    result = await run_snapshot(project, again, folder, sink)
    assert result.repro is not None and result.repro.failed is None
    assert [event.step for event in resumed] == [2, 3, 4]
    commits = chain(git_repo, result.sha or "", baseline)
    assert [step_of(git_repo, sha) for sha, _ in commits] == [4, 3, 2, 1, 0]
    assert commits[2][1] == tip  # the first resumed checkpoint continues the chain
    assert loss_steps_at(git_repo, commits[0][0]) == [0, 1, 2, 3, 4]
    assert Git.open(git_repo).get_ref(ref) == result.sha
