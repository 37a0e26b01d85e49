"""What the tests share across tiers: the real git CLI, a daemon project whose stage
is driven through params, queueing runs through the queue service, the daemon
in-process, checkpoint training projects, and a fake executor for the
scheduler's unit tests.

Stage commands of :func:`make_project` run ``stage.py``, which reads ``mode``
from params.yaml: ``ok`` writes its out, ``fail`` exits 7, ``meet`` waits until
another run is at the rendezvous too (so two runs provably overlap), ``block``
waits for the file ``go``, ``stubborn`` does that while ignoring SIGINT. Every
stage leaves ``start-<run>-<pid>`` (holding its worker slot) in the rendezvous
folder ``RDV``, given through ``config.extra_env``.

The training script of :func:`make_training_project` (``HOLD_TRAIN``) takes a
checkpoint at every step, notes each step it computes in ``$RDV/computed`` (so
a step computed twice shows), and after the step ``$HOLD_AT`` waits for the
file ``$RDV/go``.
"""

from __future__ import annotations

import json
import os
import posixpath
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import anyio
import anyio.abc

from exq.daemon import service
from exq.daemon.client import Client
from exq.daemon.config import DaemonConfig
from exq.daemon.executors.base import ExecResult, RunHooks
from exq.daemon.main import run
from exq.daemon.service import EnqueueRequest
from exq.daemon.states import RunRecord, RunState
from exq.daemon.store import SyncStore
from exq.engine.run.project import init_project

# -- git ------------------------------------------------------------------------

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(cwd: Path, *args: str) -> str:
    """Run the real git CLI in ``cwd`` and return its stdout."""
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


# -- a daemon project, queued runs, the daemon in-process ---------------------------


STAGE = """\
import os, signal, sys, time
from pathlib import Path

params = dict(l.split(": ", 1) for l in Path("params.yaml").read_text().splitlines() if ": " in l)
mode = params["mode"].strip()
rdv = Path(os.environ["RDV"])
run = os.environ["EXQ_RUN_ID"]
if mode == "stubborn":  # before anyone can know we started
    signal.signal(signal.SIGINT, signal.SIG_IGN)
(rdv / f"start-{run}-{os.getpid()}").write_text(os.environ["EXQ_WORKER_SLOT"])


def wait(cond, what):
    deadline = time.monotonic() + 30
    while not cond():
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for " + what)
        time.sleep(0.01)


if mode == "fail":
    print("about to fail", flush=True)
    sys.exit(7)
if mode == "meet":
    (rdv / f"meet-{run}").write_text("")
    wait(lambda: any(p.name != f"meet-{run}" for p in rdv.glob("meet-*")), "another run")
if mode in ("block", "stubborn"):
    wait(lambda: (rdv / "go").exists(), "go")
Path("out.txt").write_text(f"lr={params['lr'].strip()} run={run}\\n")
print("done", run, flush=True)
"""


def make_project(root: Path) -> Path:
    """A committed exq project whose one stage runs ``stage.py``."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    init_project(root)
    (root / "stage.py").write_text(STAGE)
    (root / "params.yaml").write_text("mode: ok\nlr: 0.1\n")
    (root / "dvc.yaml").write_text(
        f"stages:\n  train:\n    cmd: {sys.executable} stage.py\n    deps:\n    - stage.py\n"
        "    params:\n    - mode\n    - lr\n    outs:\n    - out.txt\n"
    )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "baseline")
    return root


def enqueue(
    config: DaemonConfig,
    repo: Path,
    name: str,
    *params: str,
    env: dict[str, str] | None = None,
) -> int:
    """Queue a run through the queue service, as ``exp run --queue`` does; the
    daemon is not rung (the tests' daemon runs in this thread). The run's stages
    get ``env`` (default: this process's environment), as a shell's would."""
    request = EnqueueRequest(name=name, set_params=list(params), stage_jobs=1, env=env)
    ((run_id, _),) = service.enqueue(request, config, root=repo, ring=False)
    return run_id


def rdv(config: DaemonConfig) -> Path:
    return Path(config.extra_env["RDV"])


def get(config: DaemonConfig, run_id: int) -> RunRecord:
    with SyncStore(config.db_path) as store:
        record = store.get_run(run_id)
    assert record is not None
    return record


async def wait_for(condition: Callable[[], object], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await anyio.sleep(0.02)


async def wait_state(config: DaemonConfig, run_id: int, *states: RunState) -> RunRecord:
    await wait_for(lambda: get(config, run_id).state in states, f"run {run_id} in {states}")
    return get(config, run_id)


def started(config: DaemonConfig, run_id: int) -> list[Path]:
    return sorted(rdv(config).glob(f"start-{run_id}-*"))


def events(config: DaemonConfig) -> list[dict[str, object]]:
    return [json.loads(line) for line in config.daemon_log.read_text().splitlines()]


def alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


async def call(config: DaemonConfig, method: str, *args: object) -> object:
    client = Client(config.socket_path)
    return await anyio.to_thread.run_sync(lambda: getattr(client, method)(*args))


@asynccontextmanager
async def daemon(config: DaemonConfig) -> AsyncIterator[anyio.abc.TaskGroup]:
    async with anyio.create_task_group() as tg:
        await tg.start(partial(run, config, install_signal_handlers=False))
        yield tg
        tg.cancel_scope.cancel()


# -- checkpoint training projects ----------------------------------------------------

PY = sys.executable

# A pure-Python "training": the model is one number that grows by ``lr`` a step;
# exq.live logs the loss and takes a checkpoint at each step end. With
# PAUSE_AT=<step> it stops after that step's checkpoint, half into the next
# step (a logged value and a torn model file), and waits to be interrupted.
TRAIN = """\
import os, time
from pathlib import Path
from exq.live import Live

params = {}
for line in Path("params.yaml").read_text().splitlines():
    if line.startswith("  ") and ":" in line:
        key, value = line.strip().split(":", 1)
        params[key] = float(value)
live = Live("logs")
model = Path("model.txt")
weight = float(model.read_text()) if model.exists() else 0.0
pause_at = int(os.environ.get("PAUSE_AT", "-1"))
for epoch in range(live.step, int(params["epochs"])):
    weight = round(weight + params["lr"], 6)
    model.write_text(f"{weight}\\n")
    live.log("loss", round(1.0 / (1.0 + weight), 6))
    live.log("weight", weight)
    live.next_step()
    if epoch == pause_at:
        live.log("loss", 99.0)
        model.write_text("torn\\n")
        Path("paused").write_text(str(os.getpid()))
        while True:
            time.sleep(0.05)
live.end()
"""

PARAMS = "train:\n  epochs: 5\n  lr: 0.5\n"

DVCYAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    deps:
    - train.py
    params:
    - train
    outs:
    - model.txt:
        checkpoint: true
    live:
      logs:
        summary: true
        html: true
        cache: false
"""

# DVC 2's signal-file protocol, spoken by hand: write the outs, create
# $DVC_ROOT/.dvc/tmp/DVC_CHECKPOINT, wait until the runner deletes it.
SIGNAL_FILE_TRAIN = """\
import json, os, sys, time
from pathlib import Path

assert os.environ.get("DVC_CHECKPOINT") is not None, "DVC_CHECKPOINT is not set"
signal_file = Path(os.environ["DVC_ROOT"]) / ".dvc" / "tmp" / "DVC_CHECKPOINT"
for step in range(3):
    Path("model.txt").write_text(f"model after step {step}\\n")
    Path("metrics.json").write_text(json.dumps({"step": step, "acc": step / 10}))
    signal_file.parent.mkdir(parents=True, exist_ok=True)
    signal_file.write_text("")
    deadline = time.monotonic() + 30
    while signal_file.exists():
        if time.monotonic() > deadline:
            sys.exit("the runner never took the checkpoint")
        time.sleep(0.005)
"""

SIGNAL_FILE_DVCYAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    deps:
    - train.py
    outs:
    - model.txt:
        checkpoint: true
    metrics:
    - metrics.json
"""


def write_training_project(
    root: Path, *, dvcyaml: str = DVCYAML, script: str = TRAIN, params: str = PARAMS
) -> str:
    """Write the training project into a git repo (exq init done), commit it; the baseline."""
    (root / "train.py").write_text(script)
    (root / "params.yaml").write_text(params)
    (root / "dvc.yaml").write_text(dvcyaml)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "training project")
    return git(root, "rev-parse", "HEAD").strip()


def exp_ref_sha(root: Path, name: str) -> str:
    out = git(root, "for-each-ref", "--format=%(objectname) %(refname)", "refs/exps")
    shas = [line.split()[0] for line in out.splitlines() if line.endswith("/" + name)]
    assert len(shas) == 1, out
    return shas[0]


def chain(root: Path, tip: str, baseline: str) -> list[tuple[str, str]]:
    """(sha, parent) of each commit from ``tip`` down to the baseline, newest first."""
    out = git(root, "log", "--first-parent", "--format=%H %P", f"{baseline}..{tip}")
    return [(line.split()[0], line.split()[1]) for line in out.splitlines()]


def step_of(root: Path, sha: str) -> int | None:
    """The ``Exq-Step`` trailer of a commit (None on a final commit)."""
    message = git(root, "show", "-s", "--format=%B", sha)
    for line in message.splitlines():
        if line.startswith("Exq-Step: "):
            return int(line.split(": ", 1)[1])
    return None


def loss_steps(root: Path) -> list[int]:
    """The step column of ``logs/loss.tsv`` in the workspace."""
    lines = (root / "logs" / "loss.tsv").read_text().splitlines()[1:]
    return [int(line.split("\t")[1]) for line in lines]


def run_until_paused(
    root: Path, exq_bin: Path, *args: str, pause_at: int, signum: int = signal.SIGINT
) -> tuple[int, str]:
    """``exq exp run`` with PAUSE_AT, Ctrl-C (``signum``) once the script waits;
    (exit code, output)."""
    env = {**os.environ, "PAUSE_AT": str(pause_at)}
    proc = subprocess.Popen(
        [str(exq_bin), "exp", "run", *args],
        cwd=root,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not (root / "paused").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the script never paused:\n{proc.communicate()[0]}")
            time.sleep(0.02)
        proc.send_signal(signum)  # SIGINT: what a terminal's Ctrl-C sends exq
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (root / "paused").unlink()
    return proc.returncode, out


HOLD_TRAIN = """\
import os, sys, time
from pathlib import Path
from exq.live import Live

params = {}
for line in Path("params.yaml").read_text().splitlines():
    if line.startswith("  ") and ":" in line:
        key, value = line.strip().split(":", 1)
        params[key] = float(value)
rdv = Path(os.environ["RDV"])
hold_at = int(os.environ.get("HOLD_AT", "-1"))
live = Live("logs")
model = Path("model.txt")
weight = float(model.read_text()) if model.exists() else 0.0
for step in range(live.step, int(params["epochs"])):
    with open(rdv / "computed", "a") as notes:
        notes.write(f"{step} {os.getpid()}\\n")
    weight = round(weight + params["lr"], 6)
    model.write_text(f"{weight}\\n")
    live.log("loss", round(1.0 / (1.0 + weight), 6))
    live.next_step()
    if step == hold_at:
        (rdv / f"held-{os.getpid()}").write_text("")
        deadline = time.monotonic() + 60
        while not (rdv / "go").exists():
            if time.monotonic() > deadline:
                sys.exit("timed out waiting for go")
            time.sleep(0.01)
live.end()
"""


def make_training_project(root: Path, epochs: int = 5) -> tuple[Path, str]:
    """A committed checkpoint project running HOLD_TRAIN; (root, baseline)."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    init_project(root)
    baseline = write_training_project(
        root, dvcyaml=DVCYAML, script=HOLD_TRAIN, params=f"train:\n  epochs: {epochs}\n  lr: 0.5\n"
    )
    return root, baseline


def computed(folder: Path) -> list[int]:
    """The steps the script computed, in order, over every attempt."""
    path = folder / "computed"
    return [int(line.split()[0]) for line in path.read_text().splitlines()] if path.exists() else []


def chain_steps(root: Path, tip: str, baseline: str) -> list[int | None]:
    """``Exq-Step`` of each first-parent commit from the baseline up to ``tip``."""
    out = git(root, "log", "--first-parent", "--reverse", "--format=%H", f"{baseline}..{tip}")
    return [step_of(root, sha) for sha in out.split()]


def tsv_steps(root: Path, sha: str) -> list[int]:
    lines = git(root, "show", f"{sha}:logs/loss.tsv").splitlines()[1:]
    return [int(line.split("\t")[1]) for line in lines]


# -- a fake executor ------------------------------------------------------------------


Handler = Callable[[RunRecord, int, RunHooks], Awaitable[ExecResult]]


class FakeExecutor:
    """An :class:`~exq.daemon.executors.base.Executor` that runs nothing: each claimed
    run goes to ``handler(run, slot, hooks)``, whose result is the attempt's (as
    httpx's MockTransport answers requests with a function). It records the runs
    it was given, in order, so the scheduler's decisions are tested in milliseconds."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[tuple[int, int]] = []  # (run id, slot)

    async def execute(self, run: RunRecord, *, slot: int, hooks: RunHooks) -> ExecResult:
        self.calls.append((run.id, slot))
        return await self.handler(run, slot, hooks)


# -- files in memory -------------------------------------------------------------------


class MemorySource:
    """Files held in a dict (path -> text or bytes): a ``FileSource`` without files."""

    def __init__(self, files: Mapping[str, str | bytes]) -> None:
        self.files = {
            posixpath.normpath(name): data.encode() if isinstance(data, str) else data
            for name, data in files.items()
        }

    def read_bytes(self, path: str) -> bytes | None:
        return self.files.get(posixpath.normpath(path))
