"""Every help page of ``exq`` as typer renders it, and the stored copy that answers ``--help``.

Typer and click alone cost more to import than a help page is allowed to take,
so ``exq ... --help`` prints a page stored in :mod:`exq.cli.help_pages`
instead (see :func:`exq.cli.main.stored_help`). This module renders the pages
through the real app and writes that module:

    python -m exq.cli.help_render        # or: make help-pages

A test compares the stored pages with :func:`render_pages`, so a changed
command, option or docstring fails it until the pages are written again.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# click wraps help at the terminal's width less 2, and at most 78 columns: the
# stored pages are those of any terminal at least this wide (or of no terminal).
PAGE_COLUMNS = 80

HEADER = '''\
"""exq's help pages as typer renders them at 80 columns: written by exq.cli.help_render.

Do not edit: run ``make help-pages`` after changing a command. Keys are command
paths ("" is the root, "exp run" a sub-command).
"""

PAGES: dict[str, str] = {
'''


def commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """(path, click command) of ``command`` ("") and of every command and group under it."""
    yield " ".join(path), command
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from commands(sub, (*path, name))


def root_command() -> Any:
    """The click command typer builds from the app, with every command registered."""
    import typer.main

    from exq.cli.app import add_dvc_flags, app
    from exq.cli.main import COMMAND_MODULES

    for module in COMMAND_MODULES:
        importlib.import_module(f"exq.cli.{module}")
    add_dvc_flags(app)
    return typer.main.get_command(app)


def render_pages() -> dict[str, str]:
    """Command path -> what ``exq <path> --help`` prints, through typer."""
    from exq.cli.app import app

    pages = {}
    with _terminal_columns(PAGE_COLUMNS):
        for path, _ in commands(root_command()):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                app(args=[*path.split(), "--help"], prog_name="exq", standalone_mode=False)
            pages[path] = out.getvalue()
    return pages


@contextlib.contextmanager
def _terminal_columns(columns: int) -> Iterator[None]:
    """click measures the terminal as shutil does, COLUMNS first: a terminal this wide."""
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)
    try:
        yield
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before


def group_paths() -> set[str]:
    """The command paths that are groups: named alone, they print their help and exit 2."""
    return {path for path, command in commands(root_command()) if hasattr(command, "commands")}


def module_text(pages: dict[str, str]) -> str:
    """The source of :mod:`exq.cli.help_pages` holding ``pages`` (as ruff formats it)."""
    lines = [
        f"    {json.dumps(key)}: {json.dumps(page, ensure_ascii=False)},\n"
        for key, page in sorted(pages.items())
    ]
    return HEADER + "".join(lines) + "}\n"


def main() -> None:
    target = Path(__file__).with_name("help_pages.py")
    target.write_text(module_text(render_pages()), encoding="utf-8")
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
