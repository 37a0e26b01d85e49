"""Checkpoint experiments through the CLI: chains, Ctrl-C, resume, modify, reset, apply."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import EXQ_BIN, exq
from tests.e2e.exp_helpers import reported_name, show
from tests.support import (
    DVCYAML,
    SIGNAL_FILE_DVCYAML,
    SIGNAL_FILE_TRAIN,
    chain,
    exp_ref_sha,
    git,
    loss_steps,
    run_until_paused,
    step_of,
    write_training_project,
)

RESUMED = "Existing checkpoint experiment '{}' will be resumed"
MODIFIED = "Modified checkpoint experiment based on '{}' will be created"


def cached_text(root: Path, sha: str, out: str) -> str:
    """The cached out of commit ``sha``, read from the cache by its dvc.lock hash."""
    lock = yaml.safe_load(show(root, sha, "dvc.lock"))
    md5 = next(o["md5"] for o in lock["stages"]["train"]["outs"] if o["path"] == out)
    return (root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).read_text()


def show_json(root: Path) -> list[dict]:
    _, out, _ = exq("exp", "show", "--json", cwd=root)
    return json.loads(out)


def test_a_run_of_five_checkpoints_is_a_chain_of_five_commits(project: Path) -> None:
    baseline = write_training_project(project)
    _, out, _ = exq("exp", "run", cwd=project)
    name = reported_name(out)
    tip = exp_ref_sha(project, name)
    commits = chain(project, tip, baseline)
    assert [step_of(project, sha) for sha, _ in commits] == [4, 3, 2, 1, 0]
    assert [parent for _, parent in commits] == [sha for sha, _ in commits[1:]] + [baseline]
    for sha, _ in commits:
        step = step_of(project, sha)
        assert json.loads(show(project, sha, "logs.json"))["step"] == step
        assert cached_text(project, sha, "model.txt") == f"{0.5 * (step + 1)}\n"
    assert (project / "model.txt").read_text() == "2.5\n"

    rows = show_json(project)
    kinds = [row["kind"] for row in rows]
    # five checkpoints, five rows: the tip is the experiment's row, as DVC 2 draws it
    assert kinds == ["workspace", "baseline", "experiment"] + ["checkpoint"] * 4
    chain_rows = rows[2:]
    assert [row["rev"] for row in chain_rows] == [sha for sha, _ in commits]
    assert [row["parent"] for row in chain_rows] == [sha for sha, _ in commits[1:]] + [None]
    assert [row["metrics"]["logs.json"]["step"] for row in chain_rows] == [4, 3, 2, 1, 0]
    assert rows[2]["name"] == name and rows[2]["rev"] == tip
    _, table, _ = exq("exp", "show", "--no-pager", "--no-timestamp", cwd=project)
    lines = table.splitlines()
    assert any(f"│ ╓ {name}" in line for line in lines), table
    assert sum("│ ╟ " in line for line in lines) == 3, table
    assert any(f"├─╨ {commits[-1][0][:7]}" in line for line in lines), table


@pytest.mark.parametrize(("signum", "live_cache"), [(signal.SIGINT, False), (signal.SIGTERM, True)])
def test_ctrl_c_keeps_the_checkpoints_and_exp_run_resumes_them(
    project: Path, signum: int, live_cache: bool
) -> None:
    # the live files in git (restored from the commit) or in the cache (from there)
    dvcyaml = DVCYAML.replace("cache: false", f"cache: {str(live_cache).lower()}")
    baseline = write_training_project(project, dvcyaml=dvcyaml)
    code, out = run_until_paused(project, EXQ_BIN, pause_at=2, signum=signum)
    # not 0 as DVC 2 had it: the run did not finish, and `exq exp run && next` must stop
    assert code == 130, out
    assert "Traceback" not in out.split("[train]")[0]
    refs = git(project, "for-each-ref", "--format=%(refname)", "refs/exps").split()
    assert len(refs) == 1
    name = refs[0].rsplit("/", 1)[1]
    first = chain(project, exp_ref_sha(project, name), baseline)
    kept = f"Checkpoint experiment '{name}' is kept at {first[0][0][:7]}; 'exq exp run' resumes it"
    assert kept in out, out
    assert [step_of(project, sha) for sha, _ in first] == [2, 1, 0]
    # the workspace holds the last checkpoint, not what the step after it began
    assert (project / "model.txt").read_text() == "1.5\n"
    assert json.loads((project / "logs.json").read_text())["step"] == 2
    assert loss_steps(project) == [0, 1, 2]

    _, out, _ = exq("exp", "run", cwd=project)
    assert RESUMED.format(name) in out
    assert reported_name(out) == name
    full = chain(project, exp_ref_sha(project, name), baseline)
    assert [step_of(project, sha) for sha, _ in full] == [4, 3, 2, 1, 0]
    assert full[2:] == first  # the same chain, continued from its last checkpoint
    assert loss_steps(project) == [0, 1, 2, 3, 4]
    assert (project / "model.txt").read_text() == "2.5\n"


def test_changed_params_make_a_modified_chain_and_reset_starts_over(project: Path) -> None:
    baseline = write_training_project(project)
    _, out, _ = exq("exp", "run", cwd=project)
    old = reported_name(out)
    old_tip = exp_ref_sha(project, old)

    _, out, _ = exq("exp", "run", "-S", "train.epochs=7", cwd=project)
    assert MODIFIED.format(old) in out
    new = reported_name(out)
    assert new != old
    new_chain = chain(project, exp_ref_sha(project, new), old_tip)
    assert [step_of(project, sha) for sha, _ in new_chain] == [6, 5]
    assert new_chain[-1][1] == old_tip  # continues from the old chain's tip
    assert exp_ref_sha(project, old) == old_tip
    assert (project / "model.txt").read_text() == "3.5\n"
    rows = show_json(project)
    # the older chain is drawn under the newer experiment, not on its own
    assert [row["name"] for row in rows if row["kind"] == "experiment"] == [new]
    chain_rows = [row for row in rows if row["kind"] in ("experiment", "checkpoint")]
    assert [row["metrics"]["logs.json"]["step"] for row in chain_rows] == [6, 5, 4, 3, 2, 1, 0]
    assert chain_rows[1]["parent"] == old_tip
    _, table, _ = exq("exp", "show", "--no-pager", "--no-timestamp", cwd=project)
    assert f"({old_tip[:7]})" in table and f"│ ╓ {old_tip[:7]}" in table, table

    _, out, _ = exq("exp", "run", "--reset", cwd=project)
    assert "will be resumed" not in out and "will be created" not in out
    fresh = chain(project, exp_ref_sha(project, reported_name(out)), baseline)
    assert [step_of(project, sha) for sha, _ in fresh] == [6, 5, 4, 3, 2, 1, 0]
    assert fresh[-1][1] == baseline
    assert cached_text(project, fresh[-1][0], "model.txt") == "0.5\n"
    assert loss_steps(project) == list(range(7))


def test_a_dvc_era_script_checkpoints_through_the_signal_file(project: Path) -> None:
    baseline = write_training_project(
        project, dvcyaml=SIGNAL_FILE_DVCYAML, script=SIGNAL_FILE_TRAIN, params="lr: 1\n"
    )
    _, out, _ = exq("exp", "run", cwd=project)
    commits = chain(project, exp_ref_sha(project, reported_name(out)), baseline)
    assert len(commits) == 3
    assert [cached_text(project, sha, "model.txt") for sha, _ in commits] == [
        f"model after step {step}\n" for step in (2, 1, 0)
    ]
    rows = [row for row in show_json(project) if row["kind"] in ("experiment", "checkpoint")]
    assert [row["metrics"]["metrics.json"]["step"] for row in rows] == [2, 1, 0]
    assert not (project / ".dvc" / "tmp" / "DVC_CHECKPOINT").exists()


def test_exp_apply_of_a_middle_checkpoint_restores_its_model(project: Path) -> None:
    baseline = write_training_project(project)
    _, out, _ = exq("exp", "run", cwd=project)
    name = reported_name(out)
    commits = chain(project, exp_ref_sha(project, name), baseline)
    middle = commits[2][0]
    assert step_of(project, middle) == 2

    exq("exp", "apply", middle[:7], cwd=project)
    assert (project / "model.txt").read_text() == "1.5\n"
    assert json.loads((project / "logs.json").read_text())["step"] == 2
    assert loss_steps(project) == [0, 1, 2]

    # training from there is a new chain: the old one goes on past this point
    _, out, _ = exq("exp", "run", cwd=project)
    assert MODIFIED.format(name) in out
    branch = chain(project, exp_ref_sha(project, reported_name(out)), middle)
    assert [step_of(project, sha) for sha, _ in branch] == [4, 3]
    assert branch[-1][1] == middle


def test_stage_add_writes_checkpoint_outs_and_the_live_section(project: Path) -> None:
    exq(
        "stage",
        "add",
        "-n",
        "train",
        "-d",
        "train.py",
        "-c",
        "model.pt",
        "--live",
        "logs",
        "--live-no-cache",
        "python",
        "train.py",
        cwd=project,
    )
    data = yaml.safe_load((project / "dvc.yaml").read_text())
    assert data["stages"]["train"]["outs"] == [{"model.pt": {"checkpoint": True}}]
    assert data["stages"]["train"]["live"] == {
        "logs": {"summary": True, "html": True, "cache": False}
    }
    assert "/model.pt" in (project / ".gitignore").read_text()
    _, out, _ = exq("stage", "list", "--json", cwd=project)
    [stage] = json.loads(out)
    assert stage["plots"] == ["logs"] and stage["metrics"] == []
    assert stage["outs"] == ["model.pt"]


def test_a_temp_run_makes_its_chain_in_a_worktree(project: Path) -> None:
    baseline = write_training_project(project)
    before = sorted(p.name for p in project.iterdir())
    _, out, _ = exq("exp", "run", "--temp", cwd=project)
    commits = chain(project, exp_ref_sha(project, reported_name(out)), baseline)
    assert [step_of(project, sha) for sha, _ in commits] == [4, 3, 2, 1, 0]
    assert [cached_text(project, sha, "model.txt") for sha, _ in commits] == [
        f"{0.5 * (step + 1)}\n" for step in (4, 3, 2, 1, 0)
    ]
    assert sorted(p.name for p in project.iterdir()) == before  # the workspace is untouched
