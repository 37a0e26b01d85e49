"""The stored help pages are what typer prints, and main answers from them only when they fit.

If the first test fails, a command changed: run ``make help-pages`` and commit
``cli/help_pages.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from exq.cli import main as cli_main
from exq.cli.help_pages import PAGES
from exq.cli.help_render import group_paths, module_text


def rendered_fresh() -> dict[str, str]:
    """render_pages() in a new interpreter: the order commands are listed in is the
    order their modules are imported in, which tests run before may have changed."""
    code = "import json; from exq.cli.help_render import render_pages as r; print(json.dumps(r()))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    pages: dict[str, str] = json.loads(done.stdout)
    return pages


def test_stored_pages_are_what_typer_renders() -> None:
    rendered = rendered_fresh()
    assert sorted(PAGES) == sorted(rendered)  # every command has its page, and no more
    for path, page in rendered.items():
        assert PAGES[path] == page, (
            f"the stored help of 'exq {path}' is stale: run 'make help-pages'"
        )


def test_stored_module_is_exactly_what_the_renderer_writes() -> None:
    import exq.cli.help_pages as stored

    assert Path(stored.__file__).read_text(encoding="utf-8") == module_text(PAGES)


def test_main_knows_every_group() -> None:
    # a group named alone prints its help and exits 2: stored_help must know which they are
    assert group_paths() - {""} == cli_main._GROUPS


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["/venv/bin/exq"])
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.delenv("_EXQ_COMPLETE", raising=False)


@pytest.mark.parametrize(
    ("argv", "page", "code"),
    [
        (["--help"], "", 0),
        (["-h"], "", 0),
        ([], "", 2),
        (["exp"], "exp", 2),
        (["exp", "--help"], "exp", 0),
        (["exp", "run", "-h"], "exp run", 0),
        (["stage", "list", "--help"], "stage list", 0),
    ],
)
def test_help_requests_get_their_stored_page(
    wide: None, argv: list[str], page: str, code: int
) -> None:
    assert cli_main.stored_help(argv) == (PAGES[page], code)


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],  # a command, not a help request
        ["exp", "show"],
        ["exp", "run", "-S", "lr=1", "--help"],  # options before the flag: typer decides
        ["--version", "--help"],
        ["nosuch", "--help"],  # no such command: typer's error
        ["exp", "nosuch"],
    ],
)
def test_other_command_lines_go_to_typer(wide: None, argv: list[str]) -> None:
    assert cli_main.stored_help(argv) is None


def test_a_narrow_terminal_gets_typers_own_wrapping(
    wide: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "79")
    assert cli_main.stored_help(["--help"]) is None


def test_completion_and_other_program_names_go_to_typer(
    wide: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["-c"])
    assert cli_main.stored_help(["--help"]) is None
    monkeypatch.setattr(sys, "argv", ["/venv/bin/exq"])
    monkeypatch.setenv("_EXQ_COMPLETE", "bash_complete")
    assert cli_main.stored_help([]) is None
