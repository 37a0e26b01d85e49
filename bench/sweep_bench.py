"""Sweeps that search and prune: grid, random, TPE and TPE + ASHA on one budget of trials.

The workload: a synthetic "training" whose loss curve per step is a known
function of two params (``train.lr``, log scale, and ``train.momentum``), so
the best reachable loss is known exactly and no real training runs. Each
step sleeps ``STEP_SECONDS`` (the compute), logs the loss with ``exq.live``
and takes a checkpoint (``Live.next_step``), so a pruner can judge the run at
every step. A curve converges towards its params' final loss, slightly faster
at a higher lr: early losses rank the runs roughly, not exactly, as their
final ones do.

The four searches, each on a fresh copy of the project and a fresh queue
(daemon at ``-j 2``), ``TRIALS`` runs each:

* grid: ``-S train.lr=<6 values> -S train.momentum=<6 values>`` (36 points);
* random: ``--samples 36`` over ``tag(log, interval(...))`` and ``interval(...)``;
* TPE: ``--optimize logs.json:loss --minimize --trials 36`` (Optuna's TPE);
* TPE + ASHA: the same with ``--prune asha``.

Measured: the steps the runs executed (each step the script began, counted
in a file outside the project, so a step cut short by a pruner counts too),
the wall time from ``queue start`` until every run ended, and the best final
loss found against the known optimum. The aim: TPE + ASHA within 1% of the
optimum with at most 40% of the grid's steps.

Run with `make bench`, or: .venv/bin/python bench/sweep_bench.py
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import cache_bytecode, exq_bin, git_commit_all, git_init, run

TRIALS = 36
STEPS = 27
JOBS = 2
STEP_SECONDS = 0.02
SEED = 1
TIMEOUT = 900.0
OBJECTIVE = "logs.json:loss"
LR_GRID = [10 ** (-4 + 3 * i / 5) for i in range(6)]  # 1e-4 ... 1e-1, log-spaced
MOMENTUM_GRID = [i / 5 for i in range(6)]  # 0.0 ... 1.0
SPACE = ["train.lr=tag(log, interval(0.0001, 0.1))", "train.momentum=interval(0, 1)"]

# The loss at step t of a run with (lr, momentum): the final loss of its params
# plus a decay, a little faster at a higher lr. Shared by the script (as text)
# and the known optimum below, so both compute the same numbers.
CURVE = """\
import math

def loss_at(lr, momentum, t):
    x = math.log10(lr)
    final = 1.0 + 0.12 * (x + 2.3) ** 2 + 0.6 * (momentum - 0.83) ** 2
    rate = 0.2 + 0.05 * (x + 4) / 3
    return final + 0.8 * math.exp(-rate * t)
"""

TRAIN = (
    CURVE
    + """
import os, time
from pathlib import Path
from exq.live import Live

params = {}
for line in Path("params.yaml").read_text().splitlines():
    if line.startswith("  ") and ":" in line:
        key, value = line.strip().split(":", 1)
        params[key] = float(value)
live = Live("logs")
counter = os.environ["BENCH_STEPS_FILE"]
for t in range(live.step, int(params["steps"])):
    with open(counter, "a") as out:  # this step begins: counted even if cut short
        out.write("1\\n")
    time.sleep(float(os.environ.get("BENCH_STEP_SECONDS", "0.02")))
    live.log("loss", round(loss_at(params["lr"], params["momentum"], t), 6))
    Path("model.txt").write_text(f"{t}\\n")  # the checkpoint out
    live.next_step()
live.end()
"""
)

DVC_YAML = f"""\
stages:
  train:
    cmd: {sys.executable} train.py
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
        html: false
        cache: false
"""


def known_optimum() -> float:
    """The lowest loss at the last step over the params' ranges, by a fine scan."""
    scope: dict[str, object] = {}
    exec(CURVE, scope)  # the same function the script runs
    loss_at = scope["loss_at"]
    assert callable(loss_at)
    best = math.inf
    for i in range(3001):
        lr = 10 ** (-4 + 3 * i / 3000)
        # The momentum term is separate from lr's: its best is 0.83 within [0, 1].
        best = min(best, loss_at(lr, 0.83, STEPS - 1))
    return best


@dataclass
class Result:
    name: str
    runs: int
    steps: int
    seconds: float
    best: float


def make_project(path: Path) -> None:
    path.mkdir(parents=True)
    git_init(path)
    (path / "train.py").write_text(TRAIN)
    (path / "params.yaml").write_text(f"train:\n  lr: 0.01\n  momentum: 0.5\n  steps: {STEPS}\n")
    (path / "dvc.yaml").write_text(DVC_YAML)
    (path / ".gitignore").write_text("")
    git_commit_all(path, "bench project")


def grid_args() -> list[str]:
    lrs = ",".join(f"{v:.6g}" for v in LR_GRID)
    momenta = ",".join(f"{v:g}" for v in MOMENTUM_GRID)
    return ["-S", f"train.lr={lrs}", "-S", f"train.momentum={momenta}"]


def space_args() -> list[str]:
    return [arg for text in SPACE for arg in ("-S", text)]


SEARCHES: dict[str, list[str]] = {
    "grid": grid_args(),
    "random": [*space_args(), "--samples", str(TRIALS), "--seed", str(SEED)],
    "TPE": [
        *space_args(),
        *("--optimize", OBJECTIVE, "--minimize", "--trials", str(TRIALS)),
        *("--sampler", "tpe", "--seed", str(SEED)),
    ],
    "TPE + ASHA": [
        *space_args(),
        *("--optimize", OBJECTIVE, "--minimize", "--trials", str(TRIALS)),
        *("--sampler", "tpe", "--seed", str(SEED), "--prune", "asha"),
    ],
}


def exq_json(exq: str, cwd: Path, *args: str) -> object:
    done = subprocess.run([exq, *args, "--json"], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"exq {' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def ended_runs(exq: str, cwd: Path) -> list[dict[str, object]]:
    status = exq_json(exq, cwd, "queue", "status")
    assert isinstance(status, dict)
    runs = status["runs"]
    return [r for r in runs if r["state"] not in ("queued", "running")]


def final_loss(repo: Path, ref: str) -> float | None:
    shown = subprocess.run(
        ["git", "show", f"{ref}:logs.json"], cwd=repo, capture_output=True, text=True
    )
    if shown.returncode != 0:
        return None
    summary = json.loads(shown.stdout)
    return float(summary["loss"]) if int(summary.get("step", -1)) >= STEPS - 1 else None


def measure(exq: str, name: str, args: list[str], tmp: Path, base: Path) -> Result:
    """One search on its own copy of the project and its own queue."""
    folder = tmp / name.replace(" ", "").replace("+", "-")
    repo = folder / "project"
    shutil.copytree(base, repo, symlinks=True)
    os.environ["EXQ_STATE_DIR"] = str(folder / "state")
    # The socket path must stay short.
    os.environ["EXQ_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="exq-sb", dir="/tmp")
    steps_file = folder / "steps"
    os.environ["BENCH_STEPS_FILE"] = str(steps_file)
    os.environ["BENCH_STEP_SECONDS"] = str(STEP_SECONDS)
    run([exq, "exp", "run", "--queue", *args], repo)
    start = time.perf_counter()
    run([exq, "queue", "start", "-j", str(JOBS)], repo)
    try:
        while len(done := ended_runs(exq, repo)) < TRIALS:
            if time.perf_counter() - start > TIMEOUT:
                sys.exit(f"{name}: only {len(done)} of {TRIALS} runs ended in {TIMEOUT:g} s")
            time.sleep(0.05)
        seconds = time.perf_counter() - start
    finally:
        subprocess.run([exq, "queue", "stop", "--kill"], cwd=repo, capture_output=True)
        shutil.rmtree(os.environ["EXQ_RUNTIME_DIR"], ignore_errors=True)
    losses = [
        loss
        for r in done
        if r["state"] == "success" and isinstance(r["experiment_ref"], str)
        if (loss := final_loss(repo, r["experiment_ref"])) is not None
    ]
    steps = len(steps_file.read_text().splitlines()) if steps_file.exists() else 0
    return Result(name, len(done), steps, seconds, min(losses, default=math.inf))


def main() -> None:
    exq = exq_bin()
    optimum = known_optimum()
    with tempfile.TemporaryDirectory(prefix="exq-sweep-bench-") as tmp:
        cache_bytecode(Path(tmp))
        base = Path(tmp) / "base"
        make_project(base)
        run([exq, "init"], base)
        git_commit_all(base, "init")
        print(
            f"workload: {TRIALS} trials of a synthetic {STEPS}-step training "
            f"({STEP_SECONDS * 1000:g} ms a step, a checkpoint each), -j {JOBS}, "
            f"{os.cpu_count()} cores; known optimum {optimum:.5f}"
        )
        results = [measure(exq, name, args, Path(tmp), base) for name, args in SEARCHES.items()]
    grid_steps = results[0].steps
    print(
        f"{'search':<12} {'runs':>5} {'steps':>6} {'of grid':>8} {'wall s':>8} "
        f"{'best loss':>10} {'vs optimum':>11}"
    )
    for r in results:
        gap = (r.best / optimum - 1) * 100
        share = r.steps / grid_steps * 100 if grid_steps else math.nan
        print(
            f"{r.name:<12} {r.runs:>5} {r.steps:>6} {share:>7.1f}% {r.seconds:>8.1f} "
            f"{r.best:>10.5f} {gap:>+10.2f}%"
        )
    asha = results[-1]
    met = (asha.best / optimum - 1) <= 0.01 and asha.steps <= 0.4 * grid_steps
    print(
        f"aim (TPE + ASHA within 1% of the optimum, at most 40% of the grid's steps): "
        f"{'met' if met else 'not met'}"
    )


if __name__ == "__main__":
    main()
