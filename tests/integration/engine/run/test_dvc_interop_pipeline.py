"""The real dvc and ``exq`` on one project: each skips what the other ran.

Both tools run as subprocesses on a real git repository; skipped without dvc.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.dvc

EXQ_BIN = Path(sys.executable).parent / "exq"
PY = sys.executable

MAKE = """\
import sys
from pathlib import Path
# make.py OUT [DEP ...] [--dir]: write OUT (a folder of two files with --dir)
args = [a for a in sys.argv[1:] if a != "--dir"]
out, deps = Path(args[0]), args[1:]
text = "".join(Path(d).read_text() if Path(d).is_file() else d + "\\n" for d in deps)
with open("runs.log", "a") as log:
    log.write(out.as_posix() + "\\n")
if "--dir" in sys.argv:
    (out / "part").mkdir(parents=True, exist_ok=True)
    (out / "a.txt").write_text(text + "a\\n")
    (out / "part" / "b.txt").write_text(text + "b\\n")
else:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + out.name + "\\n")
"""

PARAMS = """\
models:
  us:
    thresh: 10
  gb:
    thresh: 15
report:
  digits: 3
"""

# a foreach over params, dir outs, an uncached metrics out, and a sub-folder dvc.yaml
DVC_YAML = f"""\
stages:
  prepare:
    cmd: {PY} make.py data/clean.txt data/raw.txt
    deps:
    - make.py
    - data/raw.txt
    outs:
    - data/clean.txt
  train:
    foreach: ${{models}}
    do:
      cmd: {PY} make.py models/${{key}} data/clean.txt ${{item.thresh}} --dir
      deps:
      - data/clean.txt
      outs:
      - models/${{key}}
  report:
    cmd: {PY} make.py metrics.json models/us/a.txt models/gb/a.txt
    deps:
    - models
    params:
    - report.digits
    metrics:
    - metrics.json:
        cache: false
"""

SUB_DVC_YAML = f"""\
stages:
  summary:
    cmd: {PY} ../make.py summary.txt ../metrics.json
    deps:
    - ../metrics.json
    outs:
    - summary.txt
"""

OUTS = [
    "data/clean.txt",
    "models/us/a.txt",
    "models/gb/part/b.txt",
    "metrics.json",
    "sub/summary.txt",
]


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise AssertionError(f"{argv} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr


def exq(cwd: Path, *args: str) -> str:
    return run([str(EXQ_BIN), *args], cwd)


@pytest.fixture
def dvc(dvc_bin: str, tmp_path: Path):  # noqa: ANN201 - a small callable
    env = {"DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site")}

    def call(cwd: Path, *args: str) -> str:
        return run([dvc_bin, *args], cwd, env)

    return call


def make_project(repo: Path) -> None:
    (repo / "make.py").write_text(MAKE)
    (repo / "params.yaml").write_text(PARAMS)
    (repo / "data").mkdir()
    (repo / "data" / "raw.txt").write_text("raw\n")
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "sub").mkdir()
    (repo / "sub" / "dvc.yaml").write_text(SUB_DVC_YAML)


def mtimes(repo: Path) -> dict[str, int]:
    return {rel: (repo / rel).stat().st_mtime_ns for rel in OUTS}


def locks(repo: Path) -> dict[str, bytes]:
    return {rel: (repo / rel).read_bytes() for rel in ("dvc.lock", "sub/dvc.lock")}


def ran(repo: Path) -> list[str]:
    """Outs written by make.py since the last call (root and sub folder)."""
    names = []
    for log in (repo / "runs.log", repo / "sub" / "runs.log"):
        if log.exists():
            names += log.read_text().split()
            log.unlink()
    return sorted(names)


def test_dvc_skips_everything_exq_ran(git_repo: Path, dvc) -> None:  # noqa: ANN001
    make_project(git_repo)
    exq(git_repo, "init")
    exq(git_repo, "repro")
    assert ran(git_repo) == [
        "data/clean.txt",
        "metrics.json",
        "models/gb",
        "models/us",
        "summary.txt",
    ]
    assert (git_repo / "sub" / "summary.txt").read_text().startswith("raw\nclean.txt\n10\n")
    lock = yaml.safe_load((git_repo / "dvc.lock").read_text())
    metrics = lock["stages"]["report"]["outs"][0]
    assert metrics["path"] == "metrics.json" and len(metrics["md5"]) == 32
    assert lock["stages"]["train@us"]["outs"][0]["md5"].endswith(".dir")
    before, lock_bytes = mtimes(git_repo), locks(git_repo)

    assert dvc(git_repo, "status").strip() == "Data and pipelines are up to date."
    assert json.loads(dvc(git_repo, "status", "--json")) == {}
    # dvc repro alone runs the pipeline of ./dvc.yaml; --all-pipelines takes sub/ too
    out = dvc(git_repo, "repro", "--all-pipelines")
    for stage in ("prepare", "train@us", "train@gb", "report", "sub/dvc.yaml:summary"):
        assert f"Stage '{stage}' didn't change, skipping" in out, out
    assert "Running stage" not in out
    assert ran(git_repo) == []
    assert mtimes(git_repo) == before
    assert locks(git_repo) == lock_bytes

    # a change made after exq's run is seen the same way by both tools
    (git_repo / "params.yaml").write_text(PARAMS.replace("digits: 3", "digits: 4"))
    expected = {"report": [{"changed deps": {"params.yaml": {"report.digits": "modified"}}}]}
    assert json.loads(dvc(git_repo, "status", "--json")) == expected
    assert json.loads(exq(git_repo, "status", "--json")) == expected
    exq(git_repo, "repro")
    assert ran(git_repo) == ["metrics.json"]  # the same bytes: summary is not out of date
    assert dvc(git_repo, "status").strip() == "Data and pipelines are up to date."


def test_dvc_checkout_restores_what_exq_added(git_repo: Path, dvc) -> None:  # noqa: ANN001
    exq(git_repo, "init")
    (git_repo / "data" / "deep").mkdir(parents=True)
    (git_repo / "data" / "one.csv").write_text("1,2\n")
    (git_repo / "data" / "deep" / "two.csv").write_text("3,4\n")
    (git_repo / "notes.txt").write_text("notes\n")
    exq(git_repo, "add", "data")
    exq(git_repo, "add", "notes.txt")
    assert dvc(git_repo, "status").strip() == "Data and pipelines are up to date."

    shutil.rmtree(git_repo / "data")
    (git_repo / "notes.txt").unlink()
    status = json.loads(dvc(git_repo, "status", "--json"))
    assert status == {
        "data.dvc": [{"changed outs": {"data": "deleted"}}],
        "notes.txt.dvc": [{"changed outs": {"notes.txt": "deleted"}}],
    }
    dvc(git_repo, "checkout")
    assert (git_repo / "data" / "deep" / "two.csv").read_text() == "3,4\n"
    assert (git_repo / "data" / "one.csv").read_text() == "1,2\n"
    assert (git_repo / "notes.txt").read_text() == "notes\n"
    assert json.loads(exq(git_repo, "status", "--json")) == {}


def test_exq_skips_everything_dvc_ran(git_repo: Path, dvc) -> None:  # noqa: ANN001
    make_project(git_repo)
    dvc(git_repo, "init", "-q")
    dvc(git_repo, "repro", "--all-pipelines")
    assert len(ran(git_repo)) == 5
    before, lock_bytes = mtimes(git_repo), locks(git_repo)

    out = exq(git_repo, "repro")
    for stage in ("prepare", "train@us", "train@gb", "report", "sub/dvc.yaml:summary"):
        assert f"Stage '{stage}' didn't change, skipping" in out, out
    assert ran(git_repo) == []
    assert mtimes(git_repo) == before
    assert locks(git_repo) == lock_bytes
    assert exq(git_repo, "status").strip() == "Data and pipelines are up to date."
    assert json.loads(exq(git_repo, "status", "--json")) == {}

    # exq restores dvc's outs from dvc's cache, and finds dvc's data current
    # (models/.gitignore, written by dvc, is part of report's dep: keep it)
    shutil.rmtree(git_repo / "models" / "gb")
    exq(git_repo, "checkout")
    assert (git_repo / "models" / "gb" / "part" / "b.txt").read_text() == "raw\nclean.txt\n15\nb\n"
    assert json.loads(exq(git_repo, "status", "--json")) == {}
    assert dvc(git_repo, "status").strip() == "Data and pipelines are up to date."
