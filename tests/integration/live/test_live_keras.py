"""The Keras-style callback, driven by a duck-typed training loop (no TensorFlow)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import exq.live
from exq.live.keras import DvcLiveCallback, ExqLiveCallback


class FakeModel:
    """What the callback uses of a Keras model: save and save_weights."""

    def __init__(self) -> None:
        self.weights = 0

    def save(self, path: str) -> None:
        Path(path).write_text(f"model {self.weights}")

    def save_weights(self, path: str) -> None:
        Path(path).write_text(f"weights {self.weights}")


def fit(model: FakeModel, callbacks: list[Any], epochs: int) -> None:
    """The order in which Keras' fit calls its callbacks."""
    for cb in callbacks:
        cb.set_model(model)
        cb.set_params({"epochs": epochs})
        cb.on_train_begin()
    for epoch in range(epochs):
        for cb in callbacks:
            cb.on_epoch_begin(epoch)
            cb.on_train_batch_end(0, {"loss": 1.0})
        model.weights += 1
        logs = {"loss": 1.0 / (epoch + 1), "accuracy": epoch / 10, "val_loss": 2.0 / (epoch + 1)}
        for cb in callbacks:
            cb.on_epoch_end(epoch, logs)
    for cb in callbacks:
        cb.on_train_end()


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in (
        "DVCLIVE_PATH",
        "EXQ_RESUME",
        "DVCLIVE_RESUME",
        "EXQ_CHECKPOINT",
        "DVC_CHECKPOINT",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_callback_logs_each_epoch_and_saves_the_model(in_tmp: Path) -> None:
    callback = ExqLiveCallback("logs", model_file="model.h5")
    fit(FakeModel(), [callback], epochs=3)
    assert sorted(p.name for p in (in_tmp / "logs").iterdir()) == [
        "accuracy.tsv",
        "loss.tsv",
        "val_loss.tsv",
    ]
    lines = (in_tmp / "logs" / "val_loss.tsv").read_text().splitlines()
    assert [line.split("\t")[1:] for line in lines[1:]] == [
        ["0", "2.0"],
        ["1", "1.0"],
        ["2", "0.6666666666666666"],
    ]
    summary = json.loads((in_tmp / "logs.json").read_text())
    assert summary["step"] == 2 and summary["accuracy"] == 0.2
    assert (in_tmp / "model.h5").read_text() == "model 3"
    assert "http-equiv" not in (in_tmp / "logs.html").read_text()  # ended with the training


def test_dvclive_style_global_init_and_weights(in_tmp: Path) -> None:
    exq.live.init("training")
    try:
        callback = DvcLiveCallback(model_file="w.h5", save_weights_only=True)
        assert callback.live is exq.live._default
        fit(FakeModel(), [callback], epochs=2)
    finally:
        exq.live._default.end()  # type: ignore[union-attr]
        exq.live._default = None
    assert (in_tmp / "w.h5").read_text() == "weights 2"
    assert json.loads((in_tmp / "training.json").read_text())["step"] == 1
    assert not os.path.exists(in_tmp / "dvclive")
