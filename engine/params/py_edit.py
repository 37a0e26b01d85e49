"""Round-trip edits of Python params files, splicing literals by their AST positions.

The params of a ``.py`` file, as DVC reads them, are its top-level assignments
(``LR = 0.1``, ``LR: float = 0.1``) and the attributes of its classes, both in
the class body and as ``self.x = ...`` in ``__init__`` (key ``Train.x``); dict,
list and tuple literals can be edited inside (``CFG.opt.lr``). A value that is
not a literal (``LR = 1 / 3``) reads as a :class:`PyExpr` and can be replaced.
"""

from __future__ import annotations

import ast
import json
import keyword
import math
import re
from dataclasses import dataclass
from typing import Any

from exq.engine.errors import ParamsError
from exq.engine.params.spans import (
    Entry,
    Node,
    StructOp,
    flow_insert,
    flow_remove,
    indentation,
    line_end,
    line_start,
    locate,
    newline_of,
    splice,
)


@dataclass(frozen=True)
class PyExpr:
    """A value in a .py params file that is an expression, not a literal."""

    source: str


def load(text: str, file: str) -> dict[str, Any]:
    """The params of a Python file: assignments and class attributes."""
    data: dict[str, Any] = _data(_Tree(text, file).root, text)
    return data


def edit(text: str, file: str, op: StructOp) -> str:
    """Apply one checked edit to the Python source."""
    tree = _Tree(text, file)
    if op.kind == "insert":
        return _insert(tree, op.path, op.value, file)
    chain = locate(tree.root, op.path, file)
    parent, index = chain[-1]
    entry = parent.entries[index]
    key = ".".join(map(str, op.path))
    if op.kind == "replace":
        node = entry.value
        if node.style == "class":
            raise ParamsError(f"{file}: '{key}' is a class; set its attributes instead")
        as_tuple = node.style == "tuple" and isinstance(op.value, list)
        return splice(
            text, node.start, node.end, render(op.value, node.style or tree.quote, as_tuple)
        )
    if parent.style in ("module", "class"):
        return _remove_statement(tree, parent, entry, key, file)
    if parent.style == "tuple":  # (1, 2) minus one item must become (1,), not (1)
        rest = [_data(e.value, text) for i, e in enumerate(parent.entries) if i != index]
        return splice(text, parent.start, parent.end, render(rest, tree.quote, as_tuple=True))
    if len(parent.entries) == 1:
        return splice(text, parent.start, parent.end, "{}" if parent.kind == "map" else "[]")
    return flow_remove(text, parent, index)


# --------------------------------------------------------------------------- tree


class _Tree:
    """The source's params as spans, with a converter from AST positions to offsets."""

    def __init__(self, text: str, file: str) -> None:
        self.text = text
        try:
            module = ast.parse(text)
        except SyntaxError as exc:
            raise ParamsError(f"{file}: invalid Python: {exc.msg} (line {exc.lineno})") from exc
        self.starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
        self.quote = self._first_quote(module)
        self.root = Node("map", 0, len(text), style="module", extra=module)
        self._collect(module.body, self.root)

    def offset(self, lineno: int, col: int) -> int:
        """The str index of an AST (line, UTF-8 byte column) position."""
        start = self.starts[lineno - 1]
        chunk = self.text[start : start + col]  # never fewer chars than bytes
        if chunk.isascii():
            return start + col
        return start + len(chunk.encode("utf-8")[:col].decode("utf-8", errors="ignore"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        """[start, end) of an AST node in the text."""
        return (
            self.offset(node.lineno, node.col_offset),  # type: ignore[attr-defined]
            self.offset(node.end_lineno, node.end_col_offset),  # type: ignore[attr-defined]
        )

    def _collect(self, body: list[ast.stmt], container: Node, in_init: bool = False) -> None:
        for stmt in body:
            if isinstance(stmt, ast.ClassDef) and not in_init:
                start, end = self.span(stmt)
                cls = Node("map", start, end, style="class", extra=stmt)
                self._collect(stmt.body, cls)
                for init in (
                    s for s in stmt.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"
                ):
                    self._collect(init.body, cls, in_init=True)
                container.entries.append(Entry(stmt.name, start, cls, extra=stmt))
                continue
            name, value = _assigned(stmt, in_init)
            if name is not None and value is not None:
                container.entries.append(
                    Entry(name, self.span(stmt)[0], self._expr(value), extra=stmt)
                )

    def _expr(self, expr: ast.expr) -> Node:
        start, end = self.span(expr)
        if isinstance(expr, ast.Dict):
            node = Node("map", start, end, extra=expr)
            for key, value in zip(expr.keys, expr.values, strict=True):
                if key is None:
                    continue  # **spread: not a param of its own
                try:
                    literal = ast.literal_eval(key)
                except ValueError:
                    continue
                node.entries.append(Entry(literal, self.span(key)[0], self._expr(value)))
            return node
        if isinstance(expr, (ast.List, ast.Tuple)):
            style = "tuple" if isinstance(expr, ast.Tuple) else ""
            node = Node("seq", start, end, style=style, extra=expr)
            node.entries = [
                Entry(i, self.span(e)[0], self._expr(e)) for i, e in enumerate(expr.elts)
            ]
            return node
        style = ""
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            style = _quote_of(self.text[start:end])
        return Node("scalar", start, end, style=style, extra=expr)

    def _first_quote(self, module: ast.Module) -> str:
        for node in ast.walk(module):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and hasattr(node, "lineno")
            ):
                quote = _quote_of(self.text[slice(*self.span(node))])
                if quote:
                    return quote
        return "'"


def _assigned(stmt: ast.stmt, in_init: bool) -> tuple[str | None, ast.expr | None]:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        target, value = stmt.targets[0], stmt.value
    elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        target, value = stmt.target, stmt.value
    else:
        return None, None
    if not in_init and isinstance(target, ast.Name):
        return target.id, value
    if in_init and isinstance(target, ast.Attribute) and _is_self(target.value):
        return target.attr, value
    return None, None


def _is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"


def _quote_of(source: str) -> str:
    match = re.match(r"[rRbBuUfF]*(['\"])", source)
    return match.group(1) if match else ""


def _data(node: Node, text: str) -> Any:
    if node.kind == "map":
        return {entry.key: _data(entry.value, text) for entry in node.entries}
    if node.kind == "seq":
        return [_data(entry.value, text) for entry in node.entries]
    expr = node.extra
    try:
        return ast.literal_eval(expr)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if (  # float("inf") / float("nan"): how render() writes what has no literal
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Name)
        and expr.func.id == "float"
        and len(expr.args) == 1
        and not expr.keywords
        and isinstance(expr.args[0], ast.Constant)
        and isinstance(expr.args[0].value, str)
    ):
        try:
            return float(expr.args[0].value)
        except ValueError:
            pass
    return PyExpr(text[node.start : node.end])


# --------------------------------------------------------------------------- edits


def _insert(tree: _Tree, path: tuple[Any, ...], value: Any, file: str) -> str:
    text, key = tree.text, path[-1]
    parent = tree.root
    if len(path) > 1:
        grand, index = locate(tree.root, path[:-1], file)[-1]
        parent = grand.entries[index].value
    if parent.kind == "map" and parent.style not in ("module", "class"):
        entry = f"{render(key, tree.quote)}: {render(value, tree.quote)}"
        return flow_insert(text, parent, entry, unit="", sep=", ")
    if (
        parent.kind != "map"
        or not isinstance(key, str)
        or not key.isidentifier()
        or keyword.iskeyword(key)
    ):
        dotted = ".".join(map(str, path))
        raise ParamsError(f"{file}: cannot add '{dotted}': not a Python name in a module or class")
    line = f"{key} = {render(value, tree.quote)}"
    nl = newline_of(text)
    if parent.style == "module":
        return text + ("" if not text or text.endswith(("\n", "\r")) else nl) + line + nl
    return _insert_in_class(tree, parent, line, file)


def _insert_in_class(tree: _Tree, cls: Node, line: str, file: str) -> str:
    text, stmt = tree.text, cls.extra
    attrs = [e.extra for e in cls.entries if e.extra in stmt.body and e.value.style != "class"]
    nl = newline_of(text)
    if attrs:
        last_end = tree.span(attrs[-1])[1]
        pos = line_end(text, last_end)
        return splice(text, pos, pos, nl + indentation(text, tree.span(attrs[-1])[0]) + line)
    first = tree.span(stmt.body[0])[0]
    if text[line_start(text, first) : first].strip():
        raise ParamsError(f"{file}: cannot add to class '{stmt.name}' written on one line")
    pos = line_start(text, first)
    return splice(text, pos, pos, indentation(text, first) + line + nl)


def _remove_statement(tree: _Tree, parent: Node, entry: Entry, key: str, file: str) -> str:
    text, stmt = tree.text, entry.extra
    start, end = tree.span(stmt)
    first = line_start(text, start)
    rest = text[end : line_end(text, end)].strip()
    if text[first:start].strip() or (rest and not rest.startswith("#")):
        raise ParamsError(f"{file}: cannot delete '{key}': it shares its line with other code")
    owner = parent.extra
    if parent.style == "class":
        owner = (
            owner
            if stmt in owner.body
            else next(f for f in owner.body if isinstance(f, ast.FunctionDef) and stmt in f.body)
        )
    if parent.style == "class" and len(owner.body) == 1:
        raise ParamsError(f"{file}: cannot delete '{key}': it is the only statement of its block")
    stop = text.find("\n", end)
    if stop < 0:
        first, stop = max(0, first - len(newline_of(text))), len(text)
    else:
        stop += 1
    return splice(text, first, stop, "")


def render(value: Any, quote: str = "'", as_tuple: bool = False) -> str:
    """A Python literal for ``value``; strings use ``quote`` when it is a quote char."""
    if isinstance(value, float) and not math.isfinite(value):
        return f'float("{value}")'
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if quote == '"' else repr(value)
    if isinstance(value, dict):
        items = ", ".join(f"{render(k, quote)}: {render(v, quote)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list):
        items = ", ".join(render(v, quote) for v in value)
        if as_tuple:
            return "(" + items + ("," if len(value) == 1 else "") + ")"
        return "[" + items + "]"
    return repr(value)
