"""The fixed cost of each command: exq against dvc in a small project, and exq's imports.

For each command, the median wall time of several runs of exq and of dvc in
two copies of one small project (a two-stage pipeline that has run, one
experiment, one queued run for exq's ``queue status``), printed with the
ratio dvc/exq. Then each exq command runs once under ``python -X importtime``:
the modules it imported and their cumulative import time, and a loud
``DENIED`` line for every module on the command's deny list (``exq --version``
must not import pygit2, for example). A denied import fails nothing: the
benchmark reports, the test suite checks.

Run with `make bench` (it installs the real dvc into .venv-dvc first).
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

from common import cache_bytecode, dvc_bin, exq_bin, git_commit_all, git_init

RUNS = int(os.environ.get("EXQ_BENCH_RUNS", "7"))

DVC_YAML = """\
stages:
  prep:
    cmd: PY prep.py
    deps: [params.yaml, prep.py]
    outs: [prep.txt]
  train:
    cmd: PY train.py
    deps: [prep.txt, train.py]
    params: [train.lr]
    metrics:
      - metrics.json:
          cache: false
"""

# Heavy modules a command must not pay for: pipeline modules, git, tables, the daemon.
PIPELINE = ("exq.engine.run.commands", "exq.engine.spec.templating", "exq.engine.experiments")
DENY_ALWAYS = ("ray", "optuna", "hydra", "s3fs", "fsspec")
# The commands main answers before typer: none of them imports typer, click or rich.
NO_TYPER = ("typer", "click", "rich")
DENY = {
    "--version": ("pygit2", "rich", "typer", "exq.engine", "exq.daemon", *PIPELINE),
    "--help": ("pygit2", "typer", "click", "exq.daemon", "exq.engine", *PIPELINE),
    "exp --help": ("pygit2", "typer", "click", "exq.daemon", "exq.engine", *PIPELINE),
    "queue status": (
        *NO_TYPER,
        "pygit2",
        "exq.engine.spec",
        "exq.engine.run",
        "exq.engine.experiments",
    ),
    "status": (*NO_TYPER, "pygit2", "exq.daemon", "exq.engine.experiments", "exq.engine.plots"),
    "dag": (*NO_TYPER, "pygit2", "sqlite3", "exq.daemon", "exq.engine.experiments"),
    "stage list": (*NO_TYPER, "pygit2", "sqlite3", "exq.daemon", "exq.engine.experiments"),
    "metrics show": (*NO_TYPER, "pygit2", "exq.daemon", "exq.engine.plots"),
    "exp show --json": (*NO_TYPER, "exq.engine.plots"),
}

# (label, exq arguments, dvc arguments or None when dvc has no such command)
COMMANDS = [
    ("--version", ["--version"], ["--version"]),
    ("--help", ["--help"], ["--help"]),
    ("exp --help", ["exp", "--help"], ["exp", "--help"]),
    ("status", ["status"], ["status"]),
    ("dag", ["dag"], ["dag"]),
    ("stage list", ["stage", "list"], ["stage", "list"]),
    ("metrics show", ["metrics", "show"], ["metrics", "show"]),
    ("exp show --json", ["exp", "show", "--json"], ["exp", "show", "--json"]),
    ("queue status", ["queue", "status"], ["queue", "status"]),
]


def make_project(path: Path) -> None:
    path.mkdir(parents=True)
    git_init(path)
    (path / "params.yaml").write_text("train:\n  lr: 0.1\n")
    (path / "dvc.yaml").write_text(DVC_YAML.replace("PY", sys.executable))
    (path / "prep.py").write_text("open('prep.txt', 'w').write(open('params.yaml').read())\n")
    (path / "train.py").write_text(
        "import json\njson.dump({'acc': 0.5}, open('metrics.json', 'w'))\n"
    )
    git_commit_all(path, "small project")


def wall(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 3):  # 3: exq's "daemon not running" for queue commands
        sys.exit(f"{' '.join(cmd)} failed in {cwd}:\n{done.stdout}\n{done.stderr}")
    return elapsed


def median_of(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    wall(cmd, cwd, env)  # warm the page cache and bytecode
    return statistics.median(wall(cmd, cwd, env) for _ in range(RUNS))


def imported(cmd: list[str], cwd: Path, env: dict[str, str]) -> dict[str, float]:
    """Module -> cumulative import seconds, from ``python -X importtime``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", exq_bin(), *cmd],
        cwd=cwd,
        env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
        capture_output=True,
        text=True,
    )
    found: dict[str, float] = {}
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)", line)
        if match:
            found[match.group(2)] = int(match.group(1)) / 1e6
    return found


def denied(label: str, modules: dict[str, float]) -> list[str]:
    rules = (*DENY_ALWAYS, *DENY.get(label, ()))
    return sorted(
        name for name in modules for rule in rules if name == rule or name.startswith(rule + ".")
    )


def main() -> None:
    exq, dvc = exq_bin(), dvc_bin()
    with tempfile.TemporaryDirectory(prefix="exq-bench-") as tmp:
        cache_bytecode(Path(tmp))
        # Read after cache_bytecode: an environment taken before it kept
        # PYTHONDONTWRITEBYTECODE beside the cache prefix, so every module of
        # every command (typer's, pygit2's) was compiled again at each run.
        env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATER": "1"}
        base = Path(tmp) / "base"
        make_project(base)
        dirs = {"exq": Path(tmp) / "exq", "dvc": Path(tmp) / "dvc"}
        for tool, d in dirs.items():
            shutil.copytree(base, d)
            binary = exq if tool == "exq" else dvc
            for args in (["init"], ["repro"], ["exp", "run", "-S", "train.lr=0.2"]):
                wall([binary, *args], d, env)
        state = Path(tmp) / "state"
        env.update(EXQ_STATE_DIR=str(state), EXQ_RUNTIME_DIR=str(Path(tmp) / "run"))
        wall([exq, "exp", "run", "--queue", "-S", "train.lr=0.3"], dirs["exq"], env)
        floor = median_of([sys.executable, "-c", "pass"], base, env)
        print(f"fixed cost per command, median of {RUNS}; python -c pass: {floor:.3f} s")
        for label, exq_args, dvc_args in COMMANDS:
            exq_s = median_of([exq, *exq_args], dirs["exq"], env)
            dvc_s = median_of([dvc, *dvc_args], dirs["dvc"], env) if dvc_args else float("nan")
            ratio = dvc_s / exq_s if exq_s else float("inf")
            print(
                f"{label:<18} exq {exq_s:6.3f} s   dvc {dvc_s:6.3f} s   dvc/exq {ratio:5.1f}x",
                flush=True,
            )
        print("\nimports per exq command (cumulative seconds of the largest):")
        for label, exq_args, _ in COMMANDS:
            modules = imported(exq_args, dirs["exq"], env)
            top = sorted(((s, m) for m, s in modules.items() if m.count(".") <= 2), reverse=True)[
                :4
            ]
            print(
                f"{label:<18} {len(modules):4d} modules; "
                + ", ".join(f"{m} {s:.3f}" for s, m in top)
            )
            for name in denied(label, modules):
                print(f"  DENIED: '{label}' imports {name}")


if __name__ == "__main__":
    main()
