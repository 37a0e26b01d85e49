"""exq push/pull against dvc push/pull, on the same S3 server (moto's, on 127.0.0.1).

Two rounds: a folder of 10,000 small files (in 100 sub-folders), and one big
file (2 GB by default). Each tool works in its own copy of one project (the
same ``.dvc`` file, the same cache) and sends to its own prefix of one
bucket, so each uploads everything. Figures, each the wall time and peak RSS
of one command, with the ratio dvc/exq:

- ``push``: everything to an empty prefix;
- ``push, nothing to send``: again, the remote holds it all;
- ``pull into an empty cache``: the cache and the workspace copy deleted first.

``EXQ_BENCH_REMOTE_FILES=2000`` and ``EXQ_BENCH_BIG_MB=256`` shrink the run.
The server is a single Python process: the figures say how the clients spend
it, not what a real S3 bucket would give. Run with `make bench`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from common import ROOT, cache_bytecode, dvc_bin, exq_bin, git_commit_all, git_init
from data_bench import measure

sys.path.insert(0, str(ROOT))
from tests.s3_server import moto_server  # noqa: E402

FILES = int(os.environ.get("EXQ_BENCH_REMOTE_FILES", "10000"))
BIG_MB = int(os.environ.get("EXQ_BENCH_BIG_MB", "2048"))
FOLDERS = 100
BUCKET = "exq-bench"
ISOLATED = {  # the machine's AWS settings do not count: config.local has the keys
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def line(label: str, exq: tuple[float, float], dvc: tuple[float, float]) -> None:
    ratio = dvc[0] / exq[0] if exq[0] > 0 else float("inf")
    print(
        f"{label:<44} exq {exq[0]:8.3f} s {exq[1]:5.0f} MiB   "
        f"dvc {dvc[0]:8.3f} s {dvc[1]:5.0f} MiB   dvc/exq {ratio:5.1f}x",
        flush=True,
    )


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free port of 127.0.0.1 with an empty bucket; its endpoint."""
    with ExitStack() as stack:
        try:
            endpoint = stack.enter_context(moto_server(BUCKET))
        except RuntimeError:
            sys.exit("moto's S3 server did not start (make remote installs it)")
        yield endpoint


def use_remote(root: Path, exq: str, endpoint: str, prefix: str) -> None:
    """The project's default remote: ``prefix`` in the bucket, keys in config.local."""
    for args in (
        ["remote", "add", "-f", "-d", "store", f"s3://{BUCKET}/{prefix}"],
        ["remote", "modify", "store", "endpointurl", endpoint],
        ["remote", "modify", "store", "region", "us-east-1"],
        ["remote", "modify", "--local", "store", "access_key_id", "bench"],
        ["remote", "modify", "--local", "store", "secret_access_key", "bench"],
    ):
        subprocess.run([exq, *args], cwd=root, check=True, capture_output=True)


def make_source(path: Path, exq: str, fill: Callable[[Path], str]) -> None:
    """A project whose data (``fill`` writes it, returns its name) is added and committed."""
    path.mkdir(parents=True)
    git_init(path)
    subprocess.run([exq, "init"], cwd=path, check=True, capture_output=True)
    name = fill(path)
    subprocess.run([exq, "add", name], cwd=path, check=True, capture_output=True)
    git_commit_all(path, "data")


def small_files(root: Path) -> str:
    per = max(1, FILES // FOLDERS)
    for i in range(FILES):
        folder = root / "data" / f"d{i // per:03d}"
        if i % per == 0:
            folder.mkdir(parents=True)
        (folder / f"f{i:06d}.txt").write_text(f"file {i}\n" + "x" * (i % 200))
    return "data"


def big_file(root: Path) -> str:
    block = bytearray(os.urandom(1 << 20))
    with open(root / "big.bin", "wb") as out:
        for index in range(BIG_MB):
            block[:8] = index.to_bytes(8, "little")  # no two blocks alike
            out.write(block)
    return "big.bin"


def round_trip(base: Path, label: str, fill: Callable[[Path], str], tools: dict[str, str]) -> None:
    exq = tools["exq"]
    src = base / f"src-{label}"
    make_source(src, exq, fill)
    name = fill.__name__
    dirs = {tool: base / f"{tool}-{name}" for tool in tools}
    with s3_server() as endpoint:
        for tool, d in dirs.items():
            shutil.copytree(src, d, symlinks=True)
            use_remote(d, exq, endpoint, f"{tool}-{name}")
        shutil.rmtree(src)

        def both(what: str, args: list[str], before: Callable[[Path], None] | None = None) -> None:
            figures = {}
            for tool, d in dirs.items():
                if before is not None:
                    before(d)
                figures[tool] = measure([tools[tool], *args], d)
            line(f"{what} ({label})", figures["exq"], figures["dvc"])

        def empty(d: Path) -> None:
            shutil.rmtree(d / ".dvc" / "cache")
            target = d / ("data" if name == "small_files" else "big.bin")
            shutil.rmtree(target) if target.is_dir() else target.unlink()

        both("push", ["push"])
        both("push, nothing to send", ["push"])
        both("pull into an empty cache", ["pull"], before=empty)
    for d in dirs.values():
        shutil.rmtree(d)


def main() -> None:
    try:
        import moto.server  # noqa: F401
        import s3fs  # noqa: F401
    except ImportError:
        sys.exit("remote_bench needs moto[server] and s3fs: run 'make remote' first")
    os.environ.update(ISOLATED)
    tools = {"exq": exq_bin(), "dvc": dvc_bin()}
    with tempfile.TemporaryDirectory(prefix="exq-bench-") as tmp:
        cache_bytecode(Path(tmp))
        print(
            f"push/pull through moto's S3 server: {FILES:,} small files, and one"
            f" {BIG_MB} MB file; {os.cpu_count()} cores; default -j for both"
        )
        round_trip(Path(tmp), f"{FILES:,} files", small_files, tools)
        if BIG_MB > 0:
            round_trip(Path(tmp), f"one {BIG_MB} MB file", big_file, tools)


if __name__ == "__main__":
    main()
