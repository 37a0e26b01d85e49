"""-S edits on real params files: exact bytes, atomic writes, nothing written on error."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from exq.engine.errors import ParamsError
from exq.engine.params.edit import apply_edits, parse_set_params, plan_changes, plan_edits

YAML_TEXT = """\
# Parameters of the pipeline.

prepare:
  split: 0.2      # held out
  seed: 20170428

train:
  lr: 0.001       # learning rate
  n_est: 50
  layers: [64, 32]
  optimizer:
    name: 'adam'
"""

JSON_TEXT = """\
{
    "train": {
        "lr": 0.001,
        "layers": [64, 32]
    },
    "seed": 1
}
"""

TOML_TEXT = """\
# toml params
[train]
lr = 0.001  # learning rate
layers = [64, 32]

[eval]
metric = "f1"
"""

PY_TEXT = """\
# python params
LR = 0.001  # learning rate


class Train:
    epochs = 10
"""

FILES = {
    "params.yaml": YAML_TEXT,
    "conf/extra.yml": "a: 1\nb: [1, 2]  # keep\n",
    "params.json": JSON_TEXT,
    "params.toml": TOML_TEXT,
    "params.py": PY_TEXT,
}
OLD_TIME = 1_000_000_000  # 2001: any rewrite moves the mtime away from it


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for name, text in FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
        os.utime(path, (OLD_TIME, OLD_TIME))
    return tmp_path


def run_git(cwd: Path, *args: str) -> None:
    """The real git CLI, with a committer set for this call only."""
    ident = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", *ident, *args], cwd=cwd, check=True, capture_output=True)


def snapshot(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Bytes, mtime and mode of every file under root."""
    return {
        str(p.relative_to(root)): (
            p.read_bytes(),
            p.stat().st_mtime_ns,
            stat.S_IMODE(p.stat().st_mode),
        )
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.parts
    }


def test_every_format_is_edited_byte_for_byte(repo: Path) -> None:
    edits = parse_set_params(
        [
            "train.lr=0.01",
            "+train.dropout=0.2",
            "conf/extra.yml:b.1=3",
            "params.json:train.layers.0=128",
            "params.json:+train.wd=1e-4",
            "params.toml:train.lr=0.01",
            "params.toml:~eval.metric",
            "params.py:LR=0.01",
            "params.py:Train.epochs=20",
        ]
    )
    written = apply_edits(repo, edits)
    assert sorted(written) == sorted(repo / name for name in FILES)
    assert (repo / "params.yaml").read_bytes() == YAML_TEXT.replace(
        "  lr: 0.001       # learning rate", "  lr: 0.01       # learning rate"
    ).replace("    name: 'adam'\n", "    name: 'adam'\n  dropout: 0.2\n").encode()
    assert (repo / "conf/extra.yml").read_bytes() == b"a: 1\nb: [1, 3]  # keep\n"
    assert (repo / "params.json").read_bytes() == JSON_TEXT.replace(
        "[64, 32]\n", '[128, 32],\n        "wd": 0.0001\n'
    ).encode()
    assert (repo / "params.toml").read_bytes() == TOML_TEXT.replace(
        "lr = 0.001", "lr = 0.01"
    ).replace('metric = "f1"\n', "").encode()
    assert (repo / "params.py").read_bytes() == PY_TEXT.replace("LR = 0.001", "LR = 0.01").replace(
        "epochs = 10", "epochs = 20"
    ).encode()


def test_file_mode_is_kept_and_no_temp_files_remain(repo: Path) -> None:
    (repo / "params.yaml").chmod(0o640)
    apply_edits(repo, parse_set_params(["train.n_est=100"]))
    assert stat.S_IMODE((repo / "params.yaml").stat().st_mode) == 0o640
    assert sorted(p.name for p in repo.iterdir()) == sorted(
        ["conf", "params.json", "params.py", "params.toml", "params.yaml"]
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["train.lr=0.01", "params.json:train.missing=1"],
            "params.json: .*'train.missing' not found",
        ),
        (["train.lr=0.01", "+train.lr=1"], "already exists"),
        (["params.json:seed=2", "train.layers.5=1"], "index 5 is out of range"),
        (["train.lr=0.01", "nothere.yaml:a=1"], "nothere.yaml: params file not found"),
        (["train.lr=0.01", "params.toml:train.lr=null"], "TOML has no null"),
        (["params.py:LR=1", "~train.lr=5"], "'train.lr' is 0.001, not 5"),
        (["params.py:LR=1", "params.py:Nope.x=1"], "'Nope.x' not found"),
    ],
)
def test_a_bad_edit_changes_no_file(repo: Path, overrides: list[str], message: str) -> None:
    before = snapshot(repo)
    with pytest.raises(ParamsError, match=message):
        apply_edits(repo, parse_set_params(overrides))
    assert snapshot(repo) == before


def test_unparsable_file_changes_nothing(repo: Path) -> None:
    (repo / "params.toml").write_text("[train\n")
    os.utime(repo / "params.toml", (OLD_TIME, OLD_TIME))
    before = snapshot(repo)
    with pytest.raises(ParamsError, match=r"params\.toml: invalid TOML"):
        apply_edits(repo, parse_set_params(["train.lr=1", "params.toml:train.lr=1"]))
    assert snapshot(repo) == before


def test_non_utf8_file_is_an_error(repo: Path) -> None:
    (repo / "params.yaml").write_bytes(b"a: \xff\n")
    with pytest.raises(ParamsError, match=r"params\.yaml: not UTF-8"):
        apply_edits(repo, parse_set_params(["a=1"]))


def test_plan_writes_nothing_and_reports_changes(repo: Path) -> None:
    before = snapshot(repo)
    edits = parse_set_params(["train.lr=0.5", "params.json:~seed"])
    files = plan_edits(repo, edits)
    assert snapshot(repo) == before
    assert set(files) == {repo / "params.yaml", repo / "params.json"}
    assert b"lr: 0.5       # learning rate" in files[repo / "params.yaml"]
    plan = plan_changes(repo, edits)
    assert [str(c) for c in plan.changes] == [
        "params.yaml: train.lr 0.001 -> 0.5",
        "params.json: -seed (was 1)",
    ]


def test_edit_that_changes_nothing_does_not_touch_the_file(repo: Path) -> None:
    before = snapshot(repo)
    assert apply_edits(repo, parse_set_params(["train.n_est=50", "params.json:seed=1"])) == []
    assert snapshot(repo) == before


def test_same_file_spelled_two_ways_is_edited_once(repo: Path) -> None:
    apply_edits(repo, parse_set_params(["train.lr=0.1", "./params.yaml:train.n_est=7"]))
    text = (repo / "params.yaml").read_text()
    assert "lr: 0.1 " in text and "n_est: 7\n" in text


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_directory_fails_cleanly(repo: Path) -> None:
    conf = repo / "conf"
    before = snapshot(repo)
    conf.chmod(0o500)
    try:
        with pytest.raises(ParamsError, match="cannot write"):
            apply_edits(repo, parse_set_params(["conf/extra.yml:a=2"]))
    finally:
        conf.chmod(0o700)
    assert snapshot(repo) == before


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_edits_apply_in_a_worktree_and_leave_the_workspace_alone(
    repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    run_git(repo, "init", "-q")
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", "init")
    worktree = tmp_path_factory.mktemp("wt") / "run"
    run_git(repo, "worktree", "add", "-q", "--detach", str(worktree))
    before = snapshot(repo)
    apply_edits(worktree, parse_set_params(["train.lr=0.02", "params.py:+SEED=3"]))
    assert snapshot(repo) == before
    diff = subprocess.run(
        ["git", "diff", "--numstat"], cwd=worktree, check=True, capture_output=True, text=True
    )
    assert sorted(diff.stdout.split()) == sorted(["1", "1", "params.yaml", "1", "0", "params.py"])


def test_failed_write_leaves_no_temp_files(repo: Path) -> None:
    from exq.engine.params.edit import write_plan

    plan = plan_changes(repo, parse_set_params(["conf/extra.yml:a=2", "train.lr=1"]))
    (repo / "conf/extra.yml").unlink()
    (repo / "conf/extra.yml").mkdir()  # the rename onto it now fails, even for root
    (repo / "conf/extra.yml/x").write_text("x")
    before = snapshot(repo)
    with pytest.raises(ParamsError, match="cannot write"):
        write_plan(plan)
    assert snapshot(repo) == before  # params.yaml was staged but not renamed: it is unchanged
    assert not [p for p in repo.rglob("*.tmp")]


@pytest.mark.dvc
def test_real_dvc_reads_the_edited_values(git_repo: Path, dvc_bin: str) -> None:
    (git_repo / "params.yaml").write_text(YAML_TEXT)
    (git_repo / "params.json").write_text(JSON_TEXT)
    (git_repo / "dvc.yaml").write_text(
        "stages:\n  s:\n    cmd: echo\n    params:\n"
        "    - train\n    - prepare\n    - params.json:\n      - train\n"
    )
    subprocess.run([dvc_bin, "init", "-q"], cwd=git_repo, check=True, capture_output=True)
    run_git(git_repo, "add", "-A")
    run_git(git_repo, "commit", "-q", "-m", "init")
    apply_edits(
        git_repo,
        parse_set_params(
            [
                "train.lr=1e-5",
                "train.n_est=yes",
                "prepare.seed=0755",
                "+train.when=2020-01-01",
                "train.optimizer.name=on",
                "params.json:train.lr=1e-5",
            ]
        ),
    )
    done = subprocess.run(
        [dvc_bin, "params", "diff", "--json"],
        cwd=git_repo,
        check=True,
        capture_output=True,
        text=True,
    )
    diff = json.loads(done.stdout)
    assert {k: v["new"] for k, v in diff["params.yaml"].items()} == {
        "train.lr": 1e-05,
        "train.n_est": "yes",
        "prepare.seed": "0755",
        "train.when": "2020-01-01",
        "train.optimizer.name": "on",
    }
    assert diff["params.json"]["train.lr"]["new"] == 1e-05
