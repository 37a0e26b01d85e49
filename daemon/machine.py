"""What this machine has for runs: its GPUs, CPUs and memory.

GPUs, first found wins:

1. ``[resources] gpus = ["0", "1"]`` in the config file, or ``EXQ_GPUS=0,1``
   in the daemon's environment (which wins over the file): the user said so;
2. the ``CUDA_VISIBLE_DEVICES`` the daemon was started with: it was given
   those devices, and NVML would list the others too;
3. NVML (the ``nvidia-ml-py`` package, the ``exq[gpu]`` extra), imported only
   here and only if installed: every device of the machine;
4. none.

CPUs are the ones this process may run on, memory the machine's; both can be
set in ``[resources]`` (``cpus = 8``, ``mem = "64G"``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from exq.daemon.resources import Machine, ResourceError, parse_cpus, parse_size
from exq.engine.errors import ConfigError


def detect(resources: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Machine:
    """The machine as the daemon hands it out; raises ``ConfigError`` for a bad setting."""
    env = os.environ if env is None else env
    try:
        return Machine(
            gpus=_gpus(resources.get("gpus"), env),
            cpus=_cpus(resources.get("cpus")),
            mem=_mem(resources.get("mem")),
        )
    except ResourceError as exc:
        raise ConfigError(f"[resources] {exc}", hint=exc.hint) from None


def _gpus(setting: Any, env: Mapping[str, str]) -> tuple[str, ...]:
    if setting is not None:
        if not isinstance(setting, list) or not all(isinstance(g, (str, int)) for g in setting):
            raise ResourceError('gpus must be a list of device ids, as gpus = ["0", "1"]')
        return tuple(str(g) for g in setting)
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return tuple(g for g in visible.replace(" ", "").split(",") if g and g != "-1")
    return nvml_gpus()


def nvml_gpus() -> tuple[str, ...]:
    """The indices of the machine's NVIDIA GPUs through NVML; none without it."""
    try:
        import pynvml  # the nvidia-ml-py package: optional
    except ImportError:
        return ()
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver, no device: NVMLError and its many subclasses
        return ()
    try:
        return tuple(str(i) for i in range(pynvml.nvmlDeviceGetCount()))
    except Exception:
        return ()
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _cpus(setting: Any) -> float:
    if setting is not None:
        return parse_cpus(setting, "cpus")
    try:
        return float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return float(os.cpu_count() or 1)


def _mem(setting: Any) -> int:
    if setting is not None:
        return (
            setting if isinstance(setting, int) and setting > 0 else parse_size(str(setting), "mem")
        )
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0  # unknown: memory asks are not counted
