"""The ``ray`` executor: queued runs as jobs of a Ray cluster.

Only this module imports Ray, and only the Jobs API client: the daemon talks
to the cluster's dashboard address over HTTP and opens no port of its own.

One attempt of a run is one Ray job whose submission id is
``exq-<daemon id>-<run id>-<attempt>`` (:func:`submission_id`). The cluster
refuses a second job with the same id, so an attempt never starts twice: a
daemon that finds the job already there (it restarted, or it adopts a run a
previous daemon left running) follows it instead of submitting again.

A job carries its run in the payload folder (:func:`exq.daemon.executors.ray.remote.write_payload`,
uploaded by Ray as the job's ``working_dir``) and runs
``python -m exq.daemon.executors.ray.worker .`` with the run's ``--cpus``/``--gpus``
as the entrypoint's resources. The daemon follows the job's output: plain
lines go to the run's log (``exq queue logs -f`` shows them as they come) and
frames carry packs back (:mod:`exq.daemon.executors.ray.shipment`), which the
:class:`~exq.daemon.executors.ray.remote.Importer` applies as they arrive, so each
checkpoint lands in the repository and in the queue at once. With a data
remote (:func:`~exq.daemon.executors.ray.remote.run_remote`) the packs hold git
objects only, the cache objects going through the remote; when the run lands,
the daemon fetches the outputs its experiment commit names into the cache, so
``exp apply`` needs no remote (checkpoints before the last stay there until
asked for). How far the log
was read is kept beside it (``<log>.offset``), so a restarted daemon neither
writes the output twice nor misses a pack.
"""

from __future__ import annotations

import json
import logging
import tempfile
import urllib.request
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import anyio

from exq.daemon.config import DaemonConfig, job_offset
from exq.daemon.executors.base import ExecResult, RunHooks, pending_location
from exq.daemon.executors.ray.remote import (
    Applied,
    Importer,
    run_remote,
    worker_entrypoint,
    write_payload,
)
from exq.daemon.executors.ray.shipment import FrameReader, ShipmentError
from exq.daemon.states import Outcome, remote_end
from exq.daemon.store import RunRecord
from exq.engine.data.remote import default_jobs
from exq.engine.errors import ExqError
from exq.engine.experiments import sync_cache
from exq.engine.experiments.refs import exp_ref
from exq.engine.git import Git
from exq.engine.run.callbacks import CheckpointEvent
from exq.engine.run.project import open_project
from exq.engine.run.runner import OutputSink
from exq.engine.writes import atomic_write_text

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
# Seconds between tries while the cluster cannot be reached, and how long to
# keep trying before the run counts as interrupted (it is then run again).
RETRY_SECONDS = 2.0
END_POLL_SECONDS = 0.5
PENDING_SECONDS = 3.0  # a job still pending after this waits for resources: say so
QUIET_SECONDS = 2.0  # longer than Ray's one second between reads of a job's output
PATIENCE_SECONDS = 300.0


class RayError(ExqError):
    """The Ray cluster cannot be used (Ray missing, unreachable, a refused job)."""


class RayUnreachable(RayError):
    """The cluster does not answer at its address."""


def submission_id(daemon_id: str, run: RunRecord) -> str:
    return f"exq-{daemon_id}-{run.id}-{run.attempts}"


@dataclass
class RayJob:
    """A submitted job: what the scheduler stops."""

    client: Any
    job_id: str
    stop_sent: anyio.Event = field(default_factory=anyio.Event)

    async def stop(self) -> None:
        self.stop_sent.set()
        try:
            await anyio.to_thread.run_sync(self.client.stop_job, self.job_id)
        except Exception:  # noqa: BLE001 - already ended or unreachable: it ends anyway
            pass


class RayExecutor:
    """Sends runs to the Ray cluster at ``config.ray_address``."""

    def __init__(self, config: DaemonConfig, log: Any) -> None:
        self._config = config
        self._log = log
        self._client: Any = None
        self._reached = False  # the cluster answered once: its absence is then passing

    async def _connect(self, *, patient: bool) -> Any:
        """The Jobs API client. ``patient``: keep trying for ``PATIENCE_SECONDS``
        (a run a previous daemon left on the cluster must not fail because the
        cluster is briefly away when this one starts)."""
        deadline = anyio.current_time() + (PATIENCE_SECONDS if patient else 0)
        while self._client is None:
            try:
                self._client = await anyio.to_thread.run_sync(connect, self._config.ray_address)
            except RayError as exc:
                if anyio.current_time() >= deadline or "not installed" in str(exc):
                    raise
                self._log.warning("ray.unreachable", error=str(exc))
                await anyio.sleep(RETRY_SECONDS)
        return self._client

    async def execute(self, run: RunRecord, *, slot: int, hooks: RunHooks) -> ExecResult:
        assert run.log_path is not None, "a claimed run has a log path"
        log_path = Path(run.log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        job_id = submission_id(self._config.daemon_id(), run)
        with open(log_path, "ab") as stream:
            note = OutputSink(stream=stream).note
            job: RayJob | None = None
            try:
                remote = run_remote(open_project(Path(run.repo)), self._config)
                client = await self._connect(patient=hooks.adopted)
                known = await self._lookup(client, job_id, patient=hooks.adopted)
                self._reached = True
                if known is None:
                    size = await self._submit(client, run, slot, job_id)
                    note(
                        f"exq: run {run.id} '{run.name}', attempt {run.attempts}: sent to Ray"
                        f" at {self._config.ray_address} as job {job_id} ({size / 1024:.0f} KiB)"
                    )
                    if run.resume_sha:
                        note(f"exq: resuming from checkpoint {run.resume_sha[:7]}")
                else:
                    note(f"exq: following Ray job {job_id} again")
                job = RayJob(client, job_id)
                if hooks.on_remote is not None:
                    await hooks.on_remote(job, None)  # its claim wrote where it goes
                follower = Follower(
                    run,
                    job,
                    hooks,
                    stream,
                    job_offset(log_path, job_id),
                    self._config.ray_address,
                    None if remote is None else remote.name,
                )
                return await follower.follow(self._log)
            except RayUnreachable as exc:
                if job is None and self._reached and not hooks.adopted:
                    # Nothing was sent: the run waits in the queue for the cluster.
                    return ExecResult(Outcome.UNSENT, error=str(exc))
                note(f"exq: error: {exc}")
                return ExecResult(Outcome.FAILED, error=str(exc))
            except ExqError as exc:
                note(f"exq: error: {exc}")
                if job is not None:  # what it would send can no longer land: stop it
                    with anyio.CancelScope(shield=True):
                        await job.stop()
                return ExecResult(Outcome.FAILED, error=str(exc))

    async def _lookup(self, client: Any, job_id: str, *, patient: bool) -> Any:
        """The job's details, None if the cluster does not know it. ``patient``
        as in :meth:`_connect`."""
        deadline = anyio.current_time() + (PATIENCE_SECONDS if patient else 0)
        while True:
            try:
                return await anyio.to_thread.run_sync(job_info, client, job_id)
            except Exception as exc:  # noqa: BLE001 - Ray raises the connection's errors
                if not _is_connection_error(exc):
                    raise
                error = self._unreachable(exc)
                if anyio.current_time() >= deadline:
                    raise error from exc
                self._log.warning("ray.unreachable", error=str(error))
                await anyio.sleep(RETRY_SECONDS)

    def _unreachable(self, exc: BaseException) -> RayUnreachable:
        return RayUnreachable(
            f"cannot reach the Ray cluster at {self._config.ray_address}: {_first_line(exc)}"
        )

    async def _submit(self, client: Any, run: RunRecord, slot: int, job_id: str) -> int:
        project = open_project(Path(run.repo))
        with tempfile.TemporaryDirectory(prefix="exq-payload-") as tmp:
            folder = Path(tmp) / "run"
            size = await anyio.to_thread.run_sync(
                write_payload, project, run, self._config, slot, folder
            )
            resources = {
                key: value
                for key, value in (
                    ("entrypoint_num_cpus", run.cpus),
                    ("entrypoint_num_gpus", run.gpus),
                    ("entrypoint_memory", run.mem),
                )
                if value is not None
            }
            await anyio.to_thread.run_sync(
                lambda: submit(
                    client,
                    job_id,
                    worker_entrypoint(self._config.ray_python),
                    folder,
                    {"exq_run": str(run.id), "exq_name": run.name},
                    resources,
                )
            )
        self._log.info("ray.submitted", job=job_id, bytes=size, **resources)
        return size


class _Replay(Exception):
    """The output must be read again from its start (see :meth:`Follower._take`)."""


@dataclass
class Follower:
    """Reads one job's output to its end, applying the packs in it.

    What was read is kept in the offset file as two positions (see
    :class:`FrameReader`): where a restarted daemon reads on (past whole packs
    only) and how far the text went into the run's log (not written twice).
    """

    run: RunRecord
    job: RayJob
    hooks: RunHooks
    stream: IO[bytes]
    offset_path: Path
    address: str
    remote: str | None = None  # the data remote the run's cache objects go through
    result: dict[str, Any] | None = None
    located: bool = False
    unstarted: bool = False  # stopped while still waiting for its resources
    last_line: str = ""  # of the job's plain output
    last_chunk_at: float = 0.0

    def __post_init__(self) -> None:
        self.importer = Importer(
            open_project(Path(self.run.repo)), exp_ref(self.run.baseline, self.run.name)
        )
        start, written = _read_offsets(self.offset_path)
        self.reader = FrameReader(start, written, spool_dir=self.offset_path.parent)
        self.saved = (start, written)

    async def follow(self, log: Any) -> ExecResult:
        try:
            return await self._follow(log)
        finally:
            self.reader.close()

    async def _follow(self, log: Any) -> ExecResult:
        unreachable_since: float | None = None
        while True:
            try:
                info = await self._read_until_end()
            except _Replay:
                log.warning("ray.replay", job=self.job.job_id, offset=self.reader.start)
                self.reader = FrameReader(0, self.reader.written, self.offset_path.parent)
                continue
            except ExqError:
                raise
            except Exception as exc:  # noqa: BLE001 - the connection, or the job's node
                known, info = await self._job_state()
                if known and info is not None and info.status in TERMINAL:
                    return self._end(info)  # its node died: its output went with it
                if known and info is None:  # it answers, without the job: its head restarted
                    return ExecResult(
                        Outcome.INTERRUPTED,
                        error=f"the Ray cluster at {self.address} no longer knows job"
                        f" {self.job.job_id} (was its head restarted?)",
                    )
                now = anyio.current_time()
                unreachable_since = unreachable_since or now
                log.warning("ray.unreachable", job=self.job.job_id, error=_first_line(exc))
                if now - unreachable_since > PATIENCE_SECONDS:
                    return ExecResult(
                        Outcome.INTERRUPTED,
                        error=f"the Ray cluster was unreachable: {_first_line(exc)}",
                    )
                await anyio.sleep(RETRY_SECONDS)
                continue
            unreachable_since = None
            if self.unstarted:
                return ExecResult(Outcome.INTERRUPTED, error="stopped before it started")
            if self.result is not None:  # its last word is in: no need to wait for the job
                return self._end(None)
            if info is None:
                return ExecResult(Outcome.INTERRUPTED, error="the cluster lost the job")
            if info.status in TERMINAL:
                return self._end(info)
            await anyio.sleep(RETRY_SECONDS)  # the stream broke off early: read on

    async def _job_state(self) -> tuple[bool, Any]:
        """(whether the cluster answered, the job's details: None if it does not know it)."""
        try:
            return True, await anyio.to_thread.run_sync(job_info, self.job.client, self.job.job_id)
        except Exception:  # noqa: BLE001 - unreachable: the caller tries again
            return False, None

    async def _read_until_end(self) -> Any:
        """Follow the output until the result pack comes or the job ends; the
        job's details then (None once the result is in)."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch_stop, tg.cancel_scope)
                tg.start_soon(self._watch_end, tg.cancel_scope)
                await self._tail()
                tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise _leaf(group) from None
        if not self.located and not self.unstarted:  # it ended before its output came
            await self._locate()
        if self.result is not None or self.unstarted:
            return None
        info = await anyio.to_thread.run_sync(job_info, self.job.client, self.job.job_id)
        if info is not None and info.status in TERMINAL:
            await self._catch_up()  # what the stream had not given yet
        return info

    async def _watch_end(self, scope: anyio.CancelScope) -> None:
        """Ray closes the stream once it read the whole output of an ended job
        (it reads once a second), but not for a job whose output never began (its
        runtime environment failed, say): stop reading once the job ended and
        the stream has been quiet for ``QUIET_SECONDS``."""
        ended_at: float | None = None
        pending_since: float | None = anyio.current_time()
        while True:
            await anyio.sleep(END_POLL_SECONDS)
            if ended_at is None:
                status = str(
                    await anyio.to_thread.run_sync(self.job.client.get_job_status, self.job.job_id)
                )
                if status in TERMINAL:
                    ended_at = anyio.current_time()
                elif status != "PENDING":
                    pending_since = None
                elif pending_since and anyio.current_time() - pending_since > PENDING_SECONDS:
                    pending_since = None  # said once
                    await self._say_pending()
            if ended_at is not None:
                if anyio.current_time() - max(ended_at, self.last_chunk_at) > QUIET_SECONDS:
                    scope.cancel()
                    return

    async def _say_pending(self) -> None:
        """A job the cluster keeps waiting for resources shows so in its location
        (and gives its slot back: see the scheduler)."""
        if self.located or self.hooks.on_remote is None:
            return
        nodes = await anyio.to_thread.run_sync(_node_resources, self.address)
        where = pending_location(self.address, pending_needs(self.run, nodes))
        await self.hooks.on_remote(self.job, where)

    async def _watch_stop(self, scope: anyio.CancelScope) -> None:
        """A job stopped while it waits for resources never hears of it (its
        supervisor does not exist yet): stop following it then."""
        await self.job.stop_sent.wait()
        info = await anyio.to_thread.run_sync(job_info, self.job.client, self.job.job_id)
        if info is not None and str(info.status) == "PENDING":
            self.unstarted = True
            scope.cancel()
        # else it runs: the worker answers the stop itself

    async def _tail(self) -> None:
        seen = 0
        async with aclosing(self.job.client.tail_job_logs(self.job.job_id)) as chunks:
            async for chunk in chunks:
                self.last_chunk_at = anyio.current_time()
                fresh = chunk[max(0, self.reader.read - seen) :]
                seen += len(chunk)
                if not self.located:  # output comes once the job's driver runs on a node
                    await self._locate()
                if fresh:
                    await self._take(fresh)
                if self.result is not None:
                    return

    async def _catch_up(self) -> None:
        """Whatever the stream had not given yet when it closed."""
        text = await anyio.to_thread.run_sync(self.job.client.get_job_logs, self.job.job_id)
        if len(text) > self.reader.read:
            await self._take(text[self.reader.read :])
        rest = self.reader.flush()
        if rest:
            self.stream.write(rest.encode())
            self.stream.flush()

    async def _take(self, chunk: str) -> None:
        """Read a chunk of output, off the event loop: its text goes to the log,
        its packs are applied. A reader that resumed mid-output and meets a
        frame out of order (an offset kept by an older exq) reads it all again
        from the start: packs apply once however often they are read."""
        with anyio.CancelScope(shield=True):  # a chunk is read, applied and counted whole
            try:
                text, packs = await anyio.to_thread.run_sync(self.reader.feed, chunk)
            except ShipmentError:
                if self.reader.start == 0:
                    raise
                raise _Replay() from None
            for _seq, pack in packs:
                with pack:
                    applied = await anyio.to_thread.run_sync(self.importer.apply, pack)
                await self._applied(applied)
            if text:
                self.stream.write(text.encode())
                self.stream.flush()
                lines = [line for line in text.splitlines() if line.strip()]
                self.last_line = lines[-1].strip() if lines else self.last_line
            # Never past the result pack: the run's end is not recorded yet, and
            # a daemon killed before it records it must read the result again.
            settled = self.saved[0] if self.result is not None else self.reader.settled
            saved = (settled, self.reader.written)
            if saved != self.saved:
                await anyio.to_thread.run_sync(_write_offsets, self.offset_path, *saved)
                self.saved = saved

    async def _applied(self, applied: Applied) -> None:
        meta = applied.meta
        if applied.kind == "result":
            await self._land(meta)
            self.result = meta
        elif applied.moved and self.hooks.callbacks.on_checkpoint is not None:
            await self.hooks.callbacks.on_checkpoint(
                CheckpointEvent(
                    sha=meta["sha"],
                    ref=meta["ref"],
                    name=meta.get("name") or self.run.name,
                    count=int(meta.get("count") or 0),
                    step=meta.get("step"),
                )
            )

    async def _land(self, meta: dict[str, Any]) -> None:
        """Fetch from the data remote the outputs of the commit the run ends at (its
        result, or for a failed run its last checkpoint), so the repository holds
        them as after a local run. One that cannot be fetched stays on the remote,
        where ``exq exp pull``/``exq pull`` find it: the run's outcome stands."""
        if self.remote is None or meta.get("outcome") not in ("success", "failed"):
            return
        project = self.importer.project
        git = Git.open(project.root)
        sha = meta.get("sha") or git.get_ref(self.importer.ref)
        if not sha:
            return
        note = OutputSink(stream=self.stream).note
        try:
            moved = await anyio.to_thread.run_sync(
                lambda: sync_cache.pull(project, git, [sha], self.remote, default_jobs())
            )
        except ExqError as exc:
            note(f"exq: warning: its outputs stay on remote '{self.remote}': {exc}")
            return
        if moved.done:
            note(f"exq: fetched {moved.done} object(s) of its outputs from remote '{self.remote}'")
        for rel in moved.missing:
            note(f"exq: warning: '{rel}' is on neither remote '{self.remote}' nor in the cache")

    async def _locate(self) -> None:
        info = await anyio.to_thread.run_sync(job_info, self.job.client, self.job.job_id)
        node = getattr(info, "driver_node_id", None) if info is not None else None
        if node and self.hooks.on_remote is not None:
            self.located = True
            await self.hooks.on_remote(self.job, f"ray {self.address} node {node[:8]}")

    def _end(self, info: Any) -> ExecResult:
        """The run's end: from its result pack, else from the job's end (``info``)."""
        status = "SUCCEEDED" if info is None else str(info.status)
        exit_code = getattr(info, "driver_exit_code", None)
        # An entrypoint that failed by itself said why on its last line.
        said = self.last_line if exit_code and exit_code > 0 else ""
        outcome, error, code = remote_end(
            self.result,
            status,
            exit_code,
            said or _summary(str(getattr(info, "message", "") or "")),
        )
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        how = "sent its result" if info is None else f"ended {info.status}"
        note = OutputSink(stream=self.stream).note
        note(f"exq: Ray job {self.job.job_id} {how}, {stamp}")
        # The run's last line, as a local run writes it.
        if outcome is Outcome.SUCCESS and self.result is not None:
            note(f"exq: experiment '{self.result.get('name')}' saved as {self.result['ref']}")
        else:
            note(f"exq: {'failed' if outcome is Outcome.FAILED else 'interrupted'}: {error}")
        if outcome is Outcome.SUCCESS and self.result is not None:
            return ExecResult(
                outcome,
                exit_code=0,
                experiment_ref=self.result["ref"],
                experiment_sha=self.result["sha"],
            )
        return ExecResult(outcome, exit_code=code, error=error)


# -- the Jobs API, in worker threads --------------------------------------------


def connect(address: str) -> Any:
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as exc:
        raise RayError(
            "the ray executor needs Ray's job client, which is not installed",
            hint="pip install 'exq[ray]'",
        ) from exc
    # Ray logs each upload and each closed log stream at INFO on stderr, which
    # is the daemon's log file: keep its errors only (its job client sets INFO
    # on its own loggers, so the handler filters).
    for handler in logging.getLogger("ray").handlers:
        handler.setLevel(logging.ERROR)
    try:
        return JobSubmissionClient(address)
    except Exception as exc:  # noqa: BLE001 - Ray raises plain ConnectionError/RuntimeError
        raise RayUnreachable(
            f"cannot reach the Ray cluster at {address}: {_first_line(exc)}"
        ) from exc


def pending_needs(run: RunRecord, nodes: list[dict[str, float]]) -> str:
    """What a pending job waits for, in words: ``2 CPUs``, and whether any node of
    the cluster (``nodes``: their total resources, [] if unknown) has that much."""
    needs = [
        (amount, key, unit)
        for amount, key, unit in ((run.cpus, "CPU", "CPUs"), (run.gpus, "GPU", "GPUs"))
        if amount
    ]
    words = ", ".join(f"{amount:g} {unit}" for amount, _, unit in needs)
    if nodes and any(amount > max(n.get(key, 0.0) for n in nodes) for amount, key, _ in needs):
        words += "; no node has that much now"
    return words


def _node_resources(address: str) -> list[dict[str, float]]:
    """The total resources of the cluster's live nodes, from its state API ([] if it
    does not answer that)."""
    url = f"{address.rstrip('/')}/api/v0/nodes?limit=10000"
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            nodes = json.load(reply)["data"]["result"]["result"]
        return [
            {key: float(value) for key, value in node.get("resources_total", {}).items()}
            for node in nodes
            if node.get("state") == "ALIVE"
        ]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def job_info(client: Any, job_id: str) -> Any:
    """The job's details, or None if the cluster does not know it."""
    try:
        return client.get_job_info(job_id)
    except RuntimeError as exc:
        if "does not exist" in str(exc) or "404" in str(exc):
            return None
        raise


def submit(
    client: Any,
    job_id: str,
    entrypoint: str,
    folder: Path,
    metadata: dict[str, str],
    resources: dict[str, float],
) -> None:
    try:
        client.submit_job(
            entrypoint=entrypoint,
            submission_id=job_id,
            runtime_env={"working_dir": str(folder)},
            metadata=metadata,
            **resources,
        )
    except Exception as exc:  # noqa: BLE001
        if "already exists" in str(exc):
            return  # submitted before a restart: it is followed, not started again
        if _is_connection_error(exc):
            raise RayUnreachable(
                f"cannot reach the Ray cluster at {client.get_address()}: {_first_line(exc)}"
            ) from exc
        raise RayError(f"the Ray cluster refused job {job_id}: {_first_line(exc)}") from exc


def _is_connection_error(exc: BaseException) -> bool:
    """Whether the cluster did not answer (as opposed to answering with an error):
    Ray's client lets the errors of ``requests`` (OSErrors) through."""
    return isinstance(exc, OSError | TimeoutError)


def _summary(message: str) -> str:
    """One line of a job's end message: why it died, when Ray says so."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    why = [line for line in lines if "died because" in line]
    return (why or lines or [""])[0]


def _leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first exception a task group failed with."""
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return (lines[-1] if "Traceback" in text and lines else (lines[0] if lines else repr(exc)))[
        :300
    ]


def _read_offsets(path: Path) -> tuple[int, int]:
    """(where to read on, how far the text was written); one number from an older exq."""
    try:
        numbers = [int(word) for word in path.read_text().split()]
    except (FileNotFoundError, ValueError):
        return 0, 0
    if not numbers:
        return 0, 0
    return numbers[0], numbers[-1]


def _write_offsets(path: Path, settled: int, written: int) -> None:
    atomic_write_text(path, f"{settled} {written}\n")
