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

    def load_weights(self, path: str) -> None:
        self.weights = int(Path(path).read_text().split()[1])


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
    callback = ExqLiveCallback("model.h5", path="logs")  # dvclive's order: the model file first
    assert callback.dvclive is callback.live
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
    report = in_tmp / "logs_dvc_plots" / "index.html"
    assert "http-equiv" not in report.read_text()  # ended with the training


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


def test_resume_loads_the_weights_file_back(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fit(FakeModel(), [ExqLiveCallback("w.h5", save_weights_only=True)], epochs=2)
    monkeypatch.setenv("DVCLIVE_RESUME", "1")  # what the runner sets to continue a checkpoint run
    model = FakeModel()
    fit(model, [ExqLiveCallback("w.h5", save_weights_only=True)], epochs=2)
    assert model.weights == 4 and (in_tmp / "w.h5").read_text() == "weights 4"
    lines = (in_tmp / "dvclive" / "loss.tsv").read_text().splitlines()
    assert [line.split("\t")[1] for line in lines[1:]] == ["0", "1", "2", "3"]


def test_resume_loads_the_model_file_with_keras(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in for the keras package: its load_model is all the callback imports.
    package = in_tmp / "site" / "keras"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(
        "class Loaded:\n"
        "    def __init__(self, path):\n"
        "        self.path = path\n"
        "    def save(self, path):\n"
        "        open(path, 'w').write('saved by the loaded model')\n"
        "def load_model(path):\n"
        "    return Loaded(path)\n"
    )
    monkeypatch.syspath_prepend(str(in_tmp / "site"))
    (in_tmp / "best.h5").write_text("model 7")
    callback = ExqLiveCallback("best.h5", resume=True)
    callback.set_model(FakeModel())
    callback.on_train_begin()
    assert type(callback.model).__name__ == "Loaded" and callback.model.path == "best.h5"
    callback.on_epoch_end(0, {"loss": 0.1})
    assert (in_tmp / "best.h5").read_text() == "saved by the loaded model"
    fresh = ExqLiveCallback("best.h5")  # no resume: the file is not loaded
    fresh.set_model(FakeModel())
    fresh.on_train_begin()
    assert isinstance(fresh.model, FakeModel)
