"""exq installs as one distribution whose top-level folders are subpackages of
``exq``, in a regular install and in editable ones (default and strict mode)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODES = {
    "regular": [],
    "editable": ["-e"],
    "editable-strict": ["--config-settings", "editable_mode=strict", "-e"],
}


def _site_packages(env_dir: Path) -> Path:
    paths = sysconfig.get_paths(vars={"base": str(env_dir), "platbase": str(env_dir)})
    return Path(paths["purelib"])


@pytest.mark.parametrize("mode", list(MODES))
def test_install_mode(mode: str, tmp_path: Path) -> None:
    source = tmp_path / "src"
    # The package's files as they are now, without virtualenvs or build leftovers.
    source.mkdir()
    for path in ("engine", "cli", "daemon", "live", "exq"):
        shutil.copytree(ROOT / path, source / path, ignore=shutil.ignore_patterns("__pycache__"))
    for path in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / path, source / path)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    # Dependencies come from the test's own environment, so nothing is downloaded but
    # the build backend.
    deps = Path(sysconfig.get_paths()["purelib"])
    (_site_packages(env_dir) / "exq-test-deps.pth").write_text(f"{deps}\n")
    python = env_dir / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "-q", "--no-deps", *MODES[mode], str(source)]
    done = subprocess.run(install, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    probe = (
        "import exq, exq.engine.spec.templating, exq.cli.main, exq.daemon.store, exq.live\n"
        "print(exq.__file__); print(exq.engine.spec.templating.__file__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    shown = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert shown.returncode == 0, shown.stderr
    exq_init, templating = shown.stdout.split()
    assert Path(templating).name == "templating.py"
    if mode == "regular":
        assert str(_site_packages(env_dir)) in templating  # a copy, not the source
    elif mode == "editable":
        assert templating == str(source / "engine" / "spec" / "templating.py")
    version = subprocess.run(
        [str(env_dir / "bin" / "exq"), "--version"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("exq ")
