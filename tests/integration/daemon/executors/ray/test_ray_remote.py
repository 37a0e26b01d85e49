"""A checkpointed 1 GiB model through a data remote (a real S3 server), on a real
Ray cluster whose node dies mid-push.

The project's default remote is an S3 bucket on moto's server (credentials in
``.dvc/config.local``). Each step of the training script writes a 1 GiB model,
so each checkpoint pushes 1 GiB: ten times Ray's limit for a job's files,
which the job never carries (it holds git objects and object names). The node
is killed while it pushes the second checkpoint: the remote holds only whole
objects, the run resumes on another node by pulling the first checkpoint's
model, and when it lands the daemon fetches the final model, which ``exp
apply`` then puts into the workspace.
"""

from __future__ import annotations

import random
import re
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from exq.daemon.config import DaemonConfig
from exq.daemon.states import RunState
from exq.daemon.store import SyncStore
from exq.engine.data import remote_config
from exq.engine.experiments.manage import apply
from exq.engine.experiments.refs import exp_ref
from exq.engine.git import Git
from exq.engine.run.project import init_project, open_project
from tests.integration.daemon.executors.ray.test_ray_executor import two_nodes
from tests.ray_cluster import kill_node
from tests.s3_server import BUCKET, KEY, SECRET, s3fs_at
from tests.support import PY, chain_steps, computed, daemon, enqueue, get, git, rdv, wait_for

pytest.importorskip("s3fs")
pytest.importorskip("moto")
pytestmark = [pytest.mark.anyio, pytest.mark.ray]
__all__ = ["two_nodes"]  # the fixture, shared with the other Ray tests

SIZE = 1 << 30  # the model: 1 GiB
BLOCK = 1 << 20
LONG = 600.0  # seconds: a GiB through moto's server on a busy 2-core machine is slow

# Each attempt writes its own bytes (its pid leads each model), as training
# rarely repeats itself exactly; the script notes the md5 of each model it writes.
TRAIN = f"""\
import hashlib, os, random, sys
from pathlib import Path
from exq.live import Live

def block(step):
    return random.Random(step).randbytes({BLOCK})

rdv = Path(os.environ["RDV"])
live = Live("logs")
model = Path("model.bin")
if live.step:  # resumed: the model must be the last checkpoint's, whole
    with open(model, "rb") as stream:
        head = stream.read({BLOCK})
    if head[8:] != block(live.step - 1)[8:] or model.stat().st_size != {SIZE}:
        sys.exit("resumed without the last checkpoint's model")
for step in range(live.step, 2):
    with open(rdv / "computed", "a") as notes:
        notes.write(f"{{step}} {{os.getpid()}}\\n")
    data = os.getpid().to_bytes(8, "little") + block(step)[8:]
    digest = hashlib.md5()
    with open(model, "wb") as out:
        for _ in range({SIZE // BLOCK}):
            out.write(data)
            digest.update(data)
    with open(rdv / "models", "a") as notes:
        notes.write(f"{{step}} {{digest.hexdigest()}}\\n")
    live.log("epoch", step)
    live.next_step()
live.end()
"""

DVCYAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    deps:
    - train.py
    outs:
    - model.bin:
        checkpoint: true
    live:
      logs:
        summary: true
        cache: false
"""


def models(config: DaemonConfig) -> list[tuple[int, str]]:
    """(step, md5) of each model the script wrote, over every attempt."""
    lines = (rdv(config) / "models").read_text().splitlines()
    return [(int(step), md5) for step, md5 in (line.split() for line in lines)]


def make_project(root: Path, endpoint: str) -> str:
    """A checkpoint project whose default remote is the bucket; its baseline."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    init_project(root)
    (root / "train.py").write_text(TRAIN)
    (root / "dvc.yaml").write_text(DVCYAML)
    (root / ".gitignore").write_text("/model.bin\n")
    dvc = root / ".dvc"
    remote_config.add(
        dvc, "store", f"s3://{BUCKET}/project", default=True, local=False, force=False
    )
    remote_config.modify(dvc, "store", "endpointurl", endpoint, local=False)
    remote_config.modify(dvc, "store", "region", "us-east-1", local=False)
    remote_config.modify(dvc, "store", "access_key_id", KEY, local=True)
    remote_config.modify(dvc, "store", "secret_access_key", SECRET, local=True)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "a big model")
    return git(root, "rev-parse", "HEAD").strip()


def on_remote(endpoint: str) -> dict[str, int]:
    """The objects in the bucket's DVC layout and their sizes."""
    fs = s3fs_at(endpoint)
    fs.invalidate_cache()
    found = fs.find(f"{BUCKET}/project/files/md5", detail=True)
    return {
        path.rsplit("/", 2)[1] + path.rsplit("/", 1)[1]: info["size"]
        for path, info in found.items()
    }


def job_sizes(log: str) -> list[float]:
    """The KiB of each job sent, as the run's log says."""
    return [float(kib) for kib in re.findall(r"as job \S+ \((\d+) KiB\)", log)]


async def test_a_1gib_checkpointed_model_goes_through_s3_and_survives_a_dead_node(
    s3_server: str,
    config: DaemonConfig,
    tmp_path: Path,
    two_nodes: tuple[str, Callable[[], subprocess.Popen[bytes]]],
) -> None:
    address, add_worker = two_nodes
    first = add_worker()
    repo = tmp_path / "train"
    baseline = make_project(repo, s3_server)
    config = replace(config, executor="ray", ray_address=address)
    run_id = enqueue(config, repo, "big")
    with SyncStore(config.db_path) as store:  # it needs a CPU: only worker nodes have one
        store._conn.execute("UPDATE runs SET cpus = 1 WHERE id = ?", (run_id,))

    def log() -> str:
        path = get(config, run_id).log_path
        return Path(path).read_text() if path and Path(path).exists() else ""

    def pushing_second() -> bool:
        record = get(config, run_id)
        assert record.state in (RunState.QUEUED, RunState.RUNNING), log()
        return log().count("to remote 'store'") == 2 and record.checkpoints == 1

    async with daemon(config):
        # The second checkpoint's push is under way: the machine dies.
        await wait_for(pushing_second, "the second checkpoint's push", LONG)
        kill_node(first)
        await wait_for(lambda: get(config, run_id).attempts == 2, "the second attempt", LONG)
        # Only whole objects on the remote, under their md5 names.
        found = on_remote(s3_server)
        written = dict(models(config))
        assert written[0] in found  # the first checkpoint's, whole
        assert set(found) <= set(written.values())
        assert set(found.values()) == {SIZE}
        add_worker()
        await wait_for(lambda: get(config, run_id).state is not RunState.RUNNING, "its end", LONG)
    record = get(config, run_id)
    assert (record.state, record.attempts, record.error) == (RunState.SUCCESS, 2, None), log()
    text = log()
    assert "pulled 1 object(s), 1073.7 MB, from remote 'store'" in text  # the checkpoint's model
    assert "fetched 1 object(s) of its outputs from remote 'store'" in text
    assert "warning" not in text  # the live section's logs are not cached: not looked for
    assert len(job_sizes(text)) == 2 and max(job_sizes(text)) < 64  # names, not data
    tip = Git.open(repo).get_ref(exp_ref(baseline, "big"))
    assert tip is not None and chain_steps(repo, tip, baseline) == [0, 1]
    assert computed(rdv(config))[0] == 0

    apply(open_project(repo), "big")
    model = repo / "model.bin"
    assert model.stat().st_size == SIZE
    with open(model, "rb") as stream:
        assert stream.read(BLOCK)[8:] == random.Random(1).randbytes(BLOCK)[8:]
    assert models(config)[-1][0] == 1
