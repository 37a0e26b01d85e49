"""Hydra's sweep functions and random search through ``exq exp run --queue``."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from tests.e2e.conftest import exq
from tests.e2e.queue_helpers import QueueEnv, make_project, queued_names, status

pytest.importorskip("hydra")

SPACE = ["-S", "lr=tag(log, interval(1e-4, 1e-1))", "-S", "mode=choice(ok, fine, good)"]


def queued_params(db: Path, repo: Path) -> dict[str, list[str]]:
    """The -S edits each queued run of ``repo`` has, by name, in queue order."""
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT name, params FROM runs WHERE repo = ? ORDER BY id", (str(repo),)
        )
        return {name: json.loads(params) for name, params in rows}


def test_random_search_draws_are_named_and_reproducible_by_seed(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    first = make_project(tmp_path / "a")
    _, out, _ = exq(
        "exp", "run", "--queue", *SPACE, "--samples", "6", "--seed", "7", "-n", "rs", cwd=first
    )
    assert queued_names(out) == [f"rs-{i}" for i in range(1, 7)]
    drawn = queued_params(queue_env.db, first)
    assert len({tuple(p) for p in drawn.values()}) == 6
    for params in drawn.values():
        lr, mode = (text.partition("=")[2] for text in params)
        assert 1e-4 <= float(lr) <= 1e-1 and mode in {"ok", "fine", "good"}
    # The same seed in another project draws the same points; another seed others.
    second = make_project(tmp_path / "b")
    exq("exp", "run", "--queue", *SPACE, "--samples", "6", "--seed", "7", "-n", "rs", cwd=second)
    assert queued_params(queue_env.db, second) == drawn
    exq("exp", "run", "--queue", *SPACE, "--samples", "6", "--seed", "8", "-n", "other", cwd=second)
    others = {
        k: v for k, v in queued_params(queue_env.db, second).items() if k.startswith("other-")
    }
    assert sorted(others.values()) != sorted(drawn.values())


def test_hydra_grid_is_queued_point_by_point(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    _, out, _ = exq(
        "exp",
        "run",
        "--queue",
        "-n",
        "g",
        "-S",
        "lr=range(1, 4)",
        "-S",
        "mode=choice(ok, 'a b')",
        cwd=root,
    )
    assert queued_names(out) == [f"g-{i}" for i in range(1, 7)]
    assert list(queued_params(queue_env.db, root).values()) == [
        [f"lr={lr}", f"mode={mode}"] for lr in (1, 2, 3) for mode in ("ok", "'a b'")
    ]


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (
            ["-S", "lr=interval(0.1, 1)"],
            "interval() is a distribution: draw from it with --samples N",
        ),
        (["-S", "lr=choice(1,"], "no viable alternative at input"),
        (["-S", "lr=range(1, 5, 0)"], "must not be zero"),
        (["-S", "lr=tag(log, interval(0, 1))", "--samples", "3"], "a log interval needs low > 0"),
        (["-S", "lr=interval(1, 1)", "--samples", "3"], "interval() needs low < high"),
        (["-S", "lr=choice(1,2)", "--samples", "0"], "--samples '0': give a whole number"),
        (
            ["-S", "lr=choice(1,2)", "--samples", "3", "--seed", "x"],
            "--seed 'x': give a whole number",
        ),
        (["-S", "lr=1,2", "--seed", "3"], "--seed seeds a random search: add --samples N"),
        (["-S", "mode=glob(*)"], "glob() picks from the options of a params group: no conf/mode"),
        # a typo of a function was queued as a string; an empty item as ''
        (["-S", "mode=choise(ok, fine)"], "unknown function 'choise': did you mean 'choice'?"),
        (["-S", "lr=1,,2"], "an empty value in a comma list"),
        # a grid too big to queue held the command for ever; a zero float step, a traceback
        (["-S", "lr=range(0, 1e9)"], "a sweep of 1000000000 values: more than 10000 runs"),
        (["-S", "lr=range(0.0, 1.0, 0.0)"], "range() step must not be zero"),
        (["-S", "lr=1,2", "--samples", "20000"], "--samples '20000': at most 10000 runs"),
    ],
)
def test_a_bad_sweep_is_one_line_and_queues_nothing(
    queue_env: QueueEnv, tmp_path: Path, args: list[str], why: str
) -> None:
    root = make_project(tmp_path / "repo")
    code, out, err = exq("exp", "run", "--queue", *args, cwd=root, check=False)
    assert (code, out) != (0, "") and out == ""
    assert err.count("\n") == 1 and why in err, err
    assert status(root)["runs"] == []


def test_glob_picks_the_options_of_a_params_group(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    for name in ("adam", "adamw", "sgd"):
        (root / "conf" / "mode").mkdir(parents=True, exist_ok=True)
        (root / "conf" / "mode" / f"{name}.yaml").write_text("lr: 1\n")
    exq("exp", "run", "--queue", "-S", "mode=glob(*, exclude=adamw)", cwd=root)
    assert sorted(queued_params(queue_env.db, root).values()) == [["mode=adam"], ["mode=sgd"]]


def test_a_plain_queue_does_not_import_hydra(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    code = (
        "import sys\n"
        "from exq.cli.main import main\n"
        "sys.argv = ['exq', 'exp', 'run', '--queue', '-S', 'lr=1,2']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('hydra' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.stdout.splitlines()[-1] == "False", done.stderr
    assert len(status(root)["runs"]) == 2


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("choice(1, 2)", "is a sweep of several values"),
        ("tag(log, interval(1, 2))", "is a distribution (draw a random search from it"),
    ],
)
def test_a_direct_run_refuses_a_sweep_function(
    queue_env: QueueEnv, tmp_path: Path, value: str, why: str
) -> None:
    root = make_project(tmp_path / "repo")
    code, out, err = exq("exp", "run", "-S", f"lr={value}", cwd=root, check=False)
    assert code == 1 and err.count("\n") == 1 and why in err, err
