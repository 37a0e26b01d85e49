"""Round-trip edits of TOML params files through tomlkit, which keeps formatting.

tomlkit keeps comments, whitespace and a changed value's trailing comment. Two
habits of its own are corrected here: a new key goes right after the last
key/value line of its table (tomlkit would put it after trailing comments and
blank lines, which visually belong to the next table), and new mappings are
written as inline tables beside it rather than as a ``[table]`` at the end.
"""

from __future__ import annotations

import tomllib
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.items import AoT, InlineTable, Item, String, StringType, Table

from exq.engine.errors import ParamsError
from exq.engine.params.spans import StructOp


def load(text: str, file: str) -> dict[str, Any]:
    """The file's data as tomllib reads it."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ParamsError(f"{file}: invalid TOML: {exc}") from exc


def edit(text: str, file: str, op: StructOp) -> str:
    """Apply one checked edit to the TOML text."""
    key = ".".join(map(str, op.path))
    if op.kind != "remove" and _has_null(op.value):
        raise ParamsError(f"{file}: cannot set '{key}' to null: TOML has no null value")
    try:
        doc = tomlkit.parse(text)
        parent: Any = doc
        for part in op.path[:-1]:
            parent = parent[part]
        last = op.path[-1]
        if op.kind == "remove":
            del parent[last]
            _keep_empty_table(parent)
        elif op.kind == "replace":
            _check_replaceable(parent, parent[last], op.value, file, key)
            parent[last] = _replacement(parent[last], op.value)
        else:
            _insert(parent, str(last), _inline(op.value))
        return tomlkit.dumps(doc)
    except (
        tomlkit.exceptions.TOMLKitError,
        LookupError,
        TypeError,
        ValueError,
        AttributeError,
    ) as exc:
        raise ParamsError(f"{file}: cannot edit '{key}' in this TOML layout ({exc})") from exc


def _check_replaceable(parent: Any, old: Any, value: Any, file: str, key: str) -> None:
    """A [table] or [[array of tables]] can only become another table (or list of them)."""
    is_table = isinstance(old, Table) and not isinstance(old, InlineTable)
    if (is_table or isinstance(parent, AoT)) and not isinstance(value, dict):
        raise ParamsError(f"{file}: '{key}' is a TOML table; set a mapping or the keys inside it")
    if isinstance(old, AoT) and not (
        isinstance(value, list) and all(isinstance(v, dict) for v in value)
    ):
        raise ParamsError(f"{file}: '{key}' is a TOML array of tables; set a list of mappings")


def _keep_empty_table(table: Any) -> None:
    """An implicit table (only ``[a.b]`` under ``a``) emptied by a delete gets a ``[a]`` header.

    Without it ``a`` would vanish from the file instead of staying an empty mapping.
    """
    emptied = isinstance(table, Table) and table.is_super_table() and len(table) == 0
    if emptied and hasattr(table, "_is_super_table"):  # private, no public setter
        table._is_super_table = False


def _has_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False


def _replacement(old: Any, value: Any) -> Any:
    if isinstance(value, dict) and isinstance(old, Table) and not isinstance(old, InlineTable):
        return value  # tomlkit turns a plain dict into a [table] again
    literal = isinstance(old, String) and old.type == StringType.SLL
    if literal and isinstance(value, str) and "'" not in value and "\n" not in value:
        return tomlkit.string(value, literal=True)  # keep 'literal' quoting
    return _inline(value)


def _inline(value: Any) -> Any:
    if isinstance(value, dict):
        table = tomlkit.inline_table()
        for key, item in value.items():
            table[key] = _inline(item)
        return table
    if isinstance(value, list):
        array = tomlkit.array()
        for item in value:
            array.append(_inline(item))
        return array
    return value


def _insert(parent: Any, key: str, item: Any) -> None:
    container = parent if isinstance(parent, Container) else getattr(parent, "value", None)
    if isinstance(parent, InlineTable) or not isinstance(container, Container):
        parent[key] = item
        return
    last = None
    for body_key, body_item in container.body:
        if (
            body_key is not None
            and not isinstance(body_item, (Table, AoT))
            and isinstance(body_item, Item)
        ):
            last = body_key
    insert_after = getattr(
        container, "_insert_after", None
    )  # private, but stable since tomlkit 0.7
    if last is None or insert_after is None:
        parent[key] = item
        return
    insert_after(last, key, item)
