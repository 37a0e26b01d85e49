"""Scripts that import the real dvclive, from PyPI, run unchanged under exq.

Each release lives in its own virtualenv under ``EXQ_TEST_DVCLIVE`` (``make
dvclive`` builds them from requirements-dvclive.txt). The stage command runs
that virtualenv's interpreter; exq itself runs from the tests' one.

* 0.2.3 (module API), 0.4.6 (``Live``) and 0.7.3 (``scalars/`` layout) run in a
  DVC 2 ``live:`` section: DVCLIVE_PATH points them at the folder, they signal
  checkpoints through ``.dvc/tmp/DVC_CHECKPOINT`` and 0.2.3/0.4.6 ask for their
  report through ``.dvc/tmp/DVC_LIVE``.
* 1.4.0 writes ``dvclive/plots/metrics/`` and ``dvclive/metrics.json``, which
  the stage declares, and signals checkpoints as 0.x does.
* 3.49.1 (no checkpoints of its own) runs a checkpoint stage that it resumes
  from its ``metrics.json``; it declares its metrics and plots in dvc.yaml
  itself.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import exq
from tests.e2e.exp_helpers import reported_name
from tests.e2e.queue_helpers import QueueEnv, queued_ids, wait_for
from tests.support import chain, exp_ref_sha, write_training_project

STEPS = 3

# One training loop per dvclive API; each continues from its model file.
HEAD = """\
from pathlib import Path
model = Path("model.txt")
weight = float(model.read_text()) if model.exists() else 0.0
def train():
    global weight
    weight = round(weight + 0.5, 6)
    model.write_text(f"{weight}\\n")
    return round(1.0 / (1.0 + weight), 6), round(weight / 10, 6)
"""

SCRIPTS = {
    # dvclive 0.0-0.3: module functions; the step comes from the resumed summary.
    "module": HEAD
    + """\
import dvclive
start = dvclive.get_step()
for _ in range(3):
    loss, acc = train()
    dvclive.log("loss", loss)
    dvclive.log("train/acc", acc)
    dvclive.next_step()
""",
    # dvclive 0.4-0.x: the Live class.
    "live": HEAD
    + """\
from dvclive import Live
live = Live()
for _ in range(3):
    loss, acc = train()
    live.log("loss", loss)
    live.log("train/acc", acc)
    live.next_step()
""",
    # dvclive 1.x-3.x: log_metric (1.x has no log) and a context manager.
    "log_metric": HEAD
    + """\
from dvclive import Live
with Live() as live:
    for _ in range(3):
        loss, acc = train()
        live.log_metric("loss", loss)
        live.log_metric("train/acc", acc)
        live.next_step()
""",
}

LIVE_SECTION = """\
stages:
  train:
    cmd: {python} train.py
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

DECLARED = """\
stages:
  train:
    cmd: {python} train.py
    deps:
    - train.py
    outs:
    - model.txt:
        checkpoint: true
    metrics:
    - dvclive/metrics.json:
        cache: false
        persist: true
    plots:
    - dvclive/plots/metrics:
        cache: false
        persist: true
"""

BARE = """\
stages:
  train:
    cmd: {python} train.py
    deps:
    - train.py
    outs:
    - model.txt:
        checkpoint: true
"""

# version: (script, dvc.yaml, summary file, metric TSV folder, report, checkpoints per run);
# a checkpoint stage keeps its logger's files between runs as DVC 2 asked: a live
# section's folder is kept, declared metrics and plots are persist: true.
CASES = {
    "0.2.3": ("module", LIVE_SECTION, "dvclive.json", "dvclive", "dvclive_dvc_plots/index.html", 3),
    "0.4.6": ("live", LIVE_SECTION, "dvclive.json", "dvclive", "dvclive_dvc_plots/index.html", 3),
    "0.7.3": (
        "live",
        LIVE_SECTION,
        "dvclive.json",
        "dvclive/scalars",
        "dvclive_dvc_plots/index.html",
        3,
    ),
    "1.4.0": (
        "log_metric",
        DECLARED,
        "dvclive/metrics.json",
        "dvclive/plots/metrics",
        "dvclive/report.html",
        3,
    ),
    "3.49.1": ("log_metric", BARE, "dvclive/metrics.json", "dvclive/plots/metrics", None, 1),
    # exq.live in place of dvclive, the import line changed only: the layout
    # follows the stage (a live section; outs in dvclive 1.x's layout).
    "exq.live-flat": (
        "module",
        LIVE_SECTION,
        "dvclive.json",
        "dvclive",
        "dvclive_dvc_plots/index.html",
        3,
    ),
    "exq.live-plots": (
        "log_metric",
        DECLARED,
        "dvclive/metrics.json",
        "dvclive/plots/metrics",
        "dvclive/report.html",
        3,
    ),
}
EXQ_LIVE_IMPORTS = {
    "import dvclive\n": "import exq.live as dvclive\n",
    "from dvclive import Live\n": "from exq.live import Live\n",
}


def _python(version: str) -> str:
    if version.startswith("exq.live"):
        return sys.executable
    root = os.environ.get("EXQ_TEST_DVCLIVE")
    python = Path(root or "/nonexistent") / version / "bin" / "python"
    if not python.exists():
        pytest.skip(f"dvclive {version} is not installed (make dvclive)")
    return str(python)


def _project(root: Path, version: str) -> tuple[str, tuple[str, str, str, str, int]]:
    script, dvcyaml, *rest = CASES[version]
    python = _python(version)
    (root / ".gitignore").write_text("/dvclive_dvc_plots\n")
    text = SCRIPTS[script]
    if version.startswith("exq.live"):
        for old, new in EXQ_LIVE_IMPORTS.items():
            text = text.replace(old, new)
    baseline = write_training_project(
        root, dvcyaml=dvcyaml.format(python=python), script=text, params="{}\n"
    )
    return baseline, tuple(rest)  # type: ignore[return-value]


def _acc_column(version: str) -> str:
    """dvclive 3 names a nested metric's column by its last part; 0.2-1.x by its name."""
    return "acc" if version.startswith("3.") else "train/acc"


def _steps(tsv: Path) -> list[int]:
    header, *rows = tsv.read_text().splitlines()
    at = header.split("\t").index("step")
    return [int(row.split("\t")[at]) for row in rows]


def _shown_metrics(root: Path, name: str) -> dict[str, dict[str, object]]:
    _, table, _ = exq("exp", "show", "--json", cwd=root)
    row = next(r for r in json.loads(table) if r.get("name") == name)
    return row["metrics"]


@pytest.mark.parametrize("version", list(CASES))
def test_a_real_dvclive_checkpoint_stage_under_exp_run(project: Path, version: str) -> None:
    baseline, (summary, history, report, checkpoints) = _project(project, version)
    code, out, err = exq("exp", "run", cwd=project, check=False, timeout=300)
    assert code == 0, out + err
    name = reported_name(out)
    tip = exp_ref_sha(project, name)
    assert len(chain(project, tip, baseline)) == checkpoints

    assert _steps(project / history / "loss.tsv") == [0, 1, 2]
    nested = project / history / "train" / "acc.tsv"
    assert _steps(nested) == [0, 1, 2]
    assert json.loads((project / summary).read_text())["train"]["acc"] == 0.15
    assert report is None or (project / report).is_file()  # dvclive 3 writes none by default
    if version in ("0.2.3", "0.4.6"):  # they write no report: exq drew it when they asked
        page = (project / report).read_text()
        assert 'data-metric="train/acc"' in page and 'data-metric="loss"' in page

    metrics = _shown_metrics(project, name)
    assert metrics[summary]["loss"] == 0.4 and metrics[summary]["train.acc"] == 0.15
    _, plotted, _ = exq("plots", "show", "--json", cwd=project)
    charts = {(p["file"], p["metric"]) for p in json.loads(plotted)["plots"]}
    assert (f"{history}/train/acc.tsv", _acc_column(version)) in charts, charts
    assert (f"{history}/loss.tsv", "loss") in charts, charts

    # The next run resumes: the logger continues its steps from the summary, and
    # a report the logger rewrote at its end is no change of the experiment's inputs.
    code, out, err = exq("exp", "run", cwd=project, check=False, timeout=300)
    assert code == 0, out + err
    assert f"Existing checkpoint experiment '{name}' will be resumed" in out + err
    assert _steps(project / history / "loss.tsv") == [0, 1, 2, 3, 4, 5]
    assert json.loads((project / summary).read_text())["step"] == 5


@pytest.mark.parametrize("version", ["0.2.3", "0.7.3", "1.4.0", "3.49.1", "exq.live-plots"])
def test_a_real_dvclive_run_from_the_queue(
    queue_env: QueueEnv, project: Path, version: str
) -> None:
    baseline, (summary, history, _, checkpoints) = _project(project, version)
    _, out, _ = exq("exp", "run", "--queue", "-n", "queued", cwd=project)
    (run_id,) = queued_ids(out)
    exq("queue", "start", cwd=project)

    def ended() -> dict[str, object] | None:
        _, text, _ = exq("queue", "status", "--json", cwd=project)
        run = next(r for r in json.loads(text)["runs"] if r["id"] == run_id)
        return run if run["state"] in {"success", "failed", "interrupted"} else None

    run = wait_for(ended, f"queued dvclive {version} run", seconds=240)
    _, log, _ = exq("queue", "logs", str(run_id), cwd=project)
    assert run["state"] == "success", log
    tip = exp_ref_sha(project, "queued")
    assert len(chain(project, tip, baseline)) == checkpoints
    assert _shown_metrics(project, "queued")[summary]["step"] == 2
    _, plotted, _ = exq("plots", "diff", "queued", "--json", cwd=project)
    charts = {(p["file"], p["metric"]) for p in json.loads(plotted)["plots"]}
    assert (f"{history}/train/acc.tsv", _acc_column(version)) in charts, charts


def test_the_environment_chooses_the_layout_in_a_live_section(project: Path) -> None:
    # EXQ_LIVE_LAYOUT=plots: exq.live writes dvclive 1.x's files inside the live
    # section's folder, and exp show finds the summary there (in the cache).
    _project(project, "exq.live-flat")
    code, out, err = exq(
        "exp", "run", cwd=project, check=False, env={"EXQ_LIVE_LAYOUT": "plots"}, timeout=300
    )
    assert code == 0, out + err
    assert _steps(project / "dvclive" / "plots" / "metrics" / "train" / "acc.tsv") == [0, 1, 2]
    assert not (project / "dvclive.json").exists()
    assert (project / "dvclive_dvc_plots" / "index.html").is_file()
    metrics = _shown_metrics(project, reported_name(out))
    assert metrics["dvclive/metrics.json"]["train.acc"] == 0.15
    _, plotted, _ = exq("plots", "show", "--json", cwd=project)
    charts = {(p["file"], p["metric"]) for p in json.loads(plotted)["plots"]}
    assert charts == {
        ("dvclive/plots/metrics/loss.tsv", "loss"),
        ("dvclive/plots/metrics/train/acc.tsv", "train/acc"),
    }
