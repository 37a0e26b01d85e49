"""The fast ``exp run`` path (queued or in the workspace) parses its options itself
(before typer is imported): each one it knows must be an option of ``exp run`` with the same
spellings, the same arity and the same meaning."""

from __future__ import annotations

from typing import Any

import typer.main

import exq.cli.exp_run_cmd  # noqa: F401  (registers `exp run`)
from exq.cli.exp_queue import FLAGS, VALUE_OPTIONS
from exq.cli.main import app

# exp run's parameter -> the EnqueueRequest field the fast path fills.
MEANING = {
    "set_param": "set_params",
    "name": "name",
    "jobs": "stage_jobs",
    "executor": "executor",
    "cpus": "cpus",
    "gpus": "gpus",
    "mem": "mem",
    "priority": "priority",
    "after": "after",
    "timeout": "timeout",
    "retries": "retries",
    "retry_delay": "retry_delay",
    "samples": "samples",
    "seed": "seed",
    "optimize": "optimize",
    "maximize": "maximize",
    "minimize": "minimize",
    "trials": "trials",
    "sampler": "sampler",
    "prune": "prune",
    "force": "force",
    "queue": "queue",
    "as_json": "as_json",
    "temp": "temp",
    "reset": "reset",
}


def exp_run_options() -> dict[str, Any]:
    """Spelling -> click option of ``exp run`` (click as typer ships it)."""
    root: Any = typer.main.get_command(app)
    command = root.commands["exp"].commands["run"]
    return {
        spelling: param
        for param in command.params
        if param.param_type_name == "option"
        for spelling in param.opts
    }


def test_every_fast_option_is_an_exp_run_option_of_the_same_kind_and_meaning() -> None:
    options = exp_run_options()
    for spelling, field in {**VALUE_OPTIONS, **FLAGS}.items():
        assert spelling in options, spelling
        param = options[spelling]
        assert param.is_flag == (spelling in FLAGS), spelling
        assert param.name is not None and MEANING[param.name] == field, spelling


def test_the_fast_path_knows_every_spelling_of_the_options_it_handles() -> None:
    options = exp_run_options()
    known = {**VALUE_OPTIONS, **FLAGS}
    for spelling in known:
        for other in options[spelling].opts:
            assert other in known, f"{spelling} is handled but not {other}"
