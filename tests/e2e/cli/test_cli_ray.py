"""``exq`` driving the real daemon with the ray executor against a local cluster.

The same sweep of four runs, two at a time, goes once to Ray and once to the
local executor, in two copies of one repository (same baseline commit, same
cache): the four experiments of each get the same names and the same trees,
commit for commit, and the outs come back into the cache.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import PY, exq, write
from tests.e2e.queue_helpers import (
    QueueEnv,
    queued_ids,
    runs_by_id,
    wait_for,
    wait_states,
)
from tests.ray_cluster import RayCluster
from tests.support import git

pytestmark = pytest.mark.ray

TRAIN = """\
import json, sys
from pathlib import Path

lr = float(Path("params.yaml").read_text().split("lr:")[1].split()[0])
rows = Path("data/raw.txt").read_text().split()
score = round(sum(float(r) for r in rows) * lr, 6)
Path("model.bin").write_text(f"weights {score}\\n")
Path("metrics.json").write_text(json.dumps({"score": score}))
print(f"trained lr={lr} score={score}", flush=True)
"""
DVC_YAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    deps:
    - train.py
    - data/raw.txt
    params:
    - lr
    outs:
    - model.bin
    metrics:
    - metrics.json:
        cache: false
"""
DATES = {
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+00:00",
}


def make_sweep_project(root: Path) -> Path:
    """A committed project whose data is tracked by exq (so it is in the cache)."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    exq("init", cwd=root)
    write(root / "data" / "raw.txt", "1 2 3 4\n")
    exq("add", "data/raw.txt", cwd=root)
    write(root / "train.py", TRAIN)
    write(root / "params.yaml", "lr: 0.1\n")
    write(root / "dvc.yaml", DVC_YAML)
    write(root / ".gitignore", "/model.bin\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "project")
    return root


def job_id(env: QueueEnv, run_id: int, attempt: int = 1) -> str:
    """The Ray job of a run's attempt (other tests' daemons share the cluster)."""
    daemon_id = (env.state / "daemon.id").read_text().strip()
    return f"exq-{daemon_id}-{run_id}-{attempt}"


def exp_trees(root: Path) -> dict[str, str]:
    """Experiment name -> the tree of its commit."""
    refs = git(root, "for-each-ref", "--format=%(refname)", "refs/exps/").split()
    return {
        ref.rsplit("/", 1)[1]: git(root, "rev-parse", f"{ref}^{{tree}}").strip() for ref in refs
    }


def test_a_sweep_on_ray_matches_the_same_sweep_run_locally(
    queue_env: QueueEnv,
    tmp_path: Path,
    ray_cluster: RayCluster,  # noqa: F811
) -> None:
    far = make_sweep_project(tmp_path / "far")
    near = tmp_path / "near"
    git(tmp_path, "clone", "-q", str(far), str(near))
    shutil.copytree(far / ".dvc" / "cache", near / ".dvc" / "cache")
    assert git(near, "rev-parse", "HEAD") == git(far, "rev-parse", "HEAD")

    _, out, _ = exq(
        "queue", "start", "-j", "2", "--executor", "ray", "--address", ray_cluster.address, cwd=far
    )
    assert "sending runs to Ray" in out
    _, out, _ = exq("exp", "run", "--queue", "--cpus", "1", "-S", "lr=0.1,0.2,0.3,0.4", cwd=far)
    ray_ids = queued_ids(out)
    _, out, _ = exq(
        "exp", "run", "--queue", "--executor", "local", "-S", "lr=0.1,0.2,0.3,0.4", cwd=near
    )
    local_ids = queued_ids(out)
    runs = wait_states(far, ray_ids + local_ids, {"success", "failed"}, seconds=300)

    assert {runs[i]["state"] for i in ray_ids + local_ids} == {"success"}
    assert all(runs[i]["location"].startswith(f"ray {ray_cluster.address} node ") for i in ray_ids)
    assert all(runs[i]["location"] == "local" for i in local_ids)
    trees = exp_trees(far)
    assert len(trees) == 4 and trees == exp_trees(near)

    jobs = [
        job
        for job in ray_cluster.client().list_jobs()
        if job.submission_id in {job_id(queue_env, i) for i in ray_ids}
    ]
    assert len(jobs) == 4 and {runs[i]["cpus"] for i in ray_ids} == {1.0}

    _, log, _ = exq("queue", "logs", str(ray_ids[0]), cwd=far)
    assert "trained lr=0.1 score=1.0" in log and "\x1e" not in log
    _, shown, _ = exq("exp", "show", "--json", cwd=far)
    assert "score" in shown and len(json.loads(shown)) >= 1
    # The model came back into the cache: applying an experiment checks it out.
    last = runs[ray_ids[-1]]["experiment_ref"].rsplit("/", 1)[1]
    exq("exp", "apply", last, cwd=far)
    assert (far / "model.bin").read_text() == "weights 4.0\n"

    for line in (queue_env.state / "daemon.log").read_text().splitlines():
        json.loads(line)  # Ray's own INFO lines stay out of the daemon's log
    logs = queue_env.state / "logs"
    assert list(logs.glob(f"{ray_ids[0]}.log.*.offset"))
    exq("queue", "remove", str(ray_ids[0]), cwd=far)
    assert not list(logs.glob(f"{ray_ids[0]}.log*"))


def test_an_unreachable_cluster_fails_the_run_with_one_clear_error(
    queue_env: QueueEnv,
    tmp_path: Path,  # noqa: F811
) -> None:
    from tests.ray_cluster import ray_available

    if not ray_available():
        pytest.skip("Ray is not installed (make ray)")
    root = make_sweep_project(tmp_path / "repo")
    exq("queue", "start", "--address", "http://127.0.0.1:9", cwd=root)  # nothing listens there
    _, out, _ = exq("exp", "run", "--queue", "--executor", "ray", "-n", "lost", cwd=root)
    (run_id,) = queued_ids(out)
    run = wait_states(root, [run_id], {"success", "failed"}, seconds=120)[run_id]
    assert run["state"] == "failed"
    assert run["error"].startswith("cannot reach the Ray cluster at http://127.0.0.1:9")
    assert "\n" not in run["error"]


def test_a_bad_executor_name_is_refused_before_anything_is_queued(
    queue_env: QueueEnv,
    tmp_path: Path,  # noqa: F811
) -> None:
    root = make_sweep_project(tmp_path / "repo")
    for args in (
        ["exp", "run", "--queue", "--executor", "slurm"],
        ["queue", "start", "--executor", "slurm"],
    ):
        code, _, err = exq(*args, cwd=root, check=False)
        assert code != 0 and err.startswith("ERROR: unknown executor 'slurm'")
        assert len(err.strip().splitlines()) == 1
    assert git(root, "for-each-ref", "refs/exq/").strip() == ""
    code, _, err = exq("exp", "run", "--executor", "ray", cwd=root, check=False)
    assert code == 2 and "add --queue" in err


def test_a_run_waiting_for_cpus_says_so_and_holds_no_slot_until_killed(
    queue_env: QueueEnv,
    tmp_path: Path,
    ray_cluster: RayCluster,  # noqa: F811
) -> None:
    root = make_sweep_project(tmp_path / "repo")
    exq("queue", "start", "--executor", "ray", "--address", ray_cluster.address, cwd=root)
    _, out, _ = exq(
        "exp", "run", "--queue", "--executor", "ray", "--cpus", "64", "-n", "big", cwd=root
    )
    (big,) = queued_ids(out)
    pending = f"ray {ray_cluster.address} pending (needs 64 CPUs; no node has that much now)"
    wait_for(lambda: runs_by_id(root)[big]["location"] == pending, "the run to say it waits", 60)
    _, shown, _ = exq("queue", "status", cwd=root)
    assert "pending (needs 64 CPUs" in shown

    # One slot (-j 1), and the waiting run does not hold it.
    _, out, _ = exq("exp", "run", "--queue", "--executor", "local", "-n", "quick", cwd=root)
    (quick,) = queued_ids(out)
    assert wait_states(root, [quick], {"success", "failed"}, 120)[quick]["state"] == "success"
    assert runs_by_id(root)[big]["state"] == "running"

    exq("queue", "kill", str(big), cwd=root)
    run = wait_states(root, [big], {"failed", "success"}, seconds=120)[big]
    assert (run["state"], run["error"]) == ("failed", "killed")
    # Ray itself leaves the job pending: its stop reaches the job's supervisor,
    # which does not exist before the resources do. The daemon let go of it.


TICKS = """\
import sys, time
for i in range(6):
    print(f"tick {i}", flush=True)
    time.sleep(0.5)
"""


def test_queue_logs_follows_a_ray_run_as_it_goes(
    queue_env: QueueEnv,
    tmp_path: Path,
    ray_cluster: RayCluster,  # noqa: F811
) -> None:
    root = make_sweep_project(tmp_path / "repo")
    write(root / "ticks.py", TICKS)
    write(root / "dvc.yaml", DVC_YAML.replace("train.py", "ticks.py && " + PY + " train.py", 1))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "ticks")
    exq("queue", "start", "--executor", "ray", "--address", ray_cluster.address, cwd=root)
    _, out, _ = exq("exp", "run", "--queue", "-n", "ticking", cwd=root)
    (run_id,) = queued_ids(out)
    wait_for(lambda: runs_by_id(root)[run_id]["state"] == "running", "the run to start", 60)
    _, log, _ = exq("queue", "logs", "-f", str(run_id), cwd=root, timeout=120)
    assert [
        line.split("] ")[-1]
        for line in log.splitlines()
        if "tick " in line and "ticks.py" not in line
    ] == [f"tick {i}" for i in range(6)]
    assert "sent its result" in log and "\x1e" not in log
    assert runs_by_id(root)[run_id]["state"] == "success"
