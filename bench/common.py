"""Helpers shared by the benchmarks: finding the tools, timing commands, git repos."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cache_bytecode(tmp: Path) -> None:
    """Let exq's commands keep their bytecode, as an installed package does.

    DVC's site-packages were compiled at install; exq may be an editable
    install whose bytecode is never written when PYTHONDONTWRITEBYTECODE is
    set, so it would compile every module at every command. Cache it under
    ``tmp`` instead (nothing is written into the source tree).
    """
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        os.environ["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    # Every module's bytecode, written before any timing (commands import their
    # modules lazily, so no one command would write them all).
    sources = [str(ROOT / folder) for folder in ("exq", "engine", "live", "daemon", "cli")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *sources], check=True)


def exq_bin() -> str:
    candidate = Path(sys.executable).parent / "exq"
    return str(candidate) if candidate.exists() else shutil.which("exq") or "exq"


def dvc_bin() -> str:
    candidate = os.environ.get("EXQ_BENCH_DVC") or str(ROOT / ".venv-dvc" / "bin" / "dvc")
    if not Path(candidate).exists():
        sys.exit(f"the real dvc is not at {candidate}: run 'make dvc' first")
    return candidate


def run(cmd: list[str], cwd: Path) -> float:
    """Run ``cmd`` in ``cwd``, fail loudly on error, return wall seconds."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATER": "1"}
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed in {cwd}:\n{done.stdout}\n{done.stderr}")
    return elapsed


def best_of(times: int, cmd: list[str], cwd: Path) -> float:
    return min(run(cmd, cwd) for _ in range(times))


def git_init(path: Path) -> None:
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.name", "bench"],
        ["config", "user.email", "bench@exq.invalid"],
    ):
        subprocess.run(["git", *args], cwd=path, check=True)


def git_commit_all(path: Path, message: str) -> None:
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(["git", "commit", "-qm", message], cwd=path, check=True)


def report(label: str, exq_s: float, dvc_s: float) -> None:
    ratio = dvc_s / exq_s if exq_s > 0 else float("inf")
    print(f"{label:<28} exq {exq_s:8.3f} s   dvc {dvc_s:8.3f} s   dvc/exq {ratio:6.1f}x")
