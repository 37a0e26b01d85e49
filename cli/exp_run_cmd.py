"""``exq exp run``: run the pipeline as an experiment."""

from __future__ import annotations

from typing import Any

import typer

from exq.cli.completion import complete_stages
from exq.cli.main import exp_app, fail, handle_errors


@exp_app.command("run")
@handle_errors
def exp_run(
    targets: list[str] = typer.Argument(
        None, help="Stages or dvc.yaml files (default: all).", autocompletion=complete_stages
    ),
    set_param: list[str] = typer.Option(
        [], "--set-param", "-S", help="[file:]key=value edit of a params file (repeatable)."
    ),
    name: str = typer.Option(None, "--name", "-n", help="Name of the experiment."),
    temp: bool = typer.Option(
        False, "--temp", help="Run in a temporary git worktree; leave the workspace as it is."
    ),
    force: bool = typer.Option(False, "--force", "-f", help="Replace an experiment of that name."),
    reset: bool = typer.Option(
        False,
        "--reset",
        help="Checkpoint stages start from scratch: remove their checkpoint outs.",
    ),
    jobs: int = typer.Option(
        0,
        "--jobs",
        "-j",
        help="Stages at once (default: cores); with --run-all, runs at once.",
    ),
    queue: bool = typer.Option(
        False,
        "--queue",
        help="Snapshot the workspace and queue the run for the daemon (sweeps: one run each).",
    ),
    run_all: bool = typer.Option(
        False,
        "--run-all",
        help="Start the daemon if needed and follow the queued runs to their end.",
    ),
    executor: str = typer.Option(
        None,
        "--executor",
        help="Where the queued run goes: local or ray (default: the daemon's).",
    ),
    # Taken as text and checked by the queue, so every bad value is one line.
    gpus: str = typer.Option(
        None, "--gpus", help="Whole GPUs the queued run gets to itself (CUDA_VISIBLE_DEVICES)."
    ),
    cpus: str = typer.Option(None, "--cpus", help="CPUs the queued run holds."),
    mem: str = typer.Option(None, "--mem", help="Memory the queued run holds (16G)."),
    priority: str = typer.Option(
        None, "--priority", help="Higher starts first (default 0); FIFO within a priority."
    ),
    after: list[str] = typer.Option(
        [], "--after", help="Start only once these runs (ids or names) succeeded."
    ),
    timeout: str = typer.Option(
        None, "--timeout", help="Stop the run after this long (90, 30m, 2h): it ends 'timeout'."
    ),
    retries: str = typer.Option(
        None, "--retries", help="Queue a failed run again, up to this many times."
    ),
    retry_delay: str = typer.Option(
        None, "--retry-delay", help="Wait before the first retry (default 1m), doubling."
    ),
    samples: str = typer.Option(
        None, "--samples", help="Random search: queue this many runs drawn from the -S space."
    ),
    seed: str = typer.Option(None, "--seed", help="Seed of the random search's or study's draws."),
    optimize: str = typer.Option(
        None,
        "--optimize",
        help="A study: Optuna searches the -S space for the best FILE:KEY (scores.json:auc).",
    ),
    maximize: bool = typer.Option(False, "--maximize", help="The study maximizes its metric."),
    minimize: bool = typer.Option(False, "--minimize", help="The study minimizes its metric."),
    trials: str = typer.Option(None, "--trials", help="Runs the study makes, one per trial."),
    sampler: str = typer.Option(
        None, "--sampler", help="How the study picks points: tpe (default), random, grid, cmaes."
    ),
    prune: str = typer.Option(
        None,
        "--prune",
        help="Stop runs early at their checkpoints by the --optimize metric: median, asha,"
        " hyperband (a grid or random sweep too).",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="With --queue: print the queued runs' ids and names as JSON."
    ),
) -> None:
    """Run the pipeline as an experiment and save it under refs/exps (no branch, no commit)."""
    if (queue or run_all) and reset:
        fail("--reset applies to a run in the workspace or --temp, not to queued runs", 2)
    placement = {
        "executor": executor,
        "cpus": cpus,
        "gpus": gpus,
        "mem": mem,
        "priority": priority,
        "after": list(after),
        "timeout": timeout,
        "retries": retries,
        "retry_delay": retry_delay,
        "samples": samples,
        "seed": seed,
        "optimize": optimize,
        "maximize": maximize or None,
        "minimize": minimize or None,
        "trials": trials,
        "sampler": sampler,
        "prune": prune,
    }
    if not queue and any(value not in (None, []) for value in placement.values()):
        fail(
            "--executor, --gpus, --cpus, --mem, --priority, --after, --timeout, --retries"
            " and --samples"
            " apply to queued runs, --optimize and --prune to a queued sweep: add --queue",
            2,
        )
    if as_json and (not queue or run_all):
        fail("--json prints what --queue queued: add --queue (and leave out --run-all)", 2)
    if queue or run_all:
        _queue_and_run_all(
            targets or [],
            set_param,
            name,
            force,
            jobs,
            queue=queue,
            run_all=run_all,
            placement=placement,
            as_json=as_json,
        )
        return
    from exq.cli.exp_run_workspace import run_in_workspace

    run_in_workspace(
        targets or [],
        set_param,
        name,
        temp=temp,
        force=force,
        reset=reset,
        jobs=jobs,
    )


def _queue_and_run_all(
    targets: list[str],
    set_params: list[str],
    name: str | None,
    force: bool,
    jobs: int,
    *,
    queue: bool,
    run_all: bool,
    placement: dict[str, Any],
    as_json: bool = False,
) -> None:
    """``--queue`` (with sweeps), then ``--run-all``; the fast path in ``main()``
    usually handles a plain ``--queue`` before typer is even imported."""
    from exq.cli.exp_queue import queue_and_print
    from exq.cli.queue_cmds import daemon_errors
    from exq.cli.queue_run import run_all_queued
    from exq.daemon.service import EnqueueRequest

    if queue:
        args = EnqueueRequest(
            targets=targets,
            set_params=set_params,
            name=name,
            force=force,
            stage_jobs=None if run_all else jobs or None,
            **{**placement, "maximize": bool(placement["maximize"])}
            | {"minimize": bool(placement["minimize"])},
        )
        queue_and_print(args, as_json=as_json)
    elif set_params or name:
        fail("-S and -n describe a new run: pass --queue to queue it before --run-all", 2)
    if run_all:
        daemon_errors(run_all_queued)(jobs or None)
