"""``exq exp run`` in the workspace (or ``--temp``): run the pipeline as an experiment.

Called by the typer command and, for a plain call, straight from ``main()``
before typer is imported (:func:`exq.cli.exp_queue.fast_exp_run`): so nothing
here imports typer or rich, and the engine is imported only when it runs.
"""

from __future__ import annotations

import os


def run_in_workspace(
    targets: list[str],
    set_params: list[str],
    name: str | None,
    *,
    temp: bool,
    force: bool,
    reset: bool,
    jobs: int,
) -> None:
    """Run the experiment and say what it made; raises what the run raised."""
    from exq.cli.signals import run_until_stopped
    from exq.engine.experiments.queue_snapshot import refuse_sweep
    from exq.engine.experiments.run import ExpRunOptions, run_experiment
    from exq.engine.run.project import open_project
    from exq.engine.run.runner import stdout_sink

    refuse_sweep(set_params)
    project = open_project()
    options = ExpRunOptions(
        targets=targets,
        set_params=set_params,
        name=name,
        temp=temp,
        force=force,
        stage_jobs=jobs or os.cpu_count() or 1,
        reset=reset,
    )
    prefixed = options.stage_jobs > 1
    result = run_until_stopped(lambda: run_experiment(project, options, stdout_sink(prefixed)))
    if result.repro is not None and result.repro.failed is not None:
        raise result.repro.failed
    print("")
    print(f"Reproduced experiment(s): {result.name}")
    if temp:
        print("To apply the results of an experiment to your workspace run:\n")
        print(f"\texq exp apply {result.name}")
    else:
        print("Experiment results have been applied to your workspace.")
