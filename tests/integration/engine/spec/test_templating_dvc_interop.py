"""The real dvc resolves the same stage names and commands as exq (skipped without dvc)."""

from __future__ import annotations

import os
import re
import subprocess
import textwrap
from pathlib import Path

import pytest

from exq.engine.spec.paramfiles import DiskSource
from exq.engine.spec.templating import load_dvcfile

pytestmark = pytest.mark.dvc

FILES = {
    "params.yaml": """\
        models:
          us: {thresh: 10, filename: us.h5}
          gb: {thresh: 15, filename: gb.h5}
        flags: [true, 2]
        train: {lr: 0.001, layers: [8, 4], fast: true, slow: false, name: "a b", opt: {beta: 0.9}}
        small: 1e-5
        word: on
    """,
    "conf/extra.json": '{"ej": {"k": "v"}}',
    "conf/extra.toml": "[tt]\nn = 3\n",
    "conf/extra.py": "PY = 4\nclass C:\n    x = 'cx'\n",
    "sub/local.yaml": "where: inside\n",
    "dvc.yaml": """\
        vars:
          - conf/extra.json
          - conf/extra.toml
          - conf/extra.py
          - inline: 5
        stages:
          plain:
            cmd: echo ${small} ${word} ${train.fast} ${ej.k} ${tt.n} ${PY} ${C.x} ${inline} \\${literal}
          unpack:
            cmd: python train.py ${train}
          each-dict:
            foreach: ${models}
            do:
              cmd: echo ${key} ${item.filename} ${item.thresh}
          each-list:
            foreach: [a, 1, true, 0.5]
            do:
              cmd: echo ${item}
          each-records:
            foreach: [{n: x}, {n: y}]
            do:
              cmd: echo ${item.n} ${item}
          each-var:
            foreach: ${flags}
            do:
              cmd: echo ${item}
          grid:
            matrix:
              m: [cnn, true]
              f: ${flags}
              o: [{k: 1}]
            cmd: echo ${key} ${item.m} ${item.f} ${item.o.k}
          in-sub:
            wdir: sub
            vars: [local.yaml]
            cmd: echo ${where}
          listed:
            cmd: ["echo one ${PY}", "echo two ${train.opt}"]
    """,
}


def dry_run_commands(dvc_bin: str, repo: Path) -> dict[str, list[str]]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([dvc_bin, "init", "-q"], cwd=repo, env=env, check=True)
    done = subprocess.run(
        [dvc_bin, "repro", "--dry", "--force"],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    commands: dict[str, list[str]] = {}
    current: list[str] = []
    for line in done.stdout.splitlines():
        started = re.match(r"Running stage '(.+)':$", line)
        if started:
            current = commands.setdefault(started.group(1), [])
        elif line.startswith("> "):
            current.append(line[2:])
    return commands


def test_dvc_and_exq_agree_on_names_and_commands(git_repo: Path, dvc_bin: str) -> None:
    for name, text in FILES.items():
        (git_repo / name).parent.mkdir(parents=True, exist_ok=True)
        (git_repo / name).write_text(textwrap.dedent(text))
    expected = dry_run_commands(dvc_bin, git_repo)

    stages = load_dvcfile(DiskSource(git_repo), "dvc.yaml")
    ours = {s.name: s.cmd if isinstance(s.cmd, list) else [s.cmd] for s in stages}

    assert ours == expected
    assert "grid@cnn-True-o0" in ours  # container values are named axis+index
    assert ours["each-var@True"] == ["echo true"]
