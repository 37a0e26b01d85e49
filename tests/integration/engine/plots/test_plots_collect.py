"""Plots files of the workspace and of commits: git blobs, cache objects, folders, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from exq.engine.data.cache import Cache
from exq.engine.data.hashdb import HashState
from exq.engine.errors import ExperimentError, GitError
from exq.engine.experiments.refs import exp_ref
from exq.engine.git import Git
from exq.engine.plots.collect import PlotsCollector, resolve_revisions
from exq.engine.plots.model import build_charts
from tests.support import git


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _tsv(metric: str, values: list[float]) -> str:
    rows = "".join(f"{1700000000000 + i}\t{i}\t{v}\n" for i, v in enumerate(values))
    return f"timestamp\tstep\t{metric}\n{rows}"


DVCYAML = """\
stages:
  train:
    cmd: python train.py
    wdir: work
    plots:
    - logs:
        cache: true
    - ../roc.csv:
        cache: false
plots:
- extra.json
"""


def _lock(logs_md5: str) -> str:
    return f"""\
schema: '2.0'
stages:
  train:
    cmd: python train.py
    outs:
    - path: logs
      hash: md5
      md5: {logs_md5}
      size: 1
      nfiles: 2
    - path: ../roc.csv
      hash: md5
      md5: 0123456789abcdef0123456789abcdef
      size: 1
"""


@pytest.fixture
def repo(git_repo: Path) -> tuple[Path, str]:
    """A commit whose cached ``work/logs`` folder is only in the cache, plus git-tracked plots."""
    root = git_repo
    (root / ".dvc").mkdir()
    _write(root / "dvc.yaml", DVCYAML)
    _write(root / "work" / "logs" / "loss.tsv", _tsv("loss", [0.5, 0.25]))
    _write(root / "work" / "logs" / "train" / "acc.tsv", _tsv("acc", [0.1, 0.2]))
    _write(root / "work" / "logs" / "notes.txt", "not a plot\n")
    _write(root / "roc.csv", "fpr,tpr\n0,0\n1,1\n")
    _write(root / "extra.json", '[{"f1": 0.5}]')
    with HashState(root) as state:
        info = Cache(root / ".dvc" / "cache").save(root / "work" / "logs", state)
    _write(root / "dvc.lock", _lock(info.md5))
    _write(root / ".gitignore", "/work/logs\n/.dvc/cache\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "one")
    return root, git(root, "rev-parse", "HEAD").strip()


def _collector(root: Path) -> PlotsCollector:
    return PlotsCollector(Git.open(root), root, root / ".dvc" / "cache")


def test_workspace_reads_files_and_folders(repo: tuple[Path, str]) -> None:
    root, _ = repo
    rev = _collector(root).workspace()
    assert rev.errors == []
    # As DVC: top-level plots first, then the stages' plots outs.
    assert list(rev.files) == [
        "extra.json",
        "work/logs/loss.tsv",
        "work/logs/train/acc.tsv",
        "roc.csv",
    ]
    assert rev.files["extra.json"].records == ({"f1": 0.5},)


def test_commit_reads_a_cached_folder_from_the_cache(repo: tuple[Path, str]) -> None:
    root, sha = repo
    shutil.rmtree(root / "work" / "logs")  # only the cache has it now
    collector = _collector(root)
    rev = collector.commit(sha, "HEAD")
    assert rev.errors == []
    assert sorted(rev.files) == [
        "extra.json",
        "roc.csv",
        "work/logs/loss.tsv",
        "work/logs/train/acc.tsv",
    ]
    charts = build_charts([rev])
    loss = next(c for c in charts if c.metric == "loss")
    assert (loss.x, loss.lines[0].xs, loss.lines[0].ys) == ("step", (0, 1), (0.5, 0.25))
    # A target inside the cached folder narrows to that file.
    narrowed = collector.commit(sha, "HEAD", ["work/logs/train"])
    assert list(narrowed.files) == ["work/logs/train/acc.tsv"]
    # Without the cache the folder is simply not there.
    bare = PlotsCollector(Git.open(root), root, None).commit(sha, "HEAD")
    assert sorted(bare.files) == ["extra.json", "roc.csv"]


def test_broken_files_become_errors_of_their_revision(repo: tuple[Path, str]) -> None:
    root, sha = repo
    _write(root / "roc.csv", "fpr,tpr\n0,0\n")
    _write(root / "extra.json", "{broken")
    collector = _collector(root)
    work = collector.workspace()
    assert [e.split(":")[:2] for e in work.errors] == [["workspace", " extra.json"]]
    assert work.files["roc.csv"].records == ({"fpr": "0", "tpr": "0"},)
    assert collector.commit(sha, "HEAD").errors == []
    _write(root / "dvc.yaml", "stages: [oops\n")
    assert "dvc.yaml" in collector.workspace().errors[0]


def test_resolve_revisions(repo: tuple[Path, str]) -> None:
    root, sha = repo
    g = Git.open(root)
    assert resolve_revisions(g, []) == [("HEAD", sha), ("workspace", None)]
    assert resolve_revisions(g, ["main"]) == [("main", sha), ("workspace", None)]
    assert resolve_revisions(g, ["main", "HEAD", "main"]) == [("main", sha), ("HEAD", sha)]
    assert resolve_revisions(g, ["workspace"]) == [("workspace", None)]
    with pytest.raises(ExperimentError, match="nope"):
        resolve_revisions(g, ["nope"])
    g.set_ref(exp_ref(sha, "exp-a"), sha)
    assert resolve_revisions(g, ["exp-a"], experiment=True) == [(sha[:7], sha), ("exp-a", sha)]
    assert resolve_revisions(g, ["exp-a", "exp-a"], experiment=True) == [("exp-a", sha)]
    with pytest.raises(ExperimentError, match="unknown experiment 'main'"):
        resolve_revisions(g, ["main"], experiment=True)
    with pytest.raises(GitError):
        resolve_revisions(None, ["main"])
    assert resolve_revisions(None, []) == [("workspace", None)]


def test_no_commit_yet_draws_the_workspace_alone(git_repo: Path) -> None:
    assert resolve_revisions(Git.open(git_repo), []) == [("workspace", None)]
