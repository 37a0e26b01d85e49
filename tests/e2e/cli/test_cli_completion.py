"""Shell completion for bash, zsh and fish, and ``-h`` beside ``--help``: the
scripts ``--show-completion`` prints, and what the installed ``exq`` answers to
each shell's completion request (commands, and the queue's run ids and names)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import EXQ_BIN, exq
from tests.e2e.queue_helpers import QueueEnv, make_project, queued_ids

SCRIPTS = {
    "bash": "complete -o default -F _exq_completion exq",
    "zsh": "compdef _exq_completion exq",
    "fish": "complete --command exq --no-files",
}


def _complete(shell: str, words: str, cwd: Path) -> list[str]:
    """What ``exq`` answers to ``shell``'s completion request for the line ``words``."""
    env = {**os.environ, "_EXQ_COMPLETE": f"complete_{shell}"}
    if shell == "bash":
        # a line ending in a space completes a new, empty word
        cword = len(words.split()) - (0 if words.endswith(" ") else 1)
        env |= {"COMP_WORDS": words, "COMP_CWORD": str(cword)}
    else:
        env |= {"_TYPER_COMPLETE_ARGS": words, "_TYPER_COMPLETE_FISH_ACTION": "get-args"}
    done = subprocess.run(
        [str(EXQ_BIN)], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("shell", sorted(SCRIPTS))
def test_each_shell_gets_a_script_and_its_completions(shell: str, tmp_path: Path) -> None:
    env = {"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    _, script, _ = exq("--show-completion", shell, cwd=tmp_path, env=env)
    assert SCRIPTS[shell] in script
    answer = "\n".join(_complete(shell, "exq queue st", tmp_path))
    # each shell's own format (bash: words; zsh: _arguments specs; fish: word<TAB>help)
    assert set(re.findall(r"\b(st[a-z]+)\b", answer)) == {"start", "status", "stop"}, answer


def test_run_ids_and_names_complete_for_queue_logs(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    _, out, _ = exq("exp", "run", "--queue", "-n", "nightly", cwd=root)
    (run_id,) = queued_ids(out)
    assert _complete("bash", "exq queue logs nig", root) == ["nightly"]
    assert _complete("fish", "exq queue show ", root) == [
        f"{run_id}\tnightly (queued)",
        "nightly\tnightly (queued)",
    ]


def test_dash_h_is_help_everywhere(tmp_path: Path) -> None:
    for args in (["-h"], ["queue", "-h"], ["queue", "status", "-h"], ["exp", "show", "-h"]):
        code, out, _ = exq(*args, cwd=tmp_path)
        assert code == 0 and "Usage: exq" in out, args
    _, out, _ = exq("-h", cwd=tmp_path)
    assert "--install-completion" in out and "--show-completion" in out


FOREACH = """\
stages:
  work:
    cmd: echo work
  train:
    foreach: [small, large]
    do:
      cmd: echo ${item}
  tune:
    foreach: ${grid}
    do:
      cmd: echo ${item}
"""


def test_stage_names_complete_for_pipeline_commands(tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    (root / "dvc.yaml").write_text(FOREACH)
    for command in ("repro", "status", "dag", "checkout", "stage list", "exp run"):
        assert _complete("bash", f"exq {command} t", root) == [
            "train",
            "train@small",
            "train@large",
            "tune",
        ], command
    assert _complete("bash", "exq repro train@l", root) == ["train@large"]
    (root / "dvc.yaml").write_text("stages: [broken\n")
    assert not any(_complete("bash", "exq repro t", root))


def test_experiment_names_and_revisions_complete(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    exq("exp", "run", "-n", "first-try", cwd=root)
    exq("exp", "run", "-S", "lr=0.3", "-n", "second", cwd=root)
    for command in ("exp apply", "exp branch", "exp remove", "exp remove second"):
        assert _complete("bash", f"exq {command} fi", root) == ["first-try"], command
    assert _complete("bash", "exq exp diff ", root) == ["main", "first-try", "second"]
    assert _complete("bash", "exq exp show --rev m", root) == ["main"]
    (answer,) = _complete("fish", "exq exp apply sec", root)
    assert answer.startswith("second\texperiment ")


def test_run_ids_complete_for_every_queue_command(queue_env: QueueEnv, tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    _, out, _ = exq("exp", "run", "--queue", "-n", "nightly", cwd=root)
    for command in ("kill", "remove", "retry", "priority", "run", "logs", "show"):
        assert _complete("bash", f"exq queue {command} nig", root) == ["nightly"], command


@pytest.mark.parametrize("shell", sorted(SCRIPTS))
def test_completion_writes_the_script_of_the_shell_named(shell: str, tmp_path: Path) -> None:
    # as 'dvc completion -s SHELL', whatever shell runs exq
    _, script, _ = exq("completion", "-s", shell, cwd=tmp_path)
    assert SCRIPTS[shell] in script
    assert all(SCRIPTS[other] not in script for other in SCRIPTS if other != shell)


def test_completion_writes_bash_by_default_and_refuses_an_unknown_shell(tmp_path: Path) -> None:
    _, script, _ = exq("completion", cwd=tmp_path)
    assert SCRIPTS["bash"] in script
    code, out, err = exq("completion", "--shell", "tcsh", cwd=tmp_path, check=False)
    assert (code, out) == (2, "")
    assert err == "ERROR: unknown shell 'tcsh': choose bash, zsh or fish\n"
