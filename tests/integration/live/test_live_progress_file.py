"""``Live(total_steps=N)`` and ``EXQ_PROGRESS_FILE``: what the queue daemon reads of a
logger's progress, written outside the logger's folder so its outputs stay dvclive's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exq.live import Live


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("DVCLIVE_PATH", "EXQ_CHECKPOINT", "DVC_CHECKPOINT", "EXQ_PROGRESS_FILE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_the_progress_file_holds_the_step_and_the_declared_total(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = in_tmp / "state" / "progress" / "3.json"
    monkeypatch.setenv("EXQ_PROGRESS_FILE", str(facts))
    live = Live("logs", total_steps=4)
    assert json.loads(facts.read_text())["step"] == 0  # at once, before any step ends
    for value in (0.5, 0.4, 0.3):
        live.log("loss", value)
        live.next_step()
    live.end()  # the end writes whatever a paced step end left out
    written = json.loads(facts.read_text())
    assert (written["step"], written["total_steps"]) == (2, 4)
    assert written["dir"] == "logs" and written["updated"] > 0
    assert sorted(p.name for p in (in_tmp / "logs").iterdir()) == ["loss.tsv"]


def test_no_progress_file_without_the_variable_and_a_bad_place_is_no_error(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Live("logs", total_steps=2) as live:
        live.log("loss", 1.0)
    assert sorted(p.name for p in in_tmp.iterdir()) == ["logs", "logs.json", "logs_dvc_plots"]
    (in_tmp / "file").write_text("")
    monkeypatch.setenv("EXQ_PROGRESS_FILE", str(in_tmp / "file" / "under-a-file.json"))
    with Live("other") as live:
        live.log("loss", 1.0)  # training goes on
    with pytest.raises(ValueError, match="step must be >= 0"):
        Live("third", total_steps=-1)
