"""The workstation's resources, end to end with a real daemon: GPUs held by runs,
the enqueuer's environment, priorities, ``queue run``, ``--after``, time limits
and retries, daemon settings across restarts, and bad values refused.

Stage commands run ``rtool.py``, driven by ``mode`` in params.yaml: ``order``
appends the experiment's name to ``$QSHARED/order``; ``gpu`` takes its device
(``$QSHARED/held/<device>``, refused if another run holds it) and records it;
before ``$QSHARED/go`` exists, it also waits until a second run holds the
other device, records both, and holds its own until ``go``;
``fail`` exits 3; ``flaky`` fails its first attempt only; ``hang`` waits until
it is stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import EXQ_BIN, PY, exq, write
from tests.e2e.queue_helpers import (
    QueueEnv,
    daemon_pid,
    queued_ids,
    runs_by_id,
    status,
    stop_daemon,
    wait_for,
    wait_states,
)
from tests.support import chain, exp_ref_sha, git, step_of, write_training_project

ENDED = {"success", "failed", "interrupted", "cancelled", "timeout"}

RTOOL = """\
import os, sys, time
from pathlib import Path

mode = Path("params.yaml").read_text().split("mode: ", 1)[1].split()[0]
shared = Path(os.environ["QSHARED"])
name = os.environ["EXQ_EXP_NAME"]


def wait(cond, what):
    deadline = time.monotonic() + 60
    while not cond():
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for " + what)
        time.sleep(0.01)


if mode == "order":
    with open(shared / "order", "a") as out:
        out.write(name + "\\n")
elif mode == "gpu":
    device = os.environ["CUDA_VISIBLE_DEVICES"]
    held = shared / "held"
    held.mkdir(exist_ok=True)
    try:
        os.close(os.open(held / device, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        sys.exit("GPU " + device + " is held by another run")
    peers = "-"
    if not (shared / "go").exists():  # the first two: both hold their GPU until go
        wait(lambda: len(list(held.iterdir())) >= 2, "a second run on the other GPU")
        peers = ",".join(sorted(p.name for p in held.iterdir()))
    (shared / ("seen-" + name)).write_text(device + " " + peers + " " + os.environ["EXQ_GPUS"])
    wait(lambda: (shared / "go").exists(), "go")
    (held / device).unlink()
elif mode == "fail":
    sys.exit(3)
elif mode == "flaky" and not (shared / ("tried-" + name)).exists():
    (shared / ("tried-" + name)).write_text("")
    sys.exit("failing the first attempt on purpose")
elif mode == "hang":
    print("hanging", flush=True)
    time.sleep(600)
"""


def project(root: Path, cmd: str = f"{PY} rtool.py") -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    exq("init", cwd=root)
    write(root / "rtool.py", RTOOL)
    write(root / "params.yaml", "mode: order\n")
    write(root / "dvc.yaml", f"stages:\n  work:\n    cmd: {cmd}\n    params:\n    - mode\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "project")
    return root


def enqueue(root: Path, *args: str, env: dict[str, str] | None = None) -> int:
    _, out, _ = exq("exp", "run", "--queue", *args, cwd=root, env=env)
    (run_id,) = queued_ids(out)
    return run_id


def config_file(queue_env: QueueEnv, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(queue_env.state.parent / "config.toml", text)
    monkeypatch.setenv("EXQ_CONFIG", str(path))


# -- GPUs ---------------------------------------------------------------------------


def test_four_one_gpu_runs_on_two_gpus_run_two_at_a_time(
    queue_env: QueueEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file(queue_env, '[resources]\ngpus = ["0", "1"]\n', monkeypatch)
    root = project(tmp_path / "repo")
    ids = [enqueue(root, "-S", "mode=gpu", "-n", f"g{i}", "--gpus", "1") for i in range(4)]
    exq("queue", "start", "-j", "4", cwd=root)  # slots for all four: the GPUs decide

    def first_pair() -> list[dict] | None:
        running = [r for r in status(root)["runs"] if r["state"] == "running"]
        seen = list(queue_env.shared.glob("seen-*"))
        return running if len(running) == 2 and len(seen) == 2 else None

    running = wait_for(first_pair, "two runs holding the two GPUs")
    assert sorted(d for r in running for d in r["gpus_assigned"]) == ["0", "1"]
    data = status(root)
    assert data["daemon"]["gpus_total"] == 2 and data["daemon"]["gpus_free"] == 0
    assert [r["state"] for r in data["runs"]].count("queued") == 2  # -j 4 yet two wait
    _, table, _ = exq("queue", "status", cwd=root)
    assert "2/4 slots busy, 0/2 GPUs free" in table.splitlines()[-1]
    (queue_env.shared / "go").write_text("")

    runs = wait_states(root, ids, ENDED)
    assert [runs[i]["state"] for i in ids] == ["success"] * 4, runs
    first, later = ids[:2], ids[2:]
    seen = {i: (queue_env.shared / f"seen-g{ids.index(i)}").read_text().split() for i in ids}
    for i in ids:
        device, peers, exq_gpus = seen[i]
        assert runs[i]["gpus_assigned"] == [device] and exq_gpus == device
        assert peers == ("0,1" if i in first else "-")  # the first two met, on both GPUs
    assert sorted(seen[i][0] for i in first) == ["0", "1"]
    # Runs at the same time never share a device: a stage finding its GPU held fails.
    # The later two started only as GPUs came free (two at a time, never three).
    first_end = min(runs[i]["finished"] for i in first)
    assert all(runs[i]["started"] >= first_end for i in later)
    assert status(root)["daemon"]["gpus_free"] == 2


def test_a_run_without_gpus_sees_none_and_too_big_is_refused(
    queue_env: QueueEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXQ_GPUS", "3,5")  # wins over the file
    config_file(queue_env, '[resources]\ngpus = ["0"]\n', monkeypatch)
    root = project(
        tmp_path / "repo",
        cmd=f"{PY} -c \"import os; print('CVD=' + repr(os.environ.get('CUDA_VISIBLE_DEVICES')))\"",
    )
    code, _, err = exq("exp", "run", "--queue", "--gpus", "3", cwd=root, check=False)
    assert code != 0 and err.strip().splitlines() == [
        "ERROR: the run asks for 3 GPU(s), the machine has 2"
        " (ask for less, or see [resources] in the README)"
    ]
    none = enqueue(root, "-n", "none")
    two = enqueue(root, "-n", "two", "--gpus", "2")
    exq("queue", "start", cwd=root)
    runs = wait_states(root, [none, two], ENDED)
    assert runs[none]["state"] == runs[two]["state"] == "success"
    assert "CVD=''" in exq("queue", "logs", "none", cwd=root)[1]
    assert "CVD='3,5'" in exq("queue", "logs", "two", cwd=root)[1]


@pytest.mark.skipif(
    shutil.which("nvidia-smi") is None
    or subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode != 0,
    reason="no working nvidia-smi: no GPU here",
)
def test_a_run_process_sees_only_its_gpu(queue_env: QueueEnv, tmp_path: Path) -> None:
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
    count = len([line for line in listed.splitlines() if line.startswith("GPU ")])
    root = project(
        tmp_path / "repo",
        cmd=f"{PY} -c \"import subprocess; print(subprocess.run(['nvidia-smi', '-L'],"
        ' capture_output=True, text=True).stdout)"',
    )
    run = enqueue(root, "--gpus", "1", env={"EXQ_GPUS": ",".join(map(str, range(count)))})
    exq("queue", "start", cwd=root, env={"EXQ_GPUS": ",".join(map(str, range(count)))})
    assert wait_states(root, [run], ENDED)[run]["state"] == "success"
    _, log, _ = exq("queue", "logs", str(run), cwd=root)
    assert (
        len(
            [
                line
                for line in log.splitlines()
                if line.startswith("[work] GPU ") or line.startswith("GPU ")
            ]
        )
        == 1
    )


# -- the run's environment ------------------------------------------------------------


def test_a_daemon_started_with_an_empty_environment_runs_in_the_enqueuers_virtualenv(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    venv = Path(PY).parent.parent
    # `python`, as a user's stage says it: only the virtualenv has one with exq.
    root = project(
        tmp_path / "repo",
        cmd="python -c \"import exq, os, sys; print('VENV=' + os.environ['VIRTUAL_ENV'],"
        " 'SECRET=' + os.environ['MY_SECRET'], 'EXQ=' + exq.__file__)\"",
    )
    unit = {  # what systemd gives a user unit, more or less
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "EXQ_STATE_DIR": str(queue_env.state),
        "EXQ_RUNTIME_DIR": str(queue_env.runtime),
    }
    queue_env.state.mkdir(parents=True, exist_ok=True)
    with open(queue_env.state / "daemon.out", "ab") as log:
        subprocess.Popen(
            ["env", "-i", *[f"{k}={v}" for k, v in unit.items()], str(EXQ_BIN), "daemon"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    wait_for(lambda: status(root)["daemon"]["running"], "the daemon to answer")
    shell = {
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "MY_SECRET": "hunter2",
    }
    run = enqueue(root, env=shell)
    assert wait_states(root, [run], ENDED)[run]["state"] == "success"
    _, log, _ = exq("queue", "logs", str(run), cwd=root)
    assert f"VENV={venv} SECRET=hunter2 EXQ=" in log

    # Never shown: status --json has no value, show lists the names only.
    _, out, _ = exq("queue", "status", "--json", cwd=root)
    assert "hunter2" not in out
    _, shown, _ = exq("queue", "show", str(run), cwd=root)
    env_line = [line for line in shown.splitlines() if line.startswith("Environment:")]
    assert env_line and "MY_SECRET" in env_line[0] and "VIRTUAL_ENV" in env_line[0]
    assert "hunter2" not in shown
    _, shown_json, _ = exq("queue", "show", str(run), "--json", cwd=root)
    assert "MY_SECRET" in json.loads(shown_json)["env"] and "hunter2" not in shown_json
    mode = os.stat(queue_env.db).st_mode & 0o777
    assert mode == 0o600  # the rows hold secrets: owner only


# -- order ------------------------------------------------------------------------------


def test_priorities_and_queue_run_choose_the_order(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = project(tmp_path / "repo")
    for name, priority in [("a", "0"), ("b", "5"), ("c", "5"), ("d", "0"), ("e", "-1")]:
        enqueue(root, "-n", name, "--priority", priority)
    _, out, _ = exq("queue", "priority", "d", "10", cwd=root)
    assert out.strip() == "Run 4 'd' now has priority 10."
    _, out, _ = exq("queue", "run", "e", cwd=root)
    assert out.strip() == "Run 5 'e' starts next."
    code, _, err = exq("queue", "priority", "a", "high", cwd=root, check=False)
    assert code != 0 and err.strip() == "ERROR: priority 'high' is not a whole number"
    assert {r["name"]: r["priority"] for r in status(root)["runs"]} == {
        "a": 0,
        "b": 5,
        "c": 5,
        "d": 10,
        "e": 10,
    }
    exq("queue", "start", "-j", "1", cwd=root)
    wait_states(root, [1, 2, 3, 4, 5], ENDED)
    assert (queue_env.shared / "order").read_text().split() == ["e", "d", "b", "c", "a"]
    code, _, err = exq("queue", "run", "a", cwd=root, check=False)
    assert code == 1 and err.strip() == "ERROR: run 1 is success, not queued"


def test_after_chains_wait_for_success_and_cancel_on_failure(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    root = project(tmp_path / "repo")
    gone = enqueue(root, "-n", "gone")
    orphan = enqueue(root, "-n", "orphan", "--after", "gone")
    exq("queue", "remove", "gone", cwd=root)
    a = enqueue(root, "-n", "a")
    # b and c would go first by priority, but wait for the runs they are after.
    b = enqueue(root, "-n", "b", "--after", "a", "--priority", "9")
    c = enqueue(root, "-n", "c", "--after", str(b), "--priority", "9")
    f = enqueue(root, "-n", "f", "-S", "mode=fail")
    g = enqueue(root, "-n", "g", "--after", "f,a")
    h = enqueue(root, "-n", "h", "--after", "g")
    assert runs_by_id(root)[g]["after"] == [f, a]
    exq("queue", "start", "-j", "3", cwd=root)
    runs = wait_states(root, [orphan, a, b, c, f, g, h], ENDED)
    assert [runs[i]["state"] for i in (a, b, c)] == ["success"] * 3
    order = (queue_env.shared / "order").read_text().split()
    assert order.index("a") < order.index("b") < order.index("c")
    assert runs[b]["started"] >= runs[a]["finished"]
    assert runs[c]["started"] >= runs[b]["finished"]
    assert runs[f]["state"] == "failed"
    assert (runs[g]["state"], runs[g]["error"]) == (
        "cancelled",
        f"not started: run {f} it was to run after ended failed",
    )
    assert (runs[h]["state"], runs[h]["error"]) == (
        "cancelled",
        f"not started: run {g} it was to run after ended cancelled",
    )
    assert (runs[orphan]["state"], runs[orphan]["error"]) == (
        "cancelled",
        f"not started: run {gone} it was to run after was removed",
    )
    assert runs[g]["attempt"] == runs[h]["attempt"] == 0


# -- time limits and retries ---------------------------------------------------------------

# Training that fails its first attempt at FAIL_AT (after that step's checkpoint), once.
FLAKY_TRAIN = """\
import os, sys, time
from pathlib import Path
from exq.live import Live

live = Live("logs")
model = Path("model.txt")
weight = float(model.read_text()) if model.exists() else 0.0
marker = Path(os.environ["QSHARED"]) / "failed-once"
for epoch in range(live.step, 5):
    weight = round(weight + 0.5, 6)
    model.write_text(f"{weight}\\n")
    live.log("loss", round(1.0 / (1.0 + weight), 6))
    live.next_step()
    if epoch == int(os.environ.get("FAIL_AT", "-1")) and not marker.exists():
        marker.write_text("")
        sys.exit("failing after step %d on purpose" % epoch)
    if epoch == int(os.environ.get("HANG_AT", "-1")):
        print("hanging", flush=True)
        time.sleep(600)
live.end()
"""


def _checkpoint_project(root: Path) -> str:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    exq("init", cwd=root)
    return write_training_project(root, script=FLAKY_TRAIN)


def _steps(root: Path, name: str, baseline: str) -> list[int | None]:
    return [step_of(root, sha) for sha, _ in chain(root, exp_ref_sha(root, name), baseline)]


def test_timeout_stops_a_run_and_a_retry_goes_on_from_its_checkpoint(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    baseline = _checkpoint_project(root)
    hang = enqueue(root, "-n", "hang", "--timeout", "3s", env={"HANG_AT": "1"})
    assert runs_by_id(root)[hang]["timeout"] == 3.0
    exq("queue", "start", cwd=root)
    run = wait_states(root, [hang], ENDED)[hang]
    assert (run["state"], run["error"], run["checkpoints"]) == (
        "timeout",
        "stopped: it ran past its time limit",
        2,
    )
    assert _steps(root, "hang", baseline) == [1, 0]  # its checkpoints are kept

    _, out, _ = exq("queue", "retry", "hang", cwd=root)
    # The second attempt resumes at step 2: HANG_AT=1 is behind it, so it ends.
    run = wait_states(root, [hang], {"success", "failed", "timeout"})[hang]
    assert run["state"] == "success" and run["attempt"] == 2, run
    steps = _steps(root, "hang", baseline)
    assert [s for s in steps if s is not None] == [4, 3, 2, 1, 0]  # one gapless chain
    assert "resuming from checkpoint" in exq("queue", "logs", "hang", cwd=root)[1]


def test_retries_queue_a_failed_run_again_and_it_resumes(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    baseline = _checkpoint_project(root)
    flaky = enqueue(
        root, "-n", "flaky", "--retries", "2", "--retry-delay", "1h", env={"FAIL_AT": "2"}
    )
    exq("queue", "start", cwd=root)

    def retried() -> dict | None:
        run = runs_by_id(root)[flaky]
        return run if run["state"] == "queued" and run["attempt"] == 1 else None

    run = wait_for(retried, "the failed run to be queued again")
    assert run["retries_left"] == 1 and run["not_before"] is not None
    assert run["checkpoints"] == 3
    _, table, _ = exq("queue", "status", cwd=root)
    assert "retry 1 at " in table
    _, shown, _ = exq("queue", "show", "flaky", cwd=root)
    assert "Retries:      1 of 2 left" in shown and "Next start:   -" not in shown

    exq("queue", "run", "flaky", cwd=root)  # no waiting the hour: start it now
    run = wait_states(root, [flaky], ENDED)[flaky]
    assert (run["state"], run["attempt"], run["retries_left"]) == ("success", 2, 1)
    steps = _steps(root, "flaky", baseline)
    assert [s for s in steps if s is not None] == [4, 3, 2, 1, 0]  # resumed, not restarted


def test_retries_with_a_short_delay_need_no_help(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = project(tmp_path / "repo")
    run = enqueue(root, "-S", "mode=flaky", "-n", "flaky", "--retries", "1", "--retry-delay", "1")
    never = enqueue(root, "-S", "mode=fail", "-n", "never", "--retries", "1", "--retry-delay", "0")
    exq("queue", "start", cwd=root)
    runs = wait_states(root, [run, never], ENDED)
    assert (runs[run]["state"], runs[run]["attempt"]) == ("success", 2)
    assert (runs[never]["state"], runs[never]["attempt"], runs[never]["retries_left"]) == (
        "failed",
        2,
        0,
    )


# -- the daemon's settings ---------------------------------------------------------------------


def test_slots_and_pause_survive_a_restart(
    queue_env: QueueEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file(queue_env, "[queue]\njobs = 2\n", monkeypatch)
    root = project(tmp_path / "repo")
    _, out, _ = exq("queue", "start", cwd=root)
    assert "2 run(s) at a time" in out  # [queue] jobs
    exq("queue", "start", "-j", "3", cwd=root)
    exq("queue", "pause", cwd=root)
    stop_daemon(queue_env)
    assert daemon_pid(queue_env) is None

    _, out, _ = exq("queue", "start", cwd=root)
    assert "3 run(s) at a time" in out
    assert status(root)["daemon"]["slots_total"] == 3
    _, table, _ = exq("queue", "status", cwd=root)
    assert table.splitlines()[-1].endswith(", paused")
    run = enqueue(root, "-n", "later")
    exq("queue", "resume", cwd=root)
    assert wait_states(root, [run], ENDED)[run]["state"] == "success"


# -- bad values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpus", "-1"], "ERROR: --gpus '-1': a number of GPUs is 0 or more"),
        (
            ["--gpus", "0.5"],
            "ERROR: --gpus '0.5': GPUs are not shared between runs (ask for whole GPUs, as --gpus 1)",
        ),
        (
            ["--timeout", "2x"],
            "ERROR: --timeout '2x' is not a duration"
            " (give seconds, or a number with s, m, h or d: 90, 30m, 2h)",
        ),
        (["--after", "nobody"], "ERROR: --after 'nobody': no such run in the queue"),
        (["--priority", "high"], "ERROR: --priority 'high' is not a whole number"),
        (["--retries", "-2"], "ERROR: --retries '-2' must be 0 or more"),
        (
            ["--mem", "lots"],
            "ERROR: --mem 'lots' is not a size (give bytes, or a number with K, M, G or T: 16G)",
        ),
        (["--cpus", "0"], "ERROR: --cpus '0': a number of CPUs is above 0"),
        (["--run-all", "--gpus", "-1"], "ERROR: --gpus '-1': a number of GPUs is 0 or more"),
    ],
)
def test_bad_values_are_one_line_and_queue_nothing(
    queue_env: QueueEnv, tmp_path: Path, args: list[str], message: str
) -> None:
    root = project(tmp_path / "repo")
    code, out, err = exq("exp", "run", "--queue", *args, cwd=root, check=False)
    assert code != 0 and out == "" and err.strip().splitlines() == [message]
    assert status(root)["runs"] == []
    assert git(root, "for-each-ref", "refs/exq").strip() == ""
