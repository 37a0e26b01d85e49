"""``exq exp push``/``pull`` move the experiments' cached outputs through the DVC remote too."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.cli.test_cli_exp_manage import template  # noqa: F401
from tests.e2e.conftest import exq
from tests.e2e.exp_helpers import exp_refs
from tests.support import git

pytest.importorskip("fsspec")


def objects(store: Path) -> set[str]:
    return {p.name for p in store.rglob("*") if p.is_file()}


def test_exp_push_then_pull_elsewhere_brings_the_model(
    template: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    source = tmp_path / "source"
    shutil.copytree(template, source, symlinks=True)
    bare, store = tmp_path / "remote.git", tmp_path / "store"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    exq("remote", "add", "--local", "-d", "store", str(store), cwd=source)

    _, out, _ = exq("exp", "push", "--no-cache", str(bare), "a", cwd=source)
    assert "cached" not in out and not store.exists()
    _, out, _ = exq("exp", "push", str(bare), "a", cwd=source)
    assert "1 cached file(s) pushed to the DVC remote." in out  # model.txt (metrics: no cache)
    assert len(objects(store)) == 1

    # Another clone: no cache, no experiments.
    other = tmp_path / "other"
    shutil.copytree(template, other, symlinks=True)
    shutil.rmtree(other / ".dvc" / "cache")
    for ref in exp_refs(other):
        git(other, "update-ref", "-d", ref)
    exq("remote", "add", "--local", "-d", "store", str(store), cwd=other)
    _, out, _ = exq("exp", "pull", str(bare), "a", cwd=other)
    assert "1 cached file(s) fetched from the DVC remote." in out
    exq("exp", "apply", "a", cwd=other)
    assert (other / "model.txt").read_text() == "lr=0.5 epochs=4\n"


def test_exp_push_without_a_dvc_remote_says_so(template: Path, tmp_path: Path) -> None:  # noqa: F811
    source = tmp_path / "source"
    shutil.copytree(template, source, symlinks=True)
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    _, out, err = exq("exp", "push", str(bare), "a", cwd=source)
    assert out.strip().startswith("Pushed experiment a") and "No DVC remote" in err


def test_exp_push_to_a_bad_dvc_remote_pushes_nothing(template: Path, tmp_path: Path) -> None:  # noqa: F811
    # The outputs could not follow the experiment: its refs stay off the git remote.
    source = tmp_path / "source"
    shutil.copytree(template, source, symlinks=True)
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    exq("remote", "add", "store", str(tmp_path / "store"), cwd=source)
    (tmp_path / "blocker").write_text("a file where the store's folders would go\n")
    exq("remote", "add", "blocked", str(tmp_path / "blocker" / "store"), cwd=source)
    for args in (["-r", "nope"], ["-r", "blocked"]):
        code, _, err = exq("exp", "push", str(bare), "a", *args, cwd=source, check=False)
        assert code == 1 and len(err.strip().splitlines()) == 1, err
        assert exp_refs(bare) == {}
    exq("exp", "push", str(bare), "a", "-r", "store", cwd=source)
    assert exp_refs(bare)
