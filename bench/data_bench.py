"""exq against dvc on data at scale: a folder of many small files, and one big file.

For each folder size (30,000 and 100,000 files in 100 sub-folders, not tracked
by git) two identical copies of a project are made; one is driven by exq, the
other by dvc. Each figure is the wall time of one command, with the peak RSS
of its process, and the ratio dvc/exq:

- ``add data``: hash the folder, fill the cache, write ``data.dvc``;
- ``status`` right after, nothing changed;
- ``checkout`` into a workspace whose ``data`` folder was deleted;
- a no-op ``repro`` of a stage whose dependency is the folder;
- ``repro`` after one file of the folder changed (only it is read again);

then ``add`` of one big file (2 GB by default), beside ``md5sum`` of the same
file. ``EXQ_BENCH_SIZES=30000`` and ``EXQ_BENCH_BIG_MB=512`` shrink the run.

Run with `make bench` (it installs the real dvc into .venv-dvc first).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import cache_bytecode, dvc_bin, exq_bin, git_commit_all, git_init

SIZES = [int(n) for n in os.environ.get("EXQ_BENCH_SIZES", "30000,100000").split(",")]
BIG_MB = int(os.environ.get("EXQ_BENCH_BIG_MB", "2048"))
FOLDERS = 100

DVC_YAML = """\
stages:
  count:
    cmd: find data -type f | wc -l > count.txt
    deps:
      - data
    outs:
      - count.txt
"""


def measure(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one command, measured in a fresh process."""
    probe = (
        "import resource, subprocess, sys, time, os\n"
        "env = {**os.environ, 'DVC_NO_ANALYTICS': '1', 'DVC_NO_UPDATER': '1'}\n"
        "t = time.perf_counter()\n"
        "done = subprocess.run(sys.argv[1:], env=env, capture_output=True)\n"
        "t = time.perf_counter() - t\n"
        "if done.returncode:\n"
        "    sys.exit(done.stdout.decode() + done.stderr.decode())\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(t, rss)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *cmd], cwd=cwd, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed in {cwd}:\n{done.stdout}\n{done.stderr}")
    seconds, rss = done.stdout.split()
    return float(seconds), float(rss)


def line(label: str, exq: tuple[float, float], dvc: tuple[float, float]) -> None:
    ratio = dvc[0] / exq[0] if exq[0] > 0 else float("inf")
    print(
        f"{label:<34} exq {exq[0]:8.3f} s {exq[1]:6.0f} MiB   "
        f"dvc {dvc[0]:8.3f} s {dvc[1]:6.0f} MiB   dvc/exq {ratio:5.1f}x",
        flush=True,
    )


def make_project(path: Path, n_files: int) -> None:
    path.mkdir(parents=True)
    git_init(path)
    (path / "dvc.yaml").write_text(DVC_YAML)
    git_commit_all(path, "bench project")
    data = path / "data"
    per = max(1, n_files // FOLDERS)
    for i in range(n_files):
        folder = data / f"d{i // per:03d}"
        if i % per == 0:
            folder.mkdir(parents=True)
        (folder / f"f{i:06d}.txt").write_text(f"file {i}\n" + "x" * (i % 200))


def folder_round(base: Path, n_files: int, exq: str, dvc: str) -> None:
    src = base / f"src-{n_files}"
    make_project(src, n_files)
    dirs = {"exq": base / f"exq-{n_files}", "dvc": base / f"dvc-{n_files}"}
    for tool, d in dirs.items():
        shutil.copytree(src, d, symlinks=True)
        subprocess.run([tools_init(tool, exq, dvc), "init"], cwd=d, check=True, capture_output=True)
    shutil.rmtree(src)
    tools = {"exq": exq, "dvc": dvc}

    def both(label: str, *args: str, before=None) -> None:  # type: ignore[no-untyped-def]
        figures = {}
        for tool, d in dirs.items():
            if before is not None:
                before(d)
            figures[tool] = measure([tools[tool], *args], d)
        line(f"{label} ({n_files:,} files)", figures["exq"], figures["dvc"])

    both("add data", "add", "data")
    both("status, nothing changed", "status")
    both(
        "checkout into empty data/",
        "checkout",
        "data.dvc",
        before=lambda d: shutil.rmtree(d / "data"),
    )
    both("first repro", "repro")
    both("no-op repro", "repro")
    check = subprocess.run([dvc, "status"], cwd=dirs["exq"], capture_output=True, text=True)
    print(f"  dvc status on exq's project: {check.stdout.strip() or check.stderr.strip()}")

    def touch_one(d: Path) -> None:
        victim = next((d / "data" / "d050").iterdir())
        if victim.is_symlink() or victim.stat().st_nlink > 1:  # a link into the cache
            victim.unlink()
        victim.write_text("changed\n")

    both("repro after one file changed", "repro", before=touch_one)
    for d in dirs.values():
        shutil.rmtree(d)


def big_file_round(base: Path, exq: str, dvc: str) -> None:
    src = base / "big-src"
    src.mkdir()
    git_init(src)
    git_commit_all_empty(src)
    block = os.urandom(1 << 20)
    with open(src / "big.bin", "wb") as fobj:
        for _ in range(BIG_MB):
            fobj.write(block)
    dirs = {"exq": base / "big-exq", "dvc": base / "big-dvc"}
    for tool, d in dirs.items():
        shutil.copytree(src, d)
        subprocess.run([tools_init(tool, exq, dvc), "init"], cwd=d, check=True, capture_output=True)
    md5sum = measure(["md5sum", "big.bin"], src)
    shutil.rmtree(src)
    figures = {
        "exq": measure([exq, "add", "big.bin"], dirs["exq"]),
        "dvc": measure([dvc, "add", "big.bin"], dirs["dvc"]),
    }
    line(f"add of one {BIG_MB} MB file", figures["exq"], figures["dvc"])
    print(
        f"  md5sum of the same file: {md5sum[0]:.3f} s; exq add / md5sum "
        f"{figures['exq'][0] / md5sum[0]:.2f}x"
    )


def tools_init(tool: str, exq: str, dvc: str) -> str:
    return exq if tool == "exq" else dvc


def git_commit_all_empty(path: Path) -> None:
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "empty"], cwd=path, check=True)


def main() -> None:
    exq, dvc = exq_bin(), dvc_bin()
    with tempfile.TemporaryDirectory(prefix="exq-bench-") as tmp:
        cache_bytecode(Path(tmp))
        print(
            f"data at scale: folders of {', '.join(f'{n:,}' for n in SIZES)} files "
            f"in {FOLDERS} sub-folders, and one {BIG_MB} MB file; {os.cpu_count()} cores"
        )
        for n_files in SIZES:
            folder_round(Path(tmp), n_files, exq, dvc)
        if BIG_MB > 0:
            big_file_round(Path(tmp), exq, dvc)


if __name__ == "__main__":
    main()
