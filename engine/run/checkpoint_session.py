"""Running a checkpoint stage: serve the handshake while its command runs.

A stage with ``checkpoint: true`` outs gets two channels (see
``exq.live.checkpoint``): the ``EXQ_CHECKPOINT`` socket, and DVC 2's signal
file ``$DVC_ROOT/.dvc/tmp/DVC_CHECKPOINT`` for DVC-era scripts. While the
command runs, ``CheckpointSession`` waits on both; at each signal it awaits
the caller's handler (save the outs, write the lock, commit), shielded from
cancellation, and only then releases the script.

Stopping a run (Ctrl-C, a daemon shutting down) never cuts a snapshot in
half: the command's cancellation is held back until the snapshot under way
is done, then the command is stopped as usual (its process group gets
SIGINT, SIGTERM, SIGKILL). No git here: what a checkpoint commits is the
handler's business (``exq.engine.experiments.chain_commit`` for experiments).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio
import anyio.lowlevel

from exq.engine.errors import ExqError
from exq.engine.spec.stage import Stage

if TYPE_CHECKING:  # the live package only for a checkpoint stage's run
    from exq.live.checkpoint import CheckpointServer, SignalFileWatcher

# Called with the step the script reported (None when it did not say); raises
# ExqError to refuse the checkpoint (the script's make_checkpoint then raises).
CheckpointHandler = Callable[[int | None], Awaitable[None]]
# Runs the stage command with the extra variables; returns its exit code.
CommandRunner = Callable[[Mapping[str, str]], Awaitable[int]]

SOCKET_NAME = "ckpt.sock"
# DVC-era scripts wait for the runner to delete the signal file: poll it this often.
FILE_POLL_SECONDS = 0.01
_MAX_SUN_PATH = 107


class CheckpointHook(Protocol):
    """What ``repro`` calls for the checkpoints of a stage; the experiment layer
    implements it (``exq.engine.experiments.chain_commit.ChainCommitter``)."""

    async def checkpoint(self, stage: Stage, step: int | None) -> None:
        """The stage's outs are saved and its lock entry written: commit them."""

    async def interrupted(self, stage: Stage) -> str | None:
        """The command stopped or failed: put the last checkpoint back in place;
        what was kept, in words, if anything was."""


class CheckpointSession:
    """Serves the checkpoint channels of one stage command while it runs."""

    def __init__(
        self,
        handler: CheckpointHandler,
        *,
        dvc_root: Path,
        lock: anyio.Lock | None = None,
        stopping: Callable[[], bool] | None = None,
    ) -> None:
        """``lock`` is held during each snapshot: a caller that shares it (the
        daemon) can hold off signalling the command until the snapshot is done.
        ``stopping`` says the caller signalled the command to stop: a snapshot
        asked for after that is refused, as after a cancellation."""
        self._handler = handler
        self._dvc_root = dvc_root
        self._busy = lock if lock is not None else anyio.Lock()
        self._stopping = False
        self._told_to_stop = stopping or (lambda: False)
        self.count = 0  # checkpoints taken
        self.errors: list[str] = []  # checkpoints refused, with why

    async def run(self, command: CommandRunner) -> int:
        """Run ``command`` with the channels' variables; its exit code.

        Cancelled from outside, the command is stopped once no snapshot is
        under way, and the cancellation goes on.
        """
        from exq.live.checkpoint import CheckpointServer, SignalFileWatcher

        with _private_folder() as folder:
            server = CheckpointServer(folder / SOCKET_NAME)
            watcher = SignalFileWatcher(self._dvc_root)
            watcher.clear()
            try:
                return await self._run(command, server, watcher)
            finally:
                server.close()
                watcher.clear()

    async def _run(
        self, command: CommandRunner, server: CheckpointServer, watcher: SignalFileWatcher
    ) -> int:
        env = {**server.env(), **watcher.env()}
        code: int | None = None
        # The command runs shielded: only the guard cancels it, after the snapshot.
        inner = anyio.CancelScope(shield=True)
        async with anyio.create_task_group() as outer:
            outer.start_soon(self._guard, inner)
            with inner:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._serve_socket, server)
                    tg.start_soon(self._serve_file, watcher)
                    code = await command(env)
                    tg.cancel_scope.cancel()
            if code is None:
                # The guard stopped the command: the run is being cancelled, and
                # this raises that cancellation (the shield kept it out so far).
                await anyio.lowlevel.checkpoint()
            outer.cancel_scope.cancel()
        return -1 if code is None else code

    async def _guard(self, inner: anyio.CancelScope) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            # Cancelled: the run is stopping (or the command ended). Wait for the
            # snapshot under way, refuse new ones, then stop the command.
            with anyio.CancelScope(shield=True):
                async with self._busy:
                    self._stopping = True
                    inner.cancel()

    async def _serve_socket(self, server: CheckpointServer) -> None:
        while True:
            await anyio.wait_readable(server.fileno())
            for request in server.poll():
                await self._handle(request.step, request.ack, request.fail)

    async def _serve_file(self, watcher: SignalFileWatcher) -> None:
        # The file channel cannot carry a refusal: the script is released either way.
        while True:
            if watcher.poll():
                await self._handle(None, watcher.ack, lambda _message: watcher.ack())
            await anyio.sleep(FILE_POLL_SECONDS)

    async def _handle(
        self, step: int | None, ack: Callable[[], None], fail: Callable[[str], None]
    ) -> None:
        async with self._busy:
            if self._stopping or self._told_to_stop():
                fail("the run is stopping")
                return
            with anyio.CancelScope(shield=True):
                try:
                    await self._handler(step)
                except ExqError as exc:
                    self.errors.append(str(exc))
                    fail(str(exc))
                    return
                except BaseException:
                    fail("internal error in the runner")
                    raise
            self.count += 1
            ack()


FOLDER_PREFIX = "exq-ckpt-"


def _folder_bases() -> list[Path]:
    """Where the handshake folders go: ``$XDG_RUNTIME_DIR`` when its path is short
    enough for a socket, else /tmp."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if not base or not os.path.isdir(base) or len(base) > _MAX_SUN_PATH - 40:
        return [Path(tempfile.gettempdir())]
    return [Path(base), Path(tempfile.gettempdir())]


@contextmanager
def _private_folder() -> Iterator[Path]:
    """A 0700 folder with a short path, for the socket (sun_path holds 107 bytes).

    Its name carries our pid, so that the folders of a process killed outright
    are told apart and removed later (:func:`remove_stale_folders`).
    """
    prefix = f"{FOLDER_PREFIX}{os.getpid()}-"
    bases = _folder_bases()
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=bases[0]))
    if len(os.fsencode(folder / SOCKET_NAME)) > _MAX_SUN_PATH:
        shutil.rmtree(folder, ignore_errors=True)
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale_folders() -> list[Path]:
    """Remove the handshake folders of our processes that are gone (killed with
    SIGKILL, say); the folders removed."""
    uid = os.getuid()
    removed = []
    for base in {*_folder_bases(), Path("/tmp")}:
        for folder in base.glob(f"{FOLDER_PREFIX}*-*"):
            pid = folder.name[len(FOLDER_PREFIX) :].split("-", 1)[0]
            try:
                owned = folder.is_dir() and folder.lstat().st_uid == uid
            except OSError:
                continue
            if owned and pid.isdigit() and not pid_alive(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed


def pid_alive(pid: int) -> bool:
    """Whether a process numbered ``pid`` runs (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
