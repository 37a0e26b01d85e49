"""What an enqueue says of large untracked files (pure)."""

from __future__ import annotations

import pytest

from exq.daemon.service import check_untracked
from exq.engine.errors import ExperimentError

MB = 10**6


def said(files: list[tuple[str, int]], *, force: bool = False) -> list[str]:
    heard: list[str] = []
    check_untracked(files, force=force, warn=heard.append, large=100 * MB, limit=1000 * MB)
    return heard


def test_small_files_pass_without_a_word() -> None:
    assert said([("a.txt", 10), ("b.csv", 99 * MB)]) == []


def test_large_files_are_named_largest_first() -> None:
    files = [(f"f{i}", (100 + i) * MB) for i in range(5)] + [("small", MB)]
    assert said(files) == [
        "untracked files go into the run's snapshot as git objects:"
        " f4 (104.0 MB), f3 (103.0 MB), f2 (102.0 MB) and 2 more"
    ]


def test_past_the_limit_they_are_refused_unless_forced() -> None:
    files = [("dump.bin", 600 * MB), ("more.bin", 400 * MB)]
    with pytest.raises(ExperimentError, match=r"untracked files of 1000\.0 MB would go"):
        said(files)
    assert said(files, force=True) == [
        "untracked files go into the run's snapshot as git objects:"
        " dump.bin (600.0 MB), more.bin (400.0 MB)"
    ]
