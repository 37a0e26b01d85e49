"""The typer app of ``exq`` and its sub-apps, and how commands report errors.

Every command turns an ``ExqError`` into one line on stderr and a non-zero
exit; nothing here decides pipeline behaviour. Command modules register on
these apps; :mod:`exq.cli.main` imports them (``from exq.cli.main import
exp_app`` also still works, through that module's ``__getattr__``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from typer.core import TyperCommand, TyperOption

from exq import __version__
from exq.cli.messages import error_line
from exq.cli.terminal import be_verbose, report_error
from exq.cli.terminal import silence_stdout as silence_stdout  # the command modules' -q
from exq.engine.errors import ExqError

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="exq",
    help="Run DVC-format pipelines and many ML experiments on your own machines.",
    no_args_is_help=True,
    # --install-completion / --show-completion for bash, zsh and fish (typer's own)
    add_completion=True,
    pretty_exceptions_enable=False,
    # Plain help pages, as click draws them (and dvc's look): rich's panels cost
    # more imports than the rest of a help page. Sub-apps take this from the root.
    rich_markup_mode=None,
    # -h as well as --help; sub-commands inherit it from this context
    context_settings={"help_option_names": ["-h", "--help"]},
)
stage_app = typer.Typer(help="Add and list pipeline stages.", no_args_is_help=True)
app.add_typer(stage_app, name="stage")
exp_app = typer.Typer(help="Run, compare and manage experiments.", no_args_is_help=True)
app.add_typer(exp_app, name="exp")
metrics_app = typer.Typer(help="Show and compare metrics.", no_args_is_help=True)
app.add_typer(metrics_app, name="metrics")
params_app = typer.Typer(help="Compare params.", no_args_is_help=True)
app.add_typer(params_app, name="params")
plots_app = typer.Typer(help="Draw plots of revisions and experiments.", no_args_is_help=True)
app.add_typer(plots_app, name="plots")
remote_app = typer.Typer(help="Add, list and change data remotes.", no_args_is_help=True)
app.add_typer(remote_app, name="remote")


def _quiet(ctx: Any, param: Any, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        silence_stdout()


def _verbose(ctx: Any, param: Any, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        be_verbose()


class DvcFlagsCommand(TyperCommand):
    """A command that also takes DVC's ``-q``/``--quiet`` and ``-v``/``--verbose``,
    which every dvc command takes, unless it has a ``-q`` or ``-v`` of its own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        taken = {opt for param in self.params for opt in getattr(param, "opts", ())}
        if not taken & {"-q", "--quiet"}:
            self.params.append(_flag("-q", "--quiet", _quiet, "Print nothing on stdout."))
        if not taken & {"-v", "--verbose"}:
            help_text = "Debug logs on stderr; a traceback with an error."
            self.params.append(_flag("-v", "--verbose", _verbose, help_text))


def _flag(short: str, long: str, callback: Any, help_text: str) -> TyperOption:
    return TyperOption(
        param_decls=[short, long],
        is_flag=True,
        expose_value=False,
        callback=callback,
        help=help_text,
    )


def add_dvc_flags(typer_app: typer.Typer) -> None:
    """Give every command registered under ``typer_app`` DVC's -q and -v."""
    for command in typer_app.registered_commands:
        if command.cls in (None, TyperCommand):
            command.cls = DvcFlagsCommand
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            add_dvc_flags(group.typer_instance)


def fail(message: str, code: int = 1) -> None:
    typer.echo(error_line(message), err=True)
    raise typer.Exit(code)


def handle_errors(func: F) -> F:
    """Print user errors as one line and exit non-zero, without a traceback
    (:func:`exq.cli.terminal.report_error`, as the commands answered before typer)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ExqError, ExceptionGroup, OSError, KeyboardInterrupt) as exc:
            code = report_error(exc)
            if code is None:
                raise
            raise typer.Exit(code) from None

    return wrapper  # type: ignore[return-value]


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"exq {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=version_callback, is_eager=True, help="Show the version."
    ),
) -> None:
    """exq: pipelines, experiments and a queue, on DVC's file formats."""
