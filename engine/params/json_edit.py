"""Round-trip edits of JSON params files by splicing the edited value's text.

A small scanner records where each value and key sits (the standard ``json``
module does not say); the file's indentation unit, key separator and item
separator are read from the file so new text looks like its neighbours.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from exq.engine.errors import ParamsError
from exq.engine.params.spans import (
    Entry,
    Node,
    StructOp,
    detect_unit,
    flow_insert,
    flow_remove,
    indentation,
    is_multiline,
    locate,
    new_entry_indent,
    newline_of,
    splice,
)

_WS = re.compile(r"[ \t\r\n]*")
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class _Style:
    unit: str  # one indentation step ("" for one-line files)
    key_sep: str  # between a key and its value, e.g. ": "
    item_sep: str  # between items on one line, e.g. ", "
    nl: str


def load(text: str, file: str) -> Any:
    """The file's data; errors name the line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParamsError(
            f"{file}: invalid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from exc


def edit(text: str, file: str, op: StructOp) -> str:
    """Apply one checked edit to the JSON text."""
    root = _parse(text, file)
    style = _style(text, root)
    if op.kind == "insert":
        parent = _node_at(root, op.path[:-1], file)
        base = new_entry_indent(text, parent, style.unit)
        multiline = is_multiline(text, parent) or (not parent.entries and bool(style.unit))
        value = _render(op.value, base, multiline, style)
        entry = f"{json.dumps(str(op.path[-1]), ensure_ascii=False)}{style.key_sep}{value}"
        return flow_insert(text, parent, entry, unit=style.unit, sep=style.item_sep)
    chain = locate(root, op.path, file)
    parent, index = chain[-1]
    node = parent.entries[index].value
    if op.kind == "replace":
        multiline = node.kind != "scalar" and "\n" in text[node.start : node.end]
        new = _render(op.value, indentation(text, node.start), multiline, style)
        return splice(text, node.start, node.end, new)
    if len(parent.entries) == 1:
        return splice(text, parent.start, parent.end, "{}" if parent.kind == "map" else "[]")
    return flow_remove(text, parent, index)


def _node_at(root: Node, path: tuple[Any, ...], file: str) -> Node:
    if not path:
        return root
    parent, index = locate(root, path, file)[-1]
    return parent.entries[index].value


def _render(value: Any, base: str, multiline: bool, style: _Style) -> str:
    if multiline and style.unit and isinstance(value, (dict, list)) and value:
        text = json.dumps(
            value, indent=style.unit, separators=(",", style.key_sep), ensure_ascii=False
        )
        return text.replace("\n", style.nl + base)
    return json.dumps(value, separators=(style.item_sep, style.key_sep), ensure_ascii=False)


def _style(text: str, root: Node) -> _Style:
    key_sep, item_sep = ": ", ", "
    found_key = found_item = False
    stack = [root]
    while stack and not (found_key and found_item):
        node = stack.pop(0)
        if node.kind == "map" and node.entries and not found_key:
            first = node.entries[0]
            key_sep, found_key = text[first.key_end : first.value.start], True
        if len(node.entries) >= 2 and not found_item and not is_multiline(text, node):
            item_sep, found_item = text[node.entries[0].value.end : node.entries[1].start], True
        stack.extend(entry.value for entry in node.entries)
    return _Style(detect_unit(text, root), key_sep, item_sep, newline_of(text))


# --------------------------------------------------------------------------- scanner


def _parse(text: str, file: str) -> Node:
    try:
        node, _ = _value(text, _skip(text, 0))
    except (ValueError, IndexError) as exc:  # load() already accepted the text
        raise ParamsError(f"{file}: cannot locate values in the JSON text ({exc})") from exc
    return node


def _skip(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos


def _value(text: str, pos: int) -> tuple[Node, int]:
    opener = text[pos]
    if opener not in "{[":
        _, end = _DECODER.raw_decode(text, pos)
        return Node("scalar", pos, end, style='"' if opener == '"' else ""), end
    node = Node("map" if opener == "{" else "seq", pos, -1)
    closer = "}" if opener == "{" else "]"
    pos = _skip(text, pos + 1)
    while text[pos] != closer:
        start = pos
        key: Any = len(node.entries)
        key_end = -1
        if opener == "{":
            key, key_end = _DECODER.raw_decode(text, pos)
            pos = _skip(text, key_end)
            if text[pos] != ":":
                raise ValueError(f"expected ':' at offset {pos}")
            pos = _skip(text, pos + 1)
        child, pos = _value(text, pos)
        node.entries.append(Entry(key, start, child, key_end))
        pos = _skip(text, pos)
        if text[pos] == ",":
            pos = _skip(text, pos + 1)
    node.end = pos + 1
    return node, pos + 1
