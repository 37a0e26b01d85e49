"""``plots diff --legend params``: name each revision by the params that differ
between the revisions drawn, so a sweep's lines say what each one tried.

Pure: it takes each revision's params (file -> {dotted key: value}) as
``exp show`` collects them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Values = Mapping[str, Mapping[str, Any]]

MAX_SHOWN = 4  # params per label; more are summed up as "+N"


def params_legend(params: Mapping[str, Values]) -> dict[str, str]:
    """Each revision's label: ``exp-1 (lr=0.1, seed=2)`` with the params whose
    values are not the same in every revision (a param missing from one counts
    as differing); the label alone when none differ.

    A key is shown bare unless two files hold it (then ``file:key``).
    """
    flat = {rev: _flatten(values) for rev, values in params.items()}
    keys: list[tuple[str, str]] = []
    for values in flat.values():
        keys += [key for key in values if key not in keys]
    missing = object()
    differing = [key for key in keys if len({repr(v.get(key, missing)) for v in flat.values()}) > 1]
    names = _short_names(differing)
    labels = {}
    for rev, values in flat.items():
        shown = [f"{names[key]}={_text(values[key])}" for key in differing if key in values]
        extra = f", +{len(shown) - MAX_SHOWN}" if len(shown) > MAX_SHOWN else ""
        labels[rev] = f"{rev} ({', '.join(shown[:MAX_SHOWN])}{extra})" if shown else rev
    return labels


def _flatten(values: Values) -> dict[tuple[str, str], Any]:
    return {(file, key): value for file, keys in values.items() for key, value in keys.items()}


def _short_names(keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    count: dict[str, int] = {}
    for _, key in keys:
        count[key] = count.get(key, 0) + 1
    return {(file, key): key if count[key] == 1 else f"{file}:{key}" for file, key in keys}


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, dict)):
        return str(value).replace(" ", "")
    return str(value)
