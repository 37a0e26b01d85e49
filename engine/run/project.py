"""Where a project lives: its root, its ``.dvc`` folder and its configuration.

A project is a folder holding ``.dvc/`` (made by ``exq init`` or ``dvc init``),
usually at the root of a git repository. Configuration is DVC's INI-style
``.dvc/config`` overlaid by ``.dvc/config.local``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from exq.engine.data.remote_config import IniFile
from exq.engine.errors import ConfigError, ExqError, GitError

DVC_DIR = ".dvc"
LINK_TYPES = ("reflink", "hardlink", "symlink", "copy")
DEFAULT_LINK_TYPES = ("reflink", "hardlink", "copy")
_DVC_GITIGNORE = "/config.local\n/tmp\n/cache\n"


@dataclass(frozen=True)
class Project:
    """A project root and the settings read from its configuration."""

    root: Path
    cache_dir: Path
    link_types: tuple[str, ...]
    # DVC's cache.shared = group: cache folders 2775, unprotected files group-writable
    shared_group: bool = False

    @property
    def dvc_dir(self) -> Path:
        return self.root / DVC_DIR


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` that holds ``.dvc/``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / DVC_DIR).is_dir():
            return folder
    raise ExqError(
        f"not an exq/DVC project: no '{DVC_DIR}' folder in {here} or above",
        hint="run 'exq init' at the root of your git repository",
    )


def open_project(start: Path | None = None) -> Project:
    """Find the project around ``start`` and read its configuration."""
    root = find_root(start)
    cache = read_config(root).get("cache", {})
    cache_dir = root / DVC_DIR / "cache"
    if "dir" in cache:
        configured = Path(cache["dir"])
        # DVC resolves a relative cache dir against the .dvc folder.
        cache_dir = configured if configured.is_absolute() else root / DVC_DIR / configured
    shared = cache.get("shared", "").strip().lower()
    if shared not in ("", "group"):
        raise ConfigError(
            f".dvc/config: cache.shared: unknown value '{shared}'", hint="the one value is 'group'"
        )
    return Project(
        root=root,
        cache_dir=cache_dir.resolve(),
        link_types=_link_types(cache),
        shared_group=shared == "group",
    )


def read_config(root: Path) -> dict[str, dict[str, str]]:
    """``.dvc/config`` overlaid by ``.dvc/config.local`` (missing files are fine):
    section -> option (lower-cased) -> value.

    Read as DVC reads them (configobj's syntax, not configparser's): a value
    DVC wrote quoted (``type = "reflink,copy"``) loses its quotes, and a ``#``
    after an unquoted value starts a comment.
    """
    config: dict[str, dict[str, str]] = {}
    for name in ("config", "config.local"):
        sections = IniFile.read(root / DVC_DIR / name).sections()
        for section, values in sections.items():
            merged = config.setdefault(section, {})
            merged.update((key.lower(), value) for key, value in values.items())
    return config


def _link_types(cache: dict[str, str]) -> tuple[str, ...]:
    env = os.environ.get("EXQ_CACHE_TYPE")
    raw = env if env is not None else cache.get("type", "")
    if not raw.strip():
        return default_link_types()
    kinds = tuple(part.strip() for part in raw.split(",") if part.strip())
    bad = [kind for kind in kinds if kind not in LINK_TYPES]
    if bad:
        raise ConfigError(
            f".dvc/config: cache.type: unknown link type '{bad[0]}'",
            hint=f"use a comma list of {', '.join(LINK_TYPES)}",
        )
    return kinds


def default_link_types() -> tuple[str, ...]:
    """Link types used when none are configured.

    Hard and symbolic links are protected by making the shared file read-only,
    which stops every user but root: root's ``echo more >> out.txt`` would
    write straight into the cache (and into every other out with the same
    bytes). So root gets independent copies, as DVC's own default does.
    """
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return tuple(kind for kind in DEFAULT_LINK_TYPES if kind not in ("hardlink", "symlink"))
    return DEFAULT_LINK_TYPES


def check_init_place(root: Path, *, subdir: bool) -> None:
    """Refuse, as ``dvc init`` does, a project outside git, or in a sub-folder of
    a git repository unless ``subdir``."""
    from exq.engine.git import Git  # git is only needed here, at init

    try:
        top = Git.open(root).root
    except GitError:
        raise ConfigError(
            f"{root} is not in a git repository",
            hint="run 'git init' first, or pass --no-scm for a project without experiments",
        ) from None
    if os.path.realpath(top) != os.path.realpath(root) and not subdir:
        raise ConfigError(
            f"{root} is a sub-folder of the git repository {top}",
            hint="pass --subdir to make a project there, or run 'exq init' at the repository's root",
        )


def init_project(root: Path, *, no_scm: bool = False) -> bool:
    """Create ``.dvc/`` the way ``dvc init`` does; False when it already exists."""
    dvc_dir = root / DVC_DIR
    if dvc_dir.is_dir():
        return False
    dvc_dir.mkdir()
    (dvc_dir / "config").write_text(
        "[core]\n    no_scm = True\n" if no_scm else "", encoding="utf-8"
    )
    (dvc_dir / ".gitignore").write_text(_DVC_GITIGNORE, encoding="utf-8")
    dvcignore = root / ".dvcignore"
    if not dvcignore.exists():
        dvcignore.write_text(
            "# Add patterns of files dvc should ignore, which could improve\n"
            "# the performance. Learn more at\n"
            "# https://dvc.org/doc/user-guide/dvcignore\n",
            encoding="utf-8",
        )
    return True
