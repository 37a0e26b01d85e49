"""The ``exq`` command line: a thin typer app over the engine.

The app and its sub-apps live in :mod:`exq.cli.app`; this module is the
console-script entry point. It imports typer only when needed: ``exq
--version`` prints the version before anything else is imported, a help
page comes from the pages :mod:`exq.cli.help_render` stores, and ``exq exp
run --queue`` must answer in about 0.1 s, so :func:`main` hands a plain ``exp
run`` call (queued or not) to :func:`exq.cli.exp_queue.fast_exp_run` before typer, rich and
the command modules are imported (anything it does not recognise goes the
usual way). Names of :mod:`exq.cli.app` (``app``, ``exp_app``, ``fail``,
``handle_errors``, ...) can still be imported from here.
"""

from __future__ import annotations

import os
import sys
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
    module = (_ROUTES.get(pair) if pair else None) or _ROUTES.get(words[0])
    return (module,) if module in COMMAND_MODULES else COMMAND_MODULES


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
    if argv[:2] == ["exp", "run"]:
        from exq.cli.exp_queue import fast_exp_run

        code = fast_exp_run(argv[2:])
        if code is not None:
            sys.exit(code)

    # Import the command modules for their registrations on ``app``: only the
    # one that holds the command asked for, since each pulls in its own engine.
    import importlib

    from exq.cli.app import EXIT_INTERRUPTED, add_dvc_flags, app

    for module in modules_for(argv):
        importlib.import_module(f"exq.cli.{module}")
    add_dvc_flags(app)

    import typer

    from exq.cli.messages import error_line

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
