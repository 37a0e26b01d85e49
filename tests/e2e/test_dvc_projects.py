"""Six projects in the shapes of public DVC projects, run as their users would, beside DVC 3.67.

Each project (``tests/e2e/dvc_projects.py``) is made once, then copied: exq
runs ``repro``, ``exp run -S``, a queued sweep (``exp run --queue -S ...``,
then the daemon with ``exq queue start``), ``exp show``, ``metrics show -a``
and ``plots show --json`` on one copy; the real dvc runs the same on the
other (its queue with ``exp run --run-all``). What is comparable must be
equal: every experiment's params and metrics, the branch's metrics, the
plots' names and images. DVC 3 runs no checkpoints and no ``live:``
section, so the DVC 2 MNIST example is checked against DVC 2's documented
results instead. Needs the real dvc for the five others.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from exq.engine.params.values import expand_sweeps
from exq.engine.spec.paramfiles import flatten
from tests.conftest import git
from tests.e2e.conftest import EXQ_BIN, write
from tests.e2e.dvc_projects import MNIST, SHAPES, Shape
from tests.e2e.queue_helpers import QueueEnv, wait_for

DVC_ENV = {"DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATER": "1"}


def run(
    cmd: list[str], cwd: Path, timeout: float = 900, extra: dict[str, str] | None = None
) -> str:
    env = {**os.environ, **DVC_ENV, **(extra or {})}
    env.pop("EXQ_CACHE_TYPE", None)
    if Path(cmd[0]).name == "dvc":  # its queue workers start "dvc" from the PATH
        env["PATH"] = f"{Path(cmd[0]).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(cmd)} in {cwd}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build(shape: Shape, root: Path) -> Path:
    """The project committed: files, ``exq init`` (``--subdir`` for sub-projects), tracked data."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    for path, text in shape.files.items():
        write(root / path, text)
    for project in shape.projects:
        folder = root / project
        run([str(EXQ_BIN), "init", *([] if project == "." else ["--subdir"])], folder)
        if project in shape.config:
            config = folder / ".dvc" / "config"
            config.write_text(config.read_text() + shape.config[project])
        for path in shape.tracked.get(project, []):
            run([str(EXQ_BIN), "add", path], folder)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "project")
    return root


def sets(args: list[str]) -> list[str]:
    return [part for arg in args for part in ("-S", arg)]


def exercise(shape: Shape, root: Path, tool: str) -> dict[str, Any]:
    """Everything a user runs, with ``tool`` (an exq or dvc executable); the comparable results."""
    main = root / shape.main
    if shape.repro:
        for project in shape.projects:
            run([tool, "repro", *shape.targets], root / project)
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "reproduced")
    run([tool, "exp", "run", *shape.targets, *sets(shape.exp)], main)
    for args in shape.sweep:
        run([tool, "exp", "run", "--queue", *shape.targets, *sets(args)], main)
    if shape.sweep_script:
        run(["sh", shape.sweep_script], main, extra={"DVC": tool})
    if tool == str(EXQ_BIN):
        run([tool, "queue", "start"], main)
        wait_for(lambda: _queue_done(main), "the queued sweep to finish", seconds=900)
    else:
        # DVC's queue starts its workers first: slow on a busy machine, so a safety net only.
        run([tool, "exp", "run", "--run-all"], main, timeout=1800)
    return {
        "experiments": _experiments(tool, main),
        "metrics": _metrics(tool, main, "main"),
        "workspace": _metrics(tool, main, "workspace"),
        "plots": _plots(tool, main),
    }


def _queue_done(cwd: Path) -> bool:
    runs = json.loads(run([str(EXQ_BIN), "queue", "status", "--json"], cwd))["runs"]
    failed = [r for r in runs if r["state"] in ("failed", "cancelled", "interrupted")]
    assert not failed, run([str(EXQ_BIN), "queue", "logs", str(failed[0]["id"])], cwd)
    return all(r["state"] == "success" for r in runs)


def _key(params: dict[str, Any], metrics: dict[str, Any]) -> str:
    return json.dumps({"params": params, "metrics": metrics}, sort_keys=True)


def _experiments(tool: str, cwd: Path) -> list[str]:
    """Every experiment's params and metrics (names differ between tools), sorted."""
    rows = json.loads(run([tool, "exp", "show", "--json"], cwd))
    if tool == str(EXQ_BIN):
        return sorted(_key(r["params"], r["metrics"]) for r in rows if r["kind"] == "experiment")
    found = []
    for row in rows:
        for group in row.get("experiments") or []:
            for rev in group["revs"]:
                data = rev["data"]
                params = {f: flatten(v.get("data", {})) for f, v in data["params"].items()}
                metrics = {f: flatten(v["data"]) for f, v in data["metrics"].items() if "data" in v}
                found.append(_key(params, metrics))
    return sorted(found)


def _metrics(tool: str, cwd: Path, row: str) -> dict[str, Any]:
    """One row of ``metrics show -a``: a branch, or the workspace."""
    data = json.loads(run([tool, "metrics", "show", "-a", "--json"], cwd))
    if tool == str(EXQ_BIN):
        return data.get(row, {})
    return {f: flatten(v["data"]) for f, v in data.get(row, {}).get("data", {}).items()}


def _plots(tool: str, cwd: Path) -> dict[str, Any]:
    """Chart names with their titles, and image files, of the workspace."""
    data = json.loads(run([tool, "plots", "show", "--json"], cwd))
    if tool == str(EXQ_BIN):
        assert data["errors"] == []
        return {
            "charts": {p.get("id", p["file"]): p.get("title") for p in data["plots"]},
            "images": sorted(i["file"] for i in data["images"]),
        }
    charts, images = {}, []
    for name, entries in data.get("data", {}).items():
        for entry in entries:
            if entry["type"] == "image":
                images.append(name)
            else:
                charts[name] = entry["content"].get("title", {}).get("text")
    return {"charts": charts, "images": sorted(images)}


def _exq_charts(result: dict[str, Any]) -> set[str]:
    """Chart ids, a bare file's per-column charts ("file:metric") counted as the file."""
    return {name.split(":")[0] for name in result["plots"]["charts"]}


@pytest.mark.parametrize("shape", [s for s in SHAPES if s.dvc3], ids=lambda s: s.name)
def test_runs_as_with_dvc(
    shape: Shape,
    tmp_path: Path,
    queue_env: QueueEnv,
    dvc_bin: str,
) -> None:
    made = build(shape, tmp_path / "made")
    mine_root, theirs_root = tmp_path / "exq", tmp_path / "dvc"
    shutil.copytree(made, mine_root, symlinks=True)
    shutil.copytree(made, theirs_root, symlinks=True)
    mine = exercise(shape, mine_root, str(EXQ_BIN))
    theirs = exercise(shape, theirs_root, dvc_bin)

    assert len(mine["experiments"]) == 1 + sum(len(expand_sweeps(args)) for args in shape.sweep) + (
        4 if shape.sweep_script else 0
    )
    assert mine["experiments"] == theirs["experiments"]
    assert mine["metrics"] == theirs["metrics"]
    assert set(mine["metrics"]) == shape.metrics
    assert _exq_charts(mine) == set(theirs["plots"]["charts"]) >= shape.plots
    assert mine["plots"]["images"] == theirs["plots"]["images"] == sorted(shape.images)
    # Each tool reads what the other wrote: dvc finds exq's pipeline up to date.
    for project in shape.projects:
        assert "up to date" in run([dvc_bin, "status"], mine_root / project)


def test_dvc2_checkpoints_mnist(tmp_path: Path, queue_env: QueueEnv) -> None:
    """The results DVC 2.10 gives for this project: ``exp run`` trains two epochs, a
    checkpoint each; an experiment of N checkpoints is N rows (its tip and N-1
    checkpoints); the workspace holds the last workspace run; the branch has no metrics."""
    root = build(MNIST, tmp_path / "mnist")
    result = exercise(MNIST, root, str(EXQ_BIN))
    rows = json.loads(run([str(EXQ_BIN), "exp", "show", "--json"], root))
    tips = {
        r["params"]["params.yaml"]["lr"]: r["metrics"]["dvclive.json"]
        for r in rows
        if r["kind"] == "experiment"
    }
    assert tips[0.2] == {"acc": 0.4, "step": 1}
    assert len(tips) == 3
    checkpoints = [r for r in rows if r["kind"] == "checkpoint"]
    assert len(checkpoints) == 3  # one below each tip
    assert result["workspace"] == {"dvclive.json": {"acc": 0.4, "step": 1}}
    assert result["metrics"] == {}
    assert result["plots"]["charts"] == {
        "predictions.json": "predictions.json",
        "dvclive/acc.tsv": None,
    }
    # Queued runs are new experiments: they train from scratch, not on from the
    # checkpoint the workspace's run left, as in DVC 2.10.
    assert {lr: tips[lr] for lr in (0.05, 0.15)} == {
        0.05: {"acc": 0.1, "step": 1},
        0.15: {"acc": 0.3, "step": 1},
    }
