"""``exq exp apply|branch|remove|list|gc|push|pull`` end to end, on real repos."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import PY, exq, write
from tests.e2e.exp_helpers import (
    assert_refused,
    commit_all,
    exp_names,
    exp_refs,
    exq_input,
    head,
    init_repo,
    show,
    workspace_bytes,
)
from tests.support import GIT_ENV, git

TRAIN = """\
from pathlib import Path
import yaml
p = yaml.safe_load(Path("params.yaml").read_text())["train"]
Path("model.txt").write_text(f"lr={p['lr']} epochs={p['epochs']}\\n")
Path("metrics.json").write_text('{"acc": %s}' % (p["lr"] * 2))
"""

DVCYAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    deps: [train.py]
    params: [train]
    outs: [model.txt]
    metrics:
    - metrics.json:
        cache: false
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two baselines: the first commit with experiments old1 and old2, then HEAD
    (main) with a and b. b also adds the file extra.txt. The workspace is clean."""
    root = init_repo(tmp_path_factory.mktemp("template") / "repo")
    write(root / "params.yaml", "train:\n  lr: 0.1\n  epochs: 3\n")
    write(root / "train.py", TRAIN)
    write(root / "dvc.yaml", DVCYAML)
    exq("repro", cwd=root)
    commit_all(root, "first")
    exq("exp", "run", "--temp", "-n", "old1", "-S", "train.lr=0.3", cwd=root)
    exq("exp", "run", "--temp", "-n", "old2", "-S", "train.lr=0.4", cwd=root)
    write(root / "params.yaml", "train:\n  lr: 0.1\n  epochs: 4\n")
    exq("repro", cwd=root)
    commit_all(root, "second")
    exq("exp", "run", "--temp", "-n", "a", "-S", "train.lr=0.5", cwd=root)
    write(root / "extra.txt", "made for b\n")
    exq("exp", "run", "--temp", "-n", "b", "-S", "train.lr=0.7", cwd=root)
    (root / "extra.txt").unlink()
    return root


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(template, root, symlinks=True)
    return root


def ref_of(root: Path, name: str) -> str:
    return next(ref for ref in exp_refs(root) if ref.endswith(f"/{name}"))


def sha_of(root: Path, name: str) -> str:
    return exp_refs(root)[ref_of(root, name)]


def first_commit(root: Path) -> str:
    return git(root, "rev-list", "--max-parents=0", "HEAD").strip()


# -- apply -----------------------------------------------------------------------


def test_apply_restores_files_and_cached_outs(repo: Path) -> None:
    baseline = head(repo)
    _, out, _ = exq("exp", "apply", "b", cwd=repo)

    assert out.strip() == "Changes for experiment 'b' have been applied to your current workspace."
    sha = sha_of(repo, "b")
    for path in ("params.yaml", "dvc.lock", "metrics.json", "extra.txt"):
        assert (repo / path).read_text() == show(repo, sha, path), path
    assert (repo / "model.txt").read_text() == "lr=0.7 epochs=4\n"  # from the cache
    assert head(repo) == baseline
    assert git(repo, "diff", "--cached", "--name-only") == ""
    _, status, _ = exq("status", cwd=repo)
    assert status.strip() == "Data and pipelines are up to date."

    # applying it again clobbers nothing: the workspace already holds b's content
    exq("exp", "apply", "b", cwd=repo)
    # but another experiment would overwrite b's changes, which are not committed
    code, _, err = exq("exp", "apply", "a", cwd=repo, check=False)
    assert_refused(code, err, "would overwrite uncommitted changes", "dvc.lock")


def test_apply_refuses_to_overwrite_uncommitted_changes(repo: Path) -> None:
    write(repo / "params.yaml", "train:\n  lr: 0.25\n  epochs: 4\n")
    before = workspace_bytes(repo)

    code, _, err = exq("exp", "apply", "a", cwd=repo, check=False)

    assert_refused(code, err, "would overwrite uncommitted changes", "params.yaml", "--force")
    assert workspace_bytes(repo) == before

    exq("exp", "apply", "--force", "a", cwd=repo)
    assert (repo / "params.yaml").read_text() == show(repo, sha_of(repo, "a"), "params.yaml")
    assert (repo / "model.txt").read_text() == "lr=0.5 epochs=4\n"


def test_apply_refuses_to_overwrite_an_edited_out(repo: Path) -> None:
    (repo / "model.txt").unlink()  # it may be a read-only link into the cache
    write(repo / "model.txt", "hand made\n")
    before = workspace_bytes(repo)

    code, _, err = exq("exp", "apply", "a", cwd=repo, check=False)

    assert_refused(code, err, "model.txt")
    assert workspace_bytes(repo) == before
    exq("exp", "apply", "-f", "a", cwd=repo)
    assert (repo / "model.txt").read_text() == "lr=0.5 epochs=4\n"


def test_apply_refuses_when_the_cache_lacks_an_out(repo: Path) -> None:
    lock = show(repo, sha_of(repo, "a"), "dvc.lock")
    md5 = lock.split("path: model.txt")[1].split("md5: ")[1].split()[0]
    obj = repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    obj.chmod(0o644)
    obj.unlink()
    before = workspace_bytes(repo)

    code, _, err = exq("exp", "apply", "a", cwd=repo, check=False)

    assert_refused(code, err, "model.txt", "cache")
    assert workspace_bytes(repo) == before


def test_apply_unknown_experiment(repo: Path) -> None:
    code, _, err = exq("exp", "apply", "nope", cwd=repo, check=False)
    assert_refused(code, err, "'nope'", "experiment")


# -- branch ----------------------------------------------------------------------


def test_branch_creates_a_branch_at_the_experiment(repo: Path) -> None:
    _, out, _ = exq("exp", "branch", "a", "big_lr", cwd=repo)
    assert out == (
        "Git branch 'big_lr' has been created from experiment 'a'.\n"
        "To switch to the new branch run:\n\n\tgit checkout big_lr\n"
    )
    assert git(repo, "rev-parse", "refs/heads/big_lr").strip() == sha_of(repo, "a")
    assert git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/main"

    exq("exp", "branch", "b", cwd=repo)
    assert git(repo, "rev-parse", "refs/heads/b-branch").strip() == sha_of(repo, "b")


def test_branch_refuses_an_existing_branch_and_unknown_names(repo: Path) -> None:
    main = head(repo)
    code, _, err = exq("exp", "branch", "a", "main", cwd=repo, check=False)
    assert_refused(code, err, "'main' already exists")
    assert head(repo) == main

    code, _, err = exq("exp", "branch", "nope", "x", cwd=repo, check=False)
    assert_refused(code, err, "'nope'")
    code, _, err = exq("exp", "branch", "a", "bad..name", cwd=repo, check=False)
    assert_refused(code, err, "bad..name")
    assert git(repo, "branch", "--format=%(refname:short)").split() == ["main"]


# -- remove ----------------------------------------------------------------------


def test_remove_by_name(repo: Path) -> None:
    _, out, _ = exq("exp", "remove", "a", "old1", cwd=repo)
    assert out.strip() == "Removed experiments: 'a' and 'old1'"
    assert exp_names(repo) == {"b", "old2"}


def test_remove_refuses_unknown_names_and_removes_nothing(repo: Path) -> None:
    refs = exp_refs(repo)
    code, _, err = exq("exp", "remove", "a", "nope", cwd=repo, check=False)
    assert_refused(code, err, "'nope'")
    assert exp_refs(repo) == refs
    code, _, err = exq("exp", "remove", cwd=repo, check=False)
    assert_refused(code, err, "--all-commits")
    assert exp_refs(repo) == refs


def test_remove_by_baseline_and_all(repo: Path) -> None:
    exq("exp", "remove", "--rev", first_commit(repo), cwd=repo)
    assert exp_names(repo) == {"a", "b"}
    _, out, _ = exq("exp", "remove", "--all", cwd=repo)
    assert out.strip() == "Removed experiments: 'a' and 'b'"
    assert exp_refs(repo) == {}
    _, out, _ = exq("exp", "rm", "-A", cwd=repo)
    assert out.strip() == "No experiments to remove."


# -- list ------------------------------------------------------------------------


def test_list_shows_heads_experiments_by_default(repo: Path) -> None:
    _, out, _ = exq("exp", "list", cwd=repo)
    a, b = sha_of(repo, "a")[:7], sha_of(repo, "b")[:7]
    assert out == f"main:\n\t{a} [a]\n\t{b} [b]\n"
    _, out, _ = exq("exp", "list", "--names-only", cwd=repo)
    assert out == "a\nb\n"
    _, out, _ = exq("exp", "ls", "--sha-only", cwd=repo)
    assert out.split() == [sha_of(repo, "a"), sha_of(repo, "b")]


def test_list_all_names_other_baselines_by_tag_or_sha(repo: Path) -> None:
    first = first_commit(repo)
    _, out, _ = exq("exp", "list", "--all", "--names-only", cwd=repo)
    assert out.split() == ["a", "b", "old1", "old2"]
    _, out, _ = exq("exp", "list", "-A", cwd=repo)
    assert out.splitlines()[3] == f"{first[:7]}:"
    git(repo, "tag", "v1", first)
    _, out, _ = exq("exp", "list", "--rev", "v1", cwd=repo)
    assert out.splitlines() == [
        "v1:",
        f"\t{sha_of(repo, 'old1')[:7]} [old1]",
        f"\t{sha_of(repo, 'old2')[:7]} [old2]",
    ]
    _, out, _ = exq("exp", "list", "-n", "2", "--names-only", cwd=repo)
    assert out.split() == ["a", "b", "old1", "old2"]


def test_list_with_no_experiments_prints_nothing(repo: Path) -> None:
    exq("exp", "remove", "-A", cwd=repo)
    _, out, _ = exq("exp", "list", cwd=repo)
    assert out == ""


# -- gc --------------------------------------------------------------------------


def test_gc_workspace_keeps_only_heads_experiments(repo: Path) -> None:
    _, out, _ = exq("exp", "gc", "-w", "-f", cwd=repo)
    assert out.startswith("Removed 2 experiments.")
    assert exp_names(repo) == {"a", "b"}
    _, out, _ = exq("exp", "gc", "--workspace", "--force", cwd=repo)
    assert out.strip() == "No experiments to remove."


def test_gc_needs_a_scope(repo: Path) -> None:
    refs = exp_refs(repo)
    code, _, err = exq("exp", "gc", "-f", cwd=repo, check=False)
    assert_refused(code, err, "--workspace")
    assert exp_refs(repo) == refs


def test_gc_asks_first(repo: Path) -> None:
    refs = exp_refs(repo)
    done = exq_input("exp", "gc", "-w", cwd=repo, text="n\n")
    assert done.returncode != 0
    assert "This will remove all experiments except those derived from the workspace" in (
        done.stderr
    )
    assert "Are you sure you want to proceed?" in done.stdout
    assert exp_refs(repo) == refs

    done = exq_input("exp", "gc", "-w", cwd=repo, text="y\n")
    assert done.returncode == 0, done.stderr
    assert "Removed 2 experiments." in done.stdout
    assert exp_names(repo) == {"a", "b"}


@pytest.mark.parametrize(
    ("setup", "flags", "kept"),
    [
        (["branch", "old"], ["-a"], {"a", "b", "old1", "old2"}),
        (["branch", "old"], ["-T"], {"a", "b"}),
        (["tag", "v1"], ["-T"], {"a", "b", "old1", "old2"}),
        ([], ["-A"], {"a", "b", "old1", "old2"}),
    ],
)
def test_gc_scopes(repo: Path, setup: list[str], flags: list[str], kept: set[str]) -> None:
    if setup:
        git(repo, *setup, first_commit(repo))
    exq("exp", "gc", "-f", *flags, cwd=repo)
    assert exp_names(repo) == kept


def commit_on(root: Path, parent: str, message: str) -> str:
    """A new commit with ``parent``'s tree on top of ``parent``; no ref moves."""
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(
        ["git", "commit-tree", f"{parent}^{{tree}}", "-p", parent, "-m", message],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def queue_ref(root: Path, name: str, parent: str) -> str:
    """A queued snapshot as the queue stores it: a commit on top of its baseline."""
    sha = commit_on(root, parent, "queued")
    git(root, "update-ref", f"refs/exq/queue/{name}", sha)
    return sha


def queued(root: Path) -> set[str]:
    out = git(root, "for-each-ref", "--format=%(refname)", "refs/exq/queue")
    return {line.rsplit("/", 1)[1] for line in out.split()}


def test_gc_clears_the_queue_unless_queued(repo: Path) -> None:
    queue_ref(repo, "here", head(repo))
    queue_ref(repo, "old", first_commit(repo))
    exq("exp", "gc", "-w", "--queued", "-f", cwd=repo)
    assert queued(repo) == {"here"}
    _, out, _ = exq("exp", "gc", "-w", "-f", cwd=repo)
    assert queued(repo) == set()
    assert "Removed 1 queued experiments." in out
    assert exp_names(repo) == {"a", "b"}


# -- push and pull ---------------------------------------------------------------


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    path = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(path))
    return path


def remote_refs(bare: Path) -> dict[str, str]:
    out = git(bare, "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps")
    return dict(line.split() for line in out.splitlines())


def test_push_named_default_and_all(repo: Path, bare: Path) -> None:
    _, out, _ = exq("exp", "push", str(bare), "a", cwd=repo)
    assert out.strip() == f"Pushed experiment a to Git remote '{bare}'."
    assert remote_refs(bare) == {ref_of(repo, "a"): sha_of(repo, "a")}
    # the commit and its baseline travelled with the ref
    git(bare, "cat-file", "-e", f"{sha_of(repo, 'a')}^{{commit}}")
    git(bare, "cat-file", "-e", f"{head(repo)}^{{commit}}")

    _, out, _ = exq("exp", "push", str(bare), cwd=repo)  # HEAD's: a is there, b is not
    assert out.splitlines() == [
        f"Experiment a is up to date on Git remote '{bare}'.",
        f"Pushed experiment b to Git remote '{bare}'.",
    ]
    exq("exp", "push", "-A", str(bare), cwd=repo)
    assert remote_refs(bare) == exp_refs(repo)


def test_push_refuses_a_diverged_ref_unless_forced(repo: Path, bare: Path) -> None:
    exq("exp", "push", str(bare), "a", cwd=repo)
    pushed = remote_refs(bare)
    exq("exp", "run", "--temp", "-f", "-n", "a", "-S", "train.lr=0.9", cwd=repo)
    assert sha_of(repo, "a") != pushed[ref_of(repo, "a")]

    code, _, err = exq("exp", "push", str(bare), "a", "b", cwd=repo, check=False)

    assert_refused(code, err, "'a'", "diverged", "--force")
    assert remote_refs(bare) == pushed  # b was not pushed either
    exq("exp", "push", "--force", str(bare), "a", cwd=repo)
    assert remote_refs(bare) == {ref_of(repo, "a"): sha_of(repo, "a")}


def test_push_fast_forward_needs_no_force(repo: Path, bare: Path) -> None:
    exq("exp", "push", str(bare), "a", cwd=repo)
    # a later commit on top of the experiment (as a checkpoint would be)
    child = commit_on(repo, sha_of(repo, "a"), "next")
    git(repo, "update-ref", ref_of(repo, "a"), child)
    exq("exp", "push", str(bare), "a", cwd=repo)
    assert remote_refs(bare)[ref_of(repo, "a")] == child


@pytest.fixture
def clone(repo: Path, bare: Path, tmp_path: Path) -> Path:
    """Another clone of the project, with the branches but no experiments."""
    git(repo, "push", "-q", str(bare), "main")
    exq("exp", "push", "-A", str(bare), cwd=repo)
    path = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "-b", "main", str(bare), str(path))
    return path


def test_pull_named_default_and_all(repo: Path, clone: Path) -> None:
    assert exp_refs(clone) == {}
    _, out, _ = exq("exp", "pull", "origin", "a", cwd=clone)
    assert out.strip() == "Pulled experiment a from Git remote 'origin'."
    assert exp_refs(clone) == {ref_of(repo, "a"): sha_of(repo, "a")}
    _, out, _ = exq("exp", "pull", "origin", cwd=clone)
    assert out.splitlines() == [
        "Experiment a is already up to date.",
        "Pulled experiment b from Git remote 'origin'.",
    ]
    exq("exp", "pull", "-A", "origin", cwd=clone)
    assert exp_refs(clone) == exp_refs(repo)
    assert git(clone, "for-each-ref", "refs/exq") == ""  # no staging refs left
    _, out, _ = exq("exp", "list", "--names-only", cwd=clone)
    assert out.split() == ["a", "b"]


def test_pull_refuses_a_diverged_ref_unless_forced(repo: Path, clone: Path) -> None:
    exq("exp", "pull", "origin", "a", cwd=clone)
    # another experiment of the same name and baseline, made here
    git(clone, "update-ref", ref_of(repo, "a"), commit_on(clone, head(clone), "mine"))
    mine = exp_refs(clone)

    code, _, err = exq("exp", "pull", "origin", "a", "b", cwd=clone, check=False)

    assert_refused(code, err, "'a'", "diverged")
    assert exp_refs(clone) == mine  # and b was not pulled either
    assert git(clone, "for-each-ref", "refs/exq") == ""
    exq("exp", "pull", "-f", "origin", "a", cwd=clone)
    assert exp_refs(clone)[ref_of(repo, "a")] == sha_of(repo, "a")


def test_pull_unknown_name(clone: Path) -> None:
    code, _, err = exq("exp", "pull", "origin", "nope", cwd=clone, check=False)
    assert_refused(code, err, "'nope'", "origin")
    assert exp_refs(clone) == {}


def test_apply_in_a_project_in_a_sub_folder_of_the_repository(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "repo")
    project = root / "proj"
    project.mkdir()
    shutil.rmtree(root / ".dvc", ignore_errors=True)
    (root / ".dvcignore").unlink(missing_ok=True)
    exq("init", "--subdir", cwd=project)
    write(project / "params.yaml", "train:\n  lr: 0.1\n  epochs: 3\n")
    write(project / "train.py", TRAIN)
    write(project / "dvc.yaml", DVCYAML)
    exq("repro", cwd=project)
    commit_all(root, "project in proj/")
    exq("exp", "run", "--temp", "-n", "deep", "-S", "train.lr=0.9", cwd=project)

    exq("exp", "apply", "deep", cwd=project)
    assert (project / "model.txt").read_text() == "lr=0.9 epochs=3\n"  # from the cache
    write(project / "model.txt", "edited by hand\n")
    code, _, err = exq("exp", "apply", "deep", cwd=project, check=False)
    assert_refused(code, err, "would overwrite", "model.txt")
