"""Hand-run micro-benchmark: hashing and saving a folder of small files, cold vs warm.

    .venv/bin/python bench/hash_speed.py [--files 2000] [--dvc PATH_TO_DVC]

"cold" runs with an empty state DB (every file is read), "warm" with the DB the
cold run filled (only stat calls and lookups). With --dvc, the same folder is
also timed with the real `dvc add` (cold) and `dvc status` (warm) for scale.
Not a test: it asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from exq.engine.data.cache import Cache, hash_path
from exq.engine.data.hashdb import STATE_RELPATH, HashState


def make_tree(top: Path, count: int) -> None:
    for i in range(count):
        sub = top / f"d{i % 40:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:05d}.txt").write_text(f"sample {i}\n" * (1 + i % 7))


def timed(label: str, func) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = func()
    elapsed = time.perf_counter() - start
    print(f"{label:<40} {elapsed * 1000:8.1f} ms   {result}")
    return elapsed


def hash_once(repo: Path, top: Path) -> str:
    with HashState(repo) as state:
        info = hash_path(top, state)
        return f"{info.md5} hits={state.hits} misses={state.misses}"


def save_once(repo: Path, top: Path, cache: Cache) -> str:
    with HashState(repo) as state:
        info = cache.save(top, state)
        return f"{info.md5} link={cache.last_link_type}"


def run_dvc(dvc: str, repo: Path, *args: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([dvc, *args], cwd=repo, env=env, check=True, capture_output=True)
    return " ".join(args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--dvc", default=None, help="path to the real dvc, to compare")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="exq-hash-bench-") as tmp:
        repo = Path(tmp)
        top = repo / "data"
        make_tree(top, args.files)
        print(f"{args.files} files in {top}")
        timed("exq hash cold (empty state)", lambda: hash_once(repo, top))
        timed("exq hash warm (state filled)", lambda: hash_once(repo, top))
        (repo / STATE_RELPATH).unlink()
        for suffix in ("-wal", "-shm"):
            Path(f"{repo / STATE_RELPATH}{suffix}").unlink(missing_ok=True)
        cache = Cache(repo / ".dvc" / "cache")
        timed("exq save cold (empty state, empty cache)", lambda: save_once(repo, top, cache))
        timed("exq save warm (all cached)", lambda: save_once(repo, top, cache))
        if args.dvc:
            shutil.rmtree(repo / ".dvc")
            subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
            run_dvc(args.dvc, repo, "init", "-q")
            timed("dvc add cold", lambda: run_dvc(args.dvc, repo, "add", "-q", "data"))
            timed("dvc status warm", lambda: run_dvc(args.dvc, repo, "status", "-q"))


if __name__ == "__main__":
    main()
