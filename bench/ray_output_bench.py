"""What a big output of a Ray run costs the daemon: time, memory, answers.

A one-node Ray cluster is started on 127.0.0.1 (as the tests start it) and an
exq daemon (``queue start --executor ray``) runs one run whose only stage
writes ``SIZE_MB`` of random bytes as its out (1 GB by default: too heavy for
the test suite, whose test of this is 150 MB). While the output comes back
through the job's log, the daemon is pinged every 0.1 s; its peak and final
resident memory (``VmHWM``, ``VmRSS``) are read from /proc, against the same
figures taken once Ray's client is loaded (after a first tiny run).

Run with: .venv/bin/python bench/ray_output_bench.py [SIZE_MB] (needs `make ray`,
a few GB of free disk for Ray's copy of the log).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, cache_bytecode, exq_bin, git_commit_all, git_init, run

sys.path.insert(0, str(ROOT))
from exq.daemon.client import Client  # noqa: E402
from tests.ray_cluster import ray_available, start_cluster, stop_cluster  # noqa: E402

TIMEOUT = 1800.0
WRITE = """\
import os
from pathlib import Path

size = int(Path("params.yaml").read_text().split("mb:")[1].split()[0])
with open("out.bin", "wb") as out:
    for _ in range(size):
        out.write(os.urandom(1 << 20))
"""
DVC_YAML = f"""\
stages:
  write:
    cmd: {sys.executable} write.py
    params:
    - mb
    outs:
    - out.bin
"""


def memory(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS of ``pid`` in MiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            found[key] = int(value.split()[0]) // 1024
    return found


def run_one(exq: str, path: Path, mb: int) -> tuple[float, list[float]]:
    """Queue one run writing ``mb`` MB; (seconds to its end, ping waits meanwhile)."""
    start = time.perf_counter()
    run([exq, "exp", "run", "--queue", "-S", f"mb={mb}", "-n", f"out-{mb}"], path)
    waits: list[float] = []
    stop = threading.Event()
    client = Client(Path(os.environ["EXQ_RUNTIME_DIR"]) / "daemon.sock", timeout=30.0)

    def ping() -> None:
        while not stop.is_set():
            began = time.perf_counter()
            client.ping()
            waits.append(time.perf_counter() - began)
            time.sleep(0.1)

    pinger = threading.Thread(target=ping)
    pinger.start()
    try:
        while True:
            out = subprocess.run(
                [exq, "queue", "status", "--json"], cwd=path, capture_output=True, text=True
            ).stdout
            last = json.loads(out)["runs"][-1]
            if last["state"] not in ("queued", "running"):
                if last["state"] != "success":
                    sys.exit(f"the run ended {last['state']}: {last['error']}")
                return time.perf_counter() - start, waits
            if time.perf_counter() - start > TIMEOUT:
                sys.exit(f"the run did not end within {TIMEOUT:g} s")
            time.sleep(1.0)
    finally:
        stop.set()
        pinger.join()


def main() -> None:
    if not ray_available():
        sys.exit("Ray is not installed in this interpreter: run 'make ray' first")
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    exq = exq_bin()
    with tempfile.TemporaryDirectory(prefix="exq-robench-") as tmp_name:
        tmp = Path(tmp_name)
        cache_bytecode(tmp)
        os.environ["EXQ_STATE_DIR"] = str(tmp / "state")
        runtime = tempfile.mkdtemp(prefix="exq-rb", dir="/tmp")  # short socket path
        os.environ["EXQ_RUNTIME_DIR"] = str(Path(runtime) / "run")
        ray_temp = Path(tempfile.mkdtemp(prefix="exqray-", dir="/tmp"))
        proc, address = start_cluster(ray_temp)
        try:
            path = tmp / "project"
            path.mkdir()
            git_init(path)
            (path / "write.py").write_text(WRITE)
            (path / "params.yaml").write_text("mb: 1\n")
            (path / "dvc.yaml").write_text(DVC_YAML)
            (path / ".gitignore").write_text("/out.bin\n")
            run([exq, "init"], path)
            git_commit_all(path, "bench project")
            run([exq, "queue", "start", "--executor", "ray", "--address", address], path)
            pid = int((tmp / "state" / "daemon.lock").read_text().strip())
            run_one(exq, path, 1)  # Ray's client loaded: the baseline
            base = memory(pid)
            seconds, waits = run_one(exq, path, size)
            after = memory(pid)
            print(
                f"workload: one Ray run whose out is {size} MB of random bytes;"
                f" one-node Ray cluster on 127.0.0.1; {os.cpu_count()} cores"
            )
            print(f"enqueue to success          {seconds:8.1f} s")
            waits.sort()
            print(
                f"pings answered              {len(waits):8d}   median {waits[len(waits) // 2]:.3f} s"
                f"   99th percentile {waits[len(waits) * 99 // 100]:.3f} s   slowest {waits[-1]:.3f} s"
            )
            print(
                f"daemon RSS (MiB)            before {base['VmRSS']}   peak {after['VmHWM']}"
                f"   after {after['VmRSS']}   (peak growth {after['VmHWM'] - base['VmHWM']})"
            )
        finally:
            subprocess.run([exq, "queue", "stop", "--kill"], cwd=tmp, capture_output=True)
            stop_cluster(proc)
            shutil.rmtree(ray_temp, ignore_errors=True)
            shutil.rmtree(runtime, ignore_errors=True)


if __name__ == "__main__":
    main()
