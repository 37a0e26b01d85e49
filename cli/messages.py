"""How an error reaches the terminal: one line, whatever the user's input held;
and durations as the CLI writes them.

Every ``ERROR:`` line of the CLI goes through :func:`error_line` (typer's
commands, the fast enqueue path, usage errors). Messages often echo user input
(a ``-S`` value, a target, a run name); a newline in it would split the line and
an ESC sequence would move the cursor or recolour the terminal, so control
characters are shown as escapes. Standard library only: the fast path uses it.
"""

from __future__ import annotations


def error_line(message: str) -> str:
    return f"ERROR: {one_line(message)}"


def one_line(text: str) -> str:
    """``text`` with line breaks, escape sequences and other unprintable
    characters written as Python escapes (``\\n``, ``\\x1b``)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def format_seconds(seconds: float) -> str:
    """``0.4s``, ``12s``, ``3m05s``, ``2h03m``."""
    if seconds < 10:
        return f"{max(seconds, 0):.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
