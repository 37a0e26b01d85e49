"""exq repro / status against dvc repro / status on the same pipeline.

The workload: 2,000 small data files in data/, and a foreach stage of 50 items
that each depend on the whole folder and write one small output. Two identical
copies of the project are made; one is driven by exq, the other by dvc.

Run with `make bench` (it installs the real dvc into .venv-dvc first).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from common import best_of, cache_bytecode, dvc_bin, exq_bin, git_commit_all, git_init, report, run

N_FILES = 2000
N_ITEMS = 50

DVC_YAML = """\
stages:
  count:
    foreach: ${items}
    do:
      cmd: ls data | wc -l > counts/${item}.txt && echo ${factor} >> counts/${item}.txt
      deps:
        - data
      outs:
        - counts/${item}.txt
"""


def make_project(path: Path) -> None:
    path.mkdir(parents=True)
    git_init(path)
    data = path / "data"
    data.mkdir()
    for i in range(N_FILES):
        (data / f"f{i:05d}.txt").write_text(f"row {i}\n" * 10)
    items = ", ".join(f"i{i:02d}" for i in range(N_ITEMS))
    (path / "params.yaml").write_text(f"items: [{items}]\nfactor: 3\n")
    (path / "dvc.yaml").write_text(DVC_YAML)
    (path / "counts").mkdir()
    (path / "counts" / ".gitkeep").write_text("")
    git_commit_all(path, "bench project")


def main() -> None:
    exq, dvc = exq_bin(), dvc_bin()
    with tempfile.TemporaryDirectory(prefix="exq-bench-") as tmp:
        cache_bytecode(Path(tmp))
        base = Path(tmp) / "base"
        make_project(base)
        exq_dir, dvc_dir = Path(tmp) / "exq", Path(tmp) / "dvc"
        shutil.copytree(base, exq_dir, symlinks=True)
        shutil.copytree(base, dvc_dir, symlinks=True)
        run([exq, "init"], exq_dir)
        run([dvc, "init", "-q"], dvc_dir)
        print(f"pipeline: foreach of {N_ITEMS} items over {N_FILES} data files")
        report("first repro", run([exq, "repro"], exq_dir), run([dvc, "repro"], dvc_dir))
        report(
            "no-op repro",
            best_of(3, [exq, "repro"], exq_dir),
            best_of(3, [dvc, "repro"], dvc_dir),
        )
        report(
            "status",
            best_of(3, [exq, "status"], exq_dir),
            best_of(3, [dvc, "status"], dvc_dir),
        )
        check = subprocess.run([dvc, "status"], cwd=exq_dir, capture_output=True, text=True)
        print(f"dvc status on exq's project: {check.stdout.strip() or check.stderr.strip()}")


if __name__ == "__main__":
    main()
