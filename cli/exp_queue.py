"""``exq exp run --queue``: queue experiments, fast.

Used twice: by the typer command in ``exp_run_cmd`` and, to answer in about
0.1 s, straight from ``main()`` before typer and rich are imported
(:func:`fast_enqueue`). So this module imports neither at load time, and
nothing heavy until it is needed.

The queue rows go through the store's sync facade (plain ``sqlite3``), not
through the daemon: queueing must work when no daemon runs. The daemon is
only rung afterwards, if it answers.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Ring the daemon briefly: a hung daemon must not hold up an enqueue.
WAKE_TIMEOUT = 1.0


@dataclass
class EnqueueArgs:
    """What ``exp run --queue`` was asked."""

    targets: list[str] = field(default_factory=list)
    set_params: list[str] = field(default_factory=list)
    name: str | None = None
    force: bool = False
    stage_jobs: int | None = None
    executor: str | None = None  # None: the daemon's
    cpus: float | None = None
    gpus: float | None = None


def enqueue(args: EnqueueArgs) -> list[tuple[int, str]]:
    """Snapshot, write the rows (refs/exq/queue/<id> set in the same transaction),
    ring the daemon; (run id, name) of each queued run. Raises ``ExqError``."""
    from exq.daemon.config import DaemonConfig, check_executor
    from exq.daemon.store import NewRun, SyncStore, queue_ref
    from exq.engine.experiments.queue_snapshot import prepare_queue, sweep_points
    from exq.engine.git import Git
    from exq.engine.run.project import open_project

    if args.executor is not None:
        check_executor(args.executor)
    project = open_project()
    git = Git.open(project.root)
    snapshots = prepare_queue(
        project, git, sweep_points(args.set_params, args.name), force=args.force
    )
    runs = [
        NewRun(
            repo=str(project.root),
            baseline=s.baseline,
            snapshot=s.snapshot,
            name=s.name,
            params=s.set_params,
            targets=list(args.targets),
            stage_jobs=args.stage_jobs,
            executor=args.executor,
            cpus=args.cpus,
            gpus=args.gpus,
        )
        for s in snapshots
    ]
    pending = iter(snapshots)

    def point_ref(run_id: int) -> None:
        # Called in order, inside the insert transaction: no row without its ref.
        # The transaction holds the database's write lock, so a lock file of this
        # ref is a killed enqueue's, and so is the ref itself if it exists (the
        # id of a rolled-back insert comes again): both are replaced.
        git.remove_ref_lock(queue_ref(run_id))
        git.set_ref(queue_ref(run_id), next(pending).snapshot, message="exq: queued")

    config = DaemonConfig.from_env()
    with SyncStore(config.db_path) as store:
        ids = store.enqueue_many(runs, on_id=point_ref)
    _ring(config.socket_path)
    return [(run_id, run.name) for run_id, run in zip(ids, runs)]


def _ring(socket_path: Path) -> None:
    """Wake the daemon if it runs; no socket file, no daemon (and no client import)."""
    if not socket_path.exists():
        return
    from exq.daemon.client import Client

    Client(socket_path, timeout=WAKE_TIMEOUT).wake_if_running()


def print_queued(queued: Sequence[tuple[int, str]]) -> None:
    for run_id, name in queued:
        print(f"Queued experiment '{name}' (run {run_id}) for future execution.")


def fast_enqueue(argv: Sequence[str]) -> int | None:
    """Handle ``exp run ARGS`` when ARGS hold ``--queue``; None to leave it to typer.

    Only the plain forms are parsed here; anything else (``--help``, an option
    this parser does not know, ``--run-all``) goes to the typer command, which
    gives the same result and the usual messages.
    """
    args = parse_queue_args(argv)
    if args is None:
        return None
    from exq.cli.messages import error_line
    from exq.engine.errors import ExqError

    try:
        print_queued(enqueue(args))
    except ExqError as exc:
        print(error_line(str(exc)), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    return 0


_VALUE_OPTIONS = {
    "-S": "set_params",
    "--set-param": "set_params",
    "-n": "name",
    "--name": "name",
    "-j": "stage_jobs",
    "--jobs": "stage_jobs",
    "--executor": "executor",
    "--cpus": "cpus",
    "--gpus": "gpus",
}
_FLAGS = {"-f": "force", "--force": "force", "--queue": "queue"}


def parse_queue_args(argv: Sequence[str]) -> EnqueueArgs | None:
    """The ``exp run`` arguments as an :class:`EnqueueArgs`, or None if not a plain
    ``--queue`` call. Pure."""
    args = EnqueueArgs()
    queue = False
    rest = list(argv)
    while rest:
        word = rest.pop(0)
        if word == "--":
            args.targets.extend(rest)
            break
        if not word.startswith("-") or word == "-":
            args.targets.append(word)
            continue
        option, value = _split(word)
        if option in _FLAGS and value is None:
            queue |= _FLAGS[option] == "queue"
            args.force |= _FLAGS[option] == "force"
            continue
        if option not in _VALUE_OPTIONS:
            return None
        if value is None:
            if not rest:
                return None
            value = rest.pop(0)
        if not _store(args, _VALUE_OPTIONS[option], value):
            return None
    return args if queue else None


def _split(word: str) -> tuple[str, str | None]:
    if word.startswith("--"):
        option, eq, value = word.partition("=")
        return option, value if eq else None
    if len(word) > 2:  # -Svalue
        return word[:2], word[2:]
    return word, None


def _store(args: EnqueueArgs, key: str, value: str) -> bool:
    if key == "set_params":
        args.set_params.append(value)
    elif key == "name":
        args.name = value
    elif key == "executor":
        args.executor = value
    elif key in ("cpus", "gpus"):
        amount = _amount(value)
        if amount is None:
            return False  # let typer word the error
        setattr(args, key, amount)
    else:
        if not value.isdigit():
            return False  # let typer word the error
        args.stage_jobs = int(value) or None
    return True


def _amount(value: str) -> float | None:
    """A resource amount: a number above zero."""
    try:
        amount = float(value)
    except ValueError:
        return None
    return amount if amount > 0 else None
