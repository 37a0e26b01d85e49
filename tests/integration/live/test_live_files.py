"""exq.live's files on disk: TSVs, summary, report, params, resume, env overrides."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import yaml

import exq.live
from exq.live import Live

LIVE_ENV = (
    "DVCLIVE_PATH",
    "DVCLIVE_SUMMARY",
    "DVCLIVE_HTML",
    "DVCLIVE_RESUME",
    "EXQ_RESUME",
    "EXQ_CHECKPOINT",
    "DVC_CHECKPOINT",
)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in LIVE_ENV:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()]


def _train(live: Live, epochs: int, start: int = 0) -> None:
    for epoch in range(start, start + epochs):
        live.log("loss", 1.0 / (epoch + 1))
        live.log("train/acc", epoch)
        live.next_step()


def test_files_after_a_run(in_tmp: Path) -> None:
    with Live("logs") as live:
        _train(live, 3)
        assert live.step == 3
    loss = _rows(in_tmp / "logs" / "loss.tsv")
    assert loss[0] == ["timestamp", "step", "loss"]
    assert [(r[1], r[2]) for r in loss[1:]] == [
        ("0", "1.0"),
        ("1", "0.5"),
        ("2", "0.3333333333333333"),
    ]
    stamps = [int(r[0]) for r in loss[1:]]
    assert stamps == sorted(stamps) and all(1_600_000_000_000 < s < 10**13 for s in stamps)
    acc = _rows(in_tmp / "logs" / "train" / "acc.tsv")
    assert acc[0] == ["timestamp", "step", "train/acc"]  # the full name, as dvclive 0.2-0.7
    assert [r[2] for r in acc[1:]] == ["0", "1", "2"]
    summary = json.loads((in_tmp / "logs.json").read_text())
    assert summary == {"step": 2, "loss": pytest.approx(1 / 3), "train": {"acc": 2}}
    assert list(summary) == ["step", "loss", "train"]
    page = (in_tmp / "logs_dvc_plots" / "index.html").read_text()
    assert page.count('<svg class="exq-plot"') == 2
    assert 'data-metric="train/acc"' in page and 'data-metric="loss"' in page
    assert "http-equiv" not in page  # the final page stops reloading
    assert "<script" not in page
    assert sorted(p.name for p in in_tmp.iterdir()) == ["logs", "logs.json", "logs_dvc_plots"]


def test_report_is_refreshed_at_each_step(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every write counts as cheap, so pacing (which skips a redraw when the last
    # one was slow, as on a loaded machine) never comes into play here.
    from exq.live import logger

    monkeypatch.setattr(logger._Pace, "CHEAP", math.inf)
    live = Live("logs")
    live.log("loss", 1.0)
    live.next_step()
    page = (in_tmp / "logs_dvc_plots" / "index.html").read_text()
    assert 'http-equiv="refresh"' in page
    assert page.count("<circle") == 1
    live.log("loss", 0.5)
    live.next_step()
    assert (in_tmp / "logs_dvc_plots" / "index.html").read_text().count("<circle") == 2
    live.end()


def test_a_new_run_starts_clean_and_keeps_foreign_files(in_tmp: Path) -> None:
    with Live("logs") as live:
        _train(live, 2)
        live.log_param("lr", 0.1)
    (in_tmp / "logs" / "notes.txt").write_text("mine")
    with Live("logs") as live:
        live.log("other", 1)
        live.next_step()
    assert sorted(p.relative_to(in_tmp).as_posix() for p in (in_tmp / "logs").rglob("*")) == [
        "logs/notes.txt",
        "logs/other.tsv",
    ]
    assert json.loads((in_tmp / "logs.json").read_text()) == {"step": 0, "other": 1}


@pytest.mark.parametrize("variable", ["EXQ_RESUME", "DVCLIVE_RESUME"])
def test_resume_continues_after_the_summary_step(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    with Live("logs") as live:
        _train(live, 3)
        live.log_params({"lr": 0.01, "model": {"layers": [8, 4]}})
        live.log("loss", 99.0)  # step 3 was logged but never checkpointed
    summary = json.loads((in_tmp / "logs.json").read_text())
    summary["step"] = 2  # the summary of the last checkpoint
    summary["loss"] = 1 / 3
    (in_tmp / "logs.json").write_text(json.dumps(summary))
    monkeypatch.setenv(variable, "1")
    live = Live("logs")
    assert live.step == 3
    steps = [r[1] for r in _rows(in_tmp / "logs" / "loss.tsv")[1:]]
    assert steps == ["0", "1", "2"]  # the row of step 3 is gone at once
    _train(live, 2, start=3)
    live.log_param("epochs", 5)
    live.end()
    assert [r[1] for r in _rows(in_tmp / "logs" / "loss.tsv")[1:]] == ["0", "1", "2", "3", "4"]
    assert [r[2] for r in _rows(in_tmp / "logs" / "train" / "acc.tsv")[1:]] == [
        "0",
        "1",
        "2",
        "3",
        "4",
    ]
    assert json.loads((in_tmp / "logs.json").read_text())["step"] == 4
    params = yaml.safe_load((in_tmp / "logs" / "params.yaml").read_text())
    assert params == {"lr": 0.01, "model": {"layers": [8, 4]}, "epochs": 5}


def test_resume_without_a_summary_uses_the_tsv_steps(in_tmp: Path) -> None:
    with Live("logs", summary=False) as live:
        _train(live, 2)
    assert not (in_tmp / "logs.json").exists()
    live = Live("logs", resume=True, summary=False)
    assert live.step == 2
    live.end()


def test_dvclive_environment_overrides(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVCLIVE_PATH", "stage_logs")
    monkeypatch.setenv("DVCLIVE_SUMMARY", "0")
    monkeypatch.setenv("DVCLIVE_HTML", "false")
    live = Live()
    _train(live, 1)
    live.end()
    assert live.dir == Path("stage_logs")
    assert sorted(p.name for p in in_tmp.iterdir()) == ["stage_logs"]
    assert (in_tmp / "stage_logs" / "loss.tsv").is_file()


def test_logging_a_metric_twice_ends_the_step(in_tmp: Path) -> None:
    # dvclive 0.x's "configurationless" scripts never call next_step.
    exq.live.init("logs")
    for value in (0.3, 0.2, 0.1):
        exq.live.log("loss", value)
    assert exq.live.get_step() == 2
    exq.live.next_step()
    rows = _rows(in_tmp / "logs" / "loss.tsv")[1:]
    assert [(r[1], r[2]) for r in rows] == [("0", "0.3"), ("1", "0.2"), ("2", "0.1")]
    exq.live._default.end()  # type: ignore[union-attr]
    exq.live._default = None


def test_explicit_steps_and_values_of_other_types(in_tmp: Path) -> None:
    class Scalar:  # what numpy scalars and 0-d tensors look like
        def item(self) -> float:
            return 0.25

    with Live("logs") as live:
        live.log("a", Scalar(), step=5)
        live.log("b", True, step=5)
        live.step = 7
        live.log("a", 0.5)
    assert [(r[1], r[2]) for r in _rows(in_tmp / "logs" / "a.tsv")[1:]] == [
        ("5", "0.25"),
        ("7", "0.5"),
    ]
    assert json.loads((in_tmp / "logs.json").read_text()) == {"step": 7, "a": 0.5, "b": 1}


@pytest.mark.parametrize("name", ["", "a//b", "/a", "a/", "../x", "step", "a\tb"])
def test_bad_metric_names(in_tmp: Path, name: str) -> None:
    with Live("logs") as live, pytest.raises(ValueError):
        live.log(name, 1.0)


def test_a_name_cannot_be_a_metric_and_a_folder(in_tmp: Path) -> None:
    with Live("logs") as live:
        live.log("train", 1.0)
        with pytest.raises(ValueError, match="conflicts"):
            live.log("train/loss", 1.0)
        with pytest.raises(TypeError, match="not a number"):
            live.log("x", "high")


def test_params_file_reads_as_yaml(in_tmp: Path) -> None:
    with Live("logs") as live:
        live.log_param("lr", 1e-5)
        live.log_params({"opt": {"name": "adam", "betas": (0.9, 0.999)}, "on": True, "seed": None})
        with pytest.raises(ValueError, match="finite"):
            live.log_param("bad", float("nan"))
        with pytest.raises(TypeError):
            live.log_param("bad", object())
    text = (in_tmp / "logs" / "params.yaml").read_text()
    expected = {
        "lr": 1e-5,
        "opt": {"name": "adam", "betas": [0.9, 0.999]},
        "on": True,
        "seed": None,
    }
    assert yaml.safe_load(text) == expected
    from ruamel.yaml import YAML

    assert YAML(typ="safe").load(text) == expected


def test_readers_never_see_a_malformed_row(in_tmp: Path) -> None:
    stop = threading.Event()
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            for path in (in_tmp / "logs" / "loss.tsv", in_tmp / "logs.json"):
                try:
                    text = path.read_text()
                except FileNotFoundError:
                    continue
                if path.suffix == ".json":
                    try:
                        json.loads(text)
                    except ValueError:
                        problems.append("json: " + text[-40:])
                elif any(len(line.split("\t")) != 3 for line in text.split("\n")[:-1]):
                    # rows are appended: only the last line may be caught half-written
                    problems.append("tsv: " + text[-40:])

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        with Live("logs", html=False) as live:
            for step in range(400):
                live.log("loss", step * 1.000001)
                live.next_step()
    finally:
        stop.set()
        thread.join()
    assert problems == []
    assert len(_rows(in_tmp / "logs" / "loss.tsv")) == 401
    assert not [p for p in (in_tmp / "logs").iterdir() if p.name.endswith(".tmp")]


def test_unended_logger_is_written_at_exit(in_tmp: Path) -> None:
    script = textwrap.dedent(
        """
        import exq.live
        exq.live.init("logs")
        exq.live.log("loss", 0.5)
        exq.live.log("loss", 0.25)   # step 1, never followed by next_step
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in LIVE_ENV}
    subprocess.run([sys.executable, "-c", script], cwd=in_tmp, env=env, check=True)
    assert [r[2] for r in _rows(in_tmp / "logs" / "loss.tsv")[1:]] == ["0.5", "0.25"]
    assert json.loads((in_tmp / "logs.json").read_text()) == {"step": 1, "loss": 0.25}
    assert "http-equiv" not in (in_tmp / "logs_dvc_plots" / "index.html").read_text()


def test_temp_files_of_dead_writers_are_removed(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (in_tmp / "logs" / "train").mkdir(parents=True)
    dead = [
        in_tmp / "logs" / "train" / ".exqlive-loss.tsv.999999999.3.tmp",
        in_tmp / ".exqlive-logs.json.999999999.4.tmp",
    ]
    alive = in_tmp / f".exqlive-logs.html.{os.getpid()}.5.tmp"
    other = in_tmp / ".exqlive-runs.json.999999999.6.tmp"  # another logger's folder
    for path in [*dead, alive, other]:
        path.write_text("half")
    monkeypatch.setenv("EXQ_RESUME", "1")
    Live("logs").end()
    assert [p.exists() for p in dead] == [False, False]
    assert alive.exists() and other.exists()
