"""The environment variables exq.live reads (dvclive's names first) and how.

The runner (exq, or DVC 2) sets them; a script run by hand sees none of them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

DVCLIVE_PATH = "DVCLIVE_PATH"
DVCLIVE_SUMMARY = "DVCLIVE_SUMMARY"
DVCLIVE_HTML = "DVCLIVE_HTML"
DVCLIVE_RESUME = "DVCLIVE_RESUME"
EXQ_RESUME = "EXQ_RESUME"
DVC_CHECKPOINT = "DVC_CHECKPOINT"
DVC_ROOT = "DVC_ROOT"
EXQ_CHECKPOINT = "EXQ_CHECKPOINT"
EXQ_ROOT = "EXQ_ROOT"
# Set by the queue daemon: a file where the logger keeps its step and declared
# total, read by `exq queue status` (never an output of the run).
EXQ_PROGRESS_FILE = "EXQ_PROGRESS_FILE"

# Set by exq for an experiment's stages: its name, and its -S edits as JSON.
EXQ_EXP_NAME = "EXQ_EXP_NAME"
EXQ_EXP_PARAMS = "EXQ_EXP_PARAMS"

_TRUE = {"1", "true", "yes", "on", "y"}


def experiment_heading(environ: Mapping[str, str] | None = None) -> tuple[str | None, list[str]]:
    """The experiment a logger runs in (its name, its ``-S`` edits), as exq tells
    its stages; (None, []) outside an experiment. A malformed list is no list."""
    env = os.environ if environ is None else environ
    name = env.get(EXQ_EXP_NAME) or None
    try:
        edits = json.loads(env.get(EXQ_EXP_PARAMS) or "[]")
    except ValueError:
        edits = []
    if not isinstance(edits, list):
        edits = []
    return name, [str(edit) for edit in edits]


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool | None:
    """``1/true/yes/on/y`` -> True, anything else (``0``, ``''``) -> False, unset -> None.

    dvclive 0.x read these as ``bool(int(value))`` and 0.7+ as "1, y, yes or
    true": both read ``0`` as off, which is what matters (``DVC_CHECKPOINT=0``).
    """
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value is None:
        return None
    return value.strip().lower() in _TRUE
