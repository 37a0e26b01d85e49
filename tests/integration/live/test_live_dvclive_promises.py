"""exq.live keeps dvclive's promises: rows at log(), steps, layouts, errors, checkpoints."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import exq.live
from exq.live import Live, error
from exq.live.checkpoint import CheckpointServer, SignalFileWatcher

DEADLINE = 20.0
LIVE_ENV = (
    "DVCLIVE_PATH",
    "DVCLIVE_SUMMARY",
    "DVCLIVE_HTML",
    "DVCLIVE_RESUME",
    "EXQ_RESUME",
    "EXQ_CHECKPOINT",
    "DVC_CHECKPOINT",
    "DVC_ROOT",
    "EXQ_ROOT",
    "EXQ_LIVE_LAYOUT",
)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    for name in LIVE_ENV:
        monkeypatch.delenv(name, raising=False)
    yield tmp_path
    if exq.live._default is not None:
        exq.live._default.end()
        exq.live._default = None


def _steps_and_values(path: Path) -> list[tuple[int, str]]:
    lines = path.read_text().splitlines()[1:]
    return [(int(line.split("\t")[1]), line.split("\t")[2]) for line in lines]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LIVE_ENV}
    return {**env, **extra}


# -- rows are written inside log() -------------------------------------------------

STEP_LOOP = """
    import sys, time
    import exq.live as dvclive

    for step in range(100):
        dvclive.log("loss", 1.0 / (step + 1), step=step)
        dvclive.log("train/acc", step / 100, step=step)
        if step == 3:
            open("at-3", "w").close()
            time.sleep(60)  # killed here
"""


def test_sigkill_after_step_3_leaves_rows_0_to_3(in_tmp: Path) -> None:
    (in_tmp / "train.py").write_text(textwrap.dedent(STEP_LOOP))
    proc = subprocess.Popen([sys.executable, "train.py"], env=_clean_env())
    try:
        deadline = time.monotonic() + DEADLINE
        while not (in_tmp / "at-3").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert [s for s, _ in _steps_and_values(in_tmp / "dvclive" / "loss.tsv")] == [0, 1, 2, 3]
    acc = in_tmp / "dvclive" / "train" / "acc.tsv"
    assert acc.read_text().splitlines()[0] == "timestamp\tstep\ttrain/acc"
    assert [s for s, _ in _steps_and_values(acc)] == [0, 1, 2, 3]
    assert json.loads((in_tmp / "dvclive.json").read_text())["step"] == 3


def test_a_row_is_on_disk_when_log_returns(in_tmp: Path) -> None:
    live = Live("logs")
    live.log("loss", 0.5)
    assert _steps_and_values(in_tmp / "logs" / "loss.tsv") == [(0, "0.5")]
    assert json.loads((in_tmp / "logs.json").read_text()) == {"step": 0, "loss": 0.5}
    live.end()


@pytest.fixture
def sock_path() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="exqlv"))
    yield folder / "ck.sock"
    shutil.rmtree(folder, ignore_errors=True)


def test_a_step_loop_takes_one_checkpoint_per_step(in_tmp: Path, sock_path: Path) -> None:
    script = in_tmp / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import exq.live as dvclive
            for step in (0, 10, 20):
                dvclive.log("loss", step / 10, step=step)
            """
        )
    )
    seen: list[tuple[int | None, list[tuple[int, str]]]] = []
    with CheckpointServer(sock_path) as server:
        proc = subprocess.Popen([sys.executable, str(script)], env=_clean_env(**server.env()))
        while len(seen) < 2:
            request = server.wait(timeout=DEADLINE)
            assert request is not None
            seen.append((request.step, _steps_and_values(in_tmp / "dvclive" / "loss.tsv")))
            request.ack()
        assert proc.wait(timeout=DEADLINE) == 0
    # steps 0 and 10 ended when the loop moved on, each with its row on disk
    assert seen == [(0, [(0, "0.0")]), (10, [(0, "0.0"), (10, "1.0")])]


def test_a_step_loop_signals_dvc_2s_checkpoint_file_at_each_step(in_tmp: Path) -> None:
    # DVC_CHECKPOINT=1 and DVC_ROOT, as DVC 2 (and exq, for DVC-era scripts) set them.
    script = in_tmp / "train.py"
    script.write_text(
        "import exq.live as dvclive\n"
        "for step in range(4):\n"
        "    dvclive.log('loss', step / 10, step=step)\n"
    )
    watcher = SignalFileWatcher(in_tmp)
    watcher.clear()
    proc = subprocess.Popen([sys.executable, str(script)], env=_clean_env(**watcher.env()))
    rows_at_signal = []
    deadline = time.monotonic() + DEADLINE
    while proc.poll() is None:
        assert time.monotonic() < deadline
        if watcher.poll():
            rows_at_signal.append(len(_steps_and_values(in_tmp / "dvclive" / "loss.tsv")))
            watcher.ack()
        time.sleep(0.005)
    assert proc.returncode == 0
    assert rows_at_signal == [1, 2, 3]  # steps 0, 1, 2 ended; step 3 ends with the script
    assert [s for s, _ in _steps_and_values(in_tmp / "dvclive" / "loss.tsv")] == [0, 1, 2, 3]


def test_set_step_gives_custom_steps_and_ends_each(in_tmp: Path) -> None:
    live = Live("logs")
    for step, value in zip([0, 62, 1000], [0.9, 0.8, 0.7], strict=True):
        live.set_step(step)
        live.log("m", value)
        assert live.get_step() == step
    assert _steps_and_values(in_tmp / "logs" / "m.tsv") == [(0, "0.9"), (62, "0.8"), (1000, "0.7")]
    assert json.loads((in_tmp / "logs.json").read_text()) == {"step": 1000, "m": 0.7}
    live.end()
    exq.live.set_step(5)  # the module function of dvclive 0.3
    exq.live.log("n", 1)
    assert exq.live.get_step() == 5


# -- summary ------------------------------------------------------------------------


def test_live_writes_the_step_0_summary_at_once(in_tmp: Path) -> None:
    Live("logs")
    assert json.loads((in_tmp / "logs.json").read_text()) == {"step": 0}


@pytest.mark.parametrize(
    ("env", "arg", "written"), [("1", False, False), ("0", True, True), ("0", None, False)]
)
def test_an_explicit_init_summary_wins_over_the_environment(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, env: str, arg: bool | None, written: bool
) -> None:
    monkeypatch.setenv("DVCLIVE_SUMMARY", env)
    exq.live.init("logs", summary=arg)
    exq.live.log("loss", 1.0)
    exq.live.next_step()
    assert (in_tmp / "logs.json").exists() == written


# -- layouts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chosen", "tsv", "summary", "report"),
    [
        ("flat", "logs/train/loss.tsv", "logs.json", "logs_dvc_plots/index.html"),
        ("scalars", "logs/scalars/train/loss.tsv", "logs.json", "logs/report.html"),
        ("plots", "logs/plots/metrics/train/loss.tsv", "logs/metrics.json", "logs/report.html"),
    ],
)
@pytest.mark.parametrize("how", ["argument", "environment"])
def test_each_layout_puts_the_files_where_its_dvclive_did(
    in_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
    chosen: str,
    tsv: str,
    summary: str,
    report: str,
) -> None:
    if how == "environment":
        monkeypatch.setenv("EXQ_LIVE_LAYOUT", chosen)
    with Live("logs", layout=chosen if how == "argument" else None) as live:
        live.log("train/loss", 0.5)
        live.next_step()
        live.log("train/loss", 0.25)
    assert _steps_and_values(in_tmp / tsv) == [(0, "0.5"), (1, "0.25")]
    assert json.loads((in_tmp / summary).read_text()) == {"step": 1, "train": {"loss": 0.25}}
    assert 'data-metric="train/loss"' in (in_tmp / report).read_text()
    files = sorted(p.relative_to(in_tmp).as_posix() for p in in_tmp.rglob("*") if p.is_file())
    assert files == sorted({tsv, summary, report})


def test_resume_keeps_the_layout_the_run_started_in(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Live(layout="plots") as live:
        live.log("loss", 1.0)
        live.next_step()
    monkeypatch.setenv("DVCLIVE_RESUME", "1")
    with Live() as live:
        assert live.layout == "plots" and live.step == 1
        live.log("loss", 0.5)
    rows = _steps_and_values(in_tmp / "dvclive" / "plots" / "metrics" / "loss.tsv")
    assert rows == [(0, "1.0"), (1, "0.5")]


def test_an_unknown_layout_is_refused(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXQ_LIVE_LAYOUT", "nested")
    with pytest.raises(ValueError, match="EXQ_LIVE_LAYOUT='nested'"):
        Live()


def test_dvc_2_is_asked_to_render_the_report_but_exq_is_not(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (in_tmp / ".dvc" / "tmp").mkdir(parents=True)
    signal_file = in_tmp / ".dvc" / "tmp" / "DVC_LIVE"
    monkeypatch.setenv("DVC_ROOT", str(in_tmp))
    monkeypatch.setenv("DVCLIVE_PATH", "logs")
    monkeypatch.setenv("DVCLIVE_HTML", "1")
    with Live() as live:  # under DVC 2: dvclive 0.0-0.6 touched DVC_LIVE at each step
        live.log("loss", 1.0)
        live.next_step()
    assert signal_file.exists()
    signal_file.unlink()
    monkeypatch.setenv("EXQ_ROOT", str(in_tmp))
    with Live() as live:  # under exq: exq.live's own report is the report
        live.log("loss", 1.0)
        live.next_step()
    assert not signal_file.exists()
    assert (in_tmp / "logs_dvc_plots" / "index.html").is_file()


# -- misuse is refused as dvclive refuses it ---------------------------------------


def test_a_path_other_than_dvclive_path_is_refused(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DVCLIVE_PATH", "logs")
    with pytest.raises(error.ConfigMismatchError, match="'dvclive' conflicts with DVCLIVE_PATH"):
        Live("dvclive")
    with pytest.raises(error.ConfigMismatchError):
        exq.live.init("other")
    assert Live("./logs").dir == Path("logs")  # the same folder is no conflict
    assert not (in_tmp / "dvclive").exists() and not (in_tmp / "other").exists()


def test_next_step_before_init_is_refused(in_tmp: Path) -> None:
    with pytest.raises(error.InitializationError):
        exq.live.next_step()
    assert not (in_tmp / "dvclive").exists()


def test_a_metric_logged_twice_in_a_step(in_tmp: Path) -> None:
    live = Live("logs")
    live.log("train/m1", 1.0)
    with pytest.raises(error.DataAlreadyLoggedError, match="step '0'"):
        live.log("train/m1", 2.0)
    assert _steps_and_values(in_tmp / "logs" / "train" / "m1.tsv") == [(0, "1.0")]
    # the module functions behave as dvclive 0.0-0.2: a new step starts
    exq.live.init("mod")
    for value in (0.3, 0.2):
        exq.live.log("loss", value)
    assert _steps_and_values(in_tmp / "mod" / "loss.tsv") == [(0, "0.3"), (1, "0.2")]


def test_errors_carry_dvclives_names_in_one_family() -> None:
    from exq.live.checkpoint import CheckpointError

    for name in (
        "InitializationError",
        "ConfigMismatchError",
        "InvalidDataTypeError",
        "InvalidMetricTypeError",
        "InvalidParameterTypeError",
        "DataAlreadyLoggedError",
        "CheckpointError",
    ):
        assert issubclass(getattr(error, name), error.DvcLiveError)
    assert CheckpointError is error.CheckpointError and exq.live.CheckpointError is CheckpointError
    with pytest.raises(error.InvalidDataTypeError), Live("logs") as live:
        live.log("m", "high")
    with pytest.raises(error.InvalidParameterTypeError), Live("logs") as live:
        live.log_param("p", object())
