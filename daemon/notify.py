"""Telling the user what happened: a command of theirs at each run's end and when
the queue drains, and a desktop notification if asked.

The ``[notify]`` table of the config file::

    [notify]
    command = "curl -s -d \\"$EXQ_RUN_NAME: $EXQ_RUN_STATE\\" ntfy.sh/my-night"
    on = ["failed", "queue-drained"]   # events or end states; all when absent
    timeout = 30                       # seconds, then the command's group is killed
    desktop = true                     # notify-send, when it is installed

The command runs through ``sh -c`` in a session of its own, with
``EXQ_EVENT`` (``run-end``, ``queue-drained``), ``EXQ_RUN_ID``,
``EXQ_RUN_NAME``, ``EXQ_RUN_STATE``, ``EXQ_EXIT_CODE``,
``EXQ_EXPERIMENT_REF`` and ``EXQ_REPO`` in its environment (empty where the
event has none). Its exit status and the end of its output go to the daemon
log (``notify.ran``); a command that fails, hangs or cannot start is logged
(``notify.failed``) and never changes a run.

``parse_notify`` and ``wanted``/``notify_env`` are pure; ``deliver`` runs
the command in a worker thread so the scheduler never waits on it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exq.daemon.states import RunState
from exq.engine.errors import ConfigError

RUN_END = "run-end"
QUEUE_DRAINED = "queue-drained"
# every state a run ends in, a run past its --timeout ('timeout') as well
END_STATES = tuple(s.value for s in RunState if s not in (RunState.QUEUED, RunState.RUNNING))
FILTERS = (RUN_END, QUEUE_DRAINED, *END_STATES)
DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 86400  # a day
OUTPUT_TAIL = 2000  # characters of the command's output kept in the log


@dataclass(frozen=True)
class NotifyConfig:
    """The ``[notify]`` table; ``command`` None and ``desktop`` False: nothing to do."""

    command: str | None = None
    on: tuple[str, ...] = ()  # empty: every event
    timeout: float = DEFAULT_TIMEOUT
    desktop: bool = False

    @property
    def active(self) -> bool:
        return self.command is not None or self.desktop


@dataclass(frozen=True)
class Event:
    """One thing to tell: a run's end (with its run), or the queue drained."""

    kind: str
    run_id: int | None = None
    name: str = ""
    state: str = ""
    exit_code: int | None = None
    experiment_ref: str | None = None
    repo: str = ""


def parse_notify(table: Any, path: Path) -> NotifyConfig:
    """The ``[notify]`` table checked; ConfigError names the file and the key."""
    if table is None:
        return NotifyConfig()
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: 'notify' must be a table")
    unknown = sorted(set(table) - {"command", "on", "timeout", "desktop"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown key [notify] {unknown[0]}",
            hint="use command, on, timeout or desktop",
        )
    command = table.get("command")
    if command is not None and (not isinstance(command, str) or not command.strip()):
        raise ConfigError(f"{path}: [notify] command must be a non-empty string")
    on = table.get("on", [])
    if not isinstance(on, list) or any(item not in FILTERS for item in on):
        raise ConfigError(
            f"{path}: [notify] on must be a list of {', '.join(FILTERS)}",
        )
    timeout = table.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigError(f"{path}: [notify] timeout must be a number of seconds above 0")
    if timeout > MAX_TIMEOUT:  # TOML's inf too: no wait takes it
        raise ConfigError(f"{path}: [notify] timeout must be up to {MAX_TIMEOUT} seconds")
    desktop = table.get("desktop", False)
    if not isinstance(desktop, bool):
        raise ConfigError(f"{path}: [notify] desktop must be true or false")
    return NotifyConfig(command, tuple(on), float(timeout), desktop)


def wanted(on: Sequence[str], event: Event) -> bool:
    """Whether ``on`` asks for ``event``: its kind, or for a run's end its state."""
    if not on:
        return True
    return event.kind in on or (event.kind == RUN_END and event.state in on)


def notify_env(event: Event) -> dict[str, str]:
    """The variables the command sees."""
    return {
        "EXQ_EVENT": event.kind,
        "EXQ_RUN_ID": "" if event.run_id is None else str(event.run_id),
        "EXQ_RUN_NAME": event.name,
        "EXQ_RUN_STATE": event.state,
        "EXQ_EXIT_CODE": "" if event.exit_code is None else str(event.exit_code),
        "EXQ_EXPERIMENT_REF": event.experiment_ref or "",
        "EXQ_REPO": event.repo,
    }


def summary(event: Event) -> str:
    """One line for a desktop notification."""
    if event.kind == QUEUE_DRAINED:
        return "the queue is empty: every run has ended"
    code = f" (exit {event.exit_code})" if event.exit_code not in (None, 0) else ""
    return f"run {event.run_id} '{event.name}' ended {event.state}{code}"


@dataclass(frozen=True)
class Delivery:
    """How one command went: its exit status (None: it did not end or start)."""

    argv: tuple[str, ...]
    exit_code: int | None
    output: str
    error: str | None = None


def deliver(config: NotifyConfig, event: Event, environ: Mapping[str, str]) -> list[Delivery]:
    """Run what ``config`` asks for ``event`` (blocking: call it from a worker thread)."""
    if not wanted(config.on, event):
        return []
    env = {**environ, **notify_env(event)}
    import shutil  # only when notifying: every queue command imports this module

    done = []
    if config.command is not None:
        done.append(_run(("sh", "-c", config.command), env, config.timeout))
    if config.desktop:
        sender = shutil.which("notify-send", path=env.get("PATH"))
        if sender is None:
            done.append(Delivery(("notify-send",), None, "", "notify-send is not installed"))
        else:
            done.append(_run((sender, "exq", summary(event)), env, config.timeout))
    return done


def _run(argv: tuple[str, ...], env: dict[str, str], timeout: float) -> Delivery:
    import subprocess

    try:
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its whole group is killed on a timeout
        )
    except OSError as exc:
        return Delivery(argv, None, "", f"cannot start: {exc}")
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        out, _ = proc.communicate()
        text = out.decode("utf-8", "replace")[-OUTPUT_TAIL:]
        return Delivery(argv, None, text, f"timed out after {timeout:g} s")
    return Delivery(argv, proc.returncode, out.decode("utf-8", "replace")[-OUTPUT_TAIL:])


def _kill_group(pgid: int) -> None:
    import signal

    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
