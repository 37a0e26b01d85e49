"""``stage add``: write one stage into ``dvc.yaml``, leaving the rest byte for byte.

The new stage is laid out as ``dvc stage add`` writes it (checked against dvc
3.67.1): keys ``desc, cmd, wdir, deps, params, outs, metrics, plots,
always_changed``; deps sorted; params with the ``params.yaml`` keys first
(sorted), then ``{file: [keys]}`` for other files sorted by name
(``{file: null}`` tracks a whole file); outs, metrics and plots sorted, the
ones with flags as ``{path: {cache: false, persist: true}}``.

DVC itself re-dumps the whole file through ruamel, which moves comments and
drops quotes. exq edits the text instead: the stage's YAML (dumped by ruamel
with DVC's settings) is spliced in after the last line of the ``stages``
block, or over the old stage's lines with ``force``, so every other byte of the
file stays as the user wrote it. Only a flow-style ``stages: {...}`` falls back
to a ruamel round trip.
"""

from __future__ import annotations

import io
import re
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from exq.engine.errors import DvcFileError, ExqError
from exq.engine.writes import atomic_write_bytes

DEFAULT_PARAMS = "params.yaml"
_BAD_NAME_CHARS = set(string.punctuation) - {"_", "-"}
_EMPTY_FLOW = re.compile(r"[ \t]*\{[ \t]*\}")
_KEY_COMMENT = re.compile(r"^[^#]*?:(\s+#.*)$")


def _yaml() -> YAML:
    yaml = YAML()
    yaml.default_flow_style = False
    return yaml


def parse_params(values: Iterable[str]) -> dict[str, list[str]]:
    """``-p`` values to {file: keys}: ``a,b`` (params.yaml), ``f.yaml:a,b``, ``f.yaml:`` (whole)."""
    result: dict[str, list[str]] = {}
    for value in values:
        if ":" in value:
            file, _, keys_text = value.rpartition(":")
        else:
            file, keys_text = DEFAULT_PARAMS, value
        keys = result.setdefault(file or DEFAULT_PARAMS, [])
        keys.extend(k.strip() for k in keys_text.split(",") if k.strip() and k.strip() not in keys)
    return result


def params_entry(params: dict[str, list[str]]) -> list[Any]:
    """The ``params:`` list as DVC writes it (params.yaml keys first, then files)."""
    entry: list[Any] = []
    for file in sorted(params):
        keys = sorted(set(params[file]))
        if keys and file == DEFAULT_PARAMS:
            entry = [*keys, *entry]
        else:
            entry.append({file: keys or None})
    return entry


@dataclass(frozen=True)
class LiveOptions:
    """``--live DIR`` and its ``--live-no-*`` switches."""

    path: str
    summary: bool = True
    html: bool = True
    cache: bool = True

    def section(self) -> dict[str, Any]:
        """``{DIR: {summary: .., html: ..[, cache: false]}}`` as DVC 2 wrote it."""
        props: dict[str, Any] = {"summary": self.summary, "html": self.html}
        if not self.cache:
            props["cache"] = False
        return {self.path: props}


def _outs(groups: Sequence[tuple[Iterable[str], dict[str, Any]]]) -> list[Any]:
    flagged = [(path, flags) for paths, flags in groups for path in paths]
    flagged.sort(key=lambda item: item[0])
    return [path if not flags else {path: dict(flags)} for path, flags in flagged]


def stage_data(
    *,
    cmd: str | list[str],
    deps: Iterable[str] = (),
    outs: Iterable[str] = (),
    outs_no_cache: Iterable[str] = (),
    outs_persist: Iterable[str] = (),
    outs_persist_no_cache: Iterable[str] = (),
    params: Iterable[str] = (),
    metrics: Iterable[str] = (),
    metrics_no_cache: Iterable[str] = (),
    plots: Iterable[str] = (),
    plots_no_cache: Iterable[str] = (),
    wdir: str | None = None,
    desc: str | None = None,
    always_changed: bool = False,
    checkpoints: Iterable[str] = (),
    live: LiveOptions | None = None,
) -> dict[str, Any]:
    """The mapping of one stage in DVC's key order, empty fields left out.

    ``checkpoints`` are outs written ``{path: {checkpoint: true}}`` (DVC 2's
    ``-c``); ``live`` is DVC 2's ``live:`` section, after the plots.
    """
    no_cache = {"cache": False}
    fields: list[tuple[str, Any]] = [
        ("desc", desc),
        ("cmd", cmd if isinstance(cmd, str) else list(cmd)),
        ("wdir", None if wdir in (None, "", ".") else wdir),
        ("deps", sorted(set(deps))),
        ("params", params_entry(parse_params(params))),
        (
            "outs",
            _outs(
                [
                    (outs, {}),
                    (outs_no_cache, no_cache),
                    (outs_persist, {"persist": True}),
                    (outs_persist_no_cache, {"cache": False, "persist": True}),
                    (checkpoints, {"checkpoint": True}),
                ]
            ),
        ),
        ("metrics", _outs([(metrics, {}), (metrics_no_cache, no_cache)])),
        ("plots", _outs([(plots, {}), (plots_no_cache, no_cache)])),
        ("live", None if live is None else live.section()),
        ("always_changed", always_changed),
    ]
    return {key: value for key, value in fields if value}


def stage_text(name: str, data: dict[str, Any], indent: int = 2, newline: str = "\n") -> str:
    """The lines of ``name: data`` as they sit under ``stages:``, key at column ``indent``."""
    stream = io.StringIO()
    _yaml().dump({"stages": {name: data}}, stream)
    lines = stream.getvalue().splitlines()[1:]  # drop "stages:"
    shift = indent - 2
    lines = [
        (" " * shift + line) if shift > 0 else line[-shift:] if shift else line for line in lines
    ]
    return "".join(line + newline for line in lines)


def add_stage(
    dvcfile: Path,
    name: str,
    *,
    force: bool = False,
    check: Callable[[str], None] | None = None,
    **fields: Any,
) -> str:
    """Add stage ``name`` to ``dvcfile`` (created if absent); returns "added" or "modified".

    ``fields`` are those of :func:`stage_data` (``cmd`` is required).
    Raises ExqError when the name is invalid, or already used and not ``force``.
    ``check`` is given the new file's text before it is written, and may
    refuse it by raising (e.g. an out that another stage already produces).
    """
    if not name or _BAD_NAME_CHARS & set(name):
        raise ExqError(f"invalid stage name '{name}'", hint="use letters, digits, '_' and '-' only")
    if not fields.get("cmd"):
        raise ExqError(f"stage '{name}': the command is empty")
    wdir = fields.get("wdir")
    if wdir not in (None, "", ".") and not (dvcfile.parent / wdir).is_dir():
        raise ExqError(f"stage '{name}': working directory '{wdir}' does not exist")
    data = stage_data(**fields)
    try:
        text = dvcfile.read_bytes().decode("utf-8") if dvcfile.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise DvcFileError(f"{dvcfile}: cannot read: {exc}") from exc
    new_text, action = _edit(text, str(dvcfile), name, data, force)
    if check is not None:
        check(new_text)
    _atomic_write(dvcfile, new_text)
    return action


def _edit(text: str, where: str, name: str, data: dict[str, Any], force: bool) -> tuple[str, str]:
    try:
        doc = _yaml().load(text) if text.strip() else None
    except YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DvcFileError(f"{where}: not valid YAML: {first}") from exc
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += newline
    if doc is None or (isinstance(doc, CommentedMap) and "stages" not in doc):
        block = "stages:" + newline + stage_text(name, data, 2, newline)
        return "".join(lines) + block, "added"
    if not isinstance(doc, CommentedMap):
        raise DvcFileError(f"{where}: top level must be a mapping")
    stages = doc["stages"]
    if stages is not None and not isinstance(stages, CommentedMap):
        raise DvcFileError(f"{where}: 'stages' must be a mapping")
    if stages is not None and name in stages and not force:
        raise ExqError(
            f"stage '{name}' already exists in '{where}'", hint="use --force to overwrite it"
        )
    stages_line, stages_col = doc.lc.key("stages")
    if stages is not None and not stages and _EMPTY_FLOW.search(lines[stages_line]):
        # `stages: {}`: drop the braces and add the stage as a block below.
        lines[stages_line] = _EMPTY_FLOW.sub("", lines[stages_line], count=1)
        stages = None
    if doc.fa.flow_style() or (stages is not None and stages.fa.flow_style()):
        action = "modified" if stages is not None and name in stages else "added"
        return _round_trip(doc, name, data), action
    if stages and name in stages:
        line, col = stages.lc.key(name)
        end = _block_end(lines, line, col)
        snippet = stage_text(name, data, col, newline)
        match = _KEY_COMMENT.match(lines[line].rstrip("\r\n"))
        if match:  # keep a comment written after the stage's key
            first, _, rest = snippet.partition(newline)
            snippet = first + match.group(1) + newline + rest
        return "".join(lines[:line]) + snippet + "".join(lines[end:]), "modified"
    col = stages.lc.key(next(iter(stages)))[1] if stages else stages_col + 2
    end = _block_end(lines, stages_line, stages_col)
    snippet = stage_text(name, data, col, newline)
    return "".join(lines[:end]) + snippet + "".join(lines[end:]), "added"


def _block_end(lines: list[str], key_line: int, key_col: int) -> int:
    """Index after the last non-blank line nested under the key at (key_line, key_col)."""
    last = key_line
    for index in range(key_line + 1, len(lines)):
        stripped = lines[index].strip()
        if not stripped:
            continue
        indent = len(lines[index]) - len(lines[index].lstrip(" "))
        if indent <= key_col:
            break
        last = index
    return last + 1


def _round_trip(doc: CommentedMap, name: str, data: dict[str, Any]) -> str:
    if doc.get("stages") is None:
        doc["stages"] = {}
    doc["stages"][name] = data
    stream = io.StringIO()
    _yaml().dump(doc, stream)
    return stream.getvalue()


def _atomic_write(path: Path, text: str) -> None:
    try:
        # writes.py keeps the file's mode, where a bare mkstemp would leave 0600
        atomic_write_bytes(path, text.encode("utf-8"))
    except OSError as exc:
        raise DvcFileError(f"{path}: cannot write: {exc}") from exc
