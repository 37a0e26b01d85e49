"""engine/errors.py opens with the whole tree of user errors: every ExqError
subclass of the engine and the daemon is drawn there."""

from __future__ import annotations

import importlib
import pkgutil

import exq.daemon
import exq.engine
from exq.engine import errors
from exq.engine.errors import ExqError


def subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= subclasses(sub)
    return found


def test_every_user_error_is_in_the_drawn_tree() -> None:
    for package in (exq.engine, exq.daemon):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)
    drawn = errors.__doc__ or ""
    missing = sorted(c.__name__ for c in subclasses(ExqError) if f"── {c.__name__} " not in drawn)
    assert missing == []
