"""``exq exp run --queue``: queue experiments, fast; and plain ``exp run`` calls.

Used twice: by the typer command in ``exp_run_cmd`` and, to answer in about
0.1 s, straight from ``main()`` before typer and rich are imported
(:func:`fast_exp_run`). So this module imports neither, and the queue service,
whose :func:`exq.daemon.service.enqueue` does the queueing (it works when no
daemon runs), only to queue. The same parse of ``exp run``'s arguments hands a
plain run in the workspace to
:func:`exq.cli.exp_run_workspace.run_in_workspace`, as the typer command does,
without importing the queue.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from exq.cli.terminal import reporting_errors

if TYPE_CHECKING:
    from exq.daemon.service import EnqueueRequest

# What a run in the workspace takes of exp run's options (the other fields of
# EnqueueRequest are the queue's).
WORKSPACE_FIELDS = {"targets", "set_params", "name", "force", "stage_jobs"}


@dataclass
class QueueCall:
    """A plain ``exp run`` call: what to run or queue, and how to say it."""

    # The options given, as EnqueueRequest's fields: the queue service, which
    # defines that class, is imported only for a call that queues.
    fields: dict[str, Any] = field(default_factory=dict)
    as_json: bool = False  # --json: what was queued as JSON on stdout
    queue: bool = False  # --queue; else a run in the workspace
    temp: bool = False  # --temp: a run in the workspace, in a temporary worktree
    reset: bool = False  # --reset: a run in the workspace, checkpoints from scratch

    @property
    def request(self) -> EnqueueRequest:
        from exq.daemon.service import EnqueueRequest

        return EnqueueRequest(**self.fields)


def warn(message: str) -> None:
    print(f"WARNING: {message}", file=sys.stderr)


def print_queued(queued: Sequence[tuple[int, str]], *, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps([{"id": run_id, "name": name} for run_id, name in queued], indent=2))
        return
    for run_id, name in queued:
        print(f"Queued experiment '{name}' (run {run_id}) for future execution.")


def queue_and_print(args: EnqueueRequest, *, as_json: bool = False) -> None:
    """Queue what ``args`` ask for (runs, or a study) and say what was queued:
    ``[{"id", "name"}]`` for runs and ``{"study", "trials", "metric",
    "direction", "sampler", "seed"}`` for a study with ``as_json``."""
    from exq.daemon.service import enqueue, queue_study

    # --prune on a grid or random sweep (no --trials): its own points, carried by a study.
    fixed = args.prune is not None and args.trials is None and args.sampler is None
    if args.optimize is None or fixed:
        print_queued(enqueue(args, warn=warn), as_json=as_json)
        return
    study = queue_study(args, warn=warn)
    spec = study.spec
    direction = "maximize" if spec["maximize"] else "minimize"
    if as_json:
        shown = {
            "study": study.name,
            "trials": study.budget,
            "metric": f"{spec['file']}:{spec['key']}",
            "direction": direction,
            "sampler": spec["sampler"],
            "seed": spec["seed"],
        }
        print(json.dumps(shown, indent=2))
        return
    print(
        f"Queued study '{study.name}': {study.budget} trials to {direction}"
        f" {spec['file']}:{spec['key']} ({spec['sampler']} sampler, seed {spec['seed']});"
        " the daemon queues each trial as a slot frees."
    )
    print(f"Follow it with 'exq sweep status {study.name}'.")


def fast_exp_run(argv: Sequence[str]) -> int | None:
    """Handle ``exp run ARGS``: queue (``--queue``) or run in the workspace; None
    to leave it to typer.

    Only the plain forms are parsed here; anything else (``--help``, an option
    this parser does not know, ``--run-all``, options that do not go together)
    goes to the typer command, which gives the same result and the usual messages.
    """
    call = parse_run_args(argv)
    if call is None:
        return None
    if call.queue:
        if call.temp or call.reset:
            return None
        return reporting_errors(lambda: queue_and_print(call.request, as_json=call.as_json))
    if call.as_json or not call.fields.keys() <= WORKSPACE_FIELDS:
        return None  # options of queued runs without --queue: typer words the error
    from exq.cli.exp_run_workspace import run_in_workspace

    args = call.fields
    return reporting_errors(
        lambda: run_in_workspace(
            args.get("targets", []),
            args.get("set_params", []),
            args.get("name"),
            temp=call.temp,
            force=args.get("force", False),
            reset=call.reset,
            jobs=args.get("stage_jobs") or 0,
        )
    )


VALUE_OPTIONS = {
    "-S": "set_params",
    "--set-param": "set_params",
    "-n": "name",
    "--name": "name",
    "-j": "stage_jobs",
    "--jobs": "stage_jobs",
    "--executor": "executor",
    "--cpus": "cpus",
    "--gpus": "gpus",
    "--mem": "mem",
    "--priority": "priority",
    "--after": "after",
    "--timeout": "timeout",
    "--retries": "retries",
    "--retry-delay": "retry_delay",
    "--samples": "samples",
    "--seed": "seed",
    "--optimize": "optimize",
    "--trials": "trials",
    "--sampler": "sampler",
    "--prune": "prune",
}
FLAGS = {
    "-f": "force",
    "--force": "force",
    "--queue": "queue",
    "--maximize": "maximize",
    "--minimize": "minimize",
    "--json": "as_json",
    "--temp": "temp",
    "--reset": "reset",
}


def parse_queue_args(argv: Sequence[str]) -> QueueCall | None:
    """The ``exp run`` arguments as a :class:`QueueCall`, or None if not a plain
    ``--queue`` call. Pure."""
    call = parse_run_args(argv)
    return call if call is not None and call.queue and not (call.temp or call.reset) else None


def parse_run_args(argv: Sequence[str]) -> QueueCall | None:
    """The ``exp run`` arguments as a :class:`QueueCall`, or None if this parser
    leaves them to typer (an option it does not know, a value typer must word). Pure."""
    call = QueueCall()
    args = call.fields
    rest = list(argv)
    while rest:
        word = rest.pop(0)
        if word == "--":
            args.setdefault("targets", []).extend(rest)
            break
        if not word.startswith("-") or word == "-":
            args.setdefault("targets", []).append(word)
            continue
        option, value = _split(word)
        if option in FLAGS and value is None:
            flag = FLAGS[option]
            call.queue |= flag == "queue"
            call.temp |= flag == "temp"
            call.reset |= flag == "reset"
            call.as_json |= flag == "as_json"
            if flag in ("force", "maximize", "minimize"):
                args[flag] = True
            continue
        if option not in VALUE_OPTIONS:
            return None
        if value is None:
            if not rest:
                return None
            value = rest.pop(0)
        if not _store(args, VALUE_OPTIONS[option], value):
            return None
    return call


def _split(word: str) -> tuple[str, str | None]:
    if word.startswith("--"):
        option, eq, value = word.partition("=")
        return option, value if eq else None
    if len(word) > 2:  # -Svalue
        return word[:2], word[2:]
    return word, None


def _store(args: dict[str, Any], key: str, value: str) -> bool:
    if key in ("set_params", "after"):
        args.setdefault(key, []).append(value)
    elif key in (
        "name",
        "executor",
        "cpus",
        "gpus",
        "mem",
        "priority",
        "timeout",
        "retries",
        "retry_delay",
        "samples",
        "seed",
        "optimize",
        "trials",
        "sampler",
        "prune",
    ):
        args[key] = value  # checked by enqueue, which words the error
    else:
        if not value.isdigit():
            return False  # let typer word the error
        args["stage_jobs"] = int(value) or None
    return True
