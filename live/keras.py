"""A Keras callback that logs ``logs`` at each epoch end into ``exq.live``.

    from exq.live.keras import ExqLiveCallback   # or DvcLiveCallback
    model.fit(x, y, epochs=5, callbacks=[ExqLiveCallback("model.h5", path="logs")])

Imported only when used: ``import exq.live`` does not load Keras.  When Keras
is installed the callback subclasses ``keras.callbacks.Callback``; without it,
it is a plain object with the same hooks, which any loop calling
``set_model``/``on_epoch_end``/``on_train_end`` can drive.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import exq.live
from exq.live.logger import Live


class _PlainCallback:
    """The hooks of ``keras.callbacks.Callback``, for when Keras is absent."""

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def __getattr__(self, name: str) -> Any:
        # on_batch_begin, on_test_end, ...: every other hook does nothing.
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


def _callback_base() -> type:
    for module in ("keras.callbacks", "tensorflow.keras.callbacks"):
        try:
            return importlib.import_module(module).Callback  # type: ignore[no-any-return]
        except Exception:  # noqa: BLE001 - absent or broken install: fall back
            continue
    return _PlainCallback


class ExqLiveCallback(_callback_base()):  # type: ignore[misc]
    """Log every value of ``logs`` at epoch end, save the model, then ``next_step``.

    As dvclive's ``DvcLiveCallback(model_file=None, save_weights_only=False,
    **kwargs)``: ``model_file`` is saved before ``next_step`` so that a
    checkpoint holds it, and loaded back at ``on_train_begin`` when the
    logger resumes (a checkpoint run continued by the runner).  The logger is
    ``cb.dvclive`` (``cb.live`` too): ``Live(**kwargs)``, or the module's
    default logger when ``exq.live.init`` opened one and no kwargs are given
    (the dvclive 0.x style), or the ``live`` given.
    """

    model: Any  # set by Keras (set_model); an annotation only, no class attribute

    def __init__(
        self,
        model_file: str | os.PathLike[str] | None = None,
        save_weights_only: bool = False,
        *,
        live: Live | None = None,
        **live_kwargs: Any,
    ) -> None:
        super().__init__()
        self._owns_live = False
        if live is None and not live_kwargs and exq.live._default is not None:
            live = exq.live._default
        if live is None:
            live = Live(**live_kwargs)
            self._owns_live = True
        self.dvclive = live
        self.model_file = None if model_file is None else os.fspath(model_file)
        self.save_weights_only = save_weights_only

    @property
    def live(self) -> Live:
        """The logger (``dvclive`` is dvclive's name for it)."""
        return self.dvclive

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """On resume, load the model file that the last checkpoint saved."""
        if not (self.dvclive._resume and self.model_file and os.path.exists(self.model_file)):
            return
        if self.save_weights_only:
            self.model.load_weights(self.model_file)
        else:
            self.model = _load_model(self.model_file)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Log the epoch's metrics, save the model, end the step."""
        for name, value in (logs or {}).items():
            self.dvclive.log(name, value)
        if self.model_file is not None and self.model is not None:
            if self.save_weights_only:
                self.model.save_weights(self.model_file)
            else:
                self.model.save(self.model_file)
        self.dvclive.next_step()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Write the final files of a logger this callback opened."""
        if self._owns_live:
            self.dvclive.end()


def _load_model(path: str) -> Any:
    """Keras' ``load_model`` (keras 3, else tf.keras), imported only now."""
    for module in ("keras.models", "tensorflow.keras.models"):
        try:
            loader = importlib.import_module(module).load_model
        except Exception:  # noqa: BLE001 - absent or broken install: try the next
            continue
        return loader(path)
    raise ImportError(f"loading {path} back needs keras or tensorflow")


DvcLiveCallback = ExqLiveCallback
