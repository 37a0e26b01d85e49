"""The ``exq`` command line: a thin typer app over the engine.

The app and its sub-apps live in :mod:`exq.cli.app`; this module is the
console-script entry point, and the one place that decides which way a
command line goes. Typer, click and rich alone take longer than the commands
a user types most may, so before them: ``exq --version`` prints the version, a
help page comes from the pages :mod:`exq.cli.help_render` stores, and the
plain command lines of ``status``, ``dag``, ``stage list``, ``metrics show``,
``queue status``, ``exp show`` (:data:`FAST_COMMANDS`) and ``exp run`` (queued or not,
:func:`exq.cli.exp_queue.fast_exp_run`) go straight to the function the typer
command calls. Anything else, or anything those do not recognise, goes through
typer (:func:`through_typer`). Names of :mod:`exq.cli.app` (``app``,
``exp_app``, ``fail``, ``handle_errors``, ...) can still be imported from here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

# Modules that register commands; a missing one is a packaging bug, not optional.
COMMAND_MODULES = (
    "pipeline_cmds",
    "exp_run_cmd",
    "exp_manage_cmds",
    "exp_show_cmds",
    "queue_cmds",
    "queue_order_cmds",
    "plots_cmds",
    "remote_cmds",
    "sweep_cmds",
    "shell_cmds",
)


# Which module registers a command: a top-level name, or (group, name).
_ROUTES: dict[str | tuple[str, str], str] = {
    **{
        name: "pipeline_cmds"
        for name in ("init", "repro", "status", "dag", "add", "checkout", "stage")
    },
    ("exp", "run"): "exp_run_cmd",
    ("exp", "show"): "exp_show_cmds",
    ("exp", "diff"): "exp_show_cmds",
    "exp": "exp_manage_cmds",
    "metrics": "exp_show_cmds",
    "params": "exp_show_cmds",
    ("queue", "show"): "queue_order_cmds",
    ("queue", "priority"): "queue_order_cmds",
    ("queue", "run"): "queue_order_cmds",
    "queue": "queue_cmds",
    "daemon": "queue_cmds",
    "plots": "plots_cmds",
    "sweep": "sweep_cmds",
    "completion": "shell_cmds",
    **{name: "remote_cmds" for name in ("remote", "push", "pull", "fetch")},
}


_GROUPS = {"exp", "stage", "queue", "metrics", "params", "plots", "remote", "sweep"}


def modules_for(argv: list[str]) -> tuple[str, ...]:
    """The command modules a command line needs; all of them for help or the unknown."""
    words = [arg for arg in argv if not arg.startswith("-")]
    if not words or any(arg in ("--help", "-h") for arg in argv):
        return COMMAND_MODULES
    if len(words) == 1 and words[0] in _GROUPS:
        return COMMAND_MODULES  # a group alone prints its help: list every command
    pair = (words[0], words[1]) if len(words) > 1 else None
    if pair and pair not in _ROUTES and words[0] in _GROUPS and not _is_command(pair):
        return COMMAND_MODULES  # a mistyped sub-command: suggest from all of the group's
    module = (_ROUTES.get(pair) if pair else None) or _ROUTES.get(words[0])
    return (module,) if module in COMMAND_MODULES else COMMAND_MODULES


def _is_command(pair: tuple[str, str]) -> bool:
    """Whether ``group name`` is a command: each has a stored help page."""
    from exq.cli.help_pages import PAGES

    return " ".join(pair) in PAGES


# The commands answered before typer, for a plain command line: module and
# function of the body the typer command calls, its flags (option -> keyword
# argument set to True) and whether it takes targets (the positional words).
# Anything else on the line (an option that takes a value, --help, --) goes to typer.
FAST_COMMANDS: dict[tuple[str, ...], tuple[str, str, dict[str, str], bool]] = {
    ("status",): ("pipeline_show", "show_status", {"--json": "as_json"}, True),
    ("dag",): (
        "pipeline_show",
        "show_dag",
        {"--json": "as_json", "--dot": "dot", "--mermaid": "mermaid"},
        True,
    ),
    ("stage", "list"): (
        "pipeline_show",
        "show_stage_list",
        {"--all": "every", "--json": "as_json", "--name-only": "name_only"}
        | {"--names-only": "name_only"},
        True,
    ),
    ("metrics", "show"): (
        "metrics_show",
        "show_metrics",
        {"--json": "as_json", "--md": "as_md"}
        | {"-a": "all_branches", "--all-branches": "all_branches"}
        | {"-T": "all_tags", "--all-tags": "all_tags"}
        | {"-A": "all_commits", "--all-commits": "all_commits"},
        True,
    ),
    ("queue", "status"): ("queue_status", "show_queue_status", {"--json": "as_json"}, False),
    ("exp", "show"): (
        "exp_show",
        "show_experiments",
        {"--json": "as_json", "--csv": "as_csv", "--md": "as_md"}
        | {"-a": "all_branches", "--all-branches": "all_branches"}
        | {"-T": "all_tags", "--all-tags": "all_tags"}
        | {"-A": "all_commits", "--all-commits": "all_commits"}
        | {"--only-changed": "only_changed", "--no-timestamp": "no_timestamp"}
        | {"--no-pager": "no_pager", "--param-deps": "param_deps"}
        | {"--hide-queued": "hide_queued", "--hide-failed": "hide_failed"},
        False,
    ),
}

# DVC's flags, which every command takes (exq.cli.app's DvcFlagsCommand).
_QUIET, _VERBOSE = ("-q", "--quiet"), ("-v", "--verbose")


def main() -> None:
    """Console-script entry point."""
    argv = sys.argv[1:]
    if argv[:1] == ["--version"]:  # the root's eager option, answered before any import
        from exq import __version__

        print(f"exq {__version__}")
        sys.exit(0)
    page = stored_help(argv)
    if page is not None:
        sys.stdout.write(page[0])
        sys.exit(page[1])
    code = fast_path(argv)
    if code is not None:
        sys.exit(code)
    through_typer(argv)


def fast_path(argv: list[str]) -> int | None:
    """The exit status of ``argv`` run before typer is imported; None (and
    nothing done) to leave it to typer."""
    if "_EXQ_COMPLETE" in os.environ:
        return None  # shell completion is typer's
    if argv[:2] == ["exp", "run"]:
        from exq.cli.exp_queue import fast_exp_run

        return fast_exp_run(argv[2:])
    call = fast_call(argv)
    if call is None:
        return None
    (module, name), targets, kwargs, flags = call
    import importlib

    from exq.cli.terminal import be_verbose, reporting_errors, silence_stdout

    if flags & set(_QUIET):  # as the flags' callbacks do, before the command's body
        silence_stdout()
    if flags & set(_VERBOSE):
        be_verbose()
    function: Callable[..., None] = getattr(importlib.import_module(f"exq.cli.{module}"), name)
    if targets is not None:
        return reporting_errors(lambda: function(targets, **kwargs))
    return reporting_errors(lambda: function(**kwargs))


def fast_call(
    argv: list[str],
) -> tuple[tuple[str, str], list[str] | None, dict[str, bool], set[str]] | None:
    """(module, function), targets (None for a command that takes none), keyword
    arguments and DVC flags of a :data:`FAST_COMMANDS` line; None for any other. Pure."""
    words = tuple(argv[:2]) if tuple(argv[:2]) in FAST_COMMANDS else tuple(argv[:1])
    if words not in FAST_COMMANDS:
        return None
    module, name, options, takes_targets = FAST_COMMANDS[words]
    targets: list[str] = []
    kwargs: dict[str, bool] = {}
    flags: set[str] = set()
    for word in argv[len(words) :]:
        if word in options:
            kwargs[options[word]] = True
        elif word in _QUIET or word in _VERBOSE:
            flags.add(word)
        elif word.startswith("-") or not takes_targets:
            return None  # typer words the error, or knows the option
        else:
            targets.append(word)
    return (module, name), targets if takes_targets else None, kwargs, flags


def through_typer(argv: list[str]) -> None:
    """Run ``argv`` through the typer app (which reads ``sys.argv``) and exit."""
    # Import the command modules for their registrations on ``app``: only the
    # one that holds the command asked for, since each pulls in its own engine.
    import importlib

    from exq.cli.app import add_dvc_flags, app

    for module in modules_for(argv):
        importlib.import_module(f"exq.cli.{module}")
    add_dvc_flags(app)

    import typer

    from exq.cli.messages import error_line
    from exq.cli.terminal import EXIT_INTERRUPTED

    usage_error, abort = _click_exception(), typer.Abort
    try:
        # Not standalone: a usage error comes back to us, to be shown as one
        # line like every other error instead of click's framed block.
        code = app(standalone_mode=False)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except usage_error as exc:
        message = exc.format_message()
        if type(exc).__name__ != "NoArgsIsHelpError":
            print(error_line(message), file=sys.stderr)
        else:  # a group without its command: its help, where --help prints it
            print(message)
        sys.exit(exc.exit_code)
    except abort:
        print("Aborted!", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def stored_help(argv: list[str]) -> tuple[str, int] | None:
    """The help page ``argv`` asks for and the exit status, from :mod:`exq.cli.help_pages`.

    Those are the pages typer prints at 80 columns or more (a test keeps them
    equal), without importing typer and click, which alone take longer than a
    help page may. None sends ``argv`` the usual way: a narrower terminal, a
    completion request, options before the help flag, a program not named exq.
    """
    if argv and argv[-1] in ("-h", "--help"):
        words, code = argv[:-1], 0
    elif len(argv) <= 1 and all(word in _GROUPS for word in argv):
        words, code = argv, 2  # a group named alone (or nothing): its help, exit 2
    else:
        return None
    if (
        any(word.startswith("-") for word in words)
        or "_EXQ_COMPLETE" in os.environ
        or os.path.basename(sys.argv[0]) != "exq"
        or _terminal_columns() < 80
    ):
        return None
    from exq.cli.help_pages import PAGES

    page = PAGES.get(" ".join(words))
    return None if page is None else (page, code)


def _terminal_columns() -> int:
    """The width click's help formatter reads, found as shutil.get_terminal_size does."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


def _click_exception() -> type[Any]:
    """click's ClickException: vendored by recent typer, plain click before."""
    try:
        from typer._click.exceptions import ClickException
    except ImportError:
        from click.exceptions import ClickException  # type: ignore[assignment]
    return ClickException


def __getattr__(name: str) -> Any:
    """``from exq.cli.main import exp_app`` and the like: the names of ``exq.cli.app``."""
    if name.startswith("__"):
        raise AttributeError(name)
    from exq.cli import app as app_module

    try:
        return getattr(app_module, name)
    except AttributeError:
        raise AttributeError(f"module 'exq.cli.main' has no attribute {name!r}") from None
