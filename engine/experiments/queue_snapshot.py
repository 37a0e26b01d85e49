"""``exp run --queue``: the git side of queueing experiments, nothing of the queue itself.

For each point of the ``-S`` grid (Hydra sweeps: ``-S lr=0.1,0.01 -S m=a,b``
is four points) this validates the edits against the params files and
snapshots the workspace with them applied into a commit on top of HEAD, whose
pipeline it then loads as the run will, so that what cannot run is refused
now rather than failing overnight. The snapshot is exactly what will run: the
edits are in it, and later changes to the workspace do not reach it. The caller writes the queue rows and points
``refs/exq/queue/<run id>`` at each snapshot (until then the commits are
unreferenced objects, harmless if anything fails).

Kept light on purpose: ``exp run --queue`` must answer in about 0.1 s, so this
imports git and the params editors, not the pipeline or the runner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from exq.engine.errors import ParamsError
from exq.engine.experiments.inputs import auto_name, check_clash, require_baseline, snapshot_inputs
from exq.engine.experiments.refs import check_exp_name, exp_ref
from exq.engine.git import Git
from exq.engine.params.edit import (
    EditPlan,
    ParamEdit,
    edit_params_text,
    expand_sweeps,
    parse_set_params,
    plan_changes,
)
from exq.engine.params.values import MAX_SWEEP_RUNS, calls_function
from exq.engine.run.project import Project

if TYPE_CHECKING:
    from exq.engine.spec.stage import Stage

SNAPSHOT_MESSAGE = "exq: queued experiment inputs"
STUDY_MESSAGE = "exq: study inputs"
# In the snapshot's message when the run may replace an experiment of the same
# name that it did not make: queued with -f, or named automatically (the name
# comes from the inputs, so that experiment had the same inputs).
REPLACE_TRAILER = "Exq-Replace: yes"


@dataclass(frozen=True)
class QueuePoint:
    """One experiment to queue, before any snapshot: its name (None: automatic) and edits."""

    name: str | None
    set_params: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class QueuedSnapshot:
    """One experiment ready to queue: the edits are already in ``snapshot``."""

    name: str
    baseline: str
    snapshot: str
    ref: str  # the experiment ref it will commit to
    set_params: list[str]  # as typed, for display: applied already


@dataclass(frozen=True)
class RandomSearch:
    """``--samples N [--seed S]``: N points drawn from the ``-S`` space."""

    samples: int
    seed: int


def search_of(samples: str | None, seed: str | None) -> RandomSearch | None:
    """``--samples``/``--seed`` as typed, checked: None without ``--samples``."""
    if samples is None:
        if seed is not None:
            raise ParamsError("--seed seeds a random search: add --samples N")
        return None
    if not samples.strip().isdigit() or int(samples) < 1:
        raise ParamsError(f"--samples {samples!r}: give a whole number of runs, 1 or more")
    if int(samples) > MAX_SWEEP_RUNS:
        raise ParamsError(f"--samples {samples!r}: at most {MAX_SWEEP_RUNS} runs at once")
    if seed is None:
        import random

        return RandomSearch(int(samples), random.SystemRandom().randrange(2**31))
    try:
        return RandomSearch(int(samples), int(seed))
    except ValueError:
        raise ParamsError(f"--seed {seed!r}: give a whole number") from None


def sweep_points(
    set_params: Sequence[str],
    name: str | None,
    *,
    search: RandomSearch | None = None,
    root: Path | None = None,
) -> list[QueuePoint]:
    """The grid of ``-S`` lists, or the points a random search draws; a sweep's
    points are named ``NAME-1``, ``NAME-2``, ...

    Without a name every point gets an automatic name at snapshot time.
    ``root`` is the project, whose ``conf/`` folder holds the params groups
    ``glob()`` picks from.
    """
    groups = None
    if root is not None and any(calls_function(text) for text in set_params):
        from exq.engine.params.hydra_sweeps import conf_groups

        groups = conf_groups(root)
    if search is not None:
        from exq.engine.params.hydra_sweeps import draw_samples

        grid = draw_samples(list(set_params), search.samples, search.seed, groups)
        return [
            QueuePoint(name=None if name is None else f"{name}-{index}", set_params=point)
            for index, point in enumerate(grid, start=1)
        ]
    grid = expand_sweeps(list(set_params), groups)
    if len(grid) == 1:
        return [QueuePoint(name=name, set_params=grid[0])]
    return [
        QueuePoint(name=None if name is None else f"{name}-{index}", set_params=point)
        for index, point in enumerate(grid, start=1)
    ]


def first_sweep(set_params: Sequence[str]) -> str | None:
    """The first ``-S`` text that is a sweep (several values), if any. Pure."""
    for text in set_params:
        if calls_function(text) or len(expand_sweeps([text])) > 1:
            return text
    return None


def refuse_sweep(set_params: Sequence[str]) -> None:
    """A sweep only makes sense queued: refuse it for a direct run."""
    text = first_sweep(set_params)
    if text is not None and "interval(" in text.partition("=")[2]:
        raise ParamsError(
            f"-S '{text}' is a distribution",
            hint="draw a random search from it with 'exq exp run --queue --samples N'",
        )
    if text is not None:
        raise ParamsError(
            f"-S '{text}' is a sweep of several values",
            hint="queue the sweep with 'exq exp run --queue', one run per combination",
        )


def prepare_queue(
    project: Project,
    git: Git,
    points: Sequence[QueuePoint],
    *,
    force: bool = False,
    targets: Sequence[str] = (),
) -> list[QueuedSnapshot]:
    """Validate every point, then snapshot each and load its pipeline as the run
    will (:func:`check_snapshot`); raises before the caller writes anything.

    A clash with an existing experiment of the same name (same baseline) is
    refused unless ``force``, as for ``exp run``.
    """
    baseline = require_baseline(git)
    plans = []
    for point in points:  # everything is checked before the first snapshot
        if point.name is not None:
            check_exp_name(point.name)
            check_clash(git, baseline, point.name, force)
        plans.append(plan_changes(project.root, parse_set_params(point.set_params)))
    snapshots = []
    for point, plan in zip(points, plans, strict=True):
        replace = force or point.name is None
        message = f"{SNAPSHOT_MESSAGE}\n\n{REPLACE_TRAILER}\n" if replace else SNAPSHOT_MESSAGE
        snapshot = snapshot_inputs(project, git, baseline, plan, message)
        check_snapshot(git, snapshot, git.prefix_of(project.root), targets)
        name = point.name or auto_name(baseline, git.tree_of(snapshot))
        snapshots.append(
            QueuedSnapshot(
                name=name,
                baseline=baseline,
                snapshot=snapshot,
                ref=exp_ref(baseline, name),
                set_params=list(point.set_params),
            )
        )
    return snapshots


def replaces_experiment(git: Git, snapshot: str) -> bool:
    """Whether the queued run may replace an experiment it did not make (see
    :data:`REPLACE_TRAILER`)."""
    return REPLACE_TRAILER in git.commit_info(snapshot).message.splitlines()


def check_snapshot(git: Git, snapshot: str, prefix: str, targets: Sequence[str]) -> list[Stage]:
    """Load the pipeline of commit ``snapshot`` as a run of it will (every
    ``dvc.yaml`` parsed, checked against the schema and templated, the graph
    built, the targets found) and raise the error the run would fail with; the
    stages the run will run.

    The pipeline code is imported here only: queueing stays quick to start.
    """
    from exq.engine.spec.gitsource import DvcfileFinder, GitSource
    from exq.engine.spec.graph import build_graph
    from exq.engine.spec.templating import load_dvcfile

    source = GitSource(git, snapshot, prefix)
    stages = []
    for dvcfile in DvcfileFinder(git).find(snapshot, prefix):
        stages.extend(load_dvcfile(source, dvcfile))
    return build_graph(stages).select(list(targets))


# -- studies ---------------------------------------------------------------------


def prepare_study(
    project: Project,
    git: Git,
    names: Sequence[str],
    probe: Sequence[str],
    *,
    force: bool = False,
    targets: Sequence[str] = (),
) -> tuple[str, str]:
    """Snapshot the workspace as a study's trials will start from it, with no
    edit applied; (baseline, snapshot). Raises before anything is referenced if
    a trial could not run: a name of ``names`` clashes (unless ``force``), the
    edits ``probe`` (one point of the space) do not apply to the params files,
    or the pipeline does not load.
    """
    baseline = require_baseline(git)
    for name in names:
        check_exp_name(name)
        check_clash(git, baseline, name, force)
    base = snapshot_inputs(project, git, baseline, EditPlan({}, []), STUDY_MESSAGE)
    prefix = git.prefix_of(project.root)
    edited_files(git, base, prefix, probe)
    check_snapshot(git, base, prefix, targets)
    return baseline, base


def trial_snapshot(
    git: Git, base: str, baseline: str, prefix: str, overrides: Sequence[str], *, replace: bool
) -> str:
    """The snapshot of one trial: the study's ``base`` snapshot with the trial's
    ``-S`` overrides applied, on top of ``baseline``. The workspace is not
    read: the user may have changed it since the study was queued."""
    files = edited_files(git, base, prefix, overrides)
    message = f"{SNAPSHOT_MESSAGE}\n\n{REPLACE_TRAILER}\n" if replace else SNAPSHOT_MESSAGE
    return git.commit_with_files(base, files, message, parent=baseline)


def edited_files(git: Git, commit: str, prefix: str, texts: Sequence[str]) -> dict[str, bytes]:
    """The params files of ``commit`` (a project in folder ``prefix``) with the
    ``-S`` ``texts`` applied: new bytes by path in the repository. Raises
    ``ParamsError`` as an edit of the workspace would."""
    by_file: dict[str, list[ParamEdit]] = {}
    for edit in parse_set_params(texts):
        by_file.setdefault(edit.file, []).append(edit)
    files = {}
    for file, edits in by_file.items():
        path = f"{prefix.strip('/')}/{file}".lstrip("/")
        raw = git.read_blob(commit, path)
        if raw is None:
            raise ParamsError(f"{file}: params file not found")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParamsError(f"{file}: not UTF-8 text ({exc.reason})") from exc
        files[path] = edit_params_text(text, file, edits)[0].encode("utf-8")
    return files
