"""``ChainCommitter``: the experiment side of checkpoints (a ``CheckpointHook``).

``repro`` saves a checkpoint stage's outs and writes its lock entry at each
signal, then calls ``checkpoint``: this commits the workspace (or worktree)
with the previous checkpoint as parent and moves the experiment ref to the new
commit with a compare-and-set, so the ref exists from the first checkpoint on
and a concurrent change of the ref is refused, never overwritten. ``finish``
makes the last commit of a successful run; ``interrupted`` puts the last
checkpoint's outs back after Ctrl-C or a failure.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio

from exq.engine.data.cache import remove_out
from exq.engine.errors import ObjectsVanished
from exq.engine.experiments.chains import (
    Marker,
    chain_message,
    is_logger_report,
    write_marker,
)
from exq.engine.git import ANY, Git
from exq.engine.run.callbacks import CheckpointCallback, CheckpointEvent
from exq.engine.run.project import Project
from exq.engine.run.workspace import StageIO
from exq.engine.spec.graph import repo_path
from exq.engine.spec.loading import load_pipeline, lock_name
from exq.engine.spec.lockfile import LockEntry, parse_lock
from exq.engine.spec.stage import Stage
from exq.engine.writes import atomic_write_bytes

# Tries of a checkpoint commit that a concurrent gc deleted before its ref held it.
_COMMIT_ATTEMPTS = 3


class ChainCommitter:
    """Commits one run's checkpoints onto its experiment's chain.

    ``project`` is where the run happens (the workspace, or a worktree whose
    refs are the main repository's); ``parent`` is the commit the chain
    continues from (None: a new chain on the baseline). ``marker``: keep
    ``.dvc/tmp/exq/checkpoint.json`` up to date (workspace runs only).
    """

    def __init__(
        self,
        project: Project,
        *,
        ref: str,
        name: str,
        baseline: str,
        parent: str | None = None,
        marker: bool = False,
        on_checkpoint: CheckpointCallback | None = None,
        state_db: Path | None = None,
        expected: Any = ANY,  # a sha, None (no ref) or ANY,
    ) -> None:
        self.project = project
        self.ref, self.name, self.baseline = ref, name, baseline
        self.tip = parent
        self.marker = marker
        self.on_checkpoint = on_checkpoint
        self.state_db = state_db
        self.count = 0
        # What the ref's compare-and-set expects: given by the caller (the daemon:
        # absent, or this run's own commit), else wherever the ref is now.
        if expected is ANY:
            expected = Git.open(project.root).get_ref(ref)
        self.expected: str | None = expected

    # -- the hook -------------------------------------------------------------

    async def checkpoint(self, stage: Stage, step: int | None) -> None:
        """Commit the workspace as the next checkpoint and move the ref."""
        sha = await anyio.to_thread.run_sync(self._commit_checkpoint, step)
        self.count += 1
        if self.on_checkpoint is not None:
            await self.on_checkpoint(CheckpointEvent(sha, self.ref, self.name, self.count, step))

    async def interrupted(self, stage: Stage) -> str | None:
        """Put the stage's outs of the last checkpoint back (nothing before the first);
        the line that says so."""
        if self.tip is None:
            return None
        await anyio.to_thread.run_sync(self._restore, stage, self.tip)
        kept = f"Checkpoint experiment '{self.name}' is kept at {self.tip[:7]}"
        # in the workspace, the next exp run resumes it (the daemon resumes its own runs)
        return kept + ("; 'exq exp run' resumes it" if self.marker else "")

    # -- commits ----------------------------------------------------------------

    def _commit_checkpoint(self, step: int | None) -> str:
        message = chain_message(self.name, self.ref, step=step)
        parent = self.tip or self.baseline
        for attempt in range(1, _COMMIT_ATTEMPTS + 1):
            git = Git.open(self.project.root)
            sha = git.snapshot_workspace(message, parent=parent)
            try:
                self._move_ref(git, sha, f"exq: checkpoint {self.name}")
            except ObjectsVanished as exc:
                # A concurrent gc deleted the new commit before the ref held it:
                # make it again (its parent is under the ref, so it stays).
                if exc.sha != sha or attempt == _COMMIT_ATTEMPTS:
                    raise
                continue
            self.tip = sha
            return sha
        raise AssertionError("unreachable")

    def _move_ref(self, git: Git, sha: str, message: str) -> None:
        git.set_ref(self.ref, sha, expected_old=self.expected, message=message)
        self.expected = sha
        if self.marker:
            write_marker(self.project.root, Marker(sha=sha, ref=self.ref, baseline=self.baseline))

    def finish(self) -> str:
        """The run succeeded: commit what changed since the last checkpoint; the tip.

        Without any chain (the script never signalled, nothing resumed) this
        is a one-commit chain on the baseline, as DVC 2's last checkpoint was:
        the next ``exp run`` resumes it from its checkpoint outs.
        """
        git = Git.open(self.project.root)
        if self.tip is None:
            sha = git.snapshot_workspace(
                chain_message(self.name, self.ref, final=True), parent=self.baseline
            )
            self._move_ref(git, sha, f"exq: experiment {self.name}")
            self.tip = sha
            return sha
        sha = git.snapshot_workspace(
            chain_message(self.name, self.ref, final=True), parent=self.tip
        )
        prefix = git.prefix_of(self.project.root)
        stages = [
            stage for stage in load_pipeline(self.project.root).stages if stage.has_checkpoints
        ]
        if _only_reports_changed(git, self.tip, sha, prefix, stages):
            # Nothing new since the last checkpoint but the report's "finished"
            # stamp: not worth a commit. The workspace gets the last checkpoint's
            # lock and outs back, so that it is that checkpoint exactly.
            for path in git.changed_paths(self.tip, sha):
                blob = git.read_blob(self.tip, path)
                if blob is not None and path.rsplit("/", 1)[-1] == "dvc.lock":
                    atomic_write_bytes(git.root / path, blob)
            for stage in stages:
                self._restore(stage, self.tip)
            sha = self.tip
        if sha != self.expected:
            self._move_ref(git, sha, f"exq: experiment {self.name}")
        elif self.marker:
            write_marker(self.project.root, Marker(sha=sha, ref=self.ref, baseline=self.baseline))
        self.tip = sha
        return sha

    # -- restoring ----------------------------------------------------------------

    def _restore(self, stage: Stage, sha: str) -> None:
        """The stage's outs as commit ``sha`` recorded them: cached ones from the
        cache, the others (in git) from the commit's tree."""
        git = Git.open(self.project.root)
        prefix = git.prefix_of(self.project.root)
        entry = _lock_entry(git, sha, prefix, stage)
        if entry is None:
            return
        with StageIO(self.project, state_db=self.state_db) as io:
            for out in stage.outs:
                recorded = entry.out(out.path)
                info = recorded.to_hash() if recorded else None
                rel = repo_path(stage, out.path)
                if info is None:
                    continue
                if not out.cache:
                    _restore_from_git(git, sha, _join(prefix, rel), self.project.root / rel)
                elif io.cache.exists(info, io.state):
                    io.cache.checkout(self.project.root / rel, info, io.state)
            io.state.flush()
        for rel in _live_files(stage):
            # the logger's summary and report are no outputs: git keeps them
            if git.read_blob(sha, _join(prefix, rel)) is not None:
                _restore_from_git(git, sha, _join(prefix, rel), self.project.root / rel)


def _live_files(stage: Stage) -> list[str]:
    """Repo paths of the live section's summary and report, where the stage has them."""
    live = stage.live
    if live is None:
        return []
    wanted = [live.summary_path] if live.summary else []
    wanted += [live.html_path] if live.html else []
    return [repo_path(stage, path) for path in wanted]


def _join(prefix: str, rel: str) -> str:
    return f"{prefix}/{rel}" if prefix else rel


def _only_reports_changed(git: Git, old: str, new: str, prefix: str, stages: list[Stage]) -> bool:
    """True when commits ``old`` and ``new`` differ in nothing but the live reports
    (``<live>_dvc_plots/index.html``, ``<dir>/report.html``: rewritten with a new
    time when the logger ends; no outputs, so git keeps them) of the checkpoint
    stages, locks read the same."""
    if git.tree_of(old) == git.tree_of(new):
        return True
    report_paths = {
        _join(prefix, repo_path(stage, stage.live.html_path))
        for stage in stages
        if stage.live is not None and stage.live.html
    }
    locks = {_join(prefix, lock_name(stage.dvcfile)) for stage in stages}
    for path in git.changed_paths(old, new):
        if path in report_paths or is_logger_report(path):
            continue
        if path in locks and _same_lock(git, old, new, path):
            continue
        return False
    return True


def _same_lock(git: Git, old: str, new: str, path: str) -> bool:
    def entries(sha: str) -> dict[str, LockEntry]:
        raw = git.read_blob(sha, path)
        return parse_lock(raw.decode("utf-8", "replace"), path) if raw else {}

    return entries(old) == entries(new)


def _lock_entry(git: Git, sha: str, prefix: str, stage: Stage) -> LockEntry | None:
    raw = git.read_blob(sha, _join(prefix, lock_name(stage.dvcfile)))
    if raw is None:
        return None
    return parse_lock(raw.decode("utf-8", "replace"), lock_name(stage.dvcfile)).get(stage.name)


def _restore_from_git(git: Git, sha: str, git_path: str, dest: Path) -> None:
    """Make ``dest`` (a file or a folder) hold what commit ``sha`` has at ``git_path``."""
    data = git.read_blob(sha, git_path)
    if data is not None:
        if os.path.isdir(dest) and not os.path.islink(dest):
            remove_out(dest)
        atomic_write_bytes(dest, data)
        return
    wanted = {path[len(git_path) + 1 :]: path for path in git.list_files(sha, git_path)}
    if not wanted:
        return
    if os.path.lexists(dest) and not os.path.isdir(dest):
        remove_out(dest)
    for folder, _, names in os.walk(dest):
        for name in names:
            rel = Path(folder, name).relative_to(dest).as_posix()
            if rel not in wanted:
                os.unlink(Path(folder, name))
    for rel, path in wanted.items():
        blob = git.read_blob(sha, path)
        if blob is not None:
            atomic_write_bytes(dest / rel, blob)
