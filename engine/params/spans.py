"""Text spans of params values, shared by the YAML, JSON and Python editors.

Each editor parses its file into a tree of :class:`Node` objects that know
where each value (and each mapping key) sits in the text; an edit then splices
only that span, so every other byte of the file stays as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from exq.engine.errors import ParamsError


@dataclass(frozen=True)
class StructOp:
    """A checked edit, given to a format editor with the file's real keys.

    ``replace``/``remove``: ``path`` leads to the value. ``insert``: ``path`` is
    the parent mapping's path plus the new key; ``value`` may be a nested dict
    when intermediate keys were missing.
    """

    kind: Literal["replace", "insert", "remove"]
    path: tuple[Any, ...]
    value: Any = None


@dataclass
class Node:
    """A value in the text: ``kind`` is "map", "seq" or "scalar"; span is [start, end)."""

    kind: str
    start: int
    end: int
    entries: list[Entry] = field(default_factory=list)
    flow: bool = True  # False only for YAML block collections
    style: str = ""  # scalar quote char, YAML "|"/">", Python "tuple"/"class"/"module"
    shared: bool = False  # YAML: an anchored node that an alias also uses
    empty: bool = False  # YAML: nothing written after "key:" (null)
    column: int = 0
    extra: Any = None  # format-specific detail (e.g. a Python AST node)


@dataclass
class Entry:
    """One mapping entry or sequence item; ``start`` is where its key (or item) begins."""

    key: Any
    start: int
    value: Node
    key_end: int = -1
    indicator: int = -1  # YAML: index of the ':' or '-' that introduces the value
    extra: Any = None  # Python: the assignment statement


def splice(text: str, start: int, end: int, new: str) -> str:
    """``text`` with [start, end) replaced by ``new``."""
    return text[:start] + new + text[end:]


def newline_of(text: str) -> str:
    """The file's line ending: CRLF if it uses any, else LF."""
    return "\r\n" if "\r\n" in text else "\n"


def line_start(text: str, index: int) -> int:
    """Index of the first character of the line holding ``index``."""
    return text.rfind("\n", 0, index) + 1


def line_end(text: str, index: int) -> int:
    """Index of the line break (or end of text) ending the line holding ``index``."""
    end = text.find("\n", index)
    if end < 0:
        return len(text)
    return end - 1 if end > index and text[end - 1] == "\r" else end


def indentation(text: str, index: int) -> str:
    """The leading whitespace of the line holding ``index``."""
    start = line_start(text, index)
    match = re.match(r"[ \t]*", text[start:])
    return match.group(0) if match else ""


def same_key(entry_key: Any, key: Any) -> bool:
    """Keys match by their text, so ``1`` finds ``1:`` and ``"1":`` alike."""
    return str(entry_key) == str(key)


def locate(root: Node, path: tuple[Any, ...], file: str) -> list[tuple[Node, int]]:
    """The (container, entry index) pairs that lead from ``root`` along ``path``."""
    chain: list[tuple[Node, int]] = []
    node = root
    for depth, key in enumerate(path):
        index = find_entry(node, key)
        if index is None:
            dotted = ".".join(str(k) for k in path[: depth + 1])
            raise ParamsError(
                f"{file}: cannot edit '{dotted}' in place "
                "(it is not written in this file's text, e.g. it comes from a YAML merge key)"
            )
        if node.shared:
            raise ParamsError(
                f"{file}: cannot edit under a YAML anchor that is used elsewhere ('{key}')"
            )
        chain.append((node, index))
        node = node.entries[index].value
    if node.shared:
        raise ParamsError(
            f"{file}: cannot edit a YAML anchor that is used elsewhere ('{path[-1]}')"
        )
    return chain


def find_entry(node: Node, key: Any) -> int | None:
    """Index of the entry for ``key`` (the last one if the key repeats)."""
    if node.kind == "seq":
        return key if isinstance(key, int) and 0 <= key < len(node.entries) else None
    if node.kind != "map":
        return None
    for index in range(len(node.entries) - 1, -1, -1):
        if same_key(node.entries[index].key, key):
            return index
    return None


def flow_remove(text: str, node: Node, index: int) -> str:
    """Remove entry ``index`` of a bracketed container with its separator.

    The caller handles a container's only entry (it becomes empty).
    """
    entries = node.entries
    if index + 1 < len(entries):
        return splice(text, entries[index].start, entries[index + 1].start, "")
    return splice(text, entries[index - 1].value.end, entries[index].value.end, "")


def is_multiline(text: str, node: Node) -> bool:
    """A bracketed container whose first entry starts on a later line than its bracket."""
    return bool(node.entries) and "\n" in text[node.start : node.entries[0].start]


def new_entry_indent(text: str, node: Node, unit: str) -> str:
    """Indentation for a new entry of a multi-line bracketed container."""
    if node.entries:
        return indentation(text, node.entries[-1].start)
    return indentation(text, node.start) + unit


def flow_insert(text: str, node: Node, entry_text: str, *, unit: str, sep: str) -> str:
    """Add ``entry_text`` as the last entry of a bracketed container.

    Multi-line containers get the new entry on its own line (keeping a
    trailing comma style); one-line containers get ``sep`` before it; an empty
    container opens onto new lines when the file is indented (``unit``).
    """
    nl = newline_of(text)
    if not node.entries:
        if not unit:
            return splice(text, node.start + 1, node.end - 1, entry_text)
        base = indentation(text, node.start)
        return splice(text, node.start + 1, node.end - 1, f"{nl}{base}{unit}{entry_text}{nl}{base}")
    after = node.entries[-1].value.end
    if is_multiline(text, node):
        indent = new_entry_indent(text, node, unit)
        trailing = re.match(r"[ \t]*,", text[after : node.end - 1])
        if trailing:
            pos = after + trailing.end()
            return splice(text, pos, pos, f"{nl}{indent}{entry_text},")
        return splice(text, after, after, f",{nl}{indent}{entry_text}")
    if len(node.entries) >= 2:
        sep = text[node.entries[-2].value.end : node.entries[-1].start]
    return splice(text, after, after, f"{sep}{entry_text}")


def detect_unit(text: str, root: Node) -> str:
    """The indentation step of the first multi-line container, or "" if none."""
    stack = [root]
    while stack:
        node = stack.pop(0)
        if node.kind in ("map", "seq") and is_multiline(text, node):
            outer = indentation(text, node.start)
            inner = indentation(text, node.entries[0].start)
            if inner.startswith(outer) and len(inner) > len(outer):
                return inner[len(outer) :]
        stack.extend(entry.value for entry in node.entries)
    return ""
