"""Training scripts and project files shared by the checkpoint tests (not a test module)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import git

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
