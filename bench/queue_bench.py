"""exq's queue against DVC's: enqueue latency, and 20 queued runs two at a time.

The workload: a one-stage pipeline whose command (a short Python script
reading params.yaml and writing metrics.json) takes a few hundredths of a
second. Two identical copies of the project are made; one is driven by exq,
the other by dvc, in the same run of this script.

(a) enqueue latency: the median of 20 ``exp run --queue -S lr=...`` each
    (exq with no daemon running, dvc with no worker: both only queue);
(b) the 20 queued runs, 2 at a time: ``exq queue start -j 2`` against
    ``dvc queue start -j 2``, timed until all 20 experiment refs exist; the
    overhead per experiment is that time x 2 / 20 minus the stage's own time.

exq's daemon gets its own state and runtime folders (nothing of the user's
queue is touched) and is stopped at the end, as are dvc's workers.

Run with `make bench`, or: EXQ_BENCH_DVC=/path/to/dvc .venv/bin/python bench/queue_bench.py
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import cache_bytecode, dvc_bin, exq_bin, git_commit_all, git_init, report, run

N_RUNS = 20
JOBS = 2
TIMEOUT = 600.0
EXP_REF = re.compile(r"^refs/exps/[0-9a-f]{2}/[0-9a-f]{38}/[^/]+$")

TRAIN = """\
import json
params = dict(l.split(": ", 1) for l in open("params.yaml").read().splitlines() if ": " in l)
json.dump({"acc": float(params["lr"]) * 2}, open("metrics.json", "w"))
"""

DVC_YAML = f"""\
stages:
  train:
    cmd: {sys.executable} -I train.py
    params:
    - lr
    metrics:
    - metrics.json:
        cache: false
"""


def make_project(path: Path) -> None:
    path.mkdir(parents=True)
    git_init(path)
    (path / "train.py").write_text(TRAIN)
    (path / "params.yaml").write_text("lr: 0.1\n")
    (path / "dvc.yaml").write_text(DVC_YAML)
    git_commit_all(path, "bench project")


def exp_count(path: Path) -> int:
    """Experiments that exist (refs/exps/<2>/<38>/<name>; not dvc's queue refs)."""
    out = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname)", "refs/exps/"],
        cwd=path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return sum(1 for ref in out.split() if EXP_REF.match(ref))


def wait_for_runs(path: Path, start: float, label: str) -> float:
    """Seconds from ``start`` until ``N_RUNS`` experiments exist."""
    deadline = start + TIMEOUT
    while exp_count(path) < N_RUNS:
        if time.perf_counter() > deadline:
            sys.exit(f"{label}: only {exp_count(path)} of {N_RUNS} runs ended within {TIMEOUT:g} s")
        time.sleep(0.02)
    return time.perf_counter() - start


def stage_seconds(path: Path) -> float:
    times = [run([sys.executable, "-I", "train.py"], path) for _ in range(5)]
    return statistics.median(times)


def enqueue_latency(exq: str, dvc: str, exq_dir: Path, dvc_dir: Path) -> tuple[float, float]:
    """Median seconds of ``exp run --queue -S lr=...``, the two tools taking turns."""
    exq_times, dvc_times = [], []
    for i in range(N_RUNS):
        value = f"lr=0.{i + 1:03d}"
        exq_times.append(run([exq, "exp", "run", "--queue", "-S", value], exq_dir))
        dvc_times.append(run([dvc, "exp", "run", "--queue", "-S", value], dvc_dir))
    return statistics.median(exq_times), statistics.median(dvc_times)


def queued_runs(exq: str, dvc: str, exq_dir: Path, dvc_dir: Path) -> tuple[float, float]:
    """Seconds for the 20 queued runs, ``JOBS`` at a time, from the start command on."""
    start = time.perf_counter()
    run([exq, "queue", "start", "-j", str(JOBS)], exq_dir)
    exq_total = wait_for_runs(exq_dir, start, "exq")
    run([exq, "queue", "stop"], exq_dir)

    start = time.perf_counter()
    # Not run(): dvc's detached workers keep captured pipes open, so it would never return.
    subprocess.run(
        [dvc, "queue", "start", "-j", str(JOBS)],
        cwd=dvc_dir,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "DVC_NO_ANALYTICS": "1"},
    )
    dvc_total = wait_for_runs(dvc_dir, start, "dvc")
    return exq_total, dvc_total


def stop_dvc_workers(dvc: str, dvc_dir: Path) -> None:
    subprocess.run(
        [dvc, "queue", "stop", "--kill"],
        cwd=dvc_dir,
        capture_output=True,
        timeout=120,
        env={**os.environ, "DVC_NO_ANALYTICS": "1"},
    )


def prepare_environment(dvc: str, tmp: Path) -> None:
    """dvc's queue workers run ``dvc`` from $PATH; both tools read cached bytecode."""
    os.environ["PATH"] = f"{Path(dvc).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    cache_bytecode(tmp)


def main() -> None:
    exq, dvc = exq_bin(), dvc_bin()
    # DVC's queue workers may still write into the folder after 'queue stop
    # --kill' returns: its removal is tried again below rather than failing
    # the benchmark after its figures are printed.
    with tempfile.TemporaryDirectory(prefix="exq-qbench-", ignore_cleanup_errors=True) as tmp:
        prepare_environment(dvc, Path(tmp))
        # exq's queue for this run only; the socket path must stay short.
        os.environ["EXQ_STATE_DIR"] = str(Path(tmp) / "state")
        runtime = tempfile.mkdtemp(prefix="exq-qb", dir="/tmp")
        os.environ["EXQ_RUNTIME_DIR"] = str(Path(runtime) / "run")
        base = Path(tmp) / "base"
        make_project(base)
        exq_dir, dvc_dir = Path(tmp) / "exq", Path(tmp) / "dvc"
        shutil.copytree(base, exq_dir, symlinks=True)
        shutil.copytree(base, dvc_dir, symlinks=True)
        run([exq, "init"], exq_dir)
        run([dvc, "init", "-q"], dvc_dir)
        git_commit_all(exq_dir, "init")
        git_commit_all(dvc_dir, "init")
        try:
            run([exq, "queue", "status"], exq_dir)  # warm the bytecode cache
            stage = stage_seconds(base)
            print(
                f"workload: {N_RUNS} queued runs of a one-stage pipeline (stage alone "
                f"{stage:.3f} s), {JOBS} at a time; {os.cpu_count()} cores"
            )
            exq_enq, dvc_enq = enqueue_latency(exq, dvc, exq_dir, dvc_dir)
            report(f"enqueue (median of {N_RUNS})", exq_enq, dvc_enq)
            exq_total, dvc_total = queued_runs(exq, dvc, exq_dir, dvc_dir)
            report(f"{N_RUNS} runs, -j {JOBS} (total)", exq_total, dvc_total)
            per_run = [total * JOBS / N_RUNS - stage for total in (exq_total, dvc_total)]
            report("overhead per experiment", max(per_run[0], 1e-6), per_run[1])
        finally:
            subprocess.run([exq, "queue", "stop", "--kill"], cwd=tmp, capture_output=True)
            stop_dvc_workers(dvc, dvc_dir)
            shutil.rmtree(runtime, ignore_errors=True)
    remove_when_quiet(Path(tmp))


def remove_when_quiet(folder: Path, seconds: float = 30) -> None:
    """Remove what the temporary folder's own cleanup left, once DVC's workers stop writing."""
    deadline = time.monotonic() + seconds
    while folder.exists() and time.monotonic() < deadline:
        shutil.rmtree(folder, ignore_errors=True)
        time.sleep(0.5)
    if folder.exists():
        print(f"note: {folder} is left behind: DVC's queue workers still write into it")


if __name__ == "__main__":
    main()
