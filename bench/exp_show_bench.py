"""exq exp show --json against dvc exp show --json, and one exp run -S against dvc's.

The workload for ``exp show``: one baseline (a one-stage pipeline with two
params and a ``metrics.json`` kept in git) and N experiments on it, N = 20,
200 and 1,000. Experiments are made through exq's git API, not by running the
pipeline N times: each is a commit on top of the baseline holding its own
``params.yaml``, ``metrics.json`` and ``dvc.lock``, under
``refs/exps/<baseline[:2]>/<baseline[2:]>/<name>``, exactly what ``exq exp run``
commits, so the real dvc lists them too (the script checks that it does).
Both tools read the same repository. dvc keeps a cache of results under
``.dvc/tmp``: its first run is reported as cold, the best of the next runs as warm.

With ``EXQ_BENCH_SHOW_MORE=10000`` (a comma list), larger listings are timed
for exq alone afterwards (dvc takes minutes a call there).

``exp run``: one ``exq exp run -S`` and one ``dvc exp run -S`` of a trivial stage,
each in its own copy of the project, best of three runs with new values.

Run with `make bench` (it installs the real dvc into .venv-dvc first).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (
    ROOT,
    best_of,
    cache_bytecode,
    dvc_bin,
    exq_bin,
    git_commit_all,
    git_init,
    report,
    run,
)

sys.path.insert(0, str(ROOT))  # not needed when exq is installed; harmless otherwise

from exq.engine.experiments.refs import exp_ref  # noqa: E402
from exq.engine.git import Git  # noqa: E402

SIZES = (20, 200, 1000)
# Larger listings timed for exq alone (dvc takes minutes a call there), e.g. "10000".
EXQ_ONLY_SIZES = tuple(int(n) for n in os.environ.get("EXQ_BENCH_SHOW_MORE", "").split(",") if n)

TRAIN = """\
import json
import yaml

params = yaml.safe_load(open("params.yaml"))["train"]
acc = round(0.5 + params["lr"] / 2, 6)
json.dump({"acc": acc, "loss": round(1 - acc, 6)}, open("metrics.json", "w"))
"""

DVC_YAML = """\
stages:
  train:
    cmd: python train.py
    deps:
    - train.py
    params:
    - train.lr
    - train.epochs
    metrics:
    - metrics.json:
        cache: false
"""


def params_text(lr: float, epochs: int) -> str:
    return f"train:\n  lr: {lr}\n  epochs: {epochs}\nseed: 42\n"


def metrics_text(lr: float) -> str:
    acc = round(0.5 + lr / 2, 6)
    return json.dumps({"acc": acc, "loss": round(1 - acc, 6)})


def make_project(path: Path) -> None:
    """The baseline: pipeline run once (so dvc.lock and metrics.json are committed)."""
    path.mkdir(parents=True)
    git_init(path)
    (path / "train.py").write_text(TRAIN)
    (path / "dvc.yaml").write_text(DVC_YAML)
    (path / "params.yaml").write_text(params_text(0.1, 10))
    run([exq_bin(), "init"], path)
    run([exq_bin(), "repro"], path)
    git_commit_all(path, "baseline")


def add_experiments(path: Path, start: int, stop: int) -> None:
    """Experiments ``start`` .. ``stop - 1``, committed as ``exq exp run`` commits them."""
    git = Git.open(path)
    baseline = git.head_sha()
    assert baseline is not None
    lock = (path / "dvc.lock").read_text()
    for i in range(start, stop):
        lr = round(0.001 * (i + 1), 6)
        params, metrics = params_text(lr, 10), metrics_text(lr)
        md5 = hashlib.md5(metrics.encode()).hexdigest()
        exp_lock = re.sub(r"train\.lr: .*", f"train.lr: {lr}", lock)
        exp_lock = re.sub(
            r"(path: metrics.json\n\s+hash: md5\n\s+md5: )\w+(\n\s+size: )\d+",
            rf"\g<1>{md5}\g<2>{len(metrics)}",
            exp_lock,
        )
        sha = git.snapshot_workspace(
            f"exq: experiment exp-{i:05d}",
            parent=baseline,
            extra={
                "params.yaml": params.encode(),
                "metrics.json": metrics.encode(),
                "dvc.lock": exp_lock.encode(),
            },
        )
        git.set_ref(exp_ref(baseline, f"exp-{i:05d}"), sha)


def count_dvc_experiments(dvc: str, path: Path) -> int:
    out = subprocess.run(
        [dvc, "exp", "show", "--json"], cwd=path, capture_output=True, text=True, check=True
    ).stdout
    rows = json.loads(out)
    return sum(len(row.get("experiments") or []) for row in rows)


def count_exq_experiments(exq: str, path: Path) -> int:
    out = subprocess.run(
        [exq, "exp", "show", "--json"], cwd=path, capture_output=True, text=True, check=True
    ).stdout
    return sum(1 for row in json.loads(out) if row["kind"] == "experiment")


def bench_show(tmp: Path, exq: str, dvc: str) -> None:
    project = tmp / "show"
    make_project(project)
    made = 0
    for size in SIZES:
        start = time.perf_counter()
        add_experiments(project, made, size)
        made = size
        print(f"made {size} experiments ({time.perf_counter() - start:.1f} s to write them)")
        assert count_exq_experiments(exq, project) == size
        exq_s = best_of(3, [exq, "exp", "show", "--json"], project)
        shutil.rmtree(project / ".dvc" / "tmp", ignore_errors=True)  # dvc's results cache
        dvc_cold = run([dvc, "exp", "show", "--json"], project)
        dvc_warm = best_of(2, [dvc, "exp", "show", "--json"], project)
        listed = count_dvc_experiments(dvc, project)
        report(f"exp show --json, N={size}", exq_s, dvc_warm)
        print(
            f"{'':<28} dvc cold {dvc_cold:.3f} s (dvc/exq {dvc_cold / exq_s:.1f}x);"
            f" dvc lists {listed} of {size}"
        )
    for size in EXQ_ONLY_SIZES:
        add_experiments(project, made, size)
        made = size
        cold = run([exq, "exp", "show", "--json"], project)  # reads every new commit once
        assert count_exq_experiments(exq, project) == size
        exq_s = best_of(3, [exq, "exp", "show", "--json"], project)
        print(f"exp show --json, N={size:<6}  exq {exq_s:8.3f} s   (first run {cold:.3f} s)")


def bench_run(tmp: Path, exq: str, dvc: str) -> None:
    base = tmp / "run-base"
    base.mkdir()
    git_init(base)
    (base / "params.yaml").write_text("x: 0\n")
    (base / "dvc.yaml").write_text(
        "stages:\n  echo:\n    cmd: echo ${x} > out.txt\n    params:\n    - x\n"
        "    outs:\n    - out.txt\n"
    )
    git_commit_all(base, "trivial pipeline")
    exq_dir, dvc_dir = tmp / "run-exq", tmp / "run-dvc"
    shutil.copytree(base, exq_dir, symlinks=True)
    shutil.copytree(base, dvc_dir, symlinks=True)
    run([exq, "init"], exq_dir)
    git_commit_all(exq_dir, "exq init")
    run([dvc, "init", "-q"], dvc_dir)
    git_commit_all(dvc_dir, "dvc init")
    exq_s = min(run([exq, "exp", "run", "-S", f"x={i}"], exq_dir) for i in range(1, 4))
    dvc_s = min(run([dvc, "exp", "run", "-S", f"x={i}"], dvc_dir) for i in range(1, 4))
    report("exp run -S (trivial stage)", exq_s, dvc_s)


def main() -> None:
    exq, dvc = exq_bin(), dvc_bin()
    with tempfile.TemporaryDirectory(prefix="exq-bench-") as tmp:
        cache_bytecode(Path(tmp))
        bench_show(Path(tmp), exq, dvc)
        bench_run(Path(tmp), exq, dvc)


if __name__ == "__main__":
    main()
