"""An experiment's inputs: its baseline, its name, and the snapshot it starts from.

Shared by ``exp run`` and ``exp run --queue``; light on purpose (git and the
params editors only), since queueing must answer in about a tenth of a second.
"""

from __future__ import annotations

import hashlib

from exq.engine.errors import ExperimentError, GitError
from exq.engine.experiments.refs import exp_ref
from exq.engine.git import Git
from exq.engine.params.edit import EditPlan
from exq.engine.run.project import Project


def require_baseline(git: Git) -> str:
    """HEAD's commit; an experiment needs one to start from."""
    baseline = git.head_sha()
    if baseline is None:
        raise GitError("the repository has no commit yet", hint="commit your project first")
    return baseline


def auto_name(baseline: str, input_tree: str) -> str:
    """``exp-`` and five hex digits of a hash of the baseline and the input tree."""
    digest = hashlib.sha256(f"{baseline}:{input_tree}".encode()).hexdigest()
    return f"exp-{digest[:5]}"


def check_clash(git: Git, baseline: str, name: str, force: bool) -> None:
    """Refuse a name that an experiment of this baseline has, unless ``force``."""
    if not force and git.get_ref(exp_ref(baseline, name)) is not None:
        raise ExperimentError(
            f"experiment '{name}' already exists for baseline {baseline[:7]}",
            hint="choose another --name, or pass -f to replace it",
        )


def snapshot_inputs(project: Project, git: Git, baseline: str, plan: EditPlan, message: str) -> str:
    """A commit of the workspace with the planned -S edits applied; nothing on disk changes."""
    # Paths in the commit are relative to the repository, which may hold the project in a sub-folder.
    top = git.root.resolve()
    extra = {path.resolve().relative_to(top).as_posix(): data for path, data in plan.files.items()}
    return git.snapshot_workspace(message, parent=baseline, extra=extra)
