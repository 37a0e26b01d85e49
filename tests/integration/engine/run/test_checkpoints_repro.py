"""``repro`` of live and checkpoint stages without an experiment: variables and kept outs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from exq.engine.run.project import init_project, open_project
from exq.engine.run.repro import ReproOptions, ReproResult, repro
from exq.engine.run.runner import OutputSink
from exq.engine.run.workspace import StageIO
from exq.engine.spec.loading import load_pipeline

pytestmark = pytest.mark.anyio

PY = sys.executable

ENV_SCRIPT = """\
import json, os
from pathlib import Path
names = ["DVCLIVE_PATH", "DVCLIVE_SUMMARY", "DVCLIVE_HTML", "EXQ_CHECKPOINT", "DVC_CHECKPOINT"]
Path("env.json").write_text(json.dumps({n: os.environ.get(n) for n in names}))
Path("training/logs").mkdir(parents=True, exist_ok=True)
Path("training/logs/loss.tsv").write_text("timestamp\\tstep\\tloss\\n")
Path("training/logs.html").write_text("<html></html>")
"""

# Trains "on top" of the model it finds; make_checkpoint is a no-op outside exp run.
APPEND_SCRIPT = """\
from pathlib import Path
from exq.live import make_checkpoint
model = Path("model.txt")
old = model.read_text() if model.exists() else ""
model.write_text(old + "epoch\\n")
make_checkpoint()
"""


async def run(root: Path, **options: object) -> ReproResult:
    project = open_project(root)
    with open(root / "out.log", "ab") as stream, StageIO(project) as io:
        return await repro(load_pipeline(root), io, ReproOptions(**options), OutputSink(stream))  # type: ignore[arg-type]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    init_project(tmp_path)
    return tmp_path


async def test_a_live_stage_gets_the_logger_variables(root: Path) -> None:
    (root / "script.py").write_text(ENV_SCRIPT)
    (root / "dvc.yaml").write_text(
        f"stages:\n  train:\n    cmd: {PY} script.py\n"
        "    live:\n      training/logs: {summary: false}\n"
    )
    result = await run(root)
    assert result.failed is None and result.ran == ["train"]
    env = json.loads((root / "env.json").read_text())
    assert env == {
        "DVCLIVE_PATH": "training/logs",
        "DVCLIVE_SUMMARY": "0",
        "DVCLIVE_HTML": "1",
        "EXQ_CHECKPOINT": None,
        "DVC_CHECKPOINT": None,
    }
    lock = (root / "dvc.lock").read_text()
    # the report is the logger's business (dvclive 0.x writes none): no output
    assert "path: training/logs\n" in lock and "logs.html" not in lock


async def test_checkpoint_outs_stay_between_runs_until_reset(root: Path) -> None:
    (root / "script.py").write_text(APPEND_SCRIPT)
    (root / "dvc.yaml").write_text(
        f"stages:\n  train:\n    cmd: {PY} script.py\n"
        "    outs:\n    - model.txt: {checkpoint: true}\n"
    )
    for _ in range(2):
        result = await run(root, force=True)
        assert result.failed is None
    assert (root / "model.txt").read_text() == "epoch\nepoch\n"
    result = await run(root, force=True, reset_checkpoints=True)
    assert result.failed is None
    assert (root / "model.txt").read_text() == "epoch\n"
