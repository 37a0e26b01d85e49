"""``exq repro`` and the pipeline commands, driven as a user drives them."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import yaml

from tests.e2e.conftest import PY, exq, runs, tool, write


def lock(root: Path, where: str = "dvc.lock") -> dict:
    return yaml.safe_load((root / where).read_text())


def snapshot(root: Path) -> dict[str, tuple[float, bytes]]:
    """Every file outside .git with its mtime and bytes."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        # .dvc/tmp holds exq's memo of hashes, which a dry run may refresh
        if rel.parts[0] == ".git" or rel.parts[:2] == (".dvc", "tmp") or not path.is_file():
            continue
        found[rel.as_posix()] = (path.stat().st_mtime_ns, path.read_bytes())
    return found


def cache_objects(root: Path) -> dict[str, Path]:
    base = root / ".dvc" / "cache" / "files" / "md5"
    return {p.parent.name + p.name: p for p in base.glob("*/*")} if base.exists() else {}


def assert_cache_sound(root: Path) -> None:
    """Every cache object holds the bytes its name says."""
    for name, path in cache_objects(root).items():
        assert hashlib.md5(path.read_bytes()).hexdigest() == name.removesuffix(".dir"), path


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def assert_one_line_error(stderr: str, *words: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    for word in words:
        assert word in lines[0], stderr


# -- what runs and what is skipped ---------------------------------------------


def test_first_run_runs_all_and_second_run_skips_all(basic: Path) -> None:
    _, out, _ = exq("repro", cwd=basic)
    ran = runs(basic)
    assert sorted(ran) == ["other", "prep", "train"]
    assert ran.index("prep") < ran.index("train")
    assert (basic / "model.txt").read_text() == "raw\nprep\ntrain\n"
    assert set(lock(basic)["stages"]) == {"prep", "train", "other"}
    assert (basic / "dvc.lock").stat().st_mode & 0o444 == 0o444  # readable as DVC writes it

    _, out, _ = exq("repro", cwd=basic)
    assert runs(basic) == []
    for name in ("prep", "train", "other"):
        assert f"Stage '{name}' didn't change, skipping" in out
    assert "Data and pipelines are up to date." in out


def test_editing_a_dep_or_param_reruns_only_affected_stages(basic: Path) -> None:
    exq("repro", cwd=basic)
    runs(basic)

    write(basic / "data" / "other.txt", "other, edited\n")
    exq("repro", cwd=basic)
    assert runs(basic) == ["other"]

    write(basic / "params.yaml", "prep:\n  n: 1\ntrain:\n  lr: 0.2\n")
    exq("repro", cwd=basic)
    assert runs(basic) == ["train"]
    assert lock(basic)["stages"]["train"]["params"] == {"params.yaml": {"train.lr": 0.2}}

    write(basic / "data" / "raw.txt", "raw, edited\n")
    exq("repro", cwd=basic)
    assert runs(basic) == ["prep", "train"]

    # prep reruns for its param, but its out is the same: train stays skipped
    write(basic / "params.yaml", "prep:\n  n: 2\ntrain:\n  lr: 0.2\n")
    _, out, _ = exq("repro", cwd=basic)
    assert runs(basic) == ["prep"]
    assert "Stage 'train' didn't change, skipping" in out


def test_force_runs_unchanged_stages(basic: Path) -> None:
    exq("repro", cwd=basic)
    runs(basic)
    exq("repro", "--force", cwd=basic)
    assert sorted(runs(basic)) == ["other", "prep", "train"]
    exq("repro", "-f", "train", cwd=basic)
    assert runs(basic) == ["prep", "train"]


def test_single_item_runs_only_the_target(basic: Path) -> None:
    exq("repro", cwd=basic)
    runs(basic)
    write(basic / "data" / "raw.txt", "raw, edited\n")
    write(basic / "params.yaml", "prep:\n  n: 1\ntrain:\n  lr: 0.5\n")
    exq("repro", "--single-item", "train", cwd=basic)
    assert runs(basic) == ["train"]
    _, out, _ = exq("status", "--json", cwd=basic)
    assert json.loads(out) == {"prep": [{"changed deps": {"data/raw.txt": "modified"}}]}


def test_dry_prints_what_would_run_and_changes_nothing(basic: Path) -> None:
    exq("repro", cwd=basic)
    runs(basic)
    write(basic / "data" / "raw.txt", "raw, edited\n")
    before = snapshot(basic)
    _, out, _ = exq("repro", "--dry", cwd=basic)
    assert "Running stage 'prep'" in out
    assert "Running stage 'train'" in out
    assert "Running stage 'other'" not in out
    assert snapshot(basic) == before

    # on a project never run, --dry writes no lock and no outs either
    (basic / "dvc.lock").unlink()
    for out_file in ("prep.txt", "model.txt", "other.txt"):
        (basic / out_file).unlink()
    before = snapshot(basic)
    _, out, _ = exq("repro", "--dry", cwd=basic)
    assert out.count("Running stage") == 3
    assert snapshot(basic) == before


def test_targets_select_stages_and_their_upstream(basic: Path) -> None:
    exq("repro", "prep", cwd=basic)
    assert runs(basic) == ["prep"]
    exq("repro", "train", cwd=basic)
    assert runs(basic) == ["train"]
    assert not (basic / "other.txt").exists()
    code, _, err = exq("repro", "nosuch", cwd=basic, check=False)
    assert code != 0
    assert_one_line_error(err, "nosuch")


def test_foreach_item_target(project: Path) -> None:
    write(
        project / "dvc.yaml",
        f"""\
stages:
  build:
    foreach: [a, b, c]
    do:
      cmd: {tool("run", "build-${item}", "out-${item}.txt")}
      outs:
      - out-${{item}}.txt
""",
    )
    exq("repro", "build@b", cwd=project)
    assert runs(project) == ["build-b"]
    assert list(lock(project)["stages"]) == ["build@b"]
    exq("repro", "build", cwd=project)
    assert sorted(runs(project)) == ["build-a", "build-c"]
    assert set(lock(project)["stages"]) == {"build@a", "build@b", "build@c"}


def sub_project(project: Path) -> None:
    """sub/dvc.yaml makes sub/gen.txt, the root dvc.yaml uses it."""
    write(
        project / "sub" / "dvc.yaml",
        f"""\
stages:
  gen:
    cmd: {tool("run", "gen", "gen.txt")}
    outs:
    - gen.txt
""",
    )
    write(project / "sub" / "tool.py", (project / "tool.py").read_text())
    write(
        project / "dvc.yaml",
        f"""\
stages:
  use:
    cmd: {tool("run", "use", "use.txt", "sub/gen.txt")}
    deps:
    - sub/gen.txt
    outs:
    - use.txt
""",
    )


def test_dvcyaml_files_in_sub_folders_form_one_graph(project: Path) -> None:
    sub_project(project)
    exq("repro", "use", cwd=project)
    assert runs(project) == ["use"]
    assert (project / "use.txt").read_text() == "gen\nuse\n"
    assert runs(project / "sub") == ["gen"]
    assert list(lock(project, "sub/dvc.lock")["stages"]) == ["gen"]
    assert list(lock(project)["stages"]) == ["use"]
    _, out, _ = exq("dag", "--json", cwd=project)
    assert json.loads(out)["edges"] == [{"from": "sub/dvc.yaml:gen", "to": "use"}]

    exq("repro", "--force", "sub/dvc.yaml:gen", cwd=project)
    assert runs(project / "sub") == ["gen"]
    assert runs(project) == []
    # gen's out is the same, so use is not out of date
    _, out, _ = exq("status", cwd=project)
    assert out.strip() == "Data and pipelines are up to date."


def test_targets_are_relative_to_the_current_folder(project: Path) -> None:
    sub_project(project)
    exq("repro", "gen", cwd=project / "sub")
    assert runs(project / "sub") == ["gen"]
    assert runs(project) == []
    _, out, _ = exq("status", "gen", cwd=project / "sub")
    assert out.strip() == "Data and pipelines are up to date."
    exq("repro", "../dvc.yaml:use", cwd=project / "sub")
    assert runs(project) == ["use"]
    code, _, err = exq("repro", "use", cwd=project / "sub", check=False)
    assert code != 0
    assert_one_line_error(err, "use", "sub/dvc.yaml")


def test_single_item_targets_still_run_in_graph_order(project: Path) -> None:
    # s1 -> s2 -> s3; `repro -s s3 s1` must not start s3 before s1 is done, even
    # though s2, between them, is not selected ("serial" stages fail on overlap)
    write(
        project / "dvc.yaml",
        "stages:\n"
        + "".join(
            f"""\
  s{i}:
    cmd: {tool("serial", f"s{i}", f"s{i}.txt")}
    deps:
    - {f"s{i - 1}.txt" if i > 1 else "tool.py"}
    outs:
    - s{i}.txt
"""
            for i in (1, 2, 3)
        ),
    )
    exq("repro", cwd=project)
    assert runs(project) == ["s1", "s2", "s3"]
    exq("repro", "--force", "-s", "s3", "s1", "-j", "4", cwd=project)
    assert runs(project) == ["s1", "s3"]


def test_an_out_folder_satisfies_a_dep_inside_it(project: Path) -> None:
    write(
        project / "dvc.yaml",
        f"""\
stages:
  use:
    cmd: {tool("run", "use", "use.txt", "feat/a.txt")}
    deps:
    - feat/a.txt
    outs:
    - use.txt
  make:
    cmd: {tool("run", "make", "feat/a.txt")}
    outs:
    - feat
""",
    )
    exq("repro", "use", cwd=project)
    assert runs(project) == ["make", "use"]
    entry = lock(project)["stages"]["make"]["outs"][0]
    assert entry["path"] == "feat" and entry["md5"].endswith(".dir") and entry["nfiles"] == 1


# -- concurrency ---------------------------------------------------------------


def two_rendezvous_stages(project: Path) -> None:
    write(
        project / "dvc.yaml",
        f"""\
stages:
  left:
    cmd: {tool("rendezvous", "left", "right", "left.txt")}
    outs:
    - left.txt
  right:
    cmd: {tool("rendezvous", "right", "left", "right.txt")}
    outs:
    - right.txt
""",
    )


def test_independent_stages_run_at_the_same_time_with_prefixed_output(project: Path) -> None:
    two_rendezvous_stages(project)
    # each stage waits until the other one has started: they can only both
    # finish when they run side by side
    _, out, _ = exq("repro", "--jobs", "2", cwd=project)
    lines = out.splitlines()
    assert "[left] left met right" in lines
    assert "[right] right met left" in lines
    assert "[left] ran left" in lines
    assert sorted(runs(project)) == ["left", "right"]


def test_jobs_1_runs_stages_one_by_one(project: Path) -> None:
    write(
        project / "dvc.yaml",
        "stages:\n"
        + "".join(
            f"""\
  s{i}:
    cmd: {tool("serial", f"s{i}", f"s{i}.txt")}
    outs:
    - s{i}.txt
"""
            for i in range(3)
        ),
    )
    _, out, _ = exq("repro", "-j", "1", cwd=project)
    assert runs(project) == ["s0", "s1", "s2"]
    assert "ran s0" in out.splitlines()  # one at a time: no prefix needed


def test_jobs_1_cannot_satisfy_a_rendezvous(project: Path) -> None:
    # the counter-proof of the concurrency test: one at a time, the first stage
    # times out (its helper waits 30 s at most, so shorten it through the file)
    two_rendezvous_stages(project)
    text = (project / "tool.py").read_text().replace("seconds=30.0", "seconds=0.5")
    write(project / "tool.py", text)
    code, out, err = exq("repro", "-j", "1", cwd=project, check=False)
    assert code != 0
    assert_one_line_error(err, "left", "exit")
    assert runs(project) == []


# -- failures ------------------------------------------------------------------


def test_a_failing_stage_stops_the_run_and_keeps_finished_locks(project: Path) -> None:
    write(
        project / "dvc.yaml",
        f"""\
stages:
  first:
    cmd: {tool("run", "first", "first.txt")}
    outs:
    - first.txt
  bad:
    cmd: {tool("fail", "3")}
    deps:
    - first.txt
    outs:
    - bad.txt
  after:
    cmd: {tool("run", "after", "after.txt", "bad.txt")}
    deps:
    - bad.txt
    outs:
    - after.txt
""",
    )
    code, out, err = exq("repro", cwd=project, check=False)
    assert code != 0
    assert_one_line_error(err, "bad", "3")
    assert err.count("'bad'") == 1, err
    assert "about to fail" in out
    assert runs(project) == ["first"]
    assert list(lock(project)["stages"]) == ["first"]
    assert not (project / "after.txt").exists()
    assert not list(project.glob(".dvc.lock*"))


def test_an_unreadable_params_file_fails_its_stage_in_one_line(project: Path) -> None:
    write(project / "config.json", "{broken")
    write(
        project / "dvc.yaml",
        f"""\
stages:
  a:
    cmd: {tool("run", "a", "a.txt")}
    params:
    - config.json:
      - lr
    outs:
    - a.txt
""",
    )
    code, _, err = exq("repro", cwd=project, check=False)
    assert code != 0
    assert_one_line_error(err, "config.json", "'a'")
    assert runs(project) == []


def test_a_missing_out_after_the_run_fails_the_stage(project: Path) -> None:
    write(
        project / "dvc.yaml",
        f"""\
stages:
  forgetful:
    cmd: {tool("run", "forgetful", "other.txt")}
    outs:
    - promised.txt
""",
    )
    code, _, err = exq("repro", cwd=project, check=False)
    assert code != 0
    assert_one_line_error(err, "forgetful", "promised.txt")
    assert err.count("forgetful") == 1, err
    assert not (project / "dvc.lock").exists()


def test_outs_are_removed_before_a_run_unless_persistent(project: Path) -> None:
    # each command appends to its out: only the persistent one keeps the old lines
    write(
        project / "dvc.yaml",
        """\
stages:
  fresh:
    cmd: echo line >> fresh.txt
    outs:
    - fresh.txt
  kept:
    cmd: echo line >> kept.txt
    outs:
    - kept.txt:
        persist: true
""",
    )
    exq("repro", cwd=project)
    exq("repro", "--force", cwd=project)
    assert (project / "fresh.txt").read_text() == "line\n"
    assert (project / "kept.txt").read_text() == "line\nline\n"
    # the first version of kept.txt is still whole in the cache
    assert md5(b"line\n") in cache_objects(project)
    assert_cache_sound(project)


def test_uncached_outs_are_hashed_in_the_lock_but_not_cached(project: Path) -> None:
    cmd = " && ".join(
        [
            tool("run", "report", "metrics.json"),
            tool("run", "m", "model.txt"),
            tool("run", "c", "cached.txt"),
        ]
    )
    write(
        project / "dvc.yaml",
        f"""\
stages:
  report:
    cmd: {cmd}
    metrics:
    - metrics.json:
        cache: false
    outs:
    - model.txt:
        cache: false
    - cached.txt
""",
    )
    exq("repro", cwd=project)
    outs = {o["path"]: o for o in lock(project)["stages"]["report"]["outs"]}
    assert outs["model.txt"]["md5"] == md5(b"m\n")
    assert outs["metrics.json"]["md5"] == md5(b"report\n")
    objects = cache_objects(project)
    assert md5(b"m\n") not in objects and md5(b"report\n") not in objects
    assert md5(b"c\n") in objects
    ignored = (project / ".gitignore").read_text().splitlines()
    assert "/cached.txt" in ignored and "/model.txt" not in ignored


# -- restoring from the cache --------------------------------------------------


def test_a_deleted_out_is_restored_from_the_cache_without_running(basic: Path) -> None:
    exq("repro", cwd=basic)
    runs(basic)
    (basic / "model.txt").unlink()
    _, out, _ = exq("repro", cwd=basic)
    assert runs(basic) == []
    assert (basic / "model.txt").read_text() == "raw\nprep\ntrain\n"
    assert "train" in out


def test_checkout_restores_deleted_outs(project: Path) -> None:
    write(
        project / "dvc.yaml",
        f"""\
stages:
  make:
    cmd: {tool("run", "a", "feat/a.txt")} && {tool("run", "b", "feat/sub/b.txt")} \
&& {tool("run", "m", "model.txt")}
    outs:
    - feat
    - model.txt
""",
    )
    exq("repro", cwd=project)
    runs(project)
    import shutil

    shutil.rmtree(project / "feat")
    (project / "model.txt").unlink()
    _, out, _ = exq("status", "--json", cwd=project)
    assert json.loads(out) == {
        "make": [{"changed outs": {"feat": "deleted", "model.txt": "deleted"}}]
    }
    _, out, _ = exq("checkout", cwd=project)
    assert (project / "feat" / "sub" / "b.txt").read_text() == "b\n"
    assert (project / "model.txt").read_text() == "m\n"
    assert runs(project) == []
    _, out, _ = exq("status", cwd=project)
    assert out.strip() == "Data and pipelines are up to date."


def test_user_edit_of_a_linked_out_never_corrupts_the_cache(basic: Path) -> None:
    exq("repro", cwd=basic)
    original = (basic / "model.txt").read_bytes()
    try:
        with open(basic / "model.txt", "ab") as handle:  # `echo more >> model.txt`
            handle.write(b"more\n")
    except PermissionError:
        pass  # protected read-only link: the cache is safe by construction
    assert_cache_sound(basic)
    assert md5(original) in cache_objects(basic)
    if (basic / "model.txt").read_bytes() != original:
        _, out, _ = exq("status", "--json", cwd=basic)
        assert json.loads(out) == {"train": [{"changed outs": {"model.txt": "modified"}}]}
        code, _, _ = exq("checkout", cwd=basic, check=False)  # the edit is in no cache object
        assert code == 1
    exq("checkout", "--force", cwd=basic)
    assert (basic / "model.txt").read_bytes() == original
    # prep.txt has other bytes, but a shared inode would have shown it too
    assert (basic / "prep.txt").read_text() == "raw\nprep\n"


def test_identical_outs_are_independent_files(project: Path) -> None:
    # two outs with the same bytes share one cache object, never one workspace file
    write(
        project / "dvc.yaml",
        f"""\
stages:
  twins:
    cmd: {tool("run", "x", "one.txt")} && {tool("run", "x", "two.txt")}
    outs:
    - one.txt
    - two.txt
""",
    )
    exq("repro", cwd=project)
    try:
        with open(project / "one.txt", "ab") as handle:
            handle.write(b"more\n")
    except PermissionError:
        return
    assert (project / "two.txt").read_text() == "x\n"
    assert_cache_sound(project)


# -- tracked data (exq add) and status -------------------------------------------


def test_add_tracks_a_file_and_a_folder(project: Path) -> None:
    write(project / "data.csv", "a,b\n1,2\n")
    write(project / "images" / "one.png", "1")
    write(project / "images" / "deep" / "two.png", "2")
    exq("add", "data.csv", cwd=project)
    exq("add", "images", cwd=project)
    tracked = yaml.safe_load((project / "data.csv.dvc").read_text())
    assert tracked == {
        "outs": [{"md5": md5(b"a,b\n1,2\n"), "size": 8, "hash": "md5", "path": "data.csv"}]
    }
    folder = yaml.safe_load((project / "images.dvc").read_text())["outs"][0]
    assert folder["path"] == "images" and folder["md5"].endswith(".dir")
    assert folder["nfiles"] == 2 and folder["size"] == 2
    ignored = (project / ".gitignore").read_text().splitlines()
    assert "/data.csv" in ignored and "/images" in ignored
    assert md5(b"a,b\n1,2\n") in cache_objects(project)

    _, out, _ = exq("status", cwd=project)
    assert out.strip() == "Data and pipelines are up to date."
    # replace the file, as editors do (write a new file, rename it over)
    write(project / "data.csv.new", "a,b\n3,4\n")
    os.replace(project / "data.csv.new", project / "data.csv")
    _, out, _ = exq("status", cwd=project)
    assert "data.csv.dvc:" in out and "modified:" in out and "data.csv" in out
    _, out, _ = exq("status", "--json", cwd=project)
    assert json.loads(out) == {"data.csv.dvc": [{"changed outs": {"data.csv": "modified"}}]}

    exq("checkout", "--force", cwd=project)  # the new bytes are in no cache object
    assert (project / "data.csv").read_text() == "a,b\n1,2\n"


def test_add_refuses_to_overlap_tracked_data(project: Path) -> None:
    # A .dvc file inside a tracked folder would change the folder it sits in;
    # a folder holding tracked data would track it twice (DVC refuses that too).
    write(project / "data" / "d1" / "f.txt", "f\n")
    write(project / "outer" / "z.txt", "z\n")
    exq("add", "data", "outer/z.txt", cwd=project)
    before = sorted(p.relative_to(project).as_posix() for p in project.rglob("*.dvc"))
    for path, words in [
        ("data/d1", ("'data/d1'", "'data'", "data.dvc")),
        ("data/d1/f.txt", ("'data/d1/f.txt'", "data.dvc")),
        ("outer", ("'outer'", "'outer/z.txt'", "outer/z.txt.dvc")),
    ]:
        code, _, err = exq("add", path, cwd=project, check=False)
        assert code == 1
        assert_one_line_error(err, *words)
    after = sorted(p.relative_to(project).as_posix() for p in project.rglob("*.dvc"))
    assert after == before
    _, out, _ = exq("status", cwd=project)
    assert out.strip() == "Data and pipelines are up to date."


def test_add_refuses_a_stage_out(basic: Path) -> None:
    exq("repro", cwd=basic)
    for path in ("model.txt", "./prep.txt"):
        code, _, err = exq("add", path, cwd=basic, check=False)
        assert code != 0
        assert_one_line_error(err, path.removeprefix("./"), "stage")
    assert not list(basic.glob("*.txt.dvc"))
    exq("add", "data/raw.txt", cwd=basic)  # a dep may be tracked data
    assert (basic / "data" / "raw.txt.dvc").exists()
    _, out, _ = exq("status", cwd=basic)
    assert out.strip() == "Data and pipelines are up to date."


def test_status_json_reports_every_kind_of_change(basic: Path) -> None:
    _, out, _ = exq("status", "--json", cwd=basic)
    never_run = json.loads(out)
    assert set(never_run) == {"prep", "train", "other"}
    exq("repro", cwd=basic)
    _, out, _ = exq("status", "--json", cwd=basic)
    assert json.loads(out) == {}
    write(basic / "params.yaml", "prep:\n  n: 1\ntrain:\n  lr: 0.3\n")
    write(basic / "data" / "other.txt", "changed\n")
    (basic / "model.txt").unlink()
    text = (basic / "dvc.yaml").read_text()
    write(basic / "dvc.yaml", text.replace("run prep prep.txt", "run prep  prep.txt"))
    _, out, _ = exq("status", "--json", cwd=basic)
    assert json.loads(out) == {
        "prep": ["changed command"],
        "train": [
            {"changed deps": {"params.yaml": {"train.lr": "modified"}}},
            {"changed outs": {"model.txt": "deleted"}},
        ],
        "other": [{"changed deps": {"data/other.txt": "modified"}}],
    }


# -- dag and stages --------------------------------------------------------------


def test_dag_formats(basic: Path) -> None:
    _, out, _ = exq("dag", "--json", cwd=basic)
    graph = json.loads(out)
    assert graph == {
        "nodes": ["prep", "train", "other"],
        "edges": [{"from": "prep", "to": "train"}],
    }
    _, out, _ = exq("dag", "--dot", cwd=basic)
    assert out.startswith("strict digraph {") and '"prep" -> "train";' in out
    _, out, _ = exq("dag", "--mermaid", cwd=basic)
    assert out.startswith("flowchart TD")
    ids = {
        line.split("[")[0].strip(): line.split('"')[1] for line in out.splitlines() if "[" in line
    }
    edges = [line.strip().split("-->") for line in out.splitlines() if "-->" in line]
    assert [(ids[a], ids[b]) for a, b in edges] == [("prep", "train")]
    _, out, _ = exq("dag", cwd=basic)
    assert "prep" in out and "train" in out and "other" in out


def test_stage_add_then_list(project: Path) -> None:
    write(project / "dvc.yaml", "# my pipeline\nstages:\n  prep:  # first\n    cmd: echo\n")
    write(project / "params.yaml", "lr: 0.1\nepochs: 3\n")
    exq(
        "stage",
        "add",
        "-n",
        "train",
        "-d",
        "data.csv",
        "-o",
        "model.pkl",
        "-O",
        "log.txt",
        "-p",
        "lr,epochs",
        "-M",
        "scores.json",
        "--plots",
        "loss.csv",
        PY,
        "train.py",
        "--fast",
        cwd=project,
    )
    text = (project / "dvc.yaml").read_text()
    assert "# my pipeline" in text and "# first" in text
    _, out, _ = exq("stage", "list", "--json", cwd=project)
    assert json.loads(out)[1:] == [
        {
            "name": "train",
            "file": "dvc.yaml",
            "cmd": f"{PY} train.py --fast",
            "wdir": ".",
            "deps": ["data.csv"],
            "outs": ["log.txt", "model.pkl"],
            "metrics": ["scores.json"],
            "plots": ["loss.csv"],
            "params": {"params.yaml": ["epochs", "lr"]},
            "frozen": False,
        }
    ]
    # as dvc stage add: cached outs go to .gitignore, uncached ones stay in git
    assert (project / ".gitignore").read_text().split() == ["/model.pkl", "/loss.csv"]
    code, _, err = exq("stage", "add", "-n", "train", "echo", cwd=project, check=False)
    assert code != 0
    assert_one_line_error(err, "train")
    _, out, _ = exq("stage", "list", cwd=project)
    assert "train" in out


# -- an invalid pipeline is refused before anything runs -------------------------

INVALID = {
    "cycle": (
        """\
stages:
  a:
    cmd: {run_a}
    deps: [b.txt]
    outs: [a.txt]
  b:
    cmd: {run_b}
    deps: [a.txt]
    outs: [b.txt]
""",
        "cycle",
    ),
    "one out, two stages": (
        """\
stages:
  a:
    cmd: {run_a}
    outs: [same.txt]
  b:
    cmd: {run_b}
    outs: [same.txt]
""",
        "same.txt",
    ),
    "overlapping outs": (
        """\
stages:
  a:
    cmd: {run_a}
    outs: [feat]
  b:
    cmd: {run_b}
    outs: [feat/b.txt]
""",
        "feat",
    ),
    "escaping path": (
        """\
stages:
  a:
    cmd: {run_a}
    outs: [a.txt]
  b:
    cmd: {run_b}
    deps: [../x]
    outs: [b.txt]
""",
        "../x",
    ),
    "bad foreach": (
        """\
stages:
  a:
    foreach: notalist
    do:
      cmd: {run_a}
""",
        "foreach",
    ),
    "malformed yaml": ("stages:\n  a:\n    cmd: [unclosed\n", "dvc.yaml"),
    "missing key": (
        """\
stages:
  a:
    cmd: {run_a} ${{nosuch.key}}
    outs: [a.txt]
""",
        "nosuch.key",
    ),
}


def test_invalid_pipelines_are_refused_before_anything_runs(project: Path) -> None:
    for case, (text, word) in INVALID.items():
        write(
            project / "dvc.yaml",
            text.format(run_a=tool("run", "a", "a.txt"), run_b=tool("run", "b", "b.txt")),
        )
        # every command loads the whole pipeline first; check all three on two cases
        commands = (
            [["repro"], ["status"], ["dag"]] if case in ("cycle", "missing key") else [["repro"]]
        )
        for command in commands:
            code, out, err = exq(*command, cwd=project, check=False)
            assert code != 0, (case, command, out)
            assert_one_line_error(err, word)
            if case in ("malformed yaml", "missing key", "bad foreach"):
                assert "dvc.yaml" in err, (case, err)
        assert runs(project) == [], case
        assert not (project / "dvc.lock").exists(), case
        assert not (project / "a.txt").exists(), case


def test_not_a_project(tmp_path: Path) -> None:
    code, _, err = exq("repro", cwd=tmp_path, check=False)
    assert code != 0
    assert_one_line_error(err, "exq init")


def test_checkout_takes_data_paths_dvc_files_and_stages(basic: Path) -> None:
    exq("repro", cwd=basic)
    write(basic / "extra.txt", "extra\n")
    exq("add", "extra.txt", cwd=basic)
    for rel in ("model.txt", "prep.txt", "extra.txt"):
        (basic / rel).unlink()

    _, out, _ = exq("checkout", "model.txt", cwd=basic)  # a stage's out, by its path
    assert out.split() == ["M", "model.txt"]
    assert not (basic / "prep.txt").exists() and not (basic / "extra.txt").exists()
    _, out, _ = exq("checkout", "extra.txt.dvc", cwd=basic)  # a .dvc file
    assert out.split() == ["M", "extra.txt"] and (basic / "extra.txt").read_text() == "extra\n"
    (basic / "extra.txt").unlink()
    _, out, _ = exq("checkout", "extra.txt", "prep", cwd=basic)  # tracked data, a stage
    assert sorted(out.split()) == ["M", "M", "extra.txt", "prep.txt"]
    _, out, _ = exq("status", cwd=basic)
    assert out.strip() == "Data and pipelines are up to date."
    code, _, err = exq("checkout", "nowhere.txt", cwd=basic, check=False)
    assert code != 0 and err.startswith("ERROR: 'nowhere.txt' is not a stage, a .dvc file")
    assert len(err.strip().splitlines()) == 1
