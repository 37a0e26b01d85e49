"""The ray executor against faults, driven through ``exq`` as a user would:
daemons stopped or killed while packs are on their way back.

The sweep's training script takes a checkpoint at each step with a model of
random bytes, so each pack spans many chunks of the cluster's output. The
daemon is frozen (SIGSTOP) the moment its offset file moves by more than two
chunks, that is while a pack is coming in, then stopped with ``queue stop
--kill`` or killed with -9, and started again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from exq.daemon.client import Client
from tests.conftest import git
from tests.e2e.conftest import EXQ_BIN, PY, exq, write
from tests.e2e.queue_helpers import (
    QueueEnv,
    daemon_pid,
    queued_ids,
    runs_by_id,
    wait_for,
    wait_states,
)
from tests.ray_cluster import RayCluster
from tests.support import chain_steps

pytestmark = pytest.mark.ray
CHUNK = 20000  # characters: how the cluster cuts a job's output
SLOW = 240.0

# A checkpoint at each step, the model random bytes (packs of many chunks);
# each step computed is noted in NOTES/computed-<lr> (the cluster's jobs do not
# see the test's environment).
BIG_TRAIN = """\
import os, time
from pathlib import Path
from exq.live import Live

lr = Path("params.yaml").read_text().split("lr:")[1].split()[0]
notes = Path("NOTES") / f"computed-{lr}"
live = Live("logs")
for step in range(live.step, 6):
    with open(notes, "a") as out:
        out.write(f"{step}\\n")
    Path("model.bin").write_bytes(os.urandom(600_000))
    live.log("loss", 1.0 / (step + 1))
    live.next_step()
    time.sleep(0.3)
live.end()
"""
BIG_DVC_YAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    deps:
    - train.py
    params:
    - lr
    outs:
    - model.bin:
        checkpoint: true
    live:
      logs:
        summary: true
        cache: false
"""


def make_big_checkpoint_project(root: Path, notes: Path) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    exq("init", cwd=root)
    write(root / "train.py", BIG_TRAIN.replace("NOTES", str(notes)))
    write(root / "params.yaml", "lr: 0.1\n")
    write(root / "dvc.yaml", BIG_DVC_YAML)
    write(root / ".gitignore", "/model.bin\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "project")
    return root


def read_offsets(env: QueueEnv) -> dict[Path, int]:
    found = {}
    for path in (env.state / "logs").glob("*.offset"):
        try:
            found[path] = int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return found


def freeze_while_a_pack_comes(env: QueueEnv, root: Path, ids: list[int]) -> int:
    """SIGSTOP the daemon once one of its offsets moved by more than two chunks
    (an exq that saves its offset at each chunk is then inside a pack); its pid."""
    pid = daemon_pid(env)
    assert pid is not None
    before = read_offsets(env)
    deadline = time.monotonic() + SLOW
    while time.monotonic() < deadline:
        now = read_offsets(env)
        if any(value - before.get(path, 0) > 2 * CHUNK for path, value in now.items()):
            os.kill(pid, signal.SIGSTOP)
            return pid
        time.sleep(0.001)
    raise AssertionError("no pack came")


def start(root: Path, address: str) -> None:
    exq("queue", "start", "-j", "2", "--executor", "ray", "--address", address, cwd=root)


def test_daemons_stopped_or_killed_while_packs_come_back_lose_no_run(
    queue_env: QueueEnv,
    tmp_path: Path,
    ray_cluster: RayCluster,  # noqa: F811
) -> None:
    root = make_big_checkpoint_project(tmp_path / "repo", queue_env.shared)
    start(root, ray_cluster.address)
    _, out, _ = exq("exp", "run", "--queue", "--cpus", "1", "-S", "lr=0.1,0.2", cwd=root)
    ids = queued_ids(out)

    # A stop with --kill lets go of the jobs: they run on on the cluster.
    pid = freeze_while_a_pack_comes(queue_env, root, ids)
    stop = subprocess.Popen([str(EXQ_BIN), "queue", "stop", "--kill"], cwd=root)
    time.sleep(0.5)  # its request waits in the frozen daemon's socket
    os.kill(pid, signal.SIGCONT)
    assert stop.wait(timeout=60) == 0
    wait_for(lambda: daemon_pid(queue_env) is None, "the daemon to stop", 60)
    start(root, ray_cluster.address)

    # The next one is killed outright.
    pid = freeze_while_a_pack_comes(queue_env, root, ids)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: daemon_pid(queue_env) is None, "the daemon to die", 30)
    start(root, ray_cluster.address)

    runs = wait_states(root, ids, {"success", "failed", "interrupted"}, seconds=SLOW)
    assert {runs[i]["state"] for i in ids} == {"success"}, [runs[i]["error"] for i in ids]
    assert {runs[i]["attempt"] for i in ids} == {1}  # followed again, never sent twice
    baseline = git(root, "rev-parse", "HEAD").strip()
    for lr in ("0.1", "0.2"):  # every step computed once
        assert (queue_env.shared / f"computed-{lr}").read_text().split() == [
            str(s) for s in range(6)
        ]
    for i in ids:
        tip = git(root, "rev-parse", runs[i]["experiment_ref"]).strip()
        assert chain_steps(root, tip, baseline)[-6:] == [0, 1, 2, 3, 4, 5]
        _, log, _ = exq("queue", "logs", str(i), cwd=root)
        assert "\x1e" not in log and "out of order" not in log
        assert log.splitlines()[-1].startswith("exq: experiment '")  # as a local run's log ends


# One checkpoint with a model of SIZE random bytes, then a wait for the file GO.
HEAVY_TRAIN = """\
import os, sys, time
from pathlib import Path
from exq.live import Live

live = Live("logs")
with open("model.bin", "wb") as out:
    for _ in range(SIZE >> 20):
        out.write(os.urandom(1 << 20))
live.log("loss", 0.5)
live.next_step()
deadline = time.monotonic() + 300
while not Path("GO").exists():
    if time.monotonic() > deadline:
        sys.exit("timed out waiting for GO")
    time.sleep(0.05)
live.end()
"""
HEAVY = 150 << 20


def peak_rss(pid: int) -> int:
    """The peak resident size of a process, in bytes (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_big_checkpoint_lands_in_bounded_memory_and_its_resume_names_the_limit(
    queue_env: QueueEnv,
    tmp_path: Path,
    ray_cluster: RayCluster,  # noqa: F811
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    exq("init", cwd=root)
    go = queue_env.shared / "go"
    script = HEAVY_TRAIN.replace("SIZE", str(HEAVY)).replace("GO", str(go))
    write(root / "train.py", script)
    write(root / "params.yaml", "lr: 0.1\n")
    write(root / "dvc.yaml", BIG_DVC_YAML)
    write(root / ".gitignore", "/model.bin\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "project")
    start(root, ray_cluster.address)
    pid = daemon_pid(queue_env)
    assert pid is not None
    before = rss(pid)
    _, out, _ = exq("exp", "run", "--queue", "-n", "heavy", cwd=root)
    (run_id,) = queued_ids(out)

    # While the checkpoint comes back, the daemon answers at once, every time.
    client = Client(queue_env.socket, timeout=5.0)
    waits = []
    while runs_by_id(root)[run_id]["checkpoints"] < 1:
        assert runs_by_id(root)[run_id]["state"] == "running"
        began = time.monotonic()
        client.ping()
        waits.append(time.monotonic() - began)
        time.sleep(0.05)
    grown = peak_rss(pid) - before
    print(f"pings: {len(waits)}, slowest {max(waits):.3f} s; daemon RSS growth {grown >> 20} MiB")
    assert max(waits) < 1.0  # it answered 2.5-3.8 s late while decoding on its loop
    assert grown < HEAVY  # streamed: far less than the output itself
    model = git(root, "show", f"{runs_by_id(root)[run_id]['experiment_ref']}:dvc.lock")
    assert "model.bin" in model

    # Stopped on the cluster, it would resume from its checkpoint: the model is
    # over Ray's limit for a job's files, which the run says in one line.
    job = f"exq-{(queue_env.state / 'daemon.id').read_text().strip()}-{run_id}-1"
    ray_cluster.client().stop_job(job)
    run = wait_states(root, [run_id], {"failed", "success"}, seconds=SLOW)[run_id]
    assert run["state"] == "failed" and run["attempt"] == 2
    assert run["error"].startswith(
        "the run needs more than Ray's limit of 100 MiB for a job's files;"
        f" the largest: model.bin ({HEAVY / 1e6:.1f} MB)"
    )
