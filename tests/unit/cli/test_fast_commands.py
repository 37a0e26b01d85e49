"""The commands ``main`` answers before typer (``FAST_COMMANDS``) parse their
command line themselves: each flag they know must be a flag of the typer command
with the same spellings and meaning, and a line they do not know goes to typer."""

from __future__ import annotations

from typing import Any

import pytest
import typer.main

from exq.cli.main import COMMAND_MODULES, FAST_COMMANDS, fast_call


def typer_command(words: tuple[str, ...]) -> Any:
    """The click command of ``exq WORDS``, every command module registered."""
    import importlib

    from exq.cli.app import add_dvc_flags, app

    for module in COMMAND_MODULES:
        importlib.import_module(f"exq.cli.{module}")
    add_dvc_flags(app)
    command: Any = typer.main.get_command(app)
    for word in words:
        command = command.commands[word]
    return command


@pytest.mark.parametrize("words", list(FAST_COMMANDS), ids=" ".join)
def test_every_fast_flag_is_a_flag_of_the_typer_command(words: tuple[str, ...]) -> None:
    _, _, flags, takes_targets = FAST_COMMANDS[words]
    command = typer_command(words)
    options = {s: p for p in command.params if p.param_type_name == "option" for s in p.opts}
    for spelling, keyword in flags.items():
        assert spelling in options, spelling
        assert options[spelling].is_flag and options[spelling].name == keyword, spelling
        # every spelling of that option is known, so none of them goes another way
        assert set(options[spelling].opts) <= set(flags), spelling
    for spelling in ("-q", "--quiet", "-v", "--verbose"):
        assert options[spelling].is_flag, spelling
    arguments = [p.name for p in command.params if p.param_type_name == "argument"]
    assert arguments == (["targets"] if takes_targets else [])


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--cloud"],  # a flag the fast path leaves to typer
        ["status", "-r", "origin"],  # an option with a value
        ["status", "--help"],
        ["status", "--"],
        ["status", "-"],
        ["status", "--jsn"],  # typer words the error
        ["dag", "-qv"],  # combined short flags: click's to read
        ["metrics", "show", "--precision", "2"],
        ["queue", "status", "extra"],  # no targets
        ["queue", "status", "--watch"],
        ["exp", "show", "--sort-by", "acc"],
        ["exp", "show", "targets-are-not-taken"],
        ["stage", "add", "-n", "x", "cmd"],
        ["repro"],
        [],
    ],
)
def test_other_command_lines_go_to_typer(argv: list[str]) -> None:
    assert fast_call(argv) is None


def test_a_plain_line_becomes_the_call_typer_would_make() -> None:
    assert fast_call(["stage", "list", "--names-only", "-q", "prep", "--all"]) == (
        ("pipeline_show", "show_stage_list"),
        ["prep"],
        {"name_only": True, "every": True},
        {"-q"},
    )
    assert fast_call(["queue", "status", "--json", "-v"]) == (
        ("queue_status", "show_queue_status"),
        None,
        {"as_json": True},
        {"-v"},
    )
