"""Params and vars files: reading them through a source, parsing, dotted keys.

Every read goes through a ``FileSource`` so that the same code can resolve a
pipeline from the working tree (``DiskSource``) or from a git commit (a blob
source implementing the same protocol). Paths given to a source are
repo-relative POSIX paths.

Parsing follows DVC: YAML is read as YAML 1.2 (``yaml12``, as ruamel reads it, so
``on``/``yes`` stay strings and ``1e-5`` is a float), an empty YAML or JSON file
is ``{}``, TOML goes through ``tomllib``, a ``.py`` file is read with ``ast``
(top-level literal assignments, classes as nested mappings) and any other
suffix is read as YAML.
"""

from __future__ import annotations

import ast
import json
import os
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from exq.engine import yaml12
from exq.engine.errors import ExqError, ParamsError

_MISSING: Any = object()


class FileSource(Protocol):
    """Where files are read from: the working tree, a commit, a test dict."""

    def read_bytes(self, path: str) -> bytes | None:
        """Content of the repo-relative POSIX ``path``, or None if absent."""
        ...


class DiskSource:
    """Reads files below ``root`` on disk."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def read_bytes(self, path: str) -> bytes | None:
        target = self.root / path
        try:
            return target.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except IsADirectoryError as exc:
            raise ParamsError(f"{path}: is a directory, not a file") from exc
        except OSError as exc:
            raise ParamsError(f"{path}: cannot read: {exc.strerror or exc}") from exc


class DiskTree(DiskSource):
    """The working tree as a source that also lists folders, as a commit's does.

    A folder reads as absent (None): metrics and plots folders are read file
    by file through ``list_files``.
    """

    def read_bytes(self, path: str) -> bytes | None:
        if (self.root / path).is_dir():
            return None
        return super().read_bytes(path)

    def list_files(self, folder: str) -> list[str]:
        """Repo-relative paths of every file below ``folder``, sorted; [] if not a folder."""
        top = self.root / folder
        if not top.is_dir():
            return []
        found: list[str] = []
        for here, dirs, files in os.walk(top):
            dirs.sort()
            found.extend(
                Path(here, name).relative_to(self.root).as_posix() for name in sorted(files)
            )
        return found


class CachingSource:
    """Wraps a source so each path is read at most once (one consistent view)."""

    def __init__(self, source: FileSource) -> None:
        self.source = source
        self._cache: dict[str, bytes | None] = {}

    def read_bytes(self, path: str) -> bytes | None:
        if path not in self._cache:
            self._cache[path] = self.source.read_bytes(path)
        return self._cache[path]


def decode_text(data: bytes, path: str, error_cls: type[ExqError] = ParamsError) -> str:
    """Decode UTF-8 file content, naming the file on failure."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error_cls(f"{path}: not valid UTF-8 (byte {exc.start})") from exc


def parse_yaml(data: bytes | str, path: str, *, error_cls: type[ExqError] = ParamsError) -> Any:
    """Parse YAML 1.2 as DVC reads it; errors name file and line."""
    text = decode_text(data, path, error_cls) if isinstance(data, bytes) else data
    try:
        return yaml12.load(text)
    except yaml12.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = " ".join(str(exc.problem or exc.context or "syntax error").split())
        raise error_cls(f"{path}: invalid YAML{where}: {problem}") from exc
    except yaml12.YAMLError as exc:
        raise error_cls(f"{path}: invalid YAML: {exc}") from exc


def parse_params(path: str, data: bytes) -> dict[str, Any]:
    """Parse a params/vars file by its extension into a mapping.

    ``.json``, ``.toml`` and ``.py`` are read as such, anything else as YAML.
    Raises ParamsError naming the file when it is malformed or not a mapping.
    """
    suffix = posixpath.splitext(path)[1].lower()
    text = decode_text(data, path)
    if suffix == ".json":
        parsed = _parse_json(text, path)
    elif suffix == ".toml":
        parsed = _parse_toml(text, path)
    elif suffix == ".py":
        parsed = _parse_python(text, path)
    else:
        parsed = parse_yaml(text, path)
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise ParamsError(
            f"{path}: expected a mapping at the top level, got {type(parsed).__name__}"
        )
    return parsed


def load_params(source: FileSource, path: str) -> dict[str, Any]:
    """Read and parse the params file at repo-relative ``path``."""
    data = source.read_bytes(path)
    if data is None:
        raise ParamsError(f"{path}: file not found")
    return parse_params(path, data)


def _parse_json(text: str, path: str) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except json.JSONDecodeError as exc:
        raise ParamsError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc


def _parse_toml(text: str, path: str) -> Any:
    import tomllib  # only for .toml params files

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ParamsError(f"{path}: invalid TOML: {exc}") from exc


def _parse_python(text: str, path: str) -> dict[str, Any]:
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as exc:
        raise ParamsError(f"{path}: invalid Python at line {exc.lineno}: {exc.msg}") from exc
    return _python_body(tree.body, self_attrs=False)


def _python_body(body: list[ast.stmt], *, self_attrs: bool) -> dict[str, Any]:
    """Literal assignments of a module/class body; ``__init__`` gives ``self.x``.

    Like DVC, assignments that are not literals (calls, names, several
    targets) are skipped rather than reported.
    """
    result: dict[str, Any] = {}
    for node in body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            item = _python_assignment(node, self_attrs=self_attrs)
            if item is not None:
                result[item[0]] = item[1]
        elif isinstance(node, ast.ClassDef):
            result[node.name] = _python_body(node.body, self_attrs=False)
        elif isinstance(node, ast.FunctionDef) and node.name == "__init__":
            result.update(_python_body(node.body, self_attrs=True))
    return result


def _python_assignment(
    node: ast.Assign | ast.AnnAssign, *, self_attrs: bool
) -> tuple[str, Any] | None:
    if isinstance(node, ast.Assign):
        if len(node.targets) != 1:
            return None
        target = node.targets[0]
    else:
        target = node.target
    if node.value is None:  # a bare annotation `x: int`
        return None
    if self_attrs:
        if not (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and target.value.id == "self"
        ):
            return None
        name = target.attr
    elif isinstance(target, ast.Name):
        name = target.id
    else:
        return None
    try:
        value = ast.literal_eval(node.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return name, _plain_python(value)


def _plain_python(value: Any) -> Any:
    """Tuples and sets become lists so values look like YAML/JSON data."""
    if isinstance(value, dict):
        return {key: _plain_python(val) for key, val in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_python(val) for val in value]
    if isinstance(value, (set, frozenset)):
        return [_plain_python(val) for val in sorted(value, key=repr)]
    return value


def flatten(d: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings into dotted keys; lists stay values.

    Like DVC's flattening, an empty nested mapping contributes no key.
    """
    flat: dict[str, Any] = {}
    for key, value in d.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten(value, dotted))
        else:
            flat[dotted] = value
    return flat


def get_dotted(d: Any, key: str, default: Any = _MISSING) -> Any:
    """Look up a dotted key (``a.b.0``) in nested mappings and lists.

    A mapping key that itself contains dots is found too. Raises KeyError
    when the key is absent and no ``default`` is given.
    """
    try:
        return _get_dotted(d, key)
    except KeyError:
        if default is _MISSING:
            raise
        return default


def _get_dotted(node: Any, key: str) -> Any:
    if isinstance(node, Mapping):
        if key in node:
            return node[key]
        # a mapping key may itself contain dots: try the longest prefixes first
        parts = key.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            prefix = ".".join(parts[:cut])
            if prefix in node:
                try:
                    return _get_dotted(node[prefix], ".".join(parts[cut:]))
                except KeyError:
                    continue
        raise KeyError(key)
    if isinstance(node, list):
        head, sep, rest = key.partition(".")
        try:
            item = node[int(head)]
        except (ValueError, IndexError):
            raise KeyError(key) from None
        return _get_dotted(item, rest) if sep else item
    raise KeyError(key)
