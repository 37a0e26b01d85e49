"""What exp show read of a commit is kept in the git folder and read back instead of git.

Real repositories made as test_exp_collect makes them; a store is proven in use
by a value only it could have given (commits never change, so a kept value is
always the commit's own).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from exq.engine.experiments import revstore
from exq.engine.experiments.collect import Collector, RevData
from exq.engine.experiments.revstore import RevStore
from exq.engine.experiments.rows import exp_show_rows
from exq.engine.git import Git
from tests.integration.engine.experiments.test_exp_collect import (
    BASE_TIME,
    PARAMS,
    make_exp,
)
from tests.integration.engine.experiments.test_exp_collect import (  # noqa: F401
    repo as repo,  # the fixture
)


def open_store(root: Path, *, param_deps: bool = False) -> tuple[Git, RevStore]:
    git = Git.open(root)
    return git, RevStore.open(git, prefix="", param_deps=param_deps)


def store_collector(root: Path, *, param_deps: bool = False) -> tuple[Git, Collector]:
    git, store = open_store(root, param_deps=param_deps)
    return git, Collector(git, root, root / ".dvc" / "cache", param_deps=param_deps, store=store)


def test_a_second_run_reads_commits_from_the_store(repo: Path) -> None:
    sha = make_exp(repo, "a", {"params.yaml": PARAMS.replace("0.1", "0.2")}, BASE_TIME + 5)
    git, coll = store_collector(repo)
    first = exp_show_rows(git, coll)
    assert coll.store is not None
    coll.store.save()
    kept = list((git.common_dir() / "exq").glob("revs-*.json"))
    assert len(kept) == 1

    # the store's copy of the experiment says lr is 9: a run that shows 9 read the store
    git, store = open_store(repo)
    info = git.commit_info(sha)
    store.put(info, RevData(params={"params.yaml": {"train.lr": 9}}, metrics={}))
    store.save()
    git, coll = store_collector(repo)
    second = exp_show_rows(git, coll)
    by_name = {row.name: row for row in second}
    assert by_name["a"].params == {"params.yaml": {"train.lr": 9}}
    assert by_name["a"].created == next(r.created for r in first if r.name == "a")
    assert [row.name for row in second] == [row.name for row in first]


def test_commit_facts_come_back_as_git_read_them(repo: Path) -> None:
    sha = make_exp(repo, "a", {"params.yaml": PARAMS}, BASE_TIME + 7)
    git, coll = store_collector(repo)
    read = git.commit_info(sha)
    coll.commit(sha)
    assert coll.store is not None
    coll.store.save()
    _, store = open_store(repo)
    assert [info for info in store.infos() if info.sha == sha] == [read]


def test_values_missing_from_the_dvc_cache_are_read_again(repo: Path) -> None:
    scores = b"f1: 0.75\n"
    md5 = hashlib.md5(scores).hexdigest()
    lock = (
        "schema: '2.0'\nstages:\n  train:\n    cmd: python train.py\n    outs:\n"
        f"    - path: scores.yaml\n      hash: md5\n      md5: {md5}\n      size: {len(scores)}\n"
    )
    sha = make_exp(repo, "cached", {"dvc.lock": lock}, BASE_TIME + 10)
    _, coll = store_collector(repo)
    assert "scores.yaml" not in coll.commit(sha).metrics  # not pulled yet
    assert coll.store is not None
    coll.store.save()
    obj = repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    obj.parent.mkdir(parents=True)
    obj.write_bytes(scores)
    _, coll = store_collector(repo)  # once pulled, the next run shows it, and keeps it
    assert coll.commit(sha).metrics["scores.yaml"] == {"f1": 0.75}
    assert coll.store is not None
    coll.store.save()
    _, store = open_store(repo)
    kept = store.data(sha)
    assert kept is not None and kept.metrics["scores.yaml"] == {"f1": 0.75}


def test_revisions_read_with_errors_are_read_again(repo: Path) -> None:
    sha = make_exp(repo, "broken", {"params.yaml": "train: [unclosed\n"}, BASE_TIME + 3)
    _, coll = store_collector(repo)
    assert coll.commit(sha).errors
    assert coll.store is not None
    coll.store.save()
    _, store = open_store(repo)
    assert store.data(sha) is None


def test_each_param_deps_choice_has_its_own_store(repo: Path) -> None:
    head = Git.open(repo).head_sha()
    assert head is not None
    _, whole = store_collector(repo)
    _, deps = store_collector(repo, param_deps=True)
    assert whole.commit(head).params != deps.commit(head).params
    for coll in (whole, deps):
        assert coll.store is not None
        coll.store.save()
    _, again = store_collector(repo, param_deps=True)
    assert again.commit(head).params == {
        "params.yaml": {"train.lr": 0.1},
        "model.toml": {"seed": 1, "layers.size": 64},
    }


def test_an_unreadable_store_is_an_empty_one(repo: Path) -> None:
    head = Git.open(repo).head_sha()
    assert head is not None
    git, coll = store_collector(repo)
    coll.commit(head)
    assert coll.store is not None
    coll.store.save()
    coll.store.path.write_text("{not json")
    _, coll = store_collector(repo)
    assert coll.commit(head).params["params.yaml"]["train.lr"] == 0.1


def test_commits_no_run_uses_are_dropped_once_they_outnumber_the_used(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(revstore, "SPARE_ENTRIES", 0)
    shas = [
        make_exp(repo, f"e{i}", {"params.yaml": PARAMS.replace("0.1", f"0.{i + 2}")}, BASE_TIME + i)
        for i in range(3)
    ]
    git, coll = store_collector(repo)
    for sha in shas:
        coll.commit(sha)
    assert coll.store is not None
    coll.store.save()
    _, coll = store_collector(repo)  # a run that reads one kept commit and one new one
    head = git.head_sha()
    assert head is not None
    coll.commit(shas[0])
    coll.commit(head)
    assert coll.store is not None
    coll.store.save()  # 4 entries, 2 used: kept (not more than twice)
    _, store = open_store(repo)
    assert {info.sha for info in store.infos()} == {*shas, head}
    git, coll = store_collector(repo)
    new = make_exp(repo, "e9", {"params.yaml": PARAMS.replace("0.1", "0.9")}, BASE_TIME + 9)
    coll.commit(new)
    assert coll.store is not None
    coll.store.save()  # 5 entries, 1 used: only the used one stays
    _, store = open_store(repo)
    assert {info.sha for info in store.infos()} == {new}
