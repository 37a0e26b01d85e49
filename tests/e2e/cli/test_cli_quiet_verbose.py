"""DVC's ``-q``/``--quiet`` and ``-v``/``--verbose``, which every dvc command takes."""

from __future__ import annotations

from pathlib import Path

from exq.cli.help_render import commands, root_command
from tests.e2e.conftest import exq, write
from tests.e2e.exp_helpers import init_repo


def test_every_command_takes_quiet_and_verbose() -> None:
    lacking = []
    for path, command in commands(root_command()):
        if getattr(command, "commands", None) is not None:
            continue  # a group: its commands take them
        opts = {opt for param in command.params for opt in getattr(param, "opts", ())}
        if not {"-q", "--quiet", "-v", "--verbose"} <= opts:
            lacking.append(path)
    assert lacking == []


def test_quiet_prints_nothing_on_stdout(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    init_repo(root)
    write(root / "data" / "a.txt", "alpha\n")
    _, added, _ = exq("add", "-q", "data", cwd=root)
    write(root / "data" / "a.txt", "changed\n")
    _, status, _ = exq("status", "-q", cwd=root)
    _, loud, _ = exq("status", cwd=root)
    assert added == "" and status == ""
    assert "data" in loud  # what -q left out


def test_verbose_adds_the_traceback_under_the_one_line(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    init_repo(root)
    code, _, plain = exq("exp", "apply", "nope", cwd=root, check=False)
    assert code == 1 and plain.count("\n") == 1 and plain.startswith("ERROR: ")
    code, _, verbose = exq("exp", "apply", "nope", "-v", cwd=root, check=False)
    assert code == 1 and "Traceback (most recent call last)" in verbose
    assert verbose.strip().splitlines()[-1] == plain.strip()
