"""What every command does at the terminal, with or without typer: print a
line, DVC's ``-q`` and ``-v``, and a user error as one line with its exit status.

Typer's commands (through :mod:`exq.cli.app`) and the commands :mod:`exq.cli.main`
answers before typer is imported both come here, so the two ways print the same
bytes and exit with the same status. Standard library only at import.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from exq.cli.messages import error_line

# Exit statuses: 1 for user errors, 130 for Ctrl-C (as shells report SIGINT).
EXIT_INTERRUPTED = 130

# Set by -v: debug logs on stderr, and a traceback under an error's one line.
VERBOSE_VAR = "EXQ_VERBOSE"


def echo(text: str, *, nl: bool = True) -> None:
    """``text`` on stdout, flushed at once (as typer's echo) so that it comes
    before whatever a later line on stderr says."""
    sys.stdout.write(f"{text}\n" if nl else text)
    sys.stdout.flush()


def silence_stdout() -> None:
    """As DVC's -q: nothing on standard output from here on, what commands this
    process starts print included; errors still reach stderr."""
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def be_verbose() -> None:
    """As DVC's -v: debug logs on stderr, and tracebacks above errors' lines."""
    import logging  # only with -v: no command needs it otherwise

    os.environ[VERBOSE_VAR] = "1"
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s: %(message)s")


def report_error(exc: BaseException) -> int | None:
    """Print ``exc`` as a user sees it and return the exit status; None when it
    is not the user's error (a bug), which must go on with its traceback.

    A user error (an ``ExqError``, or an ``OSError`` or a task group's errors
    that stand for one) is one line, under its traceback with -v; Ctrl-C is
    ``Interrupted.`` and status 130.
    """
    from exq.engine.errors import user_error_of

    if isinstance(exc, KeyboardInterrupt):
        print("Interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    error = user_error_of(exc)
    if error is None:
        return None
    if os.environ.get(VERBOSE_VAR):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    print(error_line(str(error)), file=sys.stderr)
    return error.exit_code


def reporting_errors(run: Callable[[], object]) -> int:
    """``run()``'s exit status: 0, or that of the user error it raised, printed
    by :func:`report_error`; a bug goes on with its traceback."""
    from exq.engine.errors import ExqError

    try:
        run()
    except (ExqError, ExceptionGroup, OSError, KeyboardInterrupt) as exc:
        code = report_error(exc)
        if code is None:
            raise
        return code
    return 0
