"""A run on another machine: ``python -m exq.daemon.executors.ray.worker FOLDER``.

A cluster starts this in the folder the daemon sent (``job.json`` and
``pack.bin``, see :mod:`exq.daemon.executors.ray.remote`). It needs exq on that machine, and
nothing of the cluster's own libraries: it only reads files and prints.

It builds a private repository in a temporary folder from the pack (objects,
the experiment ref as the daemon had it, the cache objects; a killed
worker's folder is removed by the next, :mod:`exq.daemon.executors.ray.run_dirs`), and runs the
experiment there with the engine, exactly as the daemon runs one locally
(:func:`exq.engine.experiments.run.run_snapshot`, or ``resume_run`` for a
checkpoint run that resumes). After each checkpoint and at the end it prints
a pack of what is new (commits, trees, blobs, cache objects) as frames among
the run's output (:mod:`exq.daemon.executors.ray.shipment`), so a lost machine loses at most
the steps since the last checkpoint. A job that names a data remote pulls its
inputs from it first, and pushes its new cache objects there before each pack
(which then holds git objects only): a pack names only objects the remote holds
whole, since a worker killed mid-push never prints the pack.

SIGTERM or SIGINT (the cluster stopping the job) sends SIGINT to the stages,
and so does the death of the job's supervisor (its cluster went away: a
worker left alone stops rather than run to the end for nobody),
but never while a checkpoint snapshot is under way, and ends with an
``interrupted`` result. If the cluster kills the worker outright (its stop
wait ran out), a watchdog process kills the stages, so none outlives it. Exit status: 0 on success, the failed stage's status,
130 when interrupted, 2 when the folder is not a run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import anyio

from exq.daemon.executors.ray.remote import JOB_FILE, JOB_VERSION, PACK_FILE
from exq.daemon.executors.ray.run_dirs import run_dir
from exq.daemon.executors.ray.shipment import (
    Pack,
    ShipmentError,
    cache_names,
    decode_pack,
    frame_file,
    object_path,
    write_cache,
    write_pack,
)
from exq.engine.data import remote as storage_mod
from exq.engine.data.cache import Cache
from exq.engine.data.remote_config import Remote
from exq.engine.errors import ExqError
from exq.engine.experiments.run import ExpRunResult, SnapshotRun, resume_run, run_snapshot
from exq.engine.git import Git
from exq.engine.run.callbacks import CheckpointEvent, RunCallbacks
from exq.engine.run.project import Project, default_link_types
from exq.engine.run.runner import OutputSink

INTERRUPTED_STATUS = 130
ORPHAN_GRACE_SECONDS = 10.0  # from SIGINT to SIGKILL of the stages of a worker left alone


class LineStream:
    """The output stream, knowing whether a line is open (frames start lines).
    A pack's frames go out together: other output waits meanwhile."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.at_line_start = True
        self._lock = threading.Lock()

    def write(self, data: bytes) -> int:
        if data:
            with self._lock:
                self.raw.write(data)
                self.at_line_start = data.endswith(b"\n")
        return len(data)

    def flush(self) -> None:
        self.raw.flush()

    def frames(self, lines: Iterable[str]) -> None:
        with self._lock:
            if not self.at_line_start:
                self.raw.write(b"\n")
            for line in lines:
                self.raw.write(line.encode())
            self.raw.flush()
            self.at_line_start = True


class Through:
    """The run's cache objects through the data remote its job names, and what
    this worker knows the remote holds (asked as needed, then kept)."""

    def __init__(self, spec: dict[str, Any], project: Project, note: Any) -> None:
        remote = Remote(str(spec["name"]), str(spec["url"]), dict(spec.get("options") or {}))
        self.storage = storage_mod.open_storage(remote)
        self.cache = Cache(project.cache_dir, project.link_types)
        self.on_remote: dict[str, int] = {}
        self.note = note
        self.jobs = storage_mod.default_jobs()

    @property
    def name(self) -> str:
        return self.storage.remote.name

    def pull(self, names: list[str]) -> None:
        got = storage_mod.fetch_missing(self.storage, self.cache, names, self.on_remote, self.jobs)
        if got:
            size = sum(self.on_remote[n] for n in got)
            self.note(f"exq: pulled {len(got)} object(s), {_mb(size)}, from remote '{self.name}'")

    def push(self, names: set[str]) -> None:
        asked = names - self.on_remote.keys()
        self.on_remote.update(storage_mod.known_on_remote(self.storage, asked, self.jobs))
        fresh = [n for n in names if n not in self.on_remote]
        if fresh:
            size = sum(self.cache.obj_path(n).stat().st_size for n in fresh)
            self.note(f"exq: pushing {len(fresh)} object(s), {_mb(size)}, to remote '{self.name}'")
        storage_mod.send_missing(self.storage, self.cache, fresh, self.on_remote, self.jobs)


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


class Sender:
    """Prints packs of what the run made since the last one."""

    def __init__(
        self, stream: LineStream, project: Project, known: set[str], ref_value: str | None
    ) -> None:
        self.stream = stream
        self.project = project
        self.known = known  # git objects the daemon has
        self.known_cache = cache_names(self._objects_dir)
        self.through: Through | None = None  # the data remote, if the job names one
        self.seq = 0
        # The experiment ref as the daemon will have it once it applied what
        # was sent: the compare-and-set value of the next move.
        self.ref_value = ref_value

    @property
    def _objects_dir(self) -> Path:
        return self.project.cache_dir / "files" / "md5"

    def use_remote(self, through: Through, inputs: list[str]) -> None:
        """Pull the run's inputs from the remote; from now on, push there."""
        through.pull(inputs)
        self.through = through
        self.known_cache = cache_names(self._objects_dir)

    def send(self, meta: dict[str, Any], shas: list[str], *, cache_too: bool = True) -> None:
        """Print a pack: the git objects of ``shas`` the daemon lacks, and (unless
        not ``cache_too``) the cache objects made since the last pack."""
        git = Git.open(self.project.root)
        objects = git.export_objects(shas, self.known)
        new = cache_names(self._objects_dir) - self.known_cache if cache_too else set()
        cache = [(name, object_path(self._objects_dir, name)) for name in sorted(new)]
        if self.through is not None:  # first the objects, whole, then the pack naming them
            self.through.push(new)
            cache = []
        with tempfile.TemporaryFile(prefix="exq-pack-") as spool:  # a pack of any size
            size = write_pack(spool, meta, objects, cache)
            spool.seek(0)
            self.stream.frames(frame_file(self.seq, spool, size))
        self.known_cache |= new
        self.seq += 1
        if meta.get("sha"):
            self.ref_value = meta["sha"]

    async def checkpoint(self, event: CheckpointEvent) -> None:
        meta = {
            "kind": "checkpoint",
            "ref": event.ref,
            "sha": event.sha,
            "name": event.name,
            "expected": self.ref_value,
            "step": event.step,
            "count": event.count,
        }
        await anyio.to_thread.run_sync(self.send, meta, [event.sha])


# The watchdog: a process of its own session, which the cluster's kill of the
# worker's process group does not reach. It reads stage group ids from its
# stdin; at "done" it leaves, at end of file (the worker died without saying
# "done") it SIGKILLs those groups, so no stage outlives its worker.
WATCHDOG = """
import os, signal, sys
# A cluster's stop signals every process of the job, this one too: it must
# outlive the worker to do its work, so only the end of its input ends it.
for name in ("SIGTERM", "SIGINT", "SIGHUP"):
    signal.signal(getattr(signal, name), signal.SIG_IGN)
groups = []
for line in sys.stdin:
    if line.strip() == "done":
        sys.exit(0)
    groups.append(int(line))
for group in groups:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
"""


class Watchdog:
    """Kills the run's stage groups if the worker is killed (see ``WATCHDOG``)."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
        )

    def watch(self, pgid: int) -> None:
        self._say(f"{pgid}\n")

    def done(self) -> None:
        self._say("done\n")
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        except OSError:
            pass
        self._proc.wait()

    def _say(self, line: str) -> None:
        # A watchdog killed from outside (SIGKILL reaches it too) cannot be told
        # anything: the run goes on without it rather than dying of a broken pipe.
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(line)
            self._proc.stdin.flush()
        except OSError:
            pass


class Stopper:
    """Turns the cluster's stop signal into SIGINT for the run's stage groups."""

    def __init__(self, watchdog: Watchdog) -> None:
        self.pgids: list[int] = []
        self.snapshot_lock = anyio.Lock()
        self.stopped = False
        self.watchdog = watchdog

    async def on_spawn(self, pid: int) -> None:
        self.pgids.append(pid)
        self.watchdog.watch(pid)
        if self.stopped:  # a stage that starts after the stop: stop it too
            _interrupt([pid])

    async def watch(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                self.stopped = True
                async with self.snapshot_lock:  # a checkpoint snapshot ends first
                    _interrupt(self.pgids)

    async def watch_supervisor(self) -> None:
        """Stop the run if the process that started this worker's session (the
        cluster's supervisor of the job) dies: with it went the cluster's
        interest in the run, and anyone to read what it prints. SIGINT first,
        as a stop from the cluster; SIGKILL after ``ORPHAN_GRACE_SECONDS``."""
        supervisor = _supervisor()
        if supervisor is None:
            return
        while _alive(*supervisor):
            await anyio.sleep(1.0)
        self.stopped = True
        async with self.snapshot_lock:
            _interrupt(self.pgids)
        await anyio.sleep(ORPHAN_GRACE_SECONDS)
        _interrupt(self.pgids, signal.SIGKILL)


def _supervisor() -> tuple[int, str] | None:
    """The first process up the tree outside this worker's session (pid, start
    time), if /proc tells."""
    try:
        session = os.getsid(0)
        pid = os.getppid()
        while pid > 1 and os.getsid(pid) == session:
            pid = _parent_of(pid)
        return (pid, _started(pid)) if pid > 1 else None
    except (OSError, ValueError):
        return None


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rfind(")") + 2 :].split()


def _parent_of(pid: int) -> int:
    return int(_stat(pid)[1])


def _started(pid: int) -> str:
    return _stat(pid)[19]


def _alive(pid: int, started: str) -> bool:
    """Whether ``pid`` is still the process that started at ``started`` (not a reuse)."""
    try:
        return _stat(pid)[0] not in "ZX" and _started(pid) == started
    except (OSError, IndexError):
        return False


def _interrupt(pgids: list[int], signum: int = signal.SIGINT) -> None:
    for pgid in pgids:
        try:
            os.killpg(pgid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def build_repo(root: Path, job: dict[str, Any], pack: Pack) -> Project:
    """A private repository at ``root`` holding what the daemon sent."""
    git = Git.init(root)
    git.set_identity(*job["identity"])
    git.import_objects(pack.objects)
    for ref, sha in job["refs"].items():
        git.set_ref(ref, sha)
    # A project in a sub-folder of its repository: the run happens in that sub-folder.
    top = root / job["prefix"] if job.get("prefix") else root
    top.mkdir(parents=True, exist_ok=True)
    project = Project(root=top, cache_dir=root / ".dvc" / "cache", link_types=default_link_types())
    write_cache(project.cache_dir / "files" / "md5", pack.cache)
    return project


def snapshot_run(
    project: Project, job: dict[str, Any], stopper: Stopper, sender: Sender
) -> SnapshotRun:
    callbacks = RunCallbacks(
        on_spawn=stopper.on_spawn,
        on_checkpoint=sender.checkpoint,
        snapshot_lock=stopper.snapshot_lock,
    )
    snapshot = SnapshotRun(
        snapshot=job["start"],
        baseline=job["baseline"],
        name=job["name"],
        targets=job["targets"],
        stage_jobs=job["jobs"] or os.cpu_count() or 1,
        env=job["env"],
        reset=True,  # a new experiment, as on the daemon's machine; resume_run undoes it
        callbacks=callbacks,
    )
    return resume_run(project, job["start"], snapshot) if job["resume"] else snapshot


def result_meta(
    result: ExpRunResult, ref_value: str | None, stopped: bool
) -> tuple[dict[str, Any], int]:
    """The last pack's header and the exit status."""
    failed = result.repro.failed if result.repro is not None else None
    if stopped and (failed is not None or result.sha is None):
        return {"kind": "result", "outcome": "interrupted"}, INTERRUPTED_STATUS
    if failed is not None:
        return (
            {
                "kind": "result",
                "outcome": "failed",
                "error": str(failed),
                "exit_code": failed.returncode,
            },
            failed.returncode or 1,
        )
    return (
        {
            "kind": "result",
            "outcome": "success",
            "ref": result.ref,
            "sha": result.sha,
            "name": result.name,
            "expected": ref_value,
        },
        0,
    )


async def run_job(job: dict[str, Any], pack: Pack, stream: LineStream) -> int:
    sink = OutputSink(stream=stream, prefixed=(job["jobs"] or os.cpu_count() or 1) > 1)  # type: ignore[arg-type]
    watchdog = Watchdog()
    stopper = Stopper(watchdog)
    with run_dir() as tmp:
        project = await anyio.to_thread.run_sync(build_repo, tmp / "repo", job, pack)
        sender = Sender(
            stream,
            project,
            {sha for sha, _, _ in pack.objects},
            next(iter(job["refs"].values()), None),
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(stopper.watch)
            tg.start_soon(stopper.watch_supervisor)
            try:
                if job.get("remote"):
                    await anyio.to_thread.run_sync(
                        lambda: sender.use_remote(
                            Through(job["remote"], project, sink.note), job.get("inputs") or []
                        )
                    )
                run = await anyio.to_thread.run_sync(snapshot_run, project, job, stopper, sender)
                result = await run_snapshot(project, run, tmp / "worktree", sink)
            except ExqError as exc:
                sink.note(f"exq: error: {exc}")
                meta, status = {"kind": "result", "outcome": "failed", "error": str(exc)}, 1
                if stopper.stopped:
                    meta, status = {"kind": "result", "outcome": "interrupted"}, INTERRUPTED_STATUS
            else:
                meta, status = result_meta(result, sender.ref_value, stopper.stopped)
            tg.cancel_scope.cancel()
        watchdog.done()  # every stage has ended
        shas = [meta["sha"]] if meta.get("sha") else []
        try:
            await anyio.to_thread.run_sync(sender.send, meta, shas)
        except ExqError as exc:  # its outputs cannot reach the remote: the run failed
            sink.note(f"exq: error: {exc}")
            failed = {"kind": "result", "outcome": "failed", "error": str(exc)}
            await anyio.to_thread.run_sync(lambda: sender.send(failed, [], cache_too=False))
            status = 1
    return status


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0] if args else ".")
    try:
        job = json.loads((folder / JOB_FILE).read_text())
        pack = decode_pack((folder / PACK_FILE).read_bytes())
    except (OSError, ValueError, ShipmentError) as exc:
        print(f"exq: {folder} holds no run: {exc}", file=sys.stderr)
        return 2
    if job.get("version") != JOB_VERSION:
        print(
            f"exq: this exq reads jobs of version {JOB_VERSION}, not {job.get('version')}:"
            " install the same exq on the cluster as on the daemon's machine",
            file=sys.stderr,
        )
        return 2
    return anyio.run(run_job, job, pack, LineStream(sys.stdout.buffer))


if __name__ == "__main__":
    sys.exit(main())
