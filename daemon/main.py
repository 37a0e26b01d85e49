"""The daemon's life: lock, logging, recovery, the root task group, shutdown.

:func:`run` is the daemon as a library function (a coroutine). ``exq daemon``
calls it through :func:`main`, the synchronous entry point that returns the
exit status (``raise typer.Exit(main(config.with_jobs(jobs)))``; a refused
second daemon gives one line on stderr and status 1). Tests run it
in-process in a task group::

    async with anyio.create_task_group() as tg:
        await tg.start(partial(run, config, install_signal_handlers=False))
        ...
        tg.cancel_scope.cancel()   # the runs still running end "interrupted"

Start: take the single-instance lock (``state_dir/daemon.lock``, ``flock``;
a second daemon gets :class:`DaemonAlreadyRunning`), configure structlog
(JSON lines to ``state_dir/daemon.log``, and to stderr under systemd), open
the store, recover what a dead daemon left (its runs' processes SIGKILLed,
its running runs interrupted, interrupted runs queued again at the front,
those with a checkpoint to resume from it unless ``config.resume_checkpoints``
is off, stale worktrees, ref locks and checkpoint folders removed: see
:mod:`exq.daemon.leftovers`), then start the scheduler and the socket server and
tell systemd ``READY=1``.

Stop: SIGTERM or SIGINT (or ``exq queue stop --kill``) stops taking runs,
sends SIGINT to the running runs, SIGKILL after ``config.grace`` seconds (a
second signal skips the wait; neither is sent while a run's checkpoint
snapshot is under way), marks them interrupted, keeping the last checkpoint
of checkpoint runs, and returns; ``main``
exits 0. ``STOPPING=1`` goes to systemd as the stop begins.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import signal
import socket
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import anyio
import structlog
from anyio.abc import TaskStatus

from exq import __version__
from exq.daemon.config import DaemonConfig
from exq.daemon.executors.base import is_remote_location
from exq.daemon.executors.local import any_alive, reap_leftovers
from exq.daemon.leftovers import clear_leftovers, exact_checkpoints
from exq.daemon.machine import detect
from exq.daemon.requeue import requeue_interrupted
from exq.daemon.scheduler import Scheduler
from exq.daemon.server import serve
from exq.daemon.states import DIED, RunState, recovery_decision
from exq.daemon.store import RunRecord, StoreError
from exq.daemon.store_async import AsyncStore
from exq.engine.errors import ExqError, GitError
from exq.engine.git import Git

# How long a restarted daemon waits for a dead one's SIGKILLed processes to go.
REAP_WAIT_SECONDS = 10.0


class DaemonAlreadyRunning(ExqError):
    """Another daemon holds the lock of this state folder."""


def main(config: DaemonConfig | None = None) -> int:
    """Run the daemon in the foreground until it is stopped; the exit status."""
    config = config or DaemonConfig.from_env()
    try:
        anyio.run(run, config)
    except ExqError as exc:
        print(f"exq daemon: {exc}", file=sys.stderr)
        return 1
    return 0


async def run(
    config: DaemonConfig,
    *,
    install_signal_handlers: bool = True,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """The daemon: returns once stopped; raises :class:`DaemonAlreadyRunning`."""
    secure_state_dir(config)
    lock = acquire_lock(config.lock_path)
    sink = _LogSink()
    previous = structlog.get_config()
    try:
        sink.open(config.daemon_log, to_stderr=under_systemd(os.environ))
        configure_logging(sink)
        log = structlog.get_logger("exq.daemon")
        try:
            async with await AsyncStore.open(config.db_path) as store:
                adopt = await recover(store, config, log)
                await _serve(store, config, log, install_signal_handlers, task_status, adopt)
        except ExqError as exc:  # e.g. the database or the socket: the caller prints it
            log.error("daemon.failed", error=str(exc))
            raise
        finally:
            log.info("daemon.stopped", pid=os.getpid())
    finally:
        structlog.configure(**previous)  # in-process callers (tests) get theirs back
        sink.close()
        os.close(lock)


async def _serve(
    store: AsyncStore,
    config: DaemonConfig,
    log: Any,
    install_signal_handlers: bool,
    task_status: TaskStatus[None],
    adopt: list[RunRecord],
) -> None:
    machine = detect(config.resources)
    log.info("daemon.resources", gpus=list(machine.gpus), cpus=machine.cpus, mem=machine.mem)
    scheduler = Scheduler(store, config, log, adopt=adopt, machine=machine)
    try:
        await _root(scheduler, config, log, install_signal_handlers, task_status)
    except BaseExceptionGroup as group:
        error = _user_error(group)
        if error is None:
            raise
        raise error from None  # one line for the user, e.g. the socket is taken
    if scheduler.store_lost:
        raise StoreError(
            f"the queue database {config.db_path} was moved or deleted while the daemon"
            " used it: the daemon stopped",
            hint="start it again to use the queue database there now",
        )


async def _root(
    scheduler: Scheduler,
    config: DaemonConfig,
    log: Any,
    install_signal_handlers: bool,
    task_status: TaskStatus[None],
) -> None:
    async with anyio.create_task_group() as tg:
        if install_signal_handlers:
            tg.start_soon(_receive_signals, scheduler, log)
        await tg.start(scheduler.run)
        await tg.start(serve, config, scheduler)
        sd_notify("READY=1")
        log.info(
            "daemon.started",
            pid=os.getpid(),
            version=__version__,
            jobs=(await scheduler.status())["slots_total"],
            state_dir=str(config.state_dir),
            socket=str(config.socket_path),
        )
        task_status.started()
        await scheduler.stop_requested.wait()
        sd_notify("STOPPING=1")
        await scheduler.finished.wait()
        tg.cancel_scope.cancel()


def _user_error(group: BaseExceptionGroup[BaseException]) -> ExqError | None:
    """The ExqError a task group failed with, if that is all it failed with."""
    matched, rest = group.split(ExqError)
    if matched is None or rest is not None:
        return None
    leaf: BaseException = matched
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf if isinstance(leaf, ExqError) else None


async def _receive_signals(scheduler: Scheduler, log: Any) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            again = scheduler.killing  # a second signal: no more grace
            log.info("daemon.signal", signal=signal.Signals(signum).name, again=again)
            await scheduler.stop(kill=True, now=again)


# -- the state folder -------------------------------------------------------


def secure_state_dir(config: DaemonConfig) -> None:
    """Make the state folder, or tighten one that exists: it holds the runs' output,
    the queue's params and the daemon log, which are the user's alone. A folder
    made earlier (by hand, or under a loose umask) keeps its mode otherwise."""
    folder = config.state_dir
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            raise ExqError(
                f"the state folder {folder} is not a folder of yours",
                hint="remove it or set EXQ_STATE_DIR",
            )
        _private(folder, st, 0o700)
        for path in (config.logs_dir, config.worktrees_dir):
            _private(path, None, 0o700)
        for path in folder.iterdir():
            if path.is_file() and not path.is_symlink():
                _private(path, None, 0o600)
    except OSError as exc:
        raise ExqError(f"cannot secure the state folder {folder}: {exc}") from exc


def _private(path: Path, st: os.stat_result | None, mode: int) -> None:
    """Take group and other permissions off ``path`` if it exists and is ours."""
    try:
        st = st or os.lstat(path)
    except FileNotFoundError:
        return
    if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, stat.S_IMODE(st.st_mode) & mode)


# -- single instance --------------------------------------------------------


def acquire_lock(path: Path) -> int:
    """Take the daemon lock (a file descriptor to close at exit, not inherited by
    children); raises :class:`DaemonAlreadyRunning` naming the holder's pid."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise DaemonAlreadyRunning(
            f"an exq daemon is already running (pid {holder}, lock {path})",
            hint="stop it with 'exq queue stop'",
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


# -- recovery ---------------------------------------------------------------


async def recover(store: AsyncStore, config: DaemonConfig, log: Any) -> list[RunRecord]:
    """Put right what a daemon that died or stopped left behind; the cluster
    runs it left running, for the scheduler to follow again."""
    running = await store.in_state(RunState.RUNNING)
    remote = [r for r in running if is_remote_location(r.location)]
    left = [r for r in running if not is_remote_location(r.location)]
    if any(recovery_decision(r.state, r.attempts).kill_leftovers for r in left):
        await _reap(store, left, log)
    await anyio.to_thread.run_sync(clear_leftovers, config.db_path, await store.list_runs(), log)
    for record in left:
        exact = await anyio.to_thread.run_sync(exact_checkpoints, record)
        if exact:
            log.info("recovery.checkpoints", run_id=record.id, was=record.checkpoints, **exact)
        await store.transition(
            record.id, RunState.RUNNING, RunState.INTERRUPTED, error=DIED, **exact
        )
        log.info("run.recovered", run_id=record.id, state="interrupted", error=DIED)
    await requeue_interrupted(store, await store.in_state(RunState.INTERRUPTED), config, log)
    repos = await store.repos()
    await anyio.to_thread.run_sync(prune_worktrees, config.worktrees_dir, repos, log)
    return remote


async def _reap(store: AsyncStore, left: list[RunRecord], log: Any) -> None:
    procs = [proc for record in left for proc in await store.procs(record.id)]
    tokens = [record.token or "" for record in left]
    found = await anyio.to_thread.run_sync(reap_leftovers, procs, tokens)
    if not found:
        return
    log.info("recovery.killed", pids=found)
    with anyio.move_on_after(REAP_WAIT_SECONDS):
        while any_alive(found):
            await anyio.sleep(0.05)


def prune_worktrees(folder: Path, repos: list[str], log: Any) -> None:
    """Remove our worktrees (those under ``folder``) from each repository, and
    whatever is left in ``folder``. The user's own worktrees are left alone."""
    root = os.path.realpath(folder)
    for repo in repos:
        if not Path(repo).is_dir():
            continue
        try:
            git = Git.open(repo)
            for worktree in git.list_worktrees():
                if os.path.realpath(worktree.path).startswith(root + os.sep):
                    git.remove_worktree(worktree.path)
                    log.info("worktree.pruned", repo=repo, path=str(worktree.path))
        except GitError as exc:
            log.warning("worktree.prune_failed", repo=repo, error=str(exc))
    if folder.is_dir():
        for entry in folder.iterdir():
            shutil.rmtree(entry, ignore_errors=True)


# -- logging ------------------------------------------------------------------


class _LogSink:
    """structlog's output: the daemon log file, and stderr under systemd.

    Closed, it drops lines, so a logger used after the daemon returned (tests
    run several daemons in one process) does not write to a closed file.
    """

    def __init__(self) -> None:
        self._outputs: list[IO[str]] = []
        self._file: IO[str] | None = None

    def open(self, path: Path, *, to_stderr: bool) -> None:
        self._file = open(path, "a", encoding="utf-8", buffering=1)
        self._outputs = [self._file, *([sys.stderr] if to_stderr else [])]

    def close(self) -> None:
        self._outputs = []
        if self._file is not None:
            self._file.close()

    def msg(self, message: str) -> None:
        for output in self._outputs:
            try:
                output.write(message + "\n")
                output.flush()
            except (OSError, ValueError):  # a full disk must not stop the daemon: drop it
                pass

    debug = info = warning = warn = error = critical = exception = fatal = msg


def configure_logging(sink: _LogSink) -> None:
    """JSON lines with a timestamp, the level and the bound context (``run_id``)."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=lambda *args: sink,
        cache_logger_on_first_use=False,
    )


def under_systemd(env: Mapping[str, str]) -> bool:
    return bool(env.get("INVOCATION_ID") or env.get("NOTIFY_SOCKET"))


# -- systemd --------------------------------------------------------------------


def sd_notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (``READY=1``...) to systemd's ``$NOTIFY_SOCKET``; False if
    there is none or it cannot be reached (never raises)."""
    address = (os.environ if env is None else env).get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True
