"""Which params ``exp show`` lists, and which ``dvc.lock`` records, as DVC 3.67 chooses them.

DVC shows the keys stages depend on, the top-level ``params:`` files and the
root ``params.yaml`` whole, then values used through ``${...}`` of files not
shown otherwise; ``--param-deps`` keeps only what stages use. Its lock records
the keys ``dvc.yaml`` lists, never those used only through ``${...}``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.e2e.conftest import exq, write
from tests.e2e.exp_helpers import commit_all, init_repo

DVCYAML = """\
vars:
- model.yaml
params:
- top.yaml
stages:
  train:
    cmd: echo ${size} ${train.epochs} > out.txt
    params:
    - train.lr
    - config.yaml:
      - a
    outs: [out.txt]
"""

FILES = {
    "params.yaml": "train:\n  lr: 0.1\n  epochs: 3\nunused: 7\n",
    "config.yaml": "a: 1\nb: 2\nc: 3\n",
    "model.yaml": "size: 5\nother: 6\n",
    "top.yaml": "x: 1\ny: 2\n",
    "dvc.yaml": DVCYAML,
}

SHOWN = {
    "params.yaml": {"train.lr": 0.1, "train.epochs": 3, "unused": 7},
    "config.yaml": {"a": 1},
    "top.yaml": {"x": 1, "y": 2},
    "model.yaml": {"size": 5},
}
SHOWN_DEPS = {"params.yaml": {"train.lr": 0.1}, "config.yaml": {"a": 1}, "model.yaml": {"size": 5}}


def make_project(root: Path) -> Path:
    init_repo(root)
    for name, text in FILES.items():
        write(root / name, text)
    exq("repro", cwd=root)
    commit_all(root, "baseline")
    return root


def shown_params(root: Path, *args: str) -> list[dict]:
    _, out, _ = exq("exp", "show", "--json", *args, cwd=root)
    return [row["params"] for row in json.loads(out)]


def test_exp_show_lists_the_params_dvc_lists(tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    for params in shown_params(root):
        assert params == SHOWN and list(params) == list(SHOWN)
    assert shown_params(root, "--param-deps") == [SHOWN_DEPS, SHOWN_DEPS]


def test_the_lock_leaves_out_values_used_through_templating(tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    lock = (root / "dvc.lock").read_text()
    assert "epochs" not in lock and "model.yaml" not in lock
    assert "train.lr: 0.1" in lock and "a: 1" in lock
    _, out, _ = exq("status", "--json", cwd=root)
    assert json.loads(out) == {}


def test_lock_and_columns_match_the_real_dvc(tmp_path: Path, dvc_bin: str) -> None:
    root = make_project(tmp_path / "repo")
    twin = tmp_path / "twin"
    shutil.copytree(root, twin, symlinks=True)
    (twin / "dvc.lock").unlink()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATER": "1"}

    def dvc(*args: str) -> str:
        done = subprocess.run(
            [dvc_bin, *args], cwd=twin, env=env, capture_output=True, text=True, check=True
        )
        return done.stdout

    dvc("repro")
    assert (twin / "dvc.lock").read_bytes() == (root / "dvc.lock").read_bytes()
    [workspace, *_] = json.loads(dvc("exp", "show", "--json"))
    dvc_params = {file: _flat(value["data"]) for file, value in workspace["data"]["params"].items()}
    assert dvc_params == SHOWN and list(dvc_params) == list(SHOWN)


def _flat(data: dict, prefix: str = "") -> dict:
    flat: dict = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, name + "."))
        else:
            flat[name] = value
    return flat
