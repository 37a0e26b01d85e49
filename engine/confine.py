"""Writes and deletes stay inside the repository, whatever symlinks on the way say.

A path checked lexically (``data/x.csv`` has no ``..``) can still lead out of the
repository when a folder on the way is a symlink (``data -> /shared``): writing
or deleting there would touch files exq never owned. Before anything runs, the
paths exq will write or delete are resolved on disk and refused when their real
location is outside. The path itself may be a symlink to a file (the cache's
symlink links are): exq replaces the link, never what it points to; a symlink to
a folder is followed, since exq writes inside it.
"""

from __future__ import annotations

import os
from pathlib import Path

from exq.engine.errors import OutsideRepository


def real_location(root: Path, rel: str | Path, *, follow: bool = False) -> Path:
    """Where ``root / rel`` really is: its folder resolved, and the path itself
    too when it is a symlink to a folder (to anything, with ``follow``: a file
    exq edits in place, such as a params file)."""
    path = Path(os.path.normpath(Path(root).absolute() / rel))
    real = Path(os.path.realpath(path.parent)) / path.name
    if real.is_symlink() and (follow or real.is_dir()):
        real = Path(os.path.realpath(real))
    return real


def check_inside(root: Path, rel: str | Path, what: str, *, follow: bool = False) -> Path:
    """The real location of ``root / rel``; :class:`OutsideRepository` naming
    ``what`` (``stage 'train': out 'data/x.csv'``) when it is not under ``root``."""
    top = Path(os.path.realpath(root))
    real = real_location(root, rel, follow=follow)
    if real != top and top not in real.parents:
        raise OutsideRepository(
            f"{what} is really at '{real}', outside the repository {top}",
            hint="a symlink on the way leads out; exq writes only inside the repository",
        )
    return real
