"""``exq exp show`` with DVC 3's ``--drop``, ``--keep`` and ``--rev``.

One project per module: a baseline tagged ``v1`` with two experiments, then a
second commit (``main``) with one. Metrics ``acc``, ``loss`` (metrics.json) and
``f1`` (scores.yaml); params ``train.lr``, ``train.epochs`` and ``seed`` in
params.yaml, and ``seed`` in model.toml too (so both show as ``FILE:seed``).
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import PY, exq, write
from tests.e2e.exp_helpers import assert_refused, commit_all, init_repo
from tests.support import git

TRAIN = """\
import json
from pathlib import Path
import yaml
lr = yaml.safe_load(Path("params.yaml").read_text())["train"]["lr"]
Path("metrics.json").write_text(json.dumps({"acc": round(0.5 + lr, 4), "loss": round(1 - lr, 4)}))
Path("scores.yaml").write_text(f"f1: {round(lr * 3, 4)}\\n")
"""

DVCYAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    params:
    - train.lr
    - model.toml:
    metrics:
    - metrics.json:
        cache: false
    - scores.yaml:
        cache: false
"""


@pytest.fixture(scope="module")
def proj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = init_repo(tmp_path_factory.mktemp("show3") / "repo")
    write(root / "params.yaml", "train:\n  lr: 0.1\n  epochs: 3\nseed: 7\n")
    write(root / "model.toml", "seed = 1\n")
    write(root / "train.py", TRAIN)
    write(root / "dvc.yaml", DVCYAML)
    commit_all(root, "first")
    git(root, "tag", "v1")
    exq("exp", "run", "-S", "train.lr=0.2", "-n", "old-a", cwd=root)
    exq("exp", "run", "-S", "train.lr=0.3", "-n", "old-b", cwd=root)
    git(root, "checkout", "-q", "--", ".")
    write(root / "params.yaml", "train:\n  lr: 0.1\n  epochs: 4\nseed: 7\n")
    commit_all(root, "second")
    exq("exp", "run", "-S", "train.lr=0.4", "-n", "new-a", cwd=root)
    return root


def md_table(root: Path, *args: str) -> tuple[list[str], list[list[str]]]:
    """``exp show --md``'s header and rows, cells stripped."""
    _, out, _ = exq("exp", "show", "--md", *args, cwd=root)
    lines = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()]
    return lines[0], lines[2:]


def headers(root: Path, *args: str) -> list[str]:
    return md_table(root, *args)[0]


def test_every_column_without_options(proj: Path) -> None:
    assert headers(proj) == [
        "Experiment",
        "Created",
        "acc",
        "loss",
        "f1",
        "train.lr",
        "train.epochs",
        "params.yaml:seed",
        "model.toml:seed",
    ]


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        # a regex matched from the header's start, as re.match
        (
            ["--drop", r"train\."],
            ["Experiment", "Created", "acc", "loss", "f1", "params.yaml:seed", "model.toml:seed"],
        ),
        (["--drop", "seed"], None),  # nothing starts with 'seed': all columns stay
        (
            ["--drop", ".*seed"],
            ["Experiment", "Created", "acc", "loss", "f1", "train.lr", "train.epochs"],
        ),
        # repeated: any of them
        (
            ["--drop", "Created", "--drop", "loss|f1"],
            [
                "Experiment",
                "acc",
                "train.lr",
                "train.epochs",
                "params.yaml:seed",
                "model.toml:seed",
            ],
        ),
        # --keep wins over --drop; alone it changes nothing
        (["--drop", ".*", "--keep", "Experiment|acc"], ["Experiment", "acc"]),
        (["--drop", ".*", "--keep", "acc"], ["acc"]),
        (["--keep", "acc"], None),
    ],
)
def test_drop_and_keep_pick_columns_by_regex(
    proj: Path, args: list[str], shown: list[str] | None
) -> None:
    assert headers(proj, *args) == (shown or headers(proj))


def test_keep_holds_a_column_only_changed_would_leave_out(proj: Path) -> None:
    # epochs is 3 or 4 across all rows: only one baseline shown keeps it at 4 for all
    assert "train.epochs" not in headers(proj, "--only-changed")
    assert "params.yaml:seed" not in headers(proj, "--only-changed")
    shown = headers(proj, "--only-changed", "--keep", r"train\.epochs")
    assert "train.epochs" in shown and "params.yaml:seed" not in shown
    assert "train.lr" in shown  # it changes


def test_the_table_and_csv_follow_the_picks(proj: Path) -> None:
    _, out, _ = exq("exp", "show", "--drop", ".*", "--keep", "Experiment|f1", cwd=proj)
    assert "f1" in out and "acc" not in out and "train.lr" not in out and "Created" not in out
    _, out, _ = exq("exp", "show", "--csv", "--drop", "acc|loss|train", cwd=proj)
    header = next(csv.reader(io.StringIO(out)))
    assert header == [
        "Experiment",
        "rev",
        "typ",
        "Created",
        "parent",
        "f1",
        "params.yaml:seed",
        "model.toml:seed",
    ]


def test_json_leaves_out_dropped_metrics_and_params(proj: Path) -> None:
    _, out, _ = exq("exp", "show", "--json", "--drop", "loss|f1|train", cwd=proj)
    rows = json.loads(out)
    new_a = next(row for row in rows if row["name"] == "new-a")
    assert new_a["metrics"] == {"metrics.json": {"acc": 0.9}}
    assert new_a["params"] == {"params.yaml": {"seed": 7}, "model.toml": {"seed": 1}}
    _, out, _ = exq("exp", "show", "--json", "--drop", ".*", "--keep", "model", cwd=proj)
    for row in json.loads(out):
        assert row["metrics"] == {} and set(row["params"]) <= {"model.toml"}, row


def test_a_bad_regex_is_one_line(proj: Path) -> None:
    code, _, err = exq("exp", "show", "--drop", "(", cwd=proj, check=False)
    assert_refused(code, err, "--drop", "'('", "regular expression")
    code, _, err = exq("exp", "show", "--json", "--keep", "[a", cwd=proj, check=False)
    assert_refused(code, err, "--keep", "'[a'")


def groups(root: Path, *args: str) -> list[tuple[str, set[str]]]:
    """Each top row of ``exp show --json`` with the names of its experiments (made
    within the same second, their order is by name: compared as sets)."""
    _, out, _ = exq("exp", "show", "--json", *args, cwd=root)
    found: list[tuple[str, set[str]]] = []
    for row in json.loads(out):
        if row["kind"] in ("workspace", "baseline"):
            found.append((row["name"], set()))
        else:
            found[-1][1].add(row["name"])
    return found


def test_rev_shows_the_experiments_of_other_baselines(proj: Path) -> None:
    old, new = ("v1", {"old-a", "old-b"}), ("main", {"new-a"})
    assert groups(proj) == [("workspace", set()), new]
    assert groups(proj, "--rev", "v1") == [("workspace", set()), old]
    # repeated, in the order given; a sha works, and -n counts from each
    v1 = git(proj, "rev-parse", "v1").strip()
    assert groups(proj, "--rev", v1[:8], "--rev", "main") == [("workspace", set()), old, new]
    assert groups(proj, "--rev", "main", "-n", "2") == [("workspace", set()), new, old]
    header, rows = md_table(proj, "--rev", "v1", "--drop", "Created")
    assert [row[0] for row in rows][:2] == ["workspace", "v1"]
    assert sorted(row[0][4:] for row in rows[2:]) == ["old-a", "old-b"]
    assert header[:2] == ["Experiment", "acc"]


def test_an_unknown_rev_is_one_line_with_the_closest_names(proj: Path) -> None:
    code, _, err = exq("exp", "show", "--rev", "mian", cwd=proj, check=False)
    assert_refused(code, err, "--rev", "'mian'", "did you mean 'main'?")
    code, _, err = exq("exp", "show", "--rev", "old-c", cwd=proj, check=False)
    assert_refused(code, err, "'old-c'", "did you mean", "'old-a'", "'old-b'")


@pytest.mark.parametrize(
    "args",
    [
        [r"--drop", r"train\."],
        ["--drop", ".*", "--keep", "acc|train"],
        ["--drop", "Created|.*seed"],
        ["--only-changed", "--keep", r"train\.epochs"],
    ],
)
def test_the_same_columns_as_dvc(proj: Path, dvc_bin: str, args: list[str]) -> None:
    """What the real DVC shows for the same options, leaving out its columns of
    deps (exq shows none) and its State/Executor columns."""
    done = subprocess.run(
        [dvc_bin, "exp", "show", "--md", "--no-pager", *args],
        cwd=proj,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    theirs = [c.strip() for c in done.stdout.splitlines()[0].strip("|").split("|")]
    theirs = [h for h in theirs if h not in ("train.py", "State", "Executor")]
    assert headers(proj, *args) == theirs


def test_sha_names_baselines_by_their_commit(proj: Path) -> None:
    # 'dvc exp show --sha': "No such option: --sha"
    head = git(proj, "rev-parse", "HEAD").strip()
    first = git(proj, "rev-parse", "v1").strip()
    names = [row[0] for row in md_table(proj, "--sha", "--rev", "v1", "--rev", "HEAD")[1]]
    assert head[:7] in names and first[:7] in names
    assert "v1" not in names and "main" not in names
    assert any(name.endswith("new-a") for name in names)  # experiments keep their names
    plain = [row[0] for row in md_table(proj, "--rev", "v1")[1]]
    assert "v1" in plain
