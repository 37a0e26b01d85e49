"""Round-trip edits of YAML params files by splicing only the edited value's text.

PyYAML's composer gives every node its start and end offset; a change replaces
exactly that span, an added key becomes new lines after the last line of its
mapping, a deleted key loses exactly its lines. Comments, quoting, blank lines,
flow lists and indentation elsewhere are untouched (a YAML dumper, even
ruamel's round-trip mode, re-flows some of them).

Values are read as exq and DVC read them (YAML 1.2, yaml12). New
text is written so that YAML 1.1 (PyYAML) and YAML 1.2 read the same value:
strings that either could take for another type are quoted, floats always
carry a '.' (``1.0e-05``).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import yaml

from exq.engine import yaml12
from exq.engine.errors import ParamsError
from exq.engine.params.spans import (
    Entry,
    Node,
    StructOp,
    find_entry,
    flow_insert,
    flow_remove,
    line_end,
    line_start,
    locate,
    newline_of,
    splice,
)

_PLAIN = re.compile(r"[^\W\d/][\w./+=^$()@%~-]*(?: [\w./+=^$()@%~-]+)*|/[\w./+=^$()@%~-]*")
_AMBIGUOUS = re.compile(r"(?i)y|n|yes|no|on|off|true|false|null|inf|nan|[-+]?\.?(?:inf|nan)")


@dataclass(frozen=True)
class _Style:
    map_step: int = 2  # columns from a key to the keys of its nested mapping
    seq_offset: int = 2  # columns from a key to the '-' of its nested sequence


def load(text: str, file: str) -> Any:
    """The file's data as exq and DVC read it (YAML 1.2, as ruamel reads it); empty is ``{}``."""
    try:
        data = yaml12.load(text)
    except yaml12.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParamsError(f"{file}: invalid YAML: {problem}{where}") from exc
    return {} if data is None else data


def edit(text: str, file: str, op: StructOp) -> str:
    """Apply one checked edit to the YAML text."""
    root = _tree(text, file)
    style = _style(root, op.path[:-1])
    if op.kind == "insert":
        return _insert(text, root, op.path, op.value, style, file)
    if root is None:
        raise ParamsError(f"{file}: '{'.'.join(map(str, op.path))}' not found (the file is empty)")
    chain = locate(root, op.path, file)
    parent, index = chain[-1]
    if op.kind == "replace":
        return _replace(text, parent.entries[index], op.value, style)
    return _remove(text, chain, style)


# --------------------------------------------------------------------------- tree


def _tree(text: str, file: str) -> Node | None:
    try:
        composed = yaml.compose(text, Loader=_composer(text))
    except yaml.YAMLError as exc:
        raise ParamsError(f"{file}: invalid YAML: {_yaml_reason(exc)}") from exc
    if composed is None:
        return None
    counts: Counter[int] = Counter()
    _count(composed, counts)
    return _build(composed, text, counts)


def _composer(text: str) -> type[Any]:
    """libyaml's parser where its marks are offsets into ``text``: for ASCII text,
    where bytes are characters; PyYAML's pure one (ten times slower, which a
    params file of many thousand keys feels) for the rest."""
    fast = getattr(yaml, "CSafeLoader", None)
    return fast if fast is not None and text.isascii() else yaml.SafeLoader


def _count(node: yaml.Node, counts: Counter[int]) -> None:
    counts[id(node)] += 1
    if counts[id(node)] > 1:
        return  # an alias: its children were counted at the anchor
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            _count(key, counts)
            _count(value, counts)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _count(item, counts)


def _build(node: yaml.Node, text: str, counts: Counter[int]) -> Node:
    start, end = node.start_mark.index, node.end_mark.index
    shared = counts[id(node)] > 1
    if isinstance(node, yaml.ScalarNode):
        style = node.style or ""
        if style in ("|", ">"):
            while end > start and text[end - 1] in " \t\r\n":
                end -= 1
        empty = not style and node.value == "" and start == end
        return Node(
            "scalar",
            start,
            end,
            style=style,
            shared=shared,
            empty=empty,
            column=node.start_mark.column,
        )
    kind = "map" if isinstance(node, yaml.MappingNode) else "seq"
    out = Node(
        kind,
        start,
        end,
        flow=bool(getattr(node, "flow_style", False)),
        shared=shared,
        column=node.start_mark.column,
    )
    if kind == "map":
        for key, value in node.value:
            key_text = key.value if isinstance(key, yaml.ScalarNode) else None
            colon = _indicator_after(text, key.end_mark.index, ":")
            out.entries.append(
                Entry(
                    key_text,
                    key.start_mark.index,
                    _build(value, text, counts),
                    key.end_mark.index,
                    colon,
                )
            )
    else:
        for i, item in enumerate(node.value):
            child = _build(item, text, counts)
            dash = -1 if out.flow else _dash_before(text, item.start_mark.index)
            out.entries.append(Entry(i, child.start if out.flow else dash, child, indicator=dash))
    if not out.flow and out.entries:
        out.end = out.entries[-1].value.end  # a block ends where its last value's text ends
    return out


def _indicator_after(text: str, index: int, char: str) -> int:
    match = re.compile(r"[ \t]*" + re.escape(char)).match(text, index)
    return match.end() - 1 if match else -1


def _dash_before(text: str, index: int) -> int:
    i = index - 1
    while i >= 0 and text[i] in " \t\r\n":
        i -= 1
    return i if i >= 0 and text[i] == "-" else text.rfind("-", 0, index)


def _style(root: Node | None, path: tuple[Any, ...]) -> _Style:
    """Indentation for new block text: as near the edit as the file shows it, else as anywhere."""
    containers = _containers(root, path)
    local = _found_style(containers[-1:]) if containers else (0, 0)
    whole = _found_style(containers[:1])
    map_step = local[0] or _chain_step(containers) or whole[0] or 2
    seq_offset = local[1] or whole[1]
    return _Style(map_step, 0 if seq_offset == -1 else seq_offset or map_step)


def _containers(root: Node | None, path: tuple[Any, ...]) -> list[Node]:
    """The nodes from the root down along ``path`` as far as it exists."""
    chain, node = [], root
    while node is not None:
        chain.append(node)
        index = find_entry(node, path[len(chain) - 1]) if len(chain) <= len(path) else None
        node = node.entries[index].value if index is not None else None
    return chain


def _found_style(start: list[Node]) -> tuple[int, int]:
    """(map step, sequence offset; -1 for zero) of the first nested blocks under ``start``."""
    map_step = seq_offset = 0
    queue = deque(start)  # breadth first; a list's pop(0) made this quadratic in the keys
    while queue and not (map_step and seq_offset):
        node = queue.popleft()
        for entry in node.entries:
            child = entry.value
            if node.kind == "map" and not node.flow and not child.flow and child.entries:
                step = child.column - node.column
                if child.kind == "map" and step > 0 and not map_step:
                    map_step = step
                if child.kind == "seq" and step >= 0 and not seq_offset:
                    seq_offset = step or -1
            queue.append(child)
    return map_step, seq_offset


def _chain_step(containers: list[Node]) -> int:
    for outer, inner in zip(containers[-2::-1], containers[:0:-1], strict=True):
        blocks = outer.kind == inner.kind == "map" and not outer.flow and not inner.flow
        if blocks and inner.column > outer.column:
            return inner.column - outer.column
    return 0


# --------------------------------------------------------------------------- edits


def _replace(text: str, entry: Entry, value: Any, style: _Style) -> str:
    node = entry.value
    if node.kind == "scalar" or node.flow:
        quote = node.style if node.style in ("'", '"') else ""
        inline = render_inline(value, quote)
        return splice(text, node.start, node.end, (" " + inline) if node.empty else inline)
    end = line_end(text, node.end)
    if _is_block(value):
        nl = newline_of(text)
        column = _block_column(text, entry, value, style)
        lines = _block_lines(value, style)
        if text[line_start(text, node.start) : node.start].strip():
            # the block starts on the line of its '-': its first line stays there
            return splice(text, node.start, end, (nl + " " * column).join(lines))
        body = nl.join(" " * column + line for line in lines)
        return splice(text, line_start(text, node.start), end, body)
    inline = render_inline(value)
    if entry.indicator >= 0 and "\n" in text[entry.indicator : node.start]:
        # the block began on the line after 'key:'; keep that line's comment
        rest = text[entry.indicator + 1 : line_end(text, entry.indicator)]
        comment = rest if rest.strip().startswith("#") else ""
        return splice(text, entry.indicator + 1, end, f" {inline}{comment}")
    return splice(text, node.start, end, inline)


def _block_column(text: str, entry: Entry, value: Any, style: _Style) -> int:
    """Column for a block that replaces a block: the old one's, unless the kind changes."""
    node = entry.value
    same_kind = isinstance(value, dict) == (node.kind == "map")
    if same_kind or entry.indicator < 0 or "\n" not in text[entry.indicator : node.start]:
        return node.column  # also when the block starts on the line of its '-'
    key_column = entry.start - line_start(text, entry.start)
    return key_column + (style.map_step if isinstance(value, dict) else style.seq_offset)


def _insert(
    text: str, root: Node | None, path: tuple[Any, ...], value: Any, style: _Style, file: str
) -> str:
    nl = newline_of(text)
    key = path[-1]
    lines = _block_lines({key: value}, style)
    if root is None:
        sep = "" if not text or text.endswith("\n") else nl
        return text + sep + nl.join(lines) + nl
    if len(path) > 1:
        chain = locate(root, path[:-1], file)
        parent_node, index = chain[-1]
        parent = parent_node.entries[index].value
    else:
        parent = root
    if parent.kind != "map":
        raise ParamsError(f"{file}: '{'.'.join(map(str, path[:-1]))}' is not a mapping")
    if parent.flow:
        return flow_insert(text, parent, f"{_key(key)}: {render_inline(value)}", unit="", sep=", ")
    pos = line_end(text, parent.end)
    pad = " " * parent.column
    return splice(text, pos, pos, "".join(nl + pad + line for line in lines))


def _remove(text: str, chain: list[tuple[Node, int]], style: _Style) -> str:
    parent, index = chain[-1]
    entry = parent.entries[index]
    if len(parent.entries) == 1:
        empty: Any = {} if parent.kind == "map" else []
        if len(chain) == 1:
            return splice(text, parent.start, line_end(text, parent.end), "{}")
        grand, grand_index = chain[-2]
        return _replace(text, grand.entries[grand_index], empty, style)
    if parent.flow:
        return flow_remove(text, parent, index)
    first = line_start(text, entry.start)
    if text[first : entry.start].strip():
        # the first key of a mapping inside '- ': the next key moves up after the dash
        return splice(text, entry.start, parent.entries[index + 1].start, "")
    stop = text.find("\n", entry.value.end)
    if stop < 0:  # last line, no line break: drop the one before it instead
        first = max(0, first - len(newline_of(text)))
        stop = len(text)
    else:
        stop += 1
    return splice(text, first, stop, "")


# --------------------------------------------------------------------------- rendering


def _is_block(value: Any) -> bool:
    return isinstance(value, (dict, list)) and bool(value)


def _block_lines(value: Any, style: _Style) -> list[str]:
    """Block-style lines for a non-empty dict or list, relative to its own column."""
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if _is_block(item):
                pad = " " * (style.map_step if isinstance(item, dict) else style.seq_offset)
                lines.append(f"{_key(key)}:")
                lines.extend(pad + line for line in _block_lines(item, style))
            else:
                lines.append(f"{_key(key)}: {render_inline(item)}")
        return lines
    for item in value:
        if isinstance(item, dict) and item:
            sub = _block_lines(item, style)
            lines.append("- " + sub[0])
            lines.extend("  " + line for line in sub[1:])
        else:
            lines.append("- " + render_inline(item))
    return lines


def _key(key: Any) -> str:
    return render_scalar(str(key))


def render_inline(value: Any, quote: str = "") -> str:
    """One-line YAML for ``value``; strings keep ``quote`` style when given."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)}: {render_inline(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(render_inline(v) for v in value) + "]"
    return render_scalar(value, quote)


def render_scalar(value: Any, quote: str = "") -> str:
    """A scalar that YAML 1.1 and 1.2 loaders both read back as ``value``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    text = str(value)
    if not quote and _PLAIN.fullmatch(text) and not _AMBIGUOUS.fullmatch(text):
        return text
    if quote != '"' and text.isprintable():
        return "'" + text.replace("'", "''") + "'"
    return json.dumps(text, ensure_ascii=False)


def _float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    if "e" in text and "." not in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"  # YAML 1.1 needs the '.' to see a float
    return text


def _yaml_reason(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} (line {mark.line + 1})" if mark is not None else str(problem)
