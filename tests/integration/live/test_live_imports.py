"""exq.live runs inside users' training code: it must load the standard library only."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROBE = textwrap.dedent(
    """
    import json, sys
    before = set(sys.modules)
    import exq.live
    from exq.live import Live, make_checkpoint
    live = Live("logs")
    live.log_param("lr", 0.1)
    live.log("train/loss", 0.5)
    live.next_step()
    make_checkpoint()
    live.end()
    if len(sys.argv) > 1:
        import importlib
        importlib.import_module(sys.argv[1])
    new = sorted(set(sys.modules) - before)
    print(json.dumps(new))
    """
)
THIRD_PARTY = {
    "yaml",
    "anyio",
    "pygit2",
    "typer",
    "rich",
    "structlog",
    "ruamel",
    "tomlkit",
    "aiosqlite",
}


def _loaded(tmp_path: Path, *extra: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *extra],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize("extra", [(), ("exq.live.keras",)])
def test_exq_live_loads_only_the_standard_library(tmp_path: Path, extra: tuple[str, ...]) -> None:
    loaded = _loaded(tmp_path, *extra)
    tops = {name.split(".")[0] for name in loaded}
    assert not tops & THIRD_PARTY
    foreign = sorted(t for t in tops if t not in sys.stdlib_module_names and t != "exq")
    # The Keras integration may find keras when it is installed; nothing else.
    assert [t for t in foreign if t not in ("keras", "tensorflow")] == []
    assert not [name for name in loaded if name.startswith(("exq.engine", "exq.daemon", "exq.cli"))]
    if not extra:
        assert not {"exq.live.keras", "exq.live.lightning"} & set(loaded)
