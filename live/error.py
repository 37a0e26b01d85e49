"""The exceptions of exq.live, under dvclive's names so ``except`` clauses keep working.

    DvcLiveError (ExqLiveError)          everything exq.live raises on purpose
    ├── InitializationError              dvclive.next_step() before init() / log()
    ├── ConfigMismatchError              a path that conflicts with DVCLIVE_PATH
    ├── InvalidDataTypeError (TypeError) a metric value that is no number
    │   └── InvalidMetricTypeError       (dvclive 0.2's name for it)
    ├── InvalidParameterTypeError (TypeError)  a param value YAML cannot hold
    ├── DataAlreadyLoggedError           a metric logged twice in one step (dvclive 0.3+)
    └── CheckpointError (RuntimeError)   the runner refused a checkpoint or went away

Standard library only: this module runs inside users' training code.
"""

from __future__ import annotations

import os


class DvcLiveError(Exception):
    """The family of every error exq.live raises on purpose."""


ExqLiveError = DvcLiveError


class InitializationError(DvcLiveError):
    """``next_step()`` of the module API before ``init()`` or ``log()``."""

    def __init__(self) -> None:
        super().__init__(
            "Initialization error - no call was made to `init()` or `log()` before `next_step()`"
        )


class ConfigMismatchError(DvcLiveError):
    """The logger's folder is not the one the runner asked for in ``DVCLIVE_PATH``."""

    def __init__(self, path: str, env_path: str) -> None:
        self.path = path
        self.env_path = env_path
        super().__init__(
            f"exq.live initialized in '{path}' conflicts with DVCLIVE_PATH='{env_path}' "
            "provided by the runner (the stage's live: section); drop the path argument"
        )


class InvalidDataTypeError(DvcLiveError, TypeError):
    """A metric value that is not a number."""

    def __init__(self, name: str, val: object) -> None:
        self.name = name
        self.val = val
        super().__init__(
            f"Data '{name}' has not supported type {val}: metric {name!r} is not a number"
        )


InvalidMetricTypeError = InvalidDataTypeError


class InvalidParameterTypeError(DvcLiveError, TypeError):
    """A param value that is not a string, number, bool, None, list or mapping."""


class DataAlreadyLoggedError(DvcLiveError):
    """The same metric logged twice in one step (``next_step``/``set_step`` between)."""

    def __init__(self, name: str, step: int) -> None:
        self.name = name
        self.val = step
        super().__init__(
            f"Data '{name}' has already being logged with step '{step}': "
            "call next_step() or set_step() between two values of a metric"
        )


class CheckpointError(DvcLiveError, RuntimeError):
    """The runner refused a checkpoint or went away during the handshake."""


def env_path_conflict(path: str | os.PathLike[str] | None, env_path: str | None) -> bool:
    """Whether an explicit ``path`` names another folder than ``DVCLIVE_PATH``."""
    if path is None or not env_path:
        return False
    return os.path.normpath(os.fspath(path)) != os.path.normpath(env_path)
