"""The CLI loads only the module of the command asked for; the table must be right."""

from __future__ import annotations

import subprocess
import sys

import pytest

from exq.cli.main import COMMAND_MODULES, modules_for

CASES = [
    (["repro", "-j", "2", "train"], ("pipeline_cmds",)),
    (["stage", "list", "--json"], ("pipeline_cmds",)),
    (["exp", "run", "-S", "a=1"], ("exp_run_cmd",)),
    (["exp", "show", "--json"], ("exp_show_cmds",)),
    (["exp", "apply", "exp-1"], ("exp_manage_cmds",)),
    (["metrics", "diff"], ("exp_show_cmds",)),
    (["queue", "status"], ("queue_cmds",)),
    (["daemon"], ("queue_cmds",)),
    (["exp"], COMMAND_MODULES),
    (["repro", "--help"], COMMAND_MODULES),
    ([], COMMAND_MODULES),
    (["no-such-command"], COMMAND_MODULES),
]


@pytest.mark.parametrize(("argv", "expected"), CASES)
def test_routes(argv: list[str], expected: tuple[str, ...]) -> None:
    assert modules_for(argv) == expected


COMMANDS = [
    "init",
    "repro",
    "status",
    "dag",
    "add",
    "checkout",
    "stage list",
    "stage add",
    "exp run",
    "exp show",
    "exp diff",
    "exp apply",
    "exp branch",
    "exp gc",
    "exp remove",
    "exp list",
    "exp push",
    "exp pull",
    "metrics show",
    "metrics diff",
    "params diff",
    "queue status",
    "queue start",
    "daemon",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_is_found_through_its_route(command: str) -> None:
    # A fresh interpreter: importing only the routed module must register the command.
    code = (
        "import importlib, sys, typer\n"
        "from exq.cli.main import modules_for\n"
        "from exq.cli.app import app\n"
        f"argv = {command.split()!r}\n"
        "for m in modules_for(argv + ['x']): importlib.import_module('exq.cli.' + m)\n"
        "group = typer.main.get_command(app)\n"
        "for word in argv:\n"
        "    group = group.commands[word] if hasattr(group, 'commands') else None\n"
        "    assert group is not None, word\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
