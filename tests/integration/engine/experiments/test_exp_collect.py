"""Collecting params and metrics of commits and of the workspace, and the rows of exp show.

Real git repositories; experiments are commits made with exq's git API on top
of a baseline, with a chosen committer date, under refs/exps (as exp run makes them).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from exq.engine.errors import ExperimentError
from exq.engine.experiments.collect import Collector
from exq.engine.experiments.refs import exp_ref
from exq.engine.experiments.rows import RevisionSet, collect_rev, exp_show_rows, select_revisions
from exq.engine.git import Git

BASE_TIME = 1_700_000_000

PARAMS = "train:\n  lr: 0.1\n  epochs: 3\nseed: 7\nunused: yes\nsmall: 1e-05\n"
DVCYAML = """\
stages:
  train:
    cmd: python train.py
    params:
    - train.lr
    - model.toml:
    outs:
    - model.bin
    metrics:
    - metrics.json:
        cache: false
    - scores.yaml
"""


def run_git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def commit_all(root: Path, message: str, when: int = BASE_TIME) -> str:
    run_git(root, "add", "-A")
    date = f"{when} +0000"
    run_git(
        root, "commit", "-qm", message, env={"GIT_COMMITTER_DATE": date, "GIT_AUTHOR_DATE": date}
    )
    return run_git(root, "rev-parse", "HEAD")


def make_exp(root: Path, name: str, files: dict[str, str], when: int) -> str:
    """An experiment of HEAD holding ``files`` on top of it, committed at ``when``."""
    git = Git.open(root)
    baseline = git.head_sha()
    assert baseline is not None
    snap = git.snapshot_workspace(
        f"exq: experiment {name}",
        parent=baseline,
        extra={path: text.encode() for path, text in files.items()},
    )
    date = f"{when} +0000"
    sha = run_git(
        root,
        "commit-tree",
        git.tree_of(snap),
        "-p",
        baseline,
        "-m",
        name,
        env={"GIT_COMMITTER_DATE": date, "GIT_AUTHOR_DATE": date},
    )
    git.set_ref(exp_ref(baseline, name), sha)
    return sha


@pytest.fixture
def repo(git_repo: Path) -> Path:
    """A baseline on main with params in yaml and toml, and a committed metrics file."""
    write(
        git_repo,
        {
            "params.yaml": PARAMS,
            "model.toml": "seed = 1\n[layers]\nsize = 64\n",
            "dvc.yaml": DVCYAML,
            "metrics.json": json.dumps({"acc": 0.5, "loss": {"train": 0.3, "val": 0.4}}),
            ".gitignore": "/scores.yaml\n/model.bin\n",
        },
    )
    commit_all(git_repo, "baseline")
    return git_repo


def collector(root: Path, **kwargs: bool) -> Collector:
    return Collector(Git.open(root), root, root / ".dvc" / "cache", **kwargs)


def test_commit_values_whole_params_files_and_committed_metrics(repo: Path) -> None:
    head = run_git(repo, "rev-parse", "HEAD")
    data = collector(repo).commit(head)
    assert data.errors == []
    # whole files, as DVC shows them: root params.yaml, and model.toml the stage names
    assert data.params == {
        "params.yaml": {
            "train.lr": 0.1,
            "train.epochs": 3,
            "seed": 7,
            "unused": "yes",
            "small": 1e-05,
        },
        "model.toml": {"seed": 1, "layers.size": 64},
    }
    assert data.metrics == {"metrics.json": {"acc": 0.5, "loss.train": 0.3, "loss.val": 0.4}}


def test_dates_become_iso_strings(repo: Path) -> None:
    sha = make_exp(repo, "dated", {"params.yaml": PARAMS + "when: 2024-01-02\n"}, BASE_TIME + 1)
    params = collector(repo).commit(sha).params
    assert params["params.yaml"]["when"] == "2024-01-02"
    json.dumps(params)  # JSON data throughout


def test_param_deps_keeps_only_the_keys_stages_use(repo: Path) -> None:
    head = run_git(repo, "rev-parse", "HEAD")
    data = collector(repo, param_deps=True).commit(head)
    assert data.params == {
        "params.yaml": {"train.lr": 0.1},
        "model.toml": {"seed": 1, "layers.size": 64},  # a whole-file dependency
    }


def test_cached_metrics_come_from_the_cache_object_the_lock_names(repo: Path) -> None:
    scores = b"f1: 0.75\n"
    md5 = hashlib.md5(scores).hexdigest()
    lock = (
        "schema: '2.0'\nstages:\n  train:\n    cmd: python train.py\n    outs:\n"
        f"    - path: scores.yaml\n      hash: md5\n      md5: {md5}\n      size: {len(scores)}\n"
    )
    sha = make_exp(repo, "cached", {"dvc.lock": lock}, BASE_TIME + 10)
    coll = collector(repo)
    assert "scores.yaml" not in coll.commit(sha).metrics  # not in the cache yet: missing
    obj = repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    obj.parent.mkdir(parents=True)
    obj.write_bytes(scores)
    assert collector(repo).commit(sha).metrics["scores.yaml"] == {"f1": 0.75}


def test_workspace_reads_files_on_disk(repo: Path) -> None:
    write(repo, {"params.yaml": PARAMS.replace("lr: 0.1", "lr: 0.5"), "scores.yaml": "f1: 0.9\n"})
    data = collector(repo).workspace()
    assert data.params["params.yaml"]["train.lr"] == 0.5
    assert data.metrics["scores.yaml"] == {"f1": 0.9}
    assert data.metrics["metrics.json"]["acc"] == 0.5


def test_a_broken_file_is_an_error_line_not_a_failure(repo: Path) -> None:
    sha = make_exp(
        repo,
        "broken",
        {"metrics.json": "{not json", "params.yaml": PARAMS.replace("0.1", "0.2")},
        BASE_TIME + 10,
    )
    data = collector(repo).commit(sha)
    assert data.params["params.yaml"]["train.lr"] == 0.2
    assert "metrics.json" not in data.metrics
    assert len(data.errors) == 1 and "metrics.json" in data.errors[0]


def test_a_broken_dvcyaml_is_reported_with_the_params_still_read(repo: Path) -> None:
    sha = make_exp(repo, "badyaml", {"dvc.yaml": "stages: [\n"}, BASE_TIME + 10)
    data = collector(repo).commit(sha)
    assert data.params["params.yaml"]["train.lr"] == 0.1
    assert data.metrics == {}
    assert len(data.errors) == 1 and "dvc.yaml" in data.errors[0]


TEMPLATED = """\
stages:
  build:
    foreach: ${models}
    do:
      cmd: python build.py ${item.thresh}
      metrics:
      - ${item.out}:
          cache: false
"""


def test_templated_pipelines_resolve_per_commit(git_repo: Path) -> None:
    """Experiments that change what ``${...}`` reads resolve again; others reuse the plan."""
    params = "models:\n  us:\n    thresh: 10\n    out: us.json\nlr: 0.1\n"
    write(
        git_repo,
        {
            "params.yaml": params,
            "dvc.yaml": TEMPLATED,
            "us.json": '{"acc": 1}',
            "gb.json": '{"acc": 2}',
        },
    )
    commit_all(git_repo, "templated")
    only_lr = make_exp(
        git_repo, "lr", {"params.yaml": params.replace("lr: 0.1", "lr: 0.2")}, BASE_TIME + 1
    )
    more = params.replace("lr: 0.1", "  gb:\n    thresh: 15\n    out: gb.json\nlr: 0.1")
    two_models = make_exp(git_repo, "two", {"params.yaml": more}, BASE_TIME + 2)
    coll = collector(git_repo)
    head = run_git(git_repo, "rev-parse", "HEAD")
    assert coll.commit(head).metrics == {"us.json": {"acc": 1}}
    assert coll.commit(only_lr).metrics == {"us.json": {"acc": 1}}
    assert coll.commit(only_lr).params["params.yaml"]["lr"] == 0.2
    assert coll.commit(two_models).metrics == {"us.json": {"acc": 1}, "gb.json": {"acc": 2}}
    assert coll.commit(head).metrics == {"us.json": {"acc": 1}}  # the memo did not leak


def test_nested_dvcyaml_with_wdir_vars_file_and_metrics_folder(git_repo: Path) -> None:
    write(
        git_repo,
        {
            "sub/dvc.yaml": (
                "vars:\n- cfg.json\nstages:\n  eval:\n    cmd: python eval.py ${size}\n"
                "    wdir: work\n    params:\n    - ../cfg.json:\n    metrics:\n    - out:\n"
                "        cache: false\n"
            ),
            "sub/cfg.json": '{"size": 3, "opt": {"beta": 0.9}}',
            "sub/work/out/a.json": '{"x": 1}',
            "sub/work/out/b.yaml": "y: 2\n",
            # hidden folders and committed virtualenvs are not searched, as on disk
            ".hidden/dvc.yaml": "metrics:\n- m.json\n",
            ".hidden/m.json": '{"h": 1}',
            "env/pyvenv.cfg": "home = /usr\n",
            "env/dvc.yaml": "metrics:\n- m.json\n",
            "env/m.json": '{"v": 1}',
        },
    )
    sha = commit_all(git_repo, "nested")
    data = collector(git_repo).commit(sha)
    assert data.errors == []
    assert data.params == {"sub/cfg.json": {"size": 3, "opt.beta": 0.9}}
    assert data.metrics == {"sub/work/out/a.json": {"x": 1}, "sub/work/out/b.yaml": {"y": 2}}
    assert collector(git_repo).workspace().metrics == data.metrics


def test_rows_workspace_baseline_then_experiments_newest_first(repo: Path) -> None:
    head = run_git(repo, "rev-parse", "HEAD")
    old = make_exp(repo, "old", {"params.yaml": PARAMS.replace("0.1", "0.2")}, BASE_TIME + 10)
    new = make_exp(repo, "new", {"params.yaml": PARAMS.replace("0.1", "0.3")}, BASE_TIME + 20)
    rows = exp_show_rows(Git.open(repo), collector(repo))
    assert [(r.name, r.kind, r.rev, r.baseline) for r in rows] == [
        ("workspace", "workspace", None, head),
        ("main", "baseline", head, head),
        ("new", "experiment", new, head),
        ("old", "experiment", old, head),
    ]
    assert [r.params["params.yaml"]["train.lr"] for r in rows] == [0.1, 0.1, 0.3, 0.2]
    assert rows[2].created is not None and rows[2].created.timestamp() == BASE_TIME + 20
    assert all(r.state == "success" and r.parent is None for r in rows)


def test_more_baselines_with_branches_tags_and_history(repo: Path) -> None:
    first = run_git(repo, "rev-parse", "HEAD")
    make_exp(repo, "on-first", {"params.yaml": PARAMS.replace("0.1", "0.9")}, BASE_TIME + 5)
    run_git(repo, "tag", "v1")
    run_git(repo, "branch", "old-branch")
    write(repo, {"params.yaml": PARAMS.replace("0.1", "0.4")})
    second = commit_all(repo, "second", BASE_TIME + 100)
    git = Git.open(repo)
    names = [(r.sha, r.name) for r in select_revisions(git, RevisionSet())]
    assert names == [(second, "main")]
    # a tag names a commit rather than a branch; HEAD keeps its branch name
    assert [(r.sha, r.name) for r in select_revisions(git, RevisionSet(all_branches=True))] == [
        (second, "main"),
        (first, "v1"),
    ]
    assert [r.name for r in select_revisions(git, RevisionSet(num=2))] == ["main", "v1"]
    rows = exp_show_rows(git, collector(repo), RevisionSet(all_tags=True))
    assert [(r.name, r.kind) for r in rows] == [
        ("workspace", "workspace"),
        ("main", "baseline"),
        ("v1", "baseline"),
        ("on-first", "experiment"),
    ]
    run_git(repo, "checkout", "-q", "--detach", first)
    assert select_revisions(Git.open(repo), RevisionSet())[0].name == "v1"
    run_git(repo, "tag", "-d", "v1")
    assert select_revisions(Git.open(repo), RevisionSet())[0].name == "old-branch"
    run_git(repo, "branch", "-D", "old-branch")
    assert select_revisions(Git.open(repo), RevisionSet())[0].name == first[:7]


def test_collect_rev_names_experiments_branches_and_the_workspace(repo: Path) -> None:
    make_exp(repo, "exp-one", {"params.yaml": PARAMS.replace("0.1", "0.6")}, BASE_TIME + 1)
    git = Git.open(repo)
    coll = collector(repo)
    assert collect_rev(git, coll, "exp-one").params["params.yaml"]["train.lr"] == 0.6
    assert collect_rev(git, coll, "main").params["params.yaml"]["train.lr"] == 0.1
    write(repo, {"params.yaml": PARAMS.replace("0.1", "0.7")})
    assert collect_rev(git, coll, "workspace").params["params.yaml"]["train.lr"] == 0.7
    with pytest.raises(ExperimentError, match="unknown revision or experiment 'nope'"):
        collect_rev(git, coll, "nope")


def test_three_hundred_experiments_are_all_read(repo: Path) -> None:
    git = Git.open(repo)
    baseline = git.head_sha()
    assert baseline is not None
    for i in range(300):
        sha = git.snapshot_workspace(
            "exp",
            parent=baseline,
            extra={
                "params.yaml": PARAMS.replace("0.1", f"0.{i + 1:03d}").encode(),
                "metrics.json": json.dumps({"acc": i}).encode(),
            },
        )
        git.set_ref(exp_ref(baseline, f"exp-{i:03d}"), sha)
    # How fast is measured in bench/, never asserted here.
    rows = exp_show_rows(git, collector(repo))
    assert len(rows) == 302
    assert {r.metrics["metrics.json"]["acc"] for r in rows[2:]} == set(range(300))


def test_pending_runs_join_their_group_and_a_started_chain_is_listed_once(repo: Path) -> None:
    from datetime import UTC, datetime

    from exq.engine.experiments.rows import PendingRun, add_pending

    head = run_git(repo, "rev-parse", "HEAD")
    made = make_exp(repo, "long", {"params.yaml": PARAMS.replace("0.1", "0.2")}, BASE_TIME + 5)
    queued_snapshot = make_exp(
        repo, "scratch", {"params.yaml": PARAMS.replace("0.1", "0.4")}, BASE_TIME + 6
    )
    run_git(repo, "update-ref", "-d", exp_ref(head, "scratch"))  # only a snapshot, no ref
    git = Git.open(repo)
    coll = collector(repo)
    rows = exp_show_rows(git, coll)
    now = datetime.now(UTC)
    pending = [
        PendingRun(name="long", snapshot=made, baseline=head, state="running", created=now),
        PendingRun(
            name="next", snapshot=queued_snapshot, baseline=head, state="queued", created=now
        ),
    ]
    shown = add_pending(rows, pending, coll)
    names = [(row.name, row.kind, row.state) for row in shown]
    assert names == [
        ("workspace", "workspace", "success"),
        ("main", "baseline", "success"),
        ("next", "queued", "queued"),
        ("long", "experiment", "running"),
    ]
    assert shown[2].params["params.yaml"]["train.lr"] == 0.4
