"""A stage with a ``checkpoint: true`` out is always changed, as in DVC 2.

The DVC 2 MNIST example's basic branch: the script never signals a
checkpoint; it reads its model out when there is one and trains on from it.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import exq
from tests.e2e.exp_helpers import reported_name
from tests.support import PY, chain, exp_ref_sha, write_training_project

SILENT_TRAIN = """\
import json
from pathlib import Path

model = Path("model.txt")
weight = float(model.read_text()) if model.exists() else 0.0
weight += 1
model.write_text(f"{weight}\\n")
Path("metrics.json").write_text(json.dumps({"weight": weight}))
"""

SILENT_DVCYAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    deps:
    - train.py
    outs:
    - model.txt:
        checkpoint: true
    metrics:
    - metrics.json:
        cache: false
"""


def test_a_checkpoint_stage_that_never_signals_trains_on_at_each_exp_run(project: Path) -> None:
    baseline = write_training_project(project, dvcyaml=SILENT_DVCYAML, script=SILENT_TRAIN)
    _, out, _ = exq("exp", "run", cwd=project)
    name = reported_name(out)
    assert (project / "model.txt").read_text() == "1.0\n"

    _, out, _ = exq("exp", "run", cwd=project)
    assert "didn't change" not in out, out
    assert f"Existing checkpoint experiment '{name}' will be resumed" in out
    assert reported_name(out) == name
    assert (project / "model.txt").read_text() == "2.0\n"
    assert len(chain(project, exp_ref_sha(project, name), baseline)) == 2

    _, status, _ = exq("status", "--json", cwd=project)
    assert json.loads(status) == {"train": ["always changed"]}
    _, out, _ = exq("repro", cwd=project)
    assert (project / "model.txt").read_text() == "3.0\n"
