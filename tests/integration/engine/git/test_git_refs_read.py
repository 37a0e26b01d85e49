"""Refs (atomic, compare-and-set), rev resolution and reading commits without checkout."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from exq.engine.errors import GitError
from exq.engine.git import Git, check_ref_component, check_ref_name


def git(cwd: Path, *args: str, stdin: str | None = None) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, input=stdin)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def commit(repo: Path, name: str, text: str, msg: str) -> str:
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "-qm", msg)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test User")
    git(root, "config", "user.email", "test@example.com")
    commit(root, "a.txt", "1\n", "one")
    commit(root, "a.txt", "2\n", "two")
    return root


def fast_import_experiments(repo: Path, baseline: str, count: int) -> dict[str, str]:
    """Create ``count`` experiment commits on ``baseline`` quickly; ref -> expected metrics text."""
    chunks, expected = [], {}
    for i in range(count):
        ref = f"refs/exps/{baseline[:2]}/{baseline[2:]}/exp-{i}"
        body = f'{{"acc": {i}}}\n'
        expected[ref] = body
        chunks.append(
            f"commit {ref}\ncommitter T <t@x> {1_700_000_000 + i} +0000\ndata 3\nexp\n"
            f"from {baseline}\nM 100644 inline eval/metrics.json\ndata {len(body)}\n{body}\n"
        )
    git(repo, "fast-import", "--quiet", stdin="".join(chunks))
    return expected


def test_set_get_list_delete(repo: Path) -> None:
    g = Git.open(repo)
    head = git(repo, "rev-parse", "HEAD")
    g.set_ref("refs/exps/ab/cd/exp-1", head, message="exq: new")
    assert git(repo, "rev-parse", "refs/exps/ab/cd/exp-1") == head
    assert g.get_ref("refs/exps/ab/cd/exp-1") == head
    assert g.get_ref("refs/exps/ab/cd/missing") is None
    assert g.list_refs("refs/exps/") == {"refs/exps/ab/cd/exp-1": head}
    assert g.delete_ref("refs/exps/ab/cd/exp-1") is True
    assert g.delete_ref("refs/exps/ab/cd/exp-1") is False
    assert git(repo, "for-each-ref", "refs/exps/") == ""


def test_set_ref_compare_and_set(repo: Path) -> None:
    g = Git.open(repo)
    one, two = git(repo, "rev-parse", "HEAD~1"), git(repo, "rev-parse", "HEAD")
    name = "refs/exq/queue/run-1"
    g.set_ref(name, one, expected_old=None)
    with pytest.raises(GitError, match="changed meanwhile"):
        g.set_ref(name, two, expected_old=None)
    with pytest.raises(GitError, match="changed meanwhile"):
        g.set_ref(name, two, expected_old=two)
    assert g.get_ref(name) == one
    g.set_ref(name, two, expected_old=one)
    assert git(repo, "rev-parse", name) == two
    with pytest.raises(GitError, match="changed meanwhile"):
        g.delete_ref(name, expected_old=one)
    assert g.delete_ref(name, expected_old=two)


def test_set_ref_fails_while_locked(repo: Path) -> None:
    g = Git.open(repo)
    (repo / ".git" / "refs" / "exps").mkdir()
    lock = repo / ".git" / "refs" / "exps" / "x.lock"
    with open(lock, "x"):  # held open, as by a process updating the ref now
        with pytest.raises(GitError, match="refs/exps/x"):
            g.set_ref("refs/exps/x", "HEAD")


def test_set_ref_rejects_bad_names_and_targets(repo: Path) -> None:
    g = Git.open(repo)
    with pytest.raises(GitError, match="invalid ref name"):
        g.set_ref("refs/exps/a..b", "HEAD")
    with pytest.raises(GitError, match="unknown revision 'f00d'"):
        g.set_ref("refs/exps/ok", "f00d")


NAMES = [
    "exp-1",
    "a..b",
    "a b",
    "a.lock",
    ".a",
    "a~1",
    "@",
    "a@{1}",
    "x.",
    "-a",
    "ü",
    "a*",
    "a:b",
    "a\\b",
]


@pytest.mark.parametrize("name", NAMES)
def test_check_ref_name_agrees_with_git(tmp_path: Path, name: str) -> None:
    full = f"refs/exps/{name}"
    expected = subprocess.run(["git", "check-ref-format", full], cwd=tmp_path).returncode == 0
    assert check_ref_name(full) is expected
    assert check_ref_component(name) is expected


def test_check_ref_names_needs_full_names() -> None:
    assert check_ref_name("refs/exps/ab/cd/exp") is True
    assert check_ref_name("HEAD") is False
    assert check_ref_name("refs/exps/a/") is False
    assert check_ref_component("a/b") is False


def test_resolve_all_rev_kinds(repo: Path) -> None:
    g = Git.open(repo)
    head, prev = git(repo, "rev-parse", "HEAD"), git(repo, "rev-parse", "HEAD~1")
    git(repo, "tag", "light", prev)
    git(repo, "tag", "-a", "annotated", "-m", "msg", prev)
    git(repo, "branch", "feature", prev)
    git(repo, "update-ref", "refs/exps/ab/cd/e1", prev)
    cases = {
        head: head,
        head[:7]: head,
        "main": head,
        "HEAD": head,
        "HEAD~1": prev,
        "HEAD^": prev,
        "light": prev,
        "annotated": prev,
        "feature": prev,
        "refs/heads/feature": prev,
        "refs/exps/ab/cd/e1": prev,
        "refs/tags/annotated": prev,
    }
    for rev, sha in cases.items():
        assert g.resolve(rev) == sha, rev
    for bad in ("nope", "HEAD~9", "0" * 40, "main..x", "abc"):
        with pytest.raises(GitError, match=f"unknown revision '{bad}'"):
            g.resolve(bad)


def test_read_blob_from_many_commits(repo: Path) -> None:
    baseline = git(repo, "rev-parse", "HEAD")
    expected = fast_import_experiments(repo, baseline, 200)
    g = Git.open(repo)
    refs = g.list_refs("refs/exps/")
    assert set(refs) == set(expected)
    for ref, sha in refs.items():
        assert g.read_blob(sha, "eval/metrics.json") == expected[ref].encode()
        assert g.read_blob(sha, "a.txt") == b"2\n"
        assert g.read_blob(sha, "eval") is None  # a folder is not a file
        assert g.read_blob(sha, "missing.json") is None
    assert g.list_files(refs[next(iter(refs))]) == ["a.txt", "eval/metrics.json"]
    assert g.list_files(baseline, "eval") == []


def test_commit_info_log_ancestry_and_listing(repo: Path) -> None:
    g = Git.open(repo)
    one, two = git(repo, "rev-parse", "HEAD~1"), git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "side", one)
    side = commit(repo, "b.txt", "b\n", "side work")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge side", "side")
    merge = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "-a", "v1", "-m", "v1", one)
    git(repo, "tag", "tree-tag", f"{two}^{{tree}}")
    exp = git(repo, "commit-tree", f"{two}^{{tree}}", "-p", two, "-m", "exp only")
    git(repo, "update-ref", "refs/exps/xx/yy/e", exp)

    info = g.commit_info(merge)
    assert info.sha == merge and info.parents == (two, side)
    assert info.message == "merge side\n"
    assert (info.author, info.email) == ("Test User", "test@example.com")
    assert int(info.time.timestamp()) == int(git(repo, "log", "-1", "--format=%ct", merge))
    assert info.time.utcoffset() is not None

    assert g.log(merge, 10) == [merge, two, one]  # first parent only
    assert g.log(merge, 2) == [merge, two]
    assert g.is_ancestor(one, merge) and g.is_ancestor(side, merge) and g.is_ancestor(merge, merge)
    assert not g.is_ancestor(merge, one)
    assert g.list_branches() == {"main": merge, "side": side}
    assert g.list_tags() == {"v1": one}
    assert sorted(g.all_commits()) == sorted([merge, two, one, side])
    assert g.all_commits()[0] == merge


def test_commit_info_keeps_the_timezone(repo: Path) -> None:
    env_date = "2021-02-03T04:05:06+05:30"
    out = subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "tz"],
        cwd=repo,
        env={**__import__("os").environ, "GIT_COMMITTER_DATE": env_date},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    info = Git.open(repo).commit_info("HEAD")
    assert info.time.utcoffset() == timedelta(hours=5, minutes=30)
    assert info.time.isoformat() == env_date


def test_create_branch(repo: Path) -> None:
    g = Git.open(repo)
    prev = git(repo, "rev-parse", "HEAD~1")
    g.create_branch("from-exp", prev)
    assert git(repo, "rev-parse", "refs/heads/from-exp") == prev
    with pytest.raises(GitError, match="already exists"):
        g.create_branch("from-exp", "HEAD")
    g.create_branch("from-exp", "HEAD", force=True)
    assert git(repo, "rev-parse", "refs/heads/from-exp") == git(repo, "rev-parse", "HEAD")
    with pytest.raises(GitError, match="invalid branch name"):
        g.create_branch("bad..name", "HEAD")
