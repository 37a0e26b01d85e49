"""The ray executor's cost per run, against the local executor, on one trivial sweep.

A one-node Ray cluster is started on 127.0.0.1 (as the tests start it). One
exq daemon (``queue start -j 2 --address ...``) runs the same sweep of
``N_RUNS`` points twice, in two copies of one project: once on the local
executor, once with ``--executor ray``. Each is timed from the ``queue
start`` (or the enqueue, once the daemon runs) until every experiment ref
exists. The overhead per run is total x jobs / runs minus the stage's own
time; a single run alone is timed too (enqueue to experiment ref), which
shows the latency a user waits for one run.

DVC has no cluster executor, so the comparison is exq against itself: the
ratio printed is ray/local.

Run with `make bench`, or: .venv/bin/python bench/ray_bench.py (needs `make ray`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, cache_bytecode, exq_bin, git_commit_all, git_init, run
from queue_bench import DVC_YAML, TRAIN, stage_seconds

sys.path.insert(0, str(ROOT))
from tests.ray_cluster import ray_available, start_cluster, stop_cluster  # noqa: E402

N_RUNS = 8
JOBS = 2
TIMEOUT = 600.0


def make_project(path: Path, exq: str) -> None:
    path.mkdir(parents=True)
    git_init(path)
    (path / "train.py").write_text(TRAIN)
    (path / "params.yaml").write_text("lr: 0.1\n")
    (path / "dvc.yaml").write_text(DVC_YAML)
    run([exq, "init"], path)
    git_commit_all(path, "bench project")


def ended(exq: str, path: Path) -> int:
    """Runs of the queue that ended (a cluster run's ref lands before its row ends)."""
    out = subprocess.run(
        [exq, "queue", "status", "--json"], cwd=path, check=True, capture_output=True, text=True
    ).stdout
    runs = json.loads(out)["runs"]
    failed = [run for run in runs if run["state"] in ("failed", "interrupted", "cancelled")]
    if failed:
        sys.exit(f"run {failed[0]['id']} ended {failed[0]['state']}: {failed[0]['error']}")
    return sum(1 for run in runs if run["state"] == "success")


def wait_for(exq: str, path: Path, count: int, start: float, label: str) -> float:
    deadline = start + TIMEOUT
    while ended(exq, path) < count:
        if time.perf_counter() > deadline:
            sys.exit(f"{label}: only {ended(exq, path)} of {count} runs ended within {TIMEOUT:g} s")
        time.sleep(0.02)
    return time.perf_counter() - start


def sweep(exq: str, path: Path, executor: str) -> float:
    values = ",".join(f"0.{i + 1:03d}" for i in range(N_RUNS))
    before = ended(exq, path)
    start = time.perf_counter()
    run([exq, "exp", "run", "--queue", "--executor", executor, "-S", f"lr={values}"], path)
    return wait_for(exq, path, before + N_RUNS, start, executor)


def single(exq: str, path: Path, executor: str) -> float:
    before = ended(exq, path)
    start = time.perf_counter()
    run([exq, "exp", "run", "--queue", "--executor", executor, "-S", "lr=0.999"], path)
    return wait_for(exq, path, before + 1, start, executor)


def line(label: str, local_s: float, ray_s: float) -> None:
    print(
        f"{label:<30} local {local_s:7.3f} s   ray {ray_s:7.3f} s   ray/local {ray_s / local_s:6.1f}x"
    )


def main() -> None:
    if not ray_available():
        sys.exit("Ray is not installed in this interpreter: run 'make ray' first")
    exq = exq_bin()
    with tempfile.TemporaryDirectory(prefix="exq-rbench-") as tmp_name:
        tmp = Path(tmp_name)
        cache_bytecode(tmp)
        os.environ["EXQ_STATE_DIR"] = str(tmp / "state")
        runtime = tempfile.mkdtemp(prefix="exq-rb", dir="/tmp")  # short socket path
        os.environ["EXQ_RUNTIME_DIR"] = str(Path(runtime) / "run")
        ray_temp = Path(tempfile.mkdtemp(prefix="exqray-", dir="/tmp"))
        proc, address = start_cluster(ray_temp)
        try:
            base = tmp / "base"
            make_project(base, exq)
            local_dir, ray_dir = tmp / "local", tmp / "ray"
            shutil.copytree(base, local_dir, symlinks=True)
            shutil.copytree(base, ray_dir, symlinks=True)
            stage = stage_seconds(base)
            run([exq, "queue", "start", "-j", str(JOBS), "--address", address], base)
            print(
                f"workload: a sweep of {N_RUNS} runs of a one-stage pipeline (stage alone"
                f" {stage:.3f} s), {JOBS} at a time; one-node Ray cluster on 127.0.0.1;"
                f" {os.cpu_count()} cores"
            )
            local_total = sweep(exq, local_dir, "local")
            ray_total = sweep(exq, ray_dir, "ray")
            line(f"{N_RUNS} runs, -j {JOBS} (total)", local_total, ray_total)
            per_run = [total * JOBS / N_RUNS - stage for total in (local_total, ray_total)]
            line("overhead per run", max(per_run[0], 1e-6), per_run[1])
            line(
                "one run alone (enqueue->end)",
                single(exq, local_dir, "local"),
                single(exq, ray_dir, "ray"),
            )
        finally:
            subprocess.run([exq, "queue", "stop", "--kill"], cwd=tmp, capture_output=True)
            stop_cluster(proc)
            shutil.rmtree(ray_temp, ignore_errors=True)
            shutil.rmtree(runtime, ignore_errors=True)


if __name__ == "__main__":
    main()
