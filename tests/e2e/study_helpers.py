"""A project whose one stage turns its params into a metric, for the studies'
end-to-end tests (not a test module).

``train.py`` reads ``x`` and ``opt`` from params.yaml and writes
``scores.json`` with ``loss = (x - 0.3)**2`` (plus 0.5 unless ``opt`` is
``adam``), so a test can check the value Optuna was told for each trial
against the trial's params. With ``SLOW`` in its environment it waits for a
file named ``go`` in ``QSHARED`` first (a test holds trials running).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.conftest import PY, exq, write
from tests.support import git

TRAIN = """\
import json, os, time
from pathlib import Path

params = dict(l.split(": ", 1) for l in Path("params.yaml").read_text().splitlines() if ": " in l)
x, opt = float(params["x"]), params["opt"].strip()
shared = Path(os.environ["QSHARED"])
(shared / f"start-{os.environ.get('EXQ_RUN_ID')}").write_text(str(os.getpid()))
while os.environ.get("SLOW") and not (shared / "go").exists():
    time.sleep(0.02)
loss = (x - 0.3) ** 2 + (0.0 if opt == "adam" else 0.5)
Path("scores.json").write_text(json.dumps({"loss": loss}))
"""

DVC_YAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    deps:
    - train.py
    params:
    - x
    - opt
    metrics:
    - scores.json:
        cache: false
"""

SPACE = ["-S", "x=interval(-1, 1)", "-S", "opt=choice(sgd, adam)"]


def make_study_project(root: Path) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    exq("init", cwd=root)
    write(root / "train.py", TRAIN)
    write(root / "params.yaml", "x: 0.0\nopt: sgd\n")
    write(root / "dvc.yaml", DVC_YAML)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "project")
    return root


def loss_of(params: list[str]) -> float:
    values = dict(text.split("=", 1) for text in params)
    return (float(values["x"]) - 0.3) ** 2 + (0.0 if values["opt"] == "adam" else 0.5)


def sweep_status(cwd: Path, name: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    _, out, _ = exq("sweep", "status", name, "--json", cwd=cwd, env=env)
    (study,) = json.loads(out)
    return study
