"""Progress bars of add and checkout: on a terminal, slow work shows files, bytes and rate;
piped, or with -q, nothing is added to the output."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
from pathlib import Path

from tests.e2e.conftest import EXQ_BIN, PY, exq, write
from tests.support import git


def make_data(project: Path, count: int = 400) -> None:
    for i in range(count):
        path = project / "data" / f"d{i % 10}" / f"f{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"row {i}\n" * 50)


def on_terminal(*args: str, cwd: Path) -> tuple[int, str]:
    """Run exq with a pseudo-terminal as stdout and stderr; (exit code, what it showed)."""
    main, secondary = pty.openpty()
    env = {**os.environ, "EXQ_PROGRESS_AFTER": "0", "COLUMNS": "120", "TERM": "xterm"}
    proc = subprocess.Popen(
        [str(EXQ_BIN), *args], cwd=cwd, env=env, stdout=secondary, stderr=secondary
    )
    os.close(secondary)
    shown = bytearray()
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        if not ready:
            proc.kill()
            raise AssertionError(f"exq {' '.join(args)} showed nothing for 60 s")
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    return proc.wait(timeout=60), shown.decode(errors="replace")


def test_add_and_checkout_show_bars_on_a_terminal(project: Path) -> None:
    make_data(project)
    code, shown = on_terminal("add", "data", cwd=project)
    assert code == 0, shown
    # (where objects are copies, each file is hashed as it is cached: one bar, "Caching")
    assert "Caching" in shown
    assert "/400 files" in shown and "kB" in shown
    assert "Added 'data'" in shown
    shutil.rmtree(project / "data")
    code, shown = on_terminal("checkout", "data.dvc", cwd=project)
    assert code == 0, shown
    assert "Restoring" in shown and "/400 files" in shown
    assert len(list((project / "data").rglob("*.txt"))) == 400


def test_piped_or_quiet_output_has_no_bars(project: Path) -> None:
    make_data(project)
    env = {"EXQ_PROGRESS_AFTER": "0"}
    _, out, err = exq("add", "data", cwd=project, env=env)
    assert out == "Added 'data': wrote 'data.dvc'.\n"
    assert err == ""
    shutil.rmtree(project / "data")
    code, shown = on_terminal("checkout", "-q", "data.dvc", cwd=project)
    assert code == 0
    assert "Restoring" not in shown and "files" not in shown


def test_exp_apply_shows_a_bar_when_it_restores_much(project: Path) -> None:
    """An experiment whose cached output folder holds 400 files: applying it
    restores them from the cache with a bar; -q restores them silently."""
    write(project / "params.yaml", "n: 1\n")
    write(project / "make.py", MAKE)
    write(
        project / "dvc.yaml",
        f"stages:\n  make:\n    cmd: {PY} make.py\n    params: [n]\n    outs: [data]\n",
    )
    write(project / ".gitignore", "/data\n")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "make 400 files")
    exq("exp", "run", "-S", "n=2", "-n", "many", cwd=project)
    shutil.rmtree(project / "data")
    code, shown = on_terminal("exp", "apply", "many", cwd=project)
    assert code == 0, shown
    assert "Restoring" in shown and "/400 files" in shown
    assert "Changes for experiment 'many' have been applied" in shown
    assert (project / "data" / "f399.txt").read_text() == "row 399 of 2\n" * 50
    shutil.rmtree(project / "data")
    code, shown = on_terminal("exp", "apply", "-q", "many", cwd=project)
    assert code == 0 and "Restoring" not in shown and "files" not in shown, shown
    assert len(list((project / "data").iterdir())) == 400


MAKE = """\
from pathlib import Path
import yaml
n = yaml.safe_load(open("params.yaml"))["n"]
Path("data").mkdir(exist_ok=True)
for i in range(400):
    Path("data", f"f{i}.txt").write_text(f"row {i} of {n}\\n" * 50)
"""
