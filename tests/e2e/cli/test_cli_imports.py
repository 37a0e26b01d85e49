"""Commands that print a line or a help page pay for no module they do not use.

Each command runs through the installed ``exq`` console script with
``PYTHONPROFILEIMPORTTIME=1``, whose stderr names every module imported; none
may be git (pygit2), rich's tables or the engine's pipeline modules. Imports,
not time: the times are for bench/startup_bench.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.conftest import exq
from tests.e2e.queue_helpers import QueueEnv
from tests.support import git

# Modules (and their submodules) a help page, the version or the queue's table must not import.
DENIED = (
    "pygit2",
    "rich.table",
    "exq.engine.spec",
    "exq.engine.run.commands",
    "exq.engine.experiments",
    "exq.engine.git",
    "exq.engine.plots",
)


def imported(stderr: str) -> set[str]:
    """The modules named by ``-X importtime`` lines."""
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", stderr, re.M))


def denied(modules: set[str]) -> list[str]:
    return sorted(
        name for name in modules for rule in DENIED if name == rule or name.startswith(rule + ".")
    )


def imports_of(
    *args: str, cwd: Path, code: int = 0, env: dict[str, str] | None = None
) -> tuple[str, set[str]]:
    env = {"PYTHONPROFILEIMPORTTIME": "1", **(env or {})}
    done, out, err = exq(*args, cwd=cwd, env=env, check=False)
    assert done == code, err[-2000:]
    modules = imported(err)
    assert "exq.cli.main" in modules  # the profile is there: the check below can fail
    return out, modules


def test_version_imports_nothing_but_exq(basic: Path) -> None:
    out, modules = imports_of("--version", cwd=basic)
    assert out.startswith("exq ")
    heavy = ("typer", "rich", "pygit2", "exq.engine", "exq.daemon")
    assert sorted(m for m in modules if m.split(".")[0] in heavy or m.startswith(heavy)) == []


@pytest.mark.parametrize(
    "args",
    [["--help"], ["-h"], ["exp", "--help"], ["queue", "--help"], ["exp"], ["exp", "show", "-h"]],
)
@pytest.mark.parametrize("columns", ["80", "60"])  # a stored page; typer's own, narrower
def test_help_imports_no_git_tables_or_pipeline(basic: Path, args: list[str], columns: str) -> None:
    out, modules = imports_of(
        *args, cwd=basic, code=2 if args == ["exp"] else 0, env={"COLUMNS": columns}
    )
    assert "Usage" in out
    assert denied(modules) == []
    # at 80 columns the page is the stored one, printed without typer or click
    typer_used = sorted(m for m in modules if m in ("typer", "click") or m.startswith("typer."))
    assert (typer_used == []) == (columns == "80"), typer_used[:3]


def test_help_shows_the_engines_default_precision() -> None:
    from exq.cli.exp_show_cmds import DEFAULT_PRECISION
    from exq.engine.experiments.compare import DEFAULT_PRECISION as ENGINE_PRECISION

    assert DEFAULT_PRECISION == ENGINE_PRECISION


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_queue_status_imports_no_git_tables_or_pipeline(
    basic: Path, queue_env: QueueEnv, json_flag: list[str]
) -> None:
    git(basic, "add", "-A")
    git(basic, "commit", "-q", "-m", "pipeline")
    exq("exp", "run", "--queue", "-S", "train.lr=0.2", cwd=basic)
    out, modules = imports_of("queue", "status", *json_flag, cwd=basic)
    assert "queued" in out
    assert denied(modules) == []
    assert sorted(m for m in modules if m.startswith("exq.engine.run")) == []


@pytest.mark.parametrize("args", [["metrics", "show"], ["exp", "show", "--json"]])
def test_output_without_a_box_imports_no_rich_tables(basic: Path, args: list[str]) -> None:
    git(basic, "add", "-A")
    git(basic, "commit", "-q", "-m", "pipeline")
    _, modules = imports_of(*args, cwd=basic)
    assert sorted(m for m in modules if m == "rich.table" or m.startswith("rich.table.")) == []


@pytest.mark.parametrize("args", [["status"], ["dag"], ["stage", "list"], ["metrics", "show"]])
def test_workspace_reads_import_neither_git_nor_round_trip_yaml(
    basic: Path, args: list[str]
) -> None:
    # pygit2 only where git is read, ruamel only where a file is edited in place
    git(basic, "add", "-A")
    git(basic, "commit", "-q", "-m", "pipeline")
    exq("repro", cwd=basic)
    _, modules = imports_of(*args, cwd=basic)
    heavy = ("pygit2", "ruamel", "exq.engine.git", "exq.daemon")
    assert (
        sorted(m for m in modules if m in heavy or m.startswith(tuple(h + "." for h in heavy)))
        == []
    )


def test_a_plain_exp_run_imports_no_typer_or_queue(basic: Path) -> None:
    # main hands a plain run to the same code the typer command calls, before typer
    # loads; a run in the workspace needs nothing of the queue, nor of exq.live without
    # a live section or checkpoints
    git(basic, "add", "-A")
    git(basic, "commit", "-q", "-m", "pipeline")
    out, modules = imports_of("exp", "run", "-S", "train.lr=0.3", cwd=basic)
    assert "Reproduced experiment(s)" in out
    heavy = ("typer", "click", "rich", "exq.daemon", "exq.live")
    assert (
        sorted(m for m in modules if m in heavy or m.startswith(tuple(h + "." for h in heavy)))
        == []
    )


FAST_COMMANDS = [
    ["status"],
    ["status", "--json", "-q"],
    ["dag"],
    ["stage", "list"],
    ["metrics", "show"],
    ["metrics", "show", "--json"],
    ["queue", "status"],
    ["queue", "status", "--json"],
]


@pytest.mark.parametrize(
    "args", [["exp", "show", "--json"], ["exp", "show", "--csv"]], ids=" ".join
)
def test_exp_show_without_a_box_imports_no_typer_or_rich(
    basic: Path, queue_env: QueueEnv, args: list[str]
) -> None:
    git(basic, "add", "-A")
    git(basic, "commit", "-q", "-m", "pipeline")
    exq("exp", "run", "-S", "train.lr=0.3", cwd=basic)
    out, modules = imports_of(*args, cwd=basic)
    assert "0.3" in out
    heavy = ("typer", "click", "rich", "logging", "exq.cli.app")
    assert (
        sorted(m for m in modules if m in heavy or m.startswith(tuple(h + "." for h in heavy)))
        == []
    )


@pytest.mark.parametrize("args", FAST_COMMANDS, ids=" ".join)
def test_commands_answered_before_typer_import_no_typer_rich_or_git(
    basic: Path, queue_env: QueueEnv, args: list[str]
) -> None:
    # main hands these to the function the typer command calls, before typer loads
    git(basic, "add", "-A")
    git(basic, "commit", "-q", "-m", "pipeline")
    exq("repro", cwd=basic)
    (basic / "metrics.json").write_text('{"acc": 0.5}\n')
    exq("exp", "run", "--queue", "-S", "train.lr=0.2", cwd=basic)
    _, modules = imports_of(*args, cwd=basic)
    heavy = ("typer", "click", "rich", "pygit2", "logging", "exq.cli.app")
    assert (
        sorted(m for m in modules if m in heavy or m.startswith(tuple(h + "." for h in heavy)))
        == []
    )


@pytest.mark.parametrize("args", [["dag"], ["stage", "list"]], ids=" ".join)
def test_reading_the_pipeline_imports_no_cache_or_hashing(basic: Path, args: list[str]) -> None:
    # the graph comes from dvc.yaml and dvc.lock: no state database, cache or OpenSSL
    git(basic, "add", "-A")
    git(basic, "commit", "-q", "-m", "pipeline")
    exq("repro", cwd=basic)
    _, modules = imports_of(*args, cwd=basic)
    heavy = ("sqlite3", "hashlib", "shutil", "tempfile", "exq.engine.data.cache")
    assert (
        sorted(m for m in modules if m in heavy or m.startswith(tuple(h + "." for h in heavy)))
        == []
    )


def test_a_plain_enqueue_imports_no_typer_or_study(basic: Path, queue_env: QueueEnv) -> None:
    # studies (Optuna's options, Hydra's sweep parser) only when a study option is given
    git(basic, "add", "-A")
    git(basic, "commit", "-q", "-m", "pipeline")
    out, modules = imports_of("exp", "run", "--queue", "-S", "train.lr=0.3", cwd=basic)
    assert "Queued experiment" in out
    heavy = ("typer", "click", "rich", "hydra", "optuna", "exq.engine.experiments.study_spec")
    assert (
        sorted(m for m in modules if m in heavy or m.startswith(tuple(h + "." for h in heavy)))
        == []
    )


def test_queue_status_without_a_daemon_imports_no_socket_protocol(
    basic: Path, queue_env: QueueEnv
) -> None:
    # no socket, no one to ask: the daemon's liveness comes from its lock alone
    out, modules = imports_of("queue", "status", "--json", cwd=basic)
    assert '"runs": []' in out
    heavy = ("exq.daemon.protocol", "exq.daemon.client", "socket")
    assert sorted(m for m in modules if m in heavy) == []
