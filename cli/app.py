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

from exq import __version__
from exq.cli.messages import error_line
from exq.engine.errors import ExqError, user_error_of

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

# Exit statuses: 1 for user errors, 130 for Ctrl-C (as shells report SIGINT).
EXIT_INTERRUPTED = 130


def fail(message: str, code: int = 1) -> None:
    typer.echo(error_line(message), err=True)
    raise typer.Exit(code)


def handle_errors(func: F) -> F:
    """Print user errors as one line and exit non-zero, without a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ExqError as exc:
            fail(str(exc), exc.exit_code)
        except (ExceptionGroup, OSError) as exc:  # a task group's errors, a full disk
            error = user_error_of(exc)
            if error is None:
                raise
            fail(str(error), error.exit_code)
        except KeyboardInterrupt:
            typer.echo("Interrupted.", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None

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
