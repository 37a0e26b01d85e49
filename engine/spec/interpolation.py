"""``${...}`` interpolation over a context of variables, as DVC does it.

Pure logic, no I/O. The context is a tree of ``Node``s: each value remembers
where it was defined (a params file, ``vars[0]``, ...) and its dotted path
there, so that merging can name both sides of a clash and interpolation can
record which params-file values a stage used.

Rules (matching DVC 3):

* ``${a.b}``, ``${a[0]}``, ``${a.0}``, ``${ a }``; ``\\${...}`` is a literal.
* A string that is exactly one ``${...}`` keeps the value's type.
* Embedded in text: booleans render ``true``/``false``, None ``None``;
  a list or dict is refused ("Cannot interpolate data of type 'list'"),
  except a dict in ``cmd``, which is unpacked into ``--key value`` flags.
* Only scalars and lists that come from files are tracked; dicts are not.

Errors are raised as ``InterpolationError`` carrying only the reason; the
caller (templating) knows the file and location and turns it into a
``TemplateError``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from exq.engine.spec.paramfiles import flatten

KEYCRE = re.compile(r"(?<!\\)\$\{(?P<inner>.*?)\}")
ESCAPED_OPEN = "\\${"


class InterpolationError(Exception):
    """Why a value could not be resolved; always re-raised as TemplateError."""


@dataclass(frozen=True)
class ParsingOptions:
    """DVC's ``parsing`` config: how dict unpacking renders bools and lists."""

    bool_flags: Literal["store_true", "boolean_optional"] = "store_true"
    list_flags: Literal["nargs", "append"] = "nargs"


DEFAULT_OPTIONS = ParsingOptions()


@dataclass(eq=False)
class Node:
    """A value in the context: scalar, ``dict[str, Node]`` or ``list[Node]``."""

    value: Any
    source: str | None = None  # 'params.yaml', 'vars[0]', 'train.vars[1]', None
    path: str = ""  # dotted path of the value inside its source
    tracked: bool = False  # defined in a file: its use is a params dependency

    @property
    def is_container(self) -> bool:
        return isinstance(self.value, (dict, list))


def make_node(
    data: Any, *, source: str | None = None, path: str = "", tracked: bool = False
) -> Node:
    """Wrap plain data (which may already hold Nodes) into a Node tree."""
    if isinstance(data, Node):
        return data
    if isinstance(data, dict):
        children = {
            key: make_node(val, source=source, path=_join(path, key), tracked=tracked)
            for key, val in data.items()
            if isinstance(key, str)  # DVC ignores non-string keys in the context
        }
        return Node(children, source, path, tracked)
    if isinstance(data, (list, tuple)):
        items = [
            make_node(val, source=source, path=_join(path, str(idx)), tracked=tracked)
            for idx, val in enumerate(data)
        ]
        return Node(items, source, path, tracked)
    return Node(data, source, path, tracked)


def unwrap(data: Any) -> Any:
    """Plain data from a Node tree (or from plain containers holding Nodes)."""
    if isinstance(data, Node):
        data = data.value
    if isinstance(data, dict):
        return {key: unwrap(val) for key, val in data.items()}
    if isinstance(data, list):
        return [unwrap(val) for val in data]
    return data


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class Tracker:
    """Records the file-defined values that interpolation used, per file."""

    def __init__(self) -> None:
        self.used: dict[str, dict[str, Any]] = {}

    def record(self, node: Node) -> None:
        if node.tracked and node.source and not isinstance(node.value, dict):
            self.used.setdefault(node.source, {}).setdefault(node.path, unwrap(node))


class Context:
    """Top-level variables, the files already imported, and reserved names."""

    def __init__(
        self,
        data: dict[str, Node] | None = None,
        imports: dict[str, list[str] | None] | None = None,
        reserved: tuple[str, ...] = (),
    ) -> None:
        self.data: dict[str, Node] = data if data is not None else {}
        # repo-relative file -> None (loaded whole) or the top-level keys loaded
        self.imports: dict[str, list[str] | None] = imports if imports is not None else {}
        self.reserved = reserved

    def child(self, extra: dict[str, Node] | None = None, *, reserve: bool = False) -> Context:
        """A copy that can be merged into without touching this context."""
        data = dict(self.data)
        data.update(extra or {})
        imports = {
            path: None if keys is None else list(keys) for path, keys in self.imports.items()
        }
        reserved = self.reserved
        if reserve and extra:
            reserved = reserved + tuple(key for key in extra if key not in reserved)
        return Context(data, imports, reserved)

    def merge(self, update: Node, *, origin: str | None = None) -> None:
        """Merge a mapping Node in; nested mappings merge, other clashes fail."""
        assert isinstance(update.value, dict)
        hit = [key for key in self.reserved if key in update.value]
        if hit:
            noun = "key" if len(hit) == 1 else "keys"
            where = f" in '{origin}'" if origin else ""
            raise InterpolationError(
                f"attempted to modify reserved {noun} {_human_join(hit)}{where}"
            )
        _merge_into(self.data, update.value)

    def select(self, parts: list[str]) -> Node:
        """The Node at the parsed key path; InterpolationError if absent."""
        current: Any = self.data
        node: Node | None = None
        for raw in parts:
            part = raw.strip()
            try:
                if isinstance(current, dict):
                    node = current[part]
                elif isinstance(current, list):
                    node = current[int(part)]
                else:
                    raise LookupError(part)
            except (LookupError, ValueError):
                raise InterpolationError(f"Could not find '{'.'.join(parts)}'") from None
            current = node.value
        assert node is not None
        return node


def _merge_into(into: dict[str, Node], update: dict[str, Node]) -> None:
    for key, new in update.items():
        old = into.get(key)
        if old is None:
            into[key] = new
        elif isinstance(old.value, dict) and isinstance(new.value, dict):
            # copy on write: contexts share sub-trees with their parent
            copy = Node(dict(old.value), old.source, old.path, old.tracked)
            into[key] = copy
            _merge_into(copy.value, new.value)
        else:
            raise InterpolationError(
                f"cannot redefine '{new.path or key}' from '{new.source}'"
                f" as it already exists in '{old.source}'"
            )


def _human_join(words: list[str]) -> str:
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


def parse_expression(inner: str) -> list[str]:
    """Split ``a.b[0].c`` into ``['a', 'b', '0', 'c']``; refuse malformed keys."""
    parts: list[str] = []
    pos = 0

    def word(start: int) -> int:
        end = start
        while end < len(inner) and inner[end] not in ".[]":
            end += 1
        if end == start:
            found = f"'{inner[start]}'" if start < len(inner) else "the end"
            raise InterpolationError(
                f"Invalid interpolation '${{{inner}}}': expected a key at character"
                f" {start + 1}, found {found}"
            )
        parts.append(inner[start:end])
        return end

    pos = word(0)
    while pos < len(inner):
        char = inner[pos]
        if char == ".":
            pos = word(pos + 1)
        elif char == "[":
            pos = word(pos + 1)
            if pos >= len(inner) or inner[pos] != "]":
                raise InterpolationError(
                    f"Invalid interpolation '${{{inner}}}': missing ']' at character {pos + 1}"
                )
            pos += 1
            # like DVC's grammar: blanks after a closing bracket are skipped
            while pos < len(inner) and inner[pos] in " \t\r\n":
                pos += 1
        else:
            raise InterpolationError(
                f"Invalid interpolation '${{{inner}}}': unexpected '{char}' at character {pos + 1}"
            )
    return parts


def is_interpolated(value: Any) -> bool:
    """Whether ``value`` is a string holding at least one ``${...}``."""
    return isinstance(value, str) and KEYCRE.search(value) is not None


def contains_interpolation(data: Any) -> bool:
    """Whether any string (key or value) inside ``data`` holds ``${...}``."""
    if isinstance(data, dict):
        return any(contains_interpolation(k) or contains_interpolation(v) for k, v in data.items())
    if isinstance(data, list):
        return any(contains_interpolation(item) for item in data)
    return is_interpolated(data)


@dataclass
class Resolver:
    """Resolves templates against one context, recording tracked values."""

    context: Context
    tracker: Tracker | None = None
    options: ParsingOptions = DEFAULT_OPTIONS

    def resolve(self, data: Any, *, field: str | None = None, keep_nodes: bool = False) -> Any:
        """Interpolate every string in ``data`` (mapping keys included).

        ``field`` is the stage key being resolved (``cmd``, ``outs``...): it
        decides what may be embedded. With ``keep_nodes`` an exact
        ``${...}`` yields the Node itself, keeping its origin (foreach data).
        """
        if isinstance(data, dict):
            resolved: dict[Any, Any] = {}
            for key, val in data.items():
                new_key = self.resolve(key, field=field)
                if isinstance(new_key, (dict, list)):
                    raise InterpolationError(
                        f"Cannot use data of type '{type(new_key).__name__}' as a key"
                    )
                resolved[new_key] = self.resolve(val, field=field, keep_nodes=keep_nodes)
            return resolved
        if isinstance(data, list):
            return [self.resolve(item, field=field, keep_nodes=keep_nodes) for item in data]
        if isinstance(data, str):
            return self.resolve_str(data, field=field, keep_nodes=keep_nodes)
        return data

    def resolve_str(self, text: str, *, field: str | None = None, keep_nodes: bool = False) -> Any:
        """Resolve one string: exact ``${x}`` keeps type, otherwise render text."""
        matches = list(KEYCRE.finditer(text))
        if len(matches) == 1 and matches[0].group(0) == text:
            node = self._lookup(matches[0]["inner"])
            _check_embeddable(node.value, field)
            return node if keep_nodes else unwrap(node)
        pieces: list[str] = []
        index = 0
        for match in matches:
            node = self._lookup(match["inner"])
            _check_embeddable(node.value, field)
            pieces.append(text[index : match.start()])
            pieces.append(to_str(unwrap(node), self.options))
            index = match.end()
        pieces.append(text[index:])
        return "".join(pieces).replace(ESCAPED_OPEN, "${")

    def _lookup(self, inner: str) -> Node:
        node = self.context.select(parse_expression(inner))
        if self.tracker is not None:
            self.tracker.record(node)
        return node


def _check_embeddable(value: Any, field: str | None) -> None:
    if not isinstance(value, (dict, list)):
        return
    if field is None or "foreach" in field:
        return
    if isinstance(value, dict) and field == "cmd":
        return
    kind = "dict" if isinstance(value, dict) else "list"
    raise InterpolationError(f"Cannot interpolate data of type '{kind}'")


def to_str(value: Any, options: ParsingOptions = DEFAULT_OPTIONS) -> str:
    """Render a value inside text: ``true``/``false``, dicts as CLI flags."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return unpack_dict(value, options)
    return str(value)


def unpack_dict(data: dict[str, Any], options: ParsingOptions = DEFAULT_OPTIONS) -> str:
    """DVC's dictionary unpacking: ``{a: {b: 1}, f: true}`` -> ``--a.b 1 --f``."""
    parts: list[str] = []
    for key, value in flatten(data).items():
        if isinstance(value, bool):
            if value:
                parts.append(f"--{key}")
            elif options.bool_flags == "boolean_optional":
                parts.append(f"--no-{key}")
        elif isinstance(value, str):
            parts.append(f"--{key} {shlex.quote(value)}")
        elif isinstance(value, Iterable) and not isinstance(value, (bytes, dict)):
            for idx, item in enumerate(value):
                if isinstance(item, str):
                    item = shlex.quote(item)
                elif isinstance(item, (list, dict)):
                    raise InterpolationError(f"Cannot interpolate nested iterable in '{key}'")
                if idx == 0 or options.list_flags == "append":
                    parts.append(f"--{key} {item}")
                else:
                    parts.append(f"{item}")
        else:
            parts.append(f"--{key} {value}")
    return " ".join(parts)


def name_fragment(value: Any) -> str:
    """How a foreach/matrix value appears in a generated stage name.

    Literal values render like text (``true``); values that came through
    ``${...}`` use Python's ``str`` (``True``), as DVC names them.
    """
    if isinstance(value, Node):
        return str(value.value)
    return to_str(value)
