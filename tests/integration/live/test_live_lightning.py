"""The Lightning logger; runs only where lightning or pytorch_lightning is installed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

if not (importlib.util.find_spec("lightning") or importlib.util.find_spec("pytorch_lightning")):
    pytest.skip("neither lightning nor pytorch_lightning is installed", allow_module_level=True)


def test_logger_follows_lightnings_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    from exq.live.lightning import ExqLiveLogger

    logger = ExqLiveLogger("logs")
    logger.log_hyperparams({"lr": 0.1, "layers": (8, 4), "act": object})
    logger.log_metrics({"train_loss": 1.0}, step=0)
    logger.log_metrics({"train_loss": 0.5, "val_loss": 0.7}, step=50)
    logger.finalize("success")
    summary = json.loads((tmp_path / "logs.json").read_text())
    assert summary == {"step": 50, "train_loss": 0.5, "val_loss": 0.7}
    steps = [
        line.split("\t")[1]
        for line in (tmp_path / "logs" / "train_loss.tsv").read_text().splitlines()[1:]
    ]
    assert steps == ["0", "50"]
    assert "lr: 0.1" in (tmp_path / "logs" / "params.yaml").read_text()
