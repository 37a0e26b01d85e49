"""A run shipped to another machine and back, without a cluster in between.

The payload the daemon writes is run by the real worker entrypoint in a
subprocess, in a folder of its own; the frames it prints are read back and
applied to the repository: the experiment ref, its commits and the outs in
the cache end as a local run leaves them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from exq.daemon.config import DaemonConfig
from exq.daemon.executors.ray.remote import JOB_FILE, Importer, write_payload
from exq.daemon.executors.ray.run_dirs import remove_orphans
from exq.daemon.executors.ray.shipment import FrameReader, ShipmentError
from exq.daemon.store import RunRecord, SyncStore
from exq.engine.errors import ExperimentError
from exq.engine.experiments.refs import exp_ref
from exq.engine.git import Git
from exq.engine.run.project import open_project
from tests.e2e.conftest import exq
from tests.support import alive, chain_steps, enqueue, git, make_training_project, tsv_steps

WORKER = [sys.executable, "-m", "exq.daemon.executors.ray.worker", "."]


@pytest.fixture
def config(tmp_path: Path) -> DaemonConfig:
    return DaemonConfig(state_dir=tmp_path / "state", runtime_dir=tmp_path / "run")


def record(config: DaemonConfig, run_id: int, **changes: object) -> RunRecord:
    with SyncStore(config.db_path) as store:
        found = store.get_run(run_id)
    assert found is not None
    return replace(found, attempts=1, **changes)


def ship(config: DaemonConfig, run: RunRecord, folder: Path) -> None:
    write_payload(open_project(Path(run.repo)), run, config, 0, folder)


def apply_output(repo: Path, output: str, ref: str) -> tuple[str, list[dict[str, object]]]:
    """Apply every pack in ``output``; (the plain text, the packs' headers)."""
    reader = FrameReader()
    text, packs = reader.feed(output)
    importer = Importer(open_project(repo), ref)
    metas = []
    for _seq, pack in packs:
        with pack:
            metas.append(importer.apply(pack).meta)
    return text + reader.flush(), metas


def test_a_checkpoint_run_comes_back_as_its_chain_and_cache(
    config: DaemonConfig, tmp_path: Path
) -> None:
    repo, baseline = make_training_project(tmp_path / "train", epochs=3)
    run_id = enqueue(config, repo, "far")
    folder = tmp_path / "payload"
    ship(config, record(config, run_id), folder)
    rdv = tmp_path / "rdv"
    rdv.mkdir()
    job = json.loads((folder / JOB_FILE).read_text())
    assert job["start"] == record(config, run_id).snapshot and not job["resume"]

    proc = subprocess.run(
        WORKER,
        cwd=folder,
        env={**os.environ, "RDV": str(rdv)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ref = exp_ref(baseline, "far")
    text, metas = apply_output(repo, proc.stdout, ref)

    assert [m["kind"] for m in metas] == ["checkpoint"] * 3 + ["result"]
    tip = Git.open(repo).get_ref(ref)
    assert tip == metas[-1]["sha"]
    assert chain_steps(repo, tip, baseline) == [0, 1, 2]
    assert tsv_steps(repo, tip) == [0, 1, 2]
    # The model came back into the cache: applying the experiment restores it.
    exq("exp", "apply", "far", cwd=repo)
    assert (repo / "model.txt").read_text() == "1.5\n"
    assert "\x1e" not in text  # frames never reach the log


def test_a_resumed_run_continues_the_chain_it_was_sent(
    config: DaemonConfig, tmp_path: Path
) -> None:
    repo, baseline = make_training_project(tmp_path / "train", epochs=5)
    run_id = enqueue(config, repo, "resumed")
    rdv = tmp_path / "rdv"
    rdv.mkdir()
    env = {**os.environ, "RDV": str(rdv), "HOLD_AT": "1"}
    first = tmp_path / "first"
    ship(config, record(config, run_id), first)
    proc = subprocess.Popen(
        WORKER, cwd=first, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while not list(rdv.glob("held-*")):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)  # what a cluster does to stop a job
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    ref = exp_ref(baseline, "resumed")
    _, metas = apply_output(repo, output, ref)
    assert [m.get("outcome") for m in metas if m["kind"] == "result"] == ["interrupted"]
    tip = Git.open(repo).get_ref(ref)
    assert tip is not None and chain_steps(repo, tip, baseline) == [0, 1]

    second = tmp_path / "second"
    ship(config, record(config, run_id, resume_sha=tip, experiment_ref=ref), second)
    (rdv / "go").write_text("")
    proc2 = subprocess.run(WORKER, cwd=second, env=env, capture_output=True, text=True, timeout=120)
    assert proc2.returncode == 0, proc2.stdout + proc2.stderr
    apply_output(repo, proc2.stdout, ref)
    tip = Git.open(repo).get_ref(ref)
    assert chain_steps(repo, tip, baseline) == [0, 1, 2, 3, 4]
    assert tsv_steps(repo, tip) == [0, 1, 2, 3, 4]


def test_a_failing_stage_reports_its_status(config: DaemonConfig, tmp_path: Path) -> None:
    repo, baseline = make_training_project(tmp_path / "train", epochs=2)
    (repo / "train.py").write_text("import sys\nprint('broken')\nsys.exit(3)\n")
    git(repo, "commit", "-qam", "broken")
    run_id = enqueue(config, repo, "bad")
    folder = tmp_path / "payload"
    ship(config, record(config, run_id), folder)
    proc = subprocess.run(WORKER, cwd=folder, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3
    text, metas = apply_output(repo, proc.stdout, exp_ref(baseline, "bad"))
    assert metas[-1]["outcome"] == "failed" and metas[-1]["exit_code"] == 3
    assert "broken" in text


def test_applying_a_pack_twice_changes_nothing(config: DaemonConfig, tmp_path: Path) -> None:
    repo, baseline = make_training_project(tmp_path / "train", epochs=2)
    run_id = enqueue(config, repo, "twice")
    folder = tmp_path / "payload"
    ship(config, record(config, run_id), folder)
    proc = subprocess.run(
        WORKER,
        cwd=folder,
        env={**os.environ, "RDV": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    ref = exp_ref(baseline, "twice")
    apply_output(repo, proc.stdout, ref)
    tip = Git.open(repo).get_ref(ref)
    _, metas = apply_output(repo, proc.stdout, ref)  # a restarted daemon reads it all again
    assert Git.open(repo).get_ref(ref) == tip
    assert len(metas) == 3
    with pytest.raises(ShipmentError, match="tried to move refs/exps/"):
        apply_output(repo, proc.stdout, "refs/heads/main")  # only the run's own ref moves
    assert git(repo, "rev-parse", "main").strip() == baseline


def test_a_folder_without_a_run_exits_2(tmp_path: Path) -> None:
    proc = subprocess.run(WORKER, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "holds no run" in proc.stderr


def test_a_killed_worker_takes_its_stage_with_it(config: DaemonConfig, tmp_path: Path) -> None:
    repo, _ = make_training_project(tmp_path / "train", epochs=3)
    run_id = enqueue(config, repo, "orphan")
    folder = tmp_path / "payload"
    ship(config, record(config, run_id), folder)
    rdv = tmp_path / "rdv"
    rdv.mkdir()
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {**os.environ, "RDV": str(rdv), "HOLD_AT": "0", "TMPDIR": str(temp)}
    proc = subprocess.Popen(
        WORKER, cwd=folder, env=env, stdout=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while not list(rdv.glob("held-*")):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    stage_pid = int(next(rdv.glob("held-*")).name.split("-")[1])
    os.killpg(proc.pid, signal.SIGKILL)  # what a cluster does when its stop wait runs out
    proc.wait()
    deadline = time.monotonic() + 10
    while alive(stage_pid):
        assert time.monotonic() < deadline, "the stage outlived its worker"
        time.sleep(0.05)
    # Its folder (the repository, the run's outputs) is left; the next worker removes it.
    (left,) = temp.glob("exq-run-*")
    assert (left / "repo").is_dir()
    assert remove_orphans(temp) == [left]
    assert not left.exists()


def test_a_project_in_a_sub_folder_runs_there_on_the_worker(
    config: DaemonConfig, tmp_path: Path
) -> None:
    from exq.engine.run.project import init_project
    from tests.support import DVCYAML as TRAIN_DVCYAML
    from tests.support import HOLD_TRAIN, write_training_project

    repo = tmp_path / "repo"
    proj = repo / "proj"
    proj.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    init_project(proj)
    baseline = write_training_project(
        proj, dvcyaml=TRAIN_DVCYAML, script=HOLD_TRAIN, params="train:\n  epochs: 2\n  lr: 0.5\n"
    )
    run_id = enqueue(config, proj, "deep")
    folder = tmp_path / "payload"
    ship(config, record(config, run_id), folder)
    assert json.loads((folder / JOB_FILE).read_text())["prefix"] == "proj"
    proc = subprocess.run(
        WORKER,
        cwd=folder,
        env={**os.environ, "RDV": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ref = exp_ref(baseline, "deep")
    apply_output(proj, proc.stdout, ref)
    tip = Git.open(repo).get_ref(ref)
    assert "model.txt" in git(repo, "show", f"{tip}:proj/dvc.lock")
    assert git(repo, "ls-tree", "--name-only", tip).split() == ["proj"]  # nothing at the root


def test_a_run_is_not_shipped_to_replace_an_experiment_it_did_not_make(
    config: DaemonConfig, tmp_path: Path
) -> None:
    repo, baseline = make_training_project(tmp_path / "train", epochs=3)
    run_id = enqueue(config, repo, "far")
    Git.open(repo).set_ref(exp_ref(baseline, "far"), baseline)  # someone else's "far"
    with pytest.raises(ExperimentError, match="already exists"):
        ship(config, record(config, run_id), tmp_path / "payload")


def test_through_a_data_remote_the_job_carries_names_and_the_remote_the_objects(
    config: DaemonConfig, tmp_path: Path
) -> None:
    from exq.engine.data import remote_config
    from exq.engine.data.cache import Cache
    from exq.engine.experiments import sync_cache
    from exq.engine.experiments.manage import apply

    repo, baseline = make_training_project(tmp_path / "train", epochs=4)
    store = tmp_path / "store"
    remote_config.add(repo / ".dvc", "store", str(store), default=True, local=False, force=False)
    git(repo, "commit", "-qam", "a default remote")
    baseline = git(repo, "rev-parse", "HEAD").strip()
    run_id = enqueue(config, repo, "via")
    rdv = tmp_path / "rdv"
    rdv.mkdir()
    env = {**os.environ, "RDV": str(rdv), "HOLD_AT": "1"}
    first = tmp_path / "first"
    ship(config, record(config, run_id), first)
    assert json.loads((first / JOB_FILE).read_text())["remote"]["url"] == str(store)
    proc = subprocess.Popen(
        WORKER, cwd=first, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while not list(rdv.glob("held-*")):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    ref = exp_ref(baseline, "via")
    text, _ = apply_output(repo, output, ref)
    assert "to remote 'store'" in text
    tip = Git.open(repo).get_ref(ref)
    assert tip is not None and chain_steps(repo, tip, baseline) == [0, 1]
    # The model went to the remote, not through the output into the cache.
    outs = dict(sync_cache.outs_at(Git.open(repo), tip))
    assert set(outs) == {"model.txt"}  # not the live section's logs: they are not cached
    model = outs["model.txt"]
    cache = Cache(repo / ".dvc" / "cache")
    assert not cache.obj_path(model.md5).exists()
    assert (store / "files" / "md5" / model.md5[:2] / model.md5[2:]).read_text() == "1.0\n"

    # The resume pulls the checkpoint's model from the remote: the daemon has none.
    second = tmp_path / "second"
    ship(config, record(config, run_id, resume_sha=tip, experiment_ref=ref), second)
    job = json.loads((second / JOB_FILE).read_text())
    assert model.md5 in job["inputs"]
    assert (second / "pack.bin").stat().st_size < 20_000
    (rdv / "go").write_text("")
    proc2 = subprocess.run(WORKER, cwd=second, env=env, capture_output=True, text=True, timeout=120)
    assert proc2.returncode == 0, proc2.stdout + proc2.stderr
    text, _ = apply_output(repo, proc2.stdout, ref)
    assert "pulled 1 object(s), 0.0 MB, from remote 'store'" in text
    tip = Git.open(repo).get_ref(ref)
    assert chain_steps(repo, tip, baseline) == [0, 1, 2, 3]
    assert [int(line.split()[0]) for line in (rdv / "computed").read_text().splitlines()] == [
        0, 1, 2, 3
    ]  # fmt: skip
    sync_cache.pull(open_project(repo), Git.open(repo), [tip], None, 4)
    apply(open_project(repo), "via")
    assert (repo / "model.txt").read_text() == "2.0\n"


def test_a_run_whose_remote_cannot_be_reached_is_not_sent(
    config: DaemonConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("s3fs")
    from exq.engine.data import remote_config
    from exq.engine.data.remote import RemoteError
    from tests.s3_server import ISOLATED, free_port

    for key, value in ISOLATED.items():
        monkeypatch.setenv(key, value)
    repo, _ = make_training_project(tmp_path / "train", epochs=2)
    dvc = repo / ".dvc"
    remote_config.add(dvc, "store", "s3://bucket/x", default=True, local=False, force=False)
    remote_config.modify(
        dvc, "store", "endpointurl", f"http://127.0.0.1:{free_port()}", local=False
    )
    for key in ("access_key_id", "secret_access_key"):
        remote_config.modify(dvc, "store", key, "testing", local=True)
    run_id = enqueue(config, repo, "nowhere")
    with pytest.raises(RemoteError, match=r"^remote 'store' \(s3://bucket/x\): ") as caught:
        ship(config, record(config, run_id), tmp_path / "payload")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "payload").exists()
