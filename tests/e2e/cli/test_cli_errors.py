"""Bad input through the real ``exq``: one ``ERROR:`` line, a non-zero exit, nothing half-written.

Each case writes a few files into a committed project, runs one command and
checks the house rule: stderr is exactly one line starting with ``ERROR:`` and
naming the file, key or stage; no traceback; git status, the refs and the
project's files are as they were before the command.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import EXQ_BIN, exq, write
from tests.support import git

GOOD = """\
stages:
  s:
    cmd: cp data.txt out.txt
    deps: [data.txt]
    params: [a]
    outs: [out.txt]
"""

# (id, files written after the commit, command, text the error line must hold, exit code)
CASES: list[tuple[str, dict[str, str], list[str], str, int]] = [
    ("dvcyaml-is-a-list", {"dvc.yaml": "- a\n- b\n"}, ["repro"], "dvc.yaml", 1),
    (
        "stage-without-cmd",
        {"dvc.yaml": "stages:\n  s:\n    deps: [data.txt]\n"},
        ["repro"],
        "cmd",
        1,
    ),
    (
        "non-string-dep",
        {"dvc.yaml": "stages:\n  s:\n    cmd: echo\n    deps: [1]\n"},
        ["repro"],
        "deps",
        1,
    ),
    (
        "bad-foreach",
        {"dvc.yaml": "stages:\n  s:\n    foreach: 3\n    do:\n      cmd: echo\n"},
        ["repro"],
        "foreach",
        1,
    ),
    (
        "missing-interpolation-key",
        {"dvc.yaml": "stages:\n  s:\n    cmd: echo ${nope}\n"},
        ["repro"],
        "nope",
        1,
    ),
    (
        "cycle",
        {
            "dvc.yaml": "stages:\n  a:\n    cmd: echo\n    deps: [b.txt]\n    outs: [a.txt]\n"
            "  b:\n    cmd: echo\n    deps: [a.txt]\n    outs: [b.txt]\n"
        },
        ["repro"],
        "cycle",
        1,
    ),
    (
        "out-outside-repo",
        {"dvc.yaml": "stages:\n  s:\n    cmd: echo\n    outs: [../x.txt]\n"},
        ["repro"],
        "../x.txt",
        1,
    ),
    ("params-not-a-mapping", {"params.yaml": "- 1\n- 2\n"}, ["repro"], "params.yaml", 1),
    # regressions: a tracked param that is not there used to run the stage and
    # write a dvc.lock without it; DVC refuses before running
    (
        "missing-param-key",
        {"dvc.yaml": GOOD.replace("[a]", "[zz]")},
        ["repro"],
        "parameters 'zz' are missing from 'params.yaml'",
        1,
    ),
    (
        "missing-params-file",
        {"dvc.yaml": GOOD.replace("[a]", "[{nofile.yaml: [a]}]")},
        ["exp", "run"],
        "dependency 'nofile.yaml' does not exist",
        1,
    ),
    (
        "missing-dep",
        {"dvc.yaml": GOOD.replace("[data.txt]", "[nope.txt]")},
        ["repro"],
        "stage 's': dependency 'nope.txt' does not exist",
        1,
    ),
    ("set-param-empty-key", {}, ["exp", "run", "-S", "=1"], "-S '=1'", 1),
    ("set-param-no-equals", {}, ["exp", "run", "-S", "a"], "-S 'a'", 1),
    ("set-param-into-scalar", {}, ["exp", "run", "-S", "a.0.b=1"], "'a' is 1", 1),
    ("set-param-not-params-file", {}, ["exp", "run", "-S", "data.txt:a=1"], "data.txt", 1),
    ("set-param-missing-file", {}, ["exp", "run", "-S", "missing.yaml:a=1"], "missing.yaml", 1),
    ("bad-exp-name", {}, ["exp", "run", "-n", "a..b"], "a..b", 1),
    (
        "failing-stage",
        {"dvc.yaml": "stages:\n  s:\n    cmd: exit 3\n"},
        ["exp", "run"],
        "stage 's'",
        1,
    ),
    ("sort-by-unknown", {}, ["exp", "show", "--sort-by", "nope"], "nope", 1),
    ("include-params-nothing", {}, ["exp", "show", "--include-params", "x"], "'x'", 1),
    ("exp-diff-unknown", {}, ["exp", "diff", "nope"], "nope", 1),
    ("metrics-diff-before-history", {}, ["metrics", "diff", "HEAD~5"], "HEAD~5", 1),
    ("add-missing-path", {}, ["add", "missing.txt"], "missing.txt", 1),
    ("add-git-folder", {}, ["add", ".git"], ".git", 1),
    # regressions: `stage add` wrote a dvc.yaml whose outs clash, and a .gitignore
    (
        "stage-add-out-clash",
        {},
        ["stage", "add", "-n", "t", "-o", "out.txt", "echo"],
        "output 'out.txt' is produced by two stages: 's' and 't'",
        1,
    ),
    (
        "stage-add-cycle",
        {},
        ["stage", "add", "-n", "t", "-d", "out.txt", "-o", "data.txt", "echo"],
        "cycle",
        1,
    ),
    ("stage-add-name-clash", {}, ["stage", "add", "-n", "s", "echo"], "stage 's'", 1),
    ("plots-bad-json", {"m.json": "{bad"}, ["plots", "show", "m.json"], "m.json", 1),
    ("queue-kill-unknown", {}, ["queue", "kill", "999"], "999", 1),
    ("queue-logs-unknown", {}, ["queue", "logs", "nope"], "nope", 1),
    # regressions: usage errors printed click's framed multi-line block
    ("queue-start-zero-jobs", {}, ["queue", "start", "-j", "0"], "--jobs", 2),
    ("unknown-option", {}, ["repro", "--bogus"], "--bogus", 2),
    ("stage-add-without-command", {}, ["stage", "add", "-n", "t"], "command", 2),
    # numbers past what a clock or SQLite holds: OverflowError tracebacks
    ("report-since-overflow", {}, ["queue", "report", "--since", "99999999d"], "--since", 1),
    (
        "queue-retries-overflow",
        {},
        ["exp", "run", "--queue", "--retries", "99999999999999999999"],
        "--retries",
        1,
    ),
    (
        "queue-retry-delay-overflow",
        {},
        ["exp", "run", "--queue", "--retry-delay", "99999999999999d", "--retries", "1"],
        "--retry-delay",
        1,
    ),
    # an --interval no sleep takes: OverflowError and ValueError tracebacks once
    # --watch slept; refused before it starts
    ("watch-interval-huge", {}, ["queue", "status", "-w", "--interval", "1e300"], "--interval", 2),
    ("watch-interval-nan", {}, ["queue", "status", "-w", "--interval", "nan"], "--interval", 2),
    # a negative --precision reached a format string: a ValueError traceback
    (
        "exp-show-negative-precision",
        {"params.yaml": "a: 0.5\nb:\n  c: 2\n"},
        ["exp", "show", "--precision", "-1"],
        "--precision",
        2,
    ),
    ("exp-diff-negative-precision", {}, ["exp", "diff", "--precision", "-1"], "--precision", 2),
    (
        "metrics-show-negative-precision",
        {},
        ["metrics", "show", "--precision", "-2"],
        "--precision",
        2,
    ),
    (
        "metrics-diff-negative-precision",
        {},
        ["metrics", "diff", "--precision", "-2"],
        "--precision",
        2,
    ),
]


@pytest.fixture(scope="module")
def committed(tmp_path_factory: pytest.TempPathFactory, project_template: Path) -> Path:
    """A committed project with stage ``s`` (data.txt -> out.txt, param ``a``), made once."""
    repo = tmp_path_factory.mktemp("errors") / "repo"
    shutil.copytree(project_template, repo, symlinks=True)
    write(repo / "params.yaml", "a: 1\nb:\n  c: 2\n")
    write(repo / "data.txt", "x\n")
    write(repo / "dvc.yaml", GOOD)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    return repo


@pytest.fixture
def queue_dirs(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Fresh queue state and runtime folders (the runtime one short, for the socket)."""
    short = Path(tempfile.mkdtemp(prefix="exq-e", dir="/tmp"))
    yield {"EXQ_STATE_DIR": str(tmp_path / "state"), "EXQ_RUNTIME_DIR": str(short)}
    shutil.rmtree(short, ignore_errors=True)


def snapshot(repo: Path) -> tuple[str, str, dict[str, bytes]]:
    """git status, the refs, and every file outside .git with its content."""
    files = {
        path.relative_to(repo).as_posix(): path.read_bytes()
        for path in sorted(repo.rglob("*"))
        if path.is_file()
        and ".git" not in path.relative_to(repo).parts[:1]
        and "tmp" not in path.relative_to(repo).parts[1:2]  # .dvc/tmp: exq's own state
    }
    return git(repo, "status", "--porcelain"), git(repo, "for-each-ref"), files


def assert_one_error_line(code: int, err: str, needle: str, expected_code: int) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == expected_code, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith("ERROR: "), err
    assert needle in lines[0]


@pytest.mark.parametrize(
    ("files", "args", "needle", "expected_code"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input_gets_one_error_line_and_changes_nothing(
    tmp_path: Path,
    committed: Path,
    queue_dirs: dict[str, str],
    files: dict[str, str],
    args: list[str],
    needle: str,
    expected_code: int,
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(committed, repo, symlinks=True)
    for name, text in files.items():
        write(repo / name, text)
    before = snapshot(repo)
    code, _, err = exq(*args, cwd=repo, check=False, env=queue_dirs)
    assert_one_error_line(code, err, needle, expected_code)
    assert snapshot(repo) == before


def test_a_missing_dep_fails_before_the_outs_are_removed(tmp_path: Path, committed: Path) -> None:
    # the outs used to be removed and the command run, failing without naming the dep
    repo = tmp_path / "repo"
    shutil.copytree(committed, repo, symlinks=True)
    exq("repro", cwd=repo)
    (repo / "data.txt").unlink()
    before = snapshot(repo)
    code, _, err = exq("repro", cwd=repo, check=False)
    assert_one_error_line(code, err, "stage 's': dependency 'data.txt' does not exist", 1)
    assert snapshot(repo) == before
    assert (repo / "out.txt").read_text() == "x\n"


def test_stage_add_keeps_the_mode_of_dvc_yaml(tmp_path: Path, committed: Path) -> None:
    # the atomic rewrite used to leave mkstemp's 0600 on dvc.yaml
    repo = tmp_path / "repo"
    shutil.copytree(committed, repo, symlinks=True)
    (repo / "dvc.yaml").chmod(0o644)
    exq("stage", "add", "-n", "t", "-o", "t.txt", "echo", cwd=repo)
    assert (repo / "dvc.yaml").stat().st_mode & 0o777 == 0o644
    assert "  t:\n" in (repo / "dvc.yaml").read_text()


def test_a_group_without_its_command_still_prints_its_help(tmp_path: Path) -> None:
    code, out, err = exq("exp", cwd=tmp_path, check=False)
    assert code == 2
    assert "run" in out and "show" in out
    assert "ERROR" not in err


def test_help_into_a_closed_pipe_has_no_traceback(tmp_path: Path) -> None:
    # `exq --help | head -1`: the reader goes away; exq must not print a traceback.
    proc = subprocess.Popen(
        [str(EXQ_BIN), "--help"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=30)
    assert "Traceback" not in err


def test_init_refuses_outside_git_and_in_a_sub_folder_as_dvc_does(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    code, _, err = exq("init", cwd=bare, check=False)
    assert code != 0 and err.startswith(f"ERROR: {bare} is not in a git repository")
    assert len(err.strip().splitlines()) == 1 and not (bare / ".dvc").exists()
    exq("init", "--no-scm", cwd=bare)
    assert "no_scm = True" in (bare / ".dvc" / "config").read_text()

    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    git(repo, "init", "-q")
    code, _, err = exq("init", cwd=repo / "sub", check=False)
    assert code != 0 and "is a sub-folder of the git repository" in err
    assert not (repo / "sub" / ".dvc").exists()
    exq("init", "--subdir", cwd=repo / "sub")
    exq("init", cwd=repo)
    assert (repo / "sub" / ".dvc").is_dir() and (repo / ".dvc").is_dir()
