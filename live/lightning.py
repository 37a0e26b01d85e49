"""A PyTorch Lightning logger writing into ``exq.live``.

    from exq.live.lightning import ExqLiveLogger
    trainer = Trainer(logger=ExqLiveLogger("logs"), ...)

Imported only when used; needs ``lightning`` (2.x) or ``pytorch_lightning``
(1.9+).  Lightning gives the global step with every ``log_metrics`` call, so
the logger follows it instead of counting steps itself.  A checkpoint is
signalled to the runner each time Lightning saves a model checkpoint
(``after_save_checkpoint``), so the snapshot holds the new ``.ckpt``.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping
from typing import Any

from exq.live.error import DataAlreadyLoggedError
from exq.live.logger import Live, make_checkpoint

try:
    from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
    from lightning.pytorch.utilities import rank_zero_only
except ImportError:  # the older package name
    from pytorch_lightning.loggers.logger import Logger, rank_zero_experiment  # type: ignore[no-redef]
    from pytorch_lightning.utilities import rank_zero_only  # type: ignore[no-redef]


class ExqLiveLogger(Logger):  # type: ignore[misc]
    """Lightning logger: metrics to TSV/summary/report, hyperparameters to params.yaml."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        run_name: str = "exq_live",
        prefix: str = "",
        **live_kwargs: Any,
    ) -> None:
        super().__init__()
        self._path = path
        self._run_name = run_name
        self._prefix = prefix
        self._live_kwargs = live_kwargs
        self._live: Live | None = None

    @property
    def name(self) -> str:
        return self._run_name

    @property
    def version(self) -> str:
        return os.fspath(self._path) if self._path is not None else Live.DEFAULT_DIR

    @property
    @rank_zero_experiment
    def experiment(self) -> Live:
        """The ``Live`` logger, opened on first use (on rank zero only)."""
        if self._live is None:
            # Checkpoints follow Lightning's model saves, not steps.
            self._live = Live(self._path, checkpoint=False, **self._live_kwargs)
        return self._live

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Record the hyperparameters; values that are no param type become text."""
        if isinstance(params, argparse.Namespace):
            params = vars(params)
        self.experiment.log_params(_plain(dict(params or {})))

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log ``metrics`` at Lightning's ``step`` and refresh the files."""
        live = self.experiment
        at = live.step if step is None else int(step)
        for name, value in metrics.items():
            try:
                live.log(f"{self._prefix}{name}", value, step=at)
            except DataAlreadyLoggedError:
                pass  # Lightning logs some values twice in a step: keep the first
        live.flush()

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Lightning saved a model: let the runner snapshot it (blocks)."""
        make_checkpoint()

    @rank_zero_only
    def save(self) -> None:
        if self._live is not None:
            self._live.flush()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._live is not None:
            self._live.end()


def _plain(params: Mapping[str, Any]) -> dict[str, Any]:
    return {str(key): _value(value) for key, value in params.items()}


def _value(value: Any) -> Any:
    """A value ``log_params`` accepts: containers kept, anything odd as text."""
    if isinstance(value, Mapping):
        return _plain(value)
    if isinstance(value, (list, tuple)):
        return [_value(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
