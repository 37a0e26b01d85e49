"""The checkpoint handshake with real training subprocesses and the runner-side helpers."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from exq.live.checkpoint import CheckpointRequest, CheckpointServer, SignalFileWatcher

DEADLINE = 20.0


@pytest.fixture
def sock_path() -> Iterator[Path]:
    """A socket path short enough for sun_path, whatever pytest's tmp_path is."""
    folder = Path(tempfile.mkdtemp(prefix="exqck"))
    os.chmod(folder, 0o700)
    yield folder / "ck.sock"
    shutil.rmtree(folder, ignore_errors=True)


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(body))
    return path


def _start(script: Path, cwd: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("EXQ_", "DVC"))}
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=cwd,
        env={**clean, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> str:
    """Wait for the script, close its pipes, check it succeeded; its stdout."""
    out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    return out


def _next(server: CheckpointServer, proc: subprocess.Popen[str]) -> CheckpointRequest:
    request = server.wait(timeout=DEADLINE)
    if request is None:
        proc.kill()
        raise AssertionError(f"no checkpoint request; script said: {proc.communicate()}")
    return request


TRAIN_5 = """
    import json, os, sys, time
    from exq.live import Live

    record = open(sys.argv[1], "w")
    with Live("logs") as live:
        for epoch in range(5):
            live.log("loss", 1.0 / (epoch + 1))
            live.log("train/acc", epoch / 10)
            step = live.step
            live.next_step()  # checkpoints: EXQ_CHECKPOINT is set
            done = time.monotonic()
            marker = os.path.exists(f"snap-{step}")
            record.write(json.dumps([step, done, marker]) + "\\n")
            record.flush()
"""


def test_five_checkpoints_block_until_acked(tmp_path: Path, sock_path: Path) -> None:
    script = _script(tmp_path, TRAIN_5)
    record = tmp_path / "record.jsonl"
    with CheckpointServer(sock_path) as server:
        proc = _start(script, tmp_path, server.env(), str(record))
        seen: list[tuple[int | None, int | None, float]] = []
        for _ in range(5):
            request = _next(server, proc)
            # The snapshot sees the files of the step just ended, whole.
            summary = json.loads((tmp_path / "logs.json").read_text())
            assert summary["step"] == request.step
            assert summary["train"]["acc"] == request.step / 10
            lines = (tmp_path / "logs" / "loss.tsv").read_text().splitlines()
            assert lines[0] == "timestamp\tstep\tloss"
            assert [int(line.split("\t")[1]) for line in lines[1:]] == list(range(request.step + 1))
            # The script is still inside next_step: it recorded nothing for this step.
            assert len(record.read_text().splitlines()) == len(seen)
            if request.step == 2:
                time.sleep(0.1)  # a slow snapshot: the script must wait it out
                assert len(record.read_text().splitlines()) == len(seen)
            (tmp_path / f"snap-{request.step}").write_text("")
            acked = time.monotonic()
            request.ack()
            seen.append((request.step, request.pid, acked))
        _finish(proc)
    assert [s for s, _, _ in seen] == [0, 1, 2, 3, 4]
    assert {pid for _, pid, _ in seen} == {proc.pid}
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    assert [r[0] for r in rows] == [0, 1, 2, 3, 4]
    for (step, done, marker), (_, _, acked) in zip(rows, seen, strict=True):
        assert marker, f"next_step of step {step} returned before the snapshot"
        assert done >= acked
    assert not sock_path.exists()


HANDSHAKES = """
    import json, statistics, sys, time
    from exq.live.checkpoint import signal_checkpoint

    times = []
    for i in range(int(sys.argv[1])):
        start = time.perf_counter()
        signal_checkpoint(i)
        times.append(time.perf_counter() - start)
    print(json.dumps(times))
"""


def test_handshake_overhead_is_small(tmp_path: Path, sock_path: Path) -> None:
    count = 300
    script = _script(tmp_path, HANDSHAKES)
    with CheckpointServer(sock_path) as server:
        proc = _start(script, tmp_path, server.env(), str(count))
        for expected in range(count):
            request = _next(server, proc)
            assert request.step == expected
            request.ack()
        out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    times = sorted(json.loads(out))
    median, p99 = statistics.median(times), times[int(len(times) * 0.99)]
    print(
        f"\nEXQ_CHECKPOINT socket handshake: median {median * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms"
    )
    assert median < 0.010
    assert p99 < 0.050


def test_refusal_and_runner_exit_raise_in_the_script(tmp_path: Path, sock_path: Path) -> None:
    script = _script(
        tmp_path,
        """
        from exq.live import CheckpointError, make_checkpoint
        for attempt in range(2):
            try:
                make_checkpoint()
            except CheckpointError as exc:
                print("raised:", exc, flush=True)
        """,
    )
    with CheckpointServer(sock_path) as server:
        proc = _start(script, tmp_path, server.env())
        first = _next(server, proc)
        assert first.step is None  # make_checkpoint() without a Live
        first.fail("disk full\nwhile hashing")
        _next(server, proc)  # the second attempt: the runner goes away instead
    out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    assert out.splitlines() == [
        "raised: the runner refused the checkpoint: disk full while hashing",
        f"raised: checkpoint channel {sock_path}: the runner closed it",
    ]


def test_without_a_runner_checkpoints_are_no_ops(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        """
        import time
        from exq.live import Live, make_checkpoint
        start = time.perf_counter()
        with Live("logs") as live:
            for step in range(3):
                live.log("loss", 1.0)
                live.next_step()
                make_checkpoint()
        print(live.step)
        """,
    )
    proc = _start(script, tmp_path, {})
    out, err = proc.communicate(timeout=DEADLINE)
    assert (proc.returncode, out.strip()) == (0, "3"), err


def test_a_forked_child_gets_its_own_connection(tmp_path: Path, sock_path: Path) -> None:
    script = _script(
        tmp_path,
        """
        import os
        from exq.live.checkpoint import signal_checkpoint
        signal_checkpoint(1)
        pid = os.fork()
        if pid == 0:
            signal_checkpoint(2)
            os._exit(0)
        os.waitpid(pid, 0)
        signal_checkpoint(3)
        """,
    )
    with CheckpointServer(sock_path) as server:
        proc = _start(script, tmp_path, server.env())
        requests = []
        for _ in range(3):
            request = _next(server, proc)
            requests.append(request)
            request.ack()
        _finish(proc)
    assert [r.step for r in requests] == [1, 2, 3]
    assert requests[0].pid == requests[2].pid == proc.pid
    assert requests[1].pid not in (None, proc.pid)


@pytest.mark.anyio
async def test_server_in_an_event_loop(tmp_path: Path, sock_path: Path) -> None:
    script = _script(tmp_path, HANDSHAKES)
    steps: list[int | None] = []
    with CheckpointServer(sock_path) as server:
        proc = _start(script, tmp_path, server.env(), "3")
        with anyio.fail_after(DEADLINE):
            while len(steps) < 3:
                await anyio.wait_readable(server.fileno())
                for request in server.poll():
                    steps.append(request.step)
                    request.ack()
        out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    assert steps == [0, 1, 2]


def test_server_rejects_garbage_and_too_long_paths(sock_path: Path) -> None:
    import socket

    with pytest.raises(ValueError, match="too long"):
        CheckpointServer("/tmp/" + "x" * 120)
    sock_path.write_text("not a socket")
    with pytest.raises(FileExistsError):
        CheckpointServer(sock_path)
    sock_path.unlink()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock_path))
    stale.close()  # the socket file stays, as after a killed runner: replaced below
    with CheckpointServer(sock_path) as server:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(str(sock_path))
        client.sendall(b"hello\ncheckpoint 7\n")
        request = server.wait(timeout=DEADLINE)
        assert request is not None and request.step == 7
        request.ack()
        client.settimeout(DEADLINE)
        data = b""
        while data.count(b"\n") < 2:
            data += client.recv(100)
        assert data == b"error bad request 'hello'\nok\n"
        client.close()


DVC_ERA = """
    import json, os, sys, time
    from exq.live import Live

    record = open(sys.argv[1], "w")
    live = Live("logs")
    for epoch in range(3):
        live.log("loss", 1.0 / (epoch + 1))
        start = time.perf_counter()
        live.next_step()
        record.write(json.dumps([epoch, time.perf_counter() - start, os.path.exists(f"snap-{epoch}")]) + "\\n")
        record.flush()
"""


def test_dvc_signal_file_handshake(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / ".dvc").mkdir(parents=True)
    work = root / "sub"
    work.mkdir()
    script = _script(tmp_path, DVC_ERA)
    record = tmp_path / "record.jsonl"
    watcher = SignalFileWatcher(root)
    (root / ".dvc" / "tmp").mkdir()
    watcher.path.write_text("stale")
    watcher.clear()
    # DVC_ROOT names the project: the script runs in a sub-folder of it.
    proc = _start(script, work, watcher.env(), str(record))
    deadline = time.monotonic() + DEADLINE
    for epoch in range(3):
        while not watcher.poll():
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.01)  # a runner polls; 10 ms is the interval it should use
        summary = json.loads((work / "logs.json").read_text())
        assert summary["step"] == epoch
        assert len(record.read_text().splitlines()) == epoch
        (work / f"snap-{epoch}").write_text("")
        watcher.ack()
    _finish(proc)
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    assert [(r[0], r[2]) for r in rows] == [(0, True), (1, True), (2, True)]
    print(
        f"\nDVC signal-file handshake (runner polls every 10 ms): {[round(r[1] * 1e3, 1) for r in rows]} ms"
    )
    assert watcher.env() == {"DVC_CHECKPOINT": "1", "DVC_ROOT": str(root)}


def test_exq_socket_wins_over_the_dvc_file(tmp_path: Path, sock_path: Path) -> None:
    script = _script(tmp_path, HANDSHAKES)
    with CheckpointServer(sock_path) as server:
        env = {**server.env(), "DVC_CHECKPOINT": "1", "DVC_ROOT": str(tmp_path)}
        proc = _start(script, tmp_path, env, "1")
        _next(server, proc).ack()
        _finish(proc)
    assert not (tmp_path / ".dvc").exists()


@pytest.mark.parametrize(
    "env",
    [
        {"DVC_CHECKPOINT": "1"},  # inside a DVC repository, but no runner set DVC_ROOT
        {"DVC_CHECKPOINT": "0", "DVC_ROOT": "{root}"},  # dvclive reads 0 as off
        {"DVC_CHECKPOINT": "1", "DVC_ROOT": ""},
    ],
)
def test_checkpoints_outside_a_run_are_a_no_op(tmp_path: Path, env: dict[str, str]) -> None:
    # dvclive would wait forever for a runner here (or raise, with no .dvc): exq.live
    # goes on, writes every step, and touches no signal file.
    root = tmp_path / "proj"
    (root / ".dvc" / "tmp").mkdir(parents=True)
    script = _script(tmp_path, DVC_ERA)
    record = tmp_path / "record.jsonl"
    env = {k: v.format(root=root) for k, v in env.items()}
    _finish(_start(script, root, env, str(record)))
    assert [json.loads(line)[0] for line in record.read_text().splitlines()] == [0, 1, 2]
    assert not (root / ".dvc" / "tmp" / "DVC_CHECKPOINT").exists()
    assert (root / "logs" / "loss.tsv").read_text().count("\n") == 4
