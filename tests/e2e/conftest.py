"""End-to-end fixtures: a small project in a real git repo, and ``exq`` run as a subprocess.

Stage commands call ``tool.py`` (written into every project) instead of shell
one-liners, so they behave the same under exq and the real dvc, and so tests
can tell which stages ran: every ``run`` appends the stage's name to
``runs.log``, a file that is neither a dep nor an out of any stage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support import git

if TYPE_CHECKING:
    from tests.e2e.queue_helpers import QueueEnv

EXQ_BIN = Path(sys.executable).parent / "exq"
# The interpreter stage commands run with: the one running the tests.
PY = sys.executable

TOOL = '''\
"""Stand-ins for real stage commands, driven by tests."""
import os, subprocess, sys, time
from pathlib import Path


def log(name):
    with open("runs.log", "a") as handle:
        handle.write(name + "\\n")


def run(name, out, *deps):
    """Log the run, then write ``out`` from the deps' contents and the name."""
    log(name)
    text = "".join(Path(d).read_text() for d in deps) + name + "\\n"
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text)
    print("ran " + name, flush=True)


def wait_for(path, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not Path(path).exists():
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for " + path)
        time.sleep(0.01)


def rendezvous(name, other, out):
    """Only completes when the stage ``other`` runs at the same time."""
    Path(name + ".here").write_text("")
    print(name + " waiting for " + other, flush=True)
    wait_for(other + ".here")
    print(name + " met " + other, flush=True)
    run(name, out)


def serial(name, out):
    """Fails when another ``serial`` stage runs at the same time."""
    mine = Path("running." + name)
    mine.write_text("")
    time.sleep(0.2)
    others = [p.name for p in Path(".").glob("running.*") if p != mine]
    mine.unlink()
    if others:
        sys.exit(name + " overlapped with " + ",".join(others))
    run(name, out)


def spawn(out):
    """Record our pid and a grandchild's, then wait on it for ever."""
    child = subprocess.Popen(["sleep", "300"])
    Path("grandchild.pid.tmp").write_text(str(child.pid))
    os.replace("grandchild.pid.tmp", "grandchild.pid")
    Path("child.pid.tmp").write_text(str(os.getpid()))
    os.replace("child.pid.tmp", "child.pid")
    child.wait()
    run("spawn", out)


def fail(code):
    print("about to fail", flush=True)
    sys.exit(int(code))


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
'''


def exq(
    *args: str,
    cwd: Path,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> tuple[int, str, str]:
    """Run the installed ``exq`` console script; (exit code, stdout, stderr)."""
    # the default link types unless the test asks for others
    inherited = {k: v for k, v in os.environ.items() if k != "EXQ_CACHE_TYPE"}
    full_env = {**inherited, **(env or {})}
    done = subprocess.run(
        [str(EXQ_BIN), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"exq {' '.join(args)} exited {done.returncode}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done.returncode, done.stdout, done.stderr


def write(path: Path, text: str) -> Path:
    """Write a file, creating its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def runs(root: Path) -> list[str]:
    """Stage names in the order their commands ran, and reset the log."""
    log = root / "runs.log"
    if not log.exists():
        return []
    names = log.read_text().split()
    log.unlink()
    return names


def wait_until(condition: Callable[[], object], what: str, seconds: float = 30) -> None:
    """Poll ``condition`` until it is true, or fail naming ``what``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def tool(*args: str) -> str:
    """A stage command running ``tool.py`` with the tests' interpreter."""
    return " ".join([PY, "tool.py", *args])


@pytest.fixture(scope="session")
def project_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repo with ``exq init`` done and ``tool.py`` in place, made once per session."""
    repo = tmp_path_factory.mktemp("template") / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test")
    git(repo, "config", "user.email", "test@example.com")
    _, out, _ = exq("init", cwd=repo)
    assert "Initialized" in out and (repo / ".dvc" / "config").exists()
    write(repo / "tool.py", TOOL)
    return repo


@pytest.fixture
def project(tmp_path: Path, project_template: Path) -> Path:
    """A fresh copy of ``project_template``: a git repo after ``exq init``, no pipeline yet."""
    repo = tmp_path / "repo"
    shutil.copytree(project_template, repo, symlinks=True)
    return repo


BASIC_PARAMS = "prep:\n  n: 1\ntrain:\n  lr: 0.1\n"


def basic_dvcyaml() -> str:
    """prep -> train, plus an independent stage ``other``."""
    return f"""\
stages:
  prep:
    cmd: {tool("run", "prep", "prep.txt", "data/raw.txt")}
    deps:
    - data/raw.txt
    params:
    - prep.n
    outs:
    - prep.txt
  train:
    cmd: {tool("run", "train", "model.txt", "prep.txt")}
    deps:
    - prep.txt
    params:
    - train.lr
    outs:
    - model.txt
  other:
    cmd: {tool("run", "other", "other.txt", "data/other.txt")}
    deps:
    - data/other.txt
    outs:
    - other.txt
"""


@pytest.fixture
def basic(project: Path) -> Path:
    """``project`` with the prep -> train pipeline and an independent ``other`` stage."""
    write(project / "params.yaml", BASIC_PARAMS)
    write(project / "data" / "raw.txt", "raw\n")
    write(project / "data" / "other.txt", "other\n")
    write(project / "dvc.yaml", basic_dvcyaml())
    return project


@pytest.fixture
def queue_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[QueueEnv]:
    """The queue's folders in ``tmp_path`` (the socket under a short /tmp folder),
    set in the environment; a daemon left running is stopped at the end."""
    from tests.e2e.queue_helpers import QueueEnv, stop_daemon  # they use this module

    short = Path(tempfile.mkdtemp(prefix="exq-q", dir="/tmp"))
    env = QueueEnv(state=tmp_path / "state", runtime=short / "run", shared=tmp_path / "shared")
    env.shared.mkdir()
    monkeypatch.setenv("EXQ_STATE_DIR", str(env.state))
    monkeypatch.setenv("EXQ_RUNTIME_DIR", str(env.runtime))
    monkeypatch.setenv("EXQ_GRACE_SECONDS", "5")
    monkeypatch.setenv("QSHARED", str(env.shared))
    yield env
    stop_daemon(env)
    shutil.rmtree(short, ignore_errors=True)
