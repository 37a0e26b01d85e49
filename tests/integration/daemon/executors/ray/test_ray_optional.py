"""Ray stays optional: nothing of exq imports it unless a run goes to a cluster."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "exq.cli.main",
    "exq.cli.queue_cmds",
    "exq.cli.exp_run_cmd",
    "exq.daemon.main",
    "exq.daemon.scheduler",
    "exq.daemon.executors.base",
    "exq.daemon.executors.local",
    "exq.daemon.executors.ray.remote",
    "exq.daemon.executors.ray.worker",
    "exq.daemon.executors.ray.shipment",
]


def test_no_module_but_the_ray_executor_imports_ray() -> None:
    code = (
        f"import sys\nfor name in {MODULES!r}:\n    __import__(name)\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
