"""The one family of errors a user can cause.

Every error that a user's input, files or repository state can cause is an
``ExqError``. Its message is one line that names the file, the key or the
stage; the CLI prints it without a traceback and exits with ``exit_code``.

    ExqError
    ├── ConfigError            .dvc/config, the daemon's config or an option is wrong
    ├── DvcFileError           dvc.yaml / dvc.lock / .dvc file cannot be read
    │   └── TemplateError      ${...}, vars, foreach or matrix cannot be resolved
    ├── ParamsError            a params file is unreadable, or -S is malformed
    ├── PipelineError          the stage graph is invalid (cycle, clash, escape)
    │   └── OutsideRepository  a path to write really lies outside (a symlink leads out)
    ├── StageNotFound          a target names no stage or file
    ├── StageFailed            a stage command exited non-zero or lost an out
    ├── CacheError             the cache is missing or corrupt for a path
    ├── GitError               the git repository is missing or in a bad state
    │   └── ObjectsVanished    objects exq just wrote are gone (a concurrent git gc --prune=now)
    ├── ExperimentError        an experiment name is invalid, clashes or is unknown
    │   └── MetricMissing      a study's run ended without the metric it optimizes
    │                          (exq.engine.experiments.study_spec)
    ├── PlotsError             a plots file is unreadable or a plots target is missing
    ├── RemoteError            a data remote is unknown, unreachable or refuses a transfer
    │                          (exq.engine.data.remote)
    │   (the daemon's, defined beside what raises them:)
    ├── StoreError             the queue database cannot be opened, read or written
    │                          (exq.daemon.store)
    ├── DaemonError            the daemon refused or could not answer; ``code`` says why
    │   │                      (exq.daemon.client; the CLI maps codes to exit statuses)
    │   └── DaemonNotRunning   no daemon answers on the socket
    ├── DaemonAlreadyRunning   another daemon holds the state folder's lock
    │                          (exq.daemon.main)
    ├── SocketInUse            another daemon answers on the socket path (exq.daemon.server)
    ├── ResourceError          a --gpus, --mem, --timeout, --after... value cannot be used,
    │                          or the machine has less (exq.daemon.resources)
    ├── RayError               the Ray cluster cannot be used (exq.daemon.executors.ray)
    │   └── RayUnreachable     it does not answer at its address (a run not sent waits)
    ├── PayloadTooBig          what a run needs is over Ray's 100 MiB for a job's files
    │                          (exq.daemon.executors.ray.remote)
    └── ShipmentError          a pack sent to or from a cluster arrived damaged

Two exceptions stay inside their module and never reach a user as they are:
``InterpolationError`` (re-raised as ``TemplateError``) and the daemon
protocol's ``ProtocolError`` (answered as an error reply with its code).
``exq.live`` has its own family (``DvcLiveError``, as dvclive's), since it
imports nothing of the rest of exq.

Library errors (yaml, OSError, pygit2, sqlite3) are translated once, where
they happen, with ``raise ... from exc``.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable


class ExqError(Exception):
    """An error the user can fix; ``str()`` is the one line to show."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """``did you mean 'train'?`` for the closest of ``choices`` to a mistyped ``word``
    (up to three, closest first); None when nothing is close."""
    import difflib  # only for a mistyped name: every command imports this module

    close = difflib.get_close_matches(word, sorted(set(choices)), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


class ConfigError(ExqError):
    """A configuration value or command-line option is invalid."""


class DvcFileError(ExqError):
    """A pipeline, lock or .dvc file cannot be read or has a bad shape."""


class TemplateError(DvcFileError):
    """Interpolation, vars, foreach or matrix could not be resolved.

    The message reads ``<dvc.yaml path>: <location>: <reason>``, for example
    ``dvc.yaml: stages.build@us.cmd: Could not find 'models.foobar'``.
    """

    def __init__(self, path: str, location: str, reason: str) -> None:
        where = f"{path}: {location}" if location else path
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.location = location
        self.reason = reason


class ParamsError(ExqError):
    """A params file cannot be read, or a -S edit is malformed."""


class PipelineError(ExqError):
    """The stage graph is invalid: a cycle, an out clash, a path escaping the repo."""


class OutsideRepository(PipelineError):
    """A path exq would write or delete resolves, through symlinks, outside the repository."""


class StageNotFound(ExqError):
    """A target names no known stage or dvc.yaml file."""


class StageFailed(ExqError):
    """A stage's command failed or did not produce its outs."""

    def __init__(self, stage: str, message: str, *, returncode: int | None = None) -> None:
        super().__init__(f"stage '{stage}': {message}")
        self.stage = stage
        self.returncode = returncode


class CacheError(ExqError):
    """A cache object is missing or does not match its hash."""


class GitError(ExqError):
    """The git repository is missing or in a state exq cannot work with."""


class ObjectsVanished(GitError):
    """A commit exq just made (or builds on) is gone: ``git gc --prune=now``
    deletes loose objects that concurrent writers have not yet put under a ref."""

    def __init__(self, sha: str, root: object) -> None:
        super().__init__(
            f"commit {sha[:7]} vanished from {root} while exq was using it",
            hint="was 'git gc --prune=now' running? It deletes what is being committed",
        )
        self.sha = sha


class ExperimentError(ExqError):
    """An experiment name is invalid, clashes, or cannot be found."""


class PlotsError(ExqError):
    """A plots file cannot be parsed, or a plots target names nothing to plot."""


# -- at the edges ------------------------------------------------------------

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def user_error_of(exc: BaseException) -> ExqError | None:
    """What to tell the user about ``exc``, or None for a bug of ours.

    Task groups wrap what failed in exception groups: the first ExqError among
    the exceptions grouped is the one to show; a full disk (``ENOSPC``,
    ``EDQUOT``) becomes one, naming the file being written. Called where errors
    leave exq (the CLI's commands, a daemon's run).
    """
    leaves = error_leaves(exc)
    for leaf in leaves:
        if isinstance(leaf, ExqError):
            return leaf
    for leaf in leaves:
        if isinstance(leaf, OSError) and leaf.errno in _DISK_FULL:
            where = f" writing {leaf.filename}" if leaf.filename else ""
            return ExqError(f"disk full{where}: {leaf.strerror}", hint="free some space and retry")
    return None


def describe_failure(exc: BaseException) -> str:
    """One line for a failure: the user's error, else the bug, named by its type."""
    error = user_error_of(exc)
    if error is not None:
        return str(error)
    leaf = error_leaves(exc)[0]
    return " ".join(f"internal error: {leaf!r}".split())


def error_leaves(exc: BaseException) -> list[BaseException]:
    """``exc``, or the exceptions it groups (depth first), never a group."""
    if not isinstance(exc, BaseExceptionGroup):
        return [exc]
    return [leaf for inner in exc.exceptions for leaf in error_leaves(inner)]
