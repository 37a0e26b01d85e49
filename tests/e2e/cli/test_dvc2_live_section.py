"""DVC 2's ``live:`` section with a dvclive 0.x-style logger, as the DVC 2 MNIST example has it.

dvclive 0.x writes ``<folder>/<metric>.tsv`` and the summary ``<folder>.json``
and signals each checkpoint through ``.dvc/tmp/DVC_CHECKPOINT``; it never
writes an html report (DVC 2 drew one itself). The section's one output is
the folder; the summary is read as metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.e2e.conftest import exq
from tests.e2e.exp_helpers import reported_name
from tests.support import PY, chain, exp_ref_sha, git, write_training_project

# What a dvclive 0.x training loop leaves on disk, written by hand: no html.
DVCLIVE_0X_TRAIN = """\
import json, os, sys, time
from pathlib import Path

root = Path(os.environ["DVC_ROOT"])
signal_file = root / ".dvc" / "tmp" / "DVC_CHECKPOINT"
folder = Path(os.environ.get("DVCLIVE_PATH", "dvclive"))
assert os.environ.get("DVCLIVE_HTML") == "1", "the section's html: true reaches the logger"
folder.mkdir(exist_ok=True)
model = Path("model.txt")
weight = float(model.read_text()) if model.exists() else 0.0
tsv = folder / "loss.tsv"
if not tsv.exists():
    tsv.write_text("timestamp\\tstep\\tloss\\n")
start = len(tsv.read_text().splitlines()) - 1
for step in range(start, start + 3):
    weight += 0.5
    model.write_text(f"{weight}\\n")
    with tsv.open("a") as handle:
        handle.write(f"0\\t{step}\\t{1 / (1 + weight)}\\n")
    Path(str(folder) + ".json").write_text(json.dumps({"step": step, "loss": 1 / (1 + weight)}))
    signal_file.parent.mkdir(parents=True, exist_ok=True)
    signal_file.write_text("")
    deadline = time.monotonic() + 30
    while signal_file.exists():
        if time.monotonic() > deadline:
            sys.exit("the runner never took the checkpoint")
        time.sleep(0.005)
"""

LIVE_DVCYAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    deps:
    - train.py
    outs:
    - model.txt:
        checkpoint: true
    live:
      dvclive:
        summary: true
        html: true
"""


def test_a_dvc2_live_section_runs_and_declares_the_folder_only(project: Path) -> None:
    baseline = write_training_project(project, dvcyaml=LIVE_DVCYAML, script=DVCLIVE_0X_TRAIN)
    code, out, err = exq("exp", "run", cwd=project, check=False)
    assert code == 0, out + err
    name = reported_name(out)
    assert len(chain(project, exp_ref_sha(project, name), baseline)) == 3

    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert [o["path"] for o in lock["stages"]["train"]["outs"]] == ["dvclive", "model.txt"]
    assert lock["stages"]["train"]["outs"][0]["md5"].endswith(".dir")
    # the folder is cached (git-ignored); the summary is in git, as DVC 2 had it
    assert "/dvclive" in (project / ".gitignore").read_text().split()
    tip = exp_ref_sha(project, name)
    assert "dvclive.json" in git(project, "ls-tree", "--name-only", tip).split()

    _, status, _ = exq("status", cwd=project)
    assert "dvclive.html" not in status and "deleted" not in status, status
    _, shown, _ = exq("metrics", "show", "--json", cwd=project)
    assert json.loads(shown)["workspace"]["dvclive.json"]["step"] == 2
    _, table, _ = exq("exp", "show", "--json", cwd=project)
    experiment = next(row for row in json.loads(table) if row["kind"] == "experiment")
    assert experiment["metrics"]["dvclive.json"]["step"] == 2

    # the next run resumes the chain: the logger's folder was kept
    code, out, err = exq("exp", "run", cwd=project, check=False)
    assert code == 0, out + err
    assert json.loads((project / "dvclive.json").read_text())["step"] == 5
