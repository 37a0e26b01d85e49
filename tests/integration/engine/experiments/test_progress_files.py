"""``read_progress`` over a run's working tree: every logger layout, the
pipeline's metrics files, exq.live's progress file, files caught half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exq.engine.experiments.progress import read_progress

TSV = "timestamp\tstep\t{name}\n1\t0\t0.9\n2\t1\t0.5\n3\t2\t{last}\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _stage(outs: str) -> str:
    return f"stages:\n  train:\n    cmd: python train.py\n    outs:\n{outs}"


@pytest.mark.parametrize(
    ("dvcyaml", "files"),
    [
        # dvclive 0.0-0.4 (DVC 2 live section): <dir>/<metric>.tsv and <dir>.json
        (
            "stages:\n  train:\n    cmd: x\n    live:\n      logs:\n        summary: true\n",
            {"logs/loss.tsv": TSV, "logs.json": '{"step": 2, "loss": 0.25}'},
        ),
        # dvclive 0.5-0.7: <dir>/scalars/<metric>.tsv and <dir>.json, a plain out
        (
            _stage("    - logs\n"),
            {"logs/scalars/loss.tsv": TSV, "logs.json": '{"step": 2, "loss": 0.25}'},
        ),
        # dvclive 1.x-3.x: <dir>/plots/metrics/ and <dir>/metrics.json, named as metrics
        (
            _stage("    - dvclive/plots\n")
            + "    metrics:\n    - dvclive/metrics.json:\n        cache: false\n",
            {
                "dvclive/plots/metrics/loss.tsv": TSV,
                "dvclive/metrics.json": '{"step": 2, "loss": 0.25}',
            },
        ),
    ],
    ids=["flat", "scalars", "plots"],
)
def test_each_logger_layout_gives_its_step_and_metrics(
    tmp_path: Path, dvcyaml: str, files: dict[str, str]
) -> None:
    write(tmp_path / "dvc.yaml", dvcyaml)
    for name, text in files.items():
        write(tmp_path / name, text.replace("{name}", "loss").replace("{last}", "0.25"))
    progress = read_progress(tmp_path)
    assert (progress.step, progress.total_steps, progress.metrics) == (2, None, {"loss": 0.25})
    assert progress.updated is not None


def test_without_a_summary_the_histories_last_rows_tell(tmp_path: Path) -> None:
    write(tmp_path / "dvc.yaml", _stage("    - logs\n"))
    write(tmp_path / "logs/train/loss.tsv", TSV.format(name="train/loss", last=0.125))
    write(tmp_path / "logs/acc.tsv", "timestamp\tstep\tacc\n1\t0\t0.5\n2\t1\t0.7\n3\t2\t0.")
    progress = read_progress(tmp_path)
    # acc's last row is caught half-written: the row before it is its latest
    assert (progress.step, progress.metrics) == (2, {"acc": 0.7, "train/loss": 0.125})


def test_pipeline_metrics_and_the_loggers_progress_file(tmp_path: Path) -> None:
    write(tmp_path / "dvc.yaml", _stage("    - model.pt\n") + "    metrics:\n    - eval.json\n")
    write(tmp_path / "eval.json", json.dumps({"step": 3, "val": {"acc": 0.75}, "ok": True}))
    facts = write(tmp_path.parent / "progress" / "7.json", '{"step": 4, "total_steps": 10}')
    progress = read_progress(tmp_path, facts)
    assert (progress.step, progress.total_steps, progress.metrics) == (4, 10, {"val.acc": 0.75})


def test_a_summary_caught_half_written_and_a_gone_worktree_read_as_nothing(
    tmp_path: Path,
) -> None:
    write(tmp_path / "dvc.yaml", "stages:\n  train:\n    cmd: x\n    live:\n      logs: {}\n")
    write(tmp_path / "logs.json", '{"step": 2, "lo')
    (tmp_path / "logs").mkdir()
    progress = read_progress(tmp_path)
    assert (progress.step, progress.metrics) == (None, {})
    gone = read_progress(tmp_path / "gone", tmp_path / "no-such-file.json")
    assert (gone.step, gone.total_steps, gone.metrics, gone.updated) == (None, None, {}, None)
