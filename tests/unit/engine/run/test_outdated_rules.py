"""Is a stage out of date: DVC's rules as tables of (change, expected reasons/status)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from exq.engine.data.hashing import HashInfo
from exq.engine.run.outdated import stage_changes, stage_status, status_json
from exq.engine.spec.lockfile import LockEntry, LockPath
from exq.engine.spec.stage import Out, Stage

H_DATA = HashInfo("a" * 32, 4)
H_DIR = HashInfo("b" * 32 + ".dir", 8, 2)
H_MODEL = HashInfo("c" * 32, 1)
H_OTHER = HashInfo("d" * 32, 4)


def base_stage(**changes: Any) -> Stage:
    stage = Stage(
        name="train",
        dvcfile="dvc.yaml",
        cmd="python train.py",
        deps=["data.csv", "feats"],
        outs=[Out("model.pkl"), Out("metrics.json", kind="metrics", cache=False)],
        params={"params.yaml": ["lr", "opt"]},
    )
    return replace(stage, **changes)


def base_entry(**changes: Any) -> LockEntry:
    entry = LockEntry(
        cmd="python train.py",
        deps=[LockPath("data.csv", H_DATA.md5, 4), LockPath("feats", H_DIR.md5, 8, 2)],
        params={"params.yaml": {"lr": 0.01, "opt": {"name": "adam"}}},
        outs=[LockPath("metrics.json", H_OTHER.md5, 4), LockPath("model.pkl", H_MODEL.md5, 1)],
    )
    return replace(entry, **changes)


def deps_ok() -> dict[str, HashInfo | None]:
    return {"data.csv": H_DATA, "feats": H_DIR}


def outs_ok() -> dict[str, HashInfo | None]:
    return {"model.pkl": H_MODEL, "metrics.json": H_OTHER}


def params_ok() -> dict[str, dict[str, Any]]:
    return {"params.yaml": {"lr": 0.01, "opt": {"name": "adam"}}}


def check(*, stage=None, entry="base", deps=None, outs=None, params=None, **kw) -> list[str]:
    return stage_changes(
        stage or base_stage(),
        base_entry() if entry == "base" else entry,
        deps_ok() if deps is None else deps,
        outs_ok() if outs is None else outs,
        params_ok() if params is None else params,
        **kw,
    )


def test_up_to_date() -> None:
    assert check() == []


def test_isexec_and_size_do_not_count() -> None:
    deps = {"data.csv": HashInfo(H_DATA.md5, 999, isexec=True), "feats": H_DIR}
    assert check(deps=deps) == []


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ({"deps": {"data.csv": H_OTHER, "feats": H_DIR}}, ["deps changed: data.csv (modified)"]),
        ({"deps": {"data.csv": None, "feats": H_DIR}}, ["deps changed: data.csv (deleted)"]),
        ({"deps": {"feats": H_DIR}}, ["deps changed: data.csv (deleted)"]),
        (
            {"deps": {"data.csv": H_OTHER, "feats": None}},
            ["deps changed: data.csv (modified), feats (deleted)"],
        ),
        (
            {"outs": {"model.pkl": None, "metrics.json": H_OTHER}},
            ["outs changed: model.pkl (deleted)"],
        ),
        (
            {"outs": {"model.pkl": H_MODEL, "metrics.json": H_DATA}},
            ["outs changed: metrics.json (modified)"],
        ),
        (
            {"params": {"params.yaml": {"lr": 0.02, "opt": {"name": "adam"}}}},
            ["params changed: params.yaml: lr (modified)"],
        ),
        (
            {"params": {"params.yaml": {"opt": {"name": "sgd"}}}},
            ["params changed: params.yaml: lr (deleted), opt (modified)"],
        ),
        ({"params": {}}, ["params changed: params.yaml (deleted)"]),
        ({"entry": None}, ["not in dvc.lock"]),
        ({"entry": base_entry(cmd="python old.py")}, ["cmd changed"]),
        ({"entry": base_entry(cmd=["python train.py"])}, ["cmd changed"]),  # list != str
        ({"entry": base_entry(params={})}, ["params changed: params.yaml (new)"]),
        (
            {"entry": base_entry(deps=[LockPath("feats", H_DIR.md5, 8, 2)])},
            ["deps changed: data.csv (modified)"],
        ),  # dep added to dvc.yaml
        ({"stage": base_stage(deps=["data.csv"])}, []),  # dep removed: DVC ignores it
        ({"stage": base_stage(outs=[Out("model.pkl")])}, []),  # out removed
        ({"stage": base_stage(params={"params.yaml": ["lr"]})}, []),  # param key removed
        (
            {
                "stage": base_stage(params={"params.yaml": ["lr", "opt", "seed"]}),
                "params": {"params.yaml": {"lr": 0.01, "opt": {"name": "adam"}, "seed": 1}},
            },
            ["params changed: params.yaml: seed (new)"],
        ),
        ({"stage": base_stage(always_changed=True)}, ["always changed"]),
        (
            {
                "stage": base_stage(cmd="python new.py", frozen=True),
                "deps": {"data.csv": None, "feats": None},
            },
            [],
        ),  # frozen never runs
        (
            {"outs": outs_ok(), "not_in_cache": {"model.pkl"}},
            ["outs changed: model.pkl (not in cache)"],
        ),
        ({"not_in_cache": {"metrics.json"}}, []),  # cache: false outs have no cache object
    ],
)
def test_changes(case: dict[str, Any], expected: list[str]) -> None:
    assert check(**case) == expected


def test_several_reasons_in_order() -> None:
    reasons = check(
        entry=base_entry(cmd="old"),
        deps={"data.csv": H_OTHER, "feats": H_DIR},
        outs={"model.pkl": None, "metrics.json": H_OTHER},
        params={"params.yaml": {"lr": 0.5, "opt": {"name": "adam"}}},
    )
    assert reasons == [
        "cmd changed",
        "deps changed: data.csv (modified)",
        "params changed: params.yaml: lr (modified)",
        "outs changed: model.pkl (deleted)",
    ]


@pytest.mark.parametrize(
    ("now", "recorded", "changed"),
    [
        ((8, 4), [8, 4], False),  # a tuple read from a params file equals the list in the lock
        ([8, 4], [8, 4], False),
        ([8, 4], [4, 8], True),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, False),
        (1.0, 1, False),  # Python equality, as DVC
        ("1", 1, True),
        (None, None, False),
        (None, 0, True),
    ],
)
def test_param_value_equality(now: Any, recorded: Any, changed: bool) -> None:
    stage = base_stage(params={"params.yaml": ["v"]})
    entry = base_entry(params={"params.yaml": {"v": recorded}})
    reasons = check(stage=stage, entry=entry, params={"params.yaml": {"v": now}})
    assert reasons == (["params changed: params.yaml: v (modified)"] if changed else [])


def test_whole_file_params() -> None:
    stage = base_stage(params={"other.yaml": []})
    entry = base_entry(params={"other.yaml": {"x": 1, "y": [1, 2]}})
    same = {"other.yaml": {"y": [1, 2], "x": 1}}
    assert check(stage=stage, entry=entry, params=same) == []
    changed = {"other.yaml": {"y": [1], "z": 3}}
    assert check(stage=stage, entry=entry, params=changed) == [
        "params changed: other.yaml: y (modified), z (new), x (deleted)"
    ]


def test_callback_stage_always_changes() -> None:
    stage = Stage(name="cb", dvcfile="dvc.yaml", cmd="echo hi")
    assert stage_changes(stage, LockEntry(cmd="echo hi"), {}, {}, {}) == ["always changed"]
    # a stage with only params is not a callback stage
    params_only = replace(stage, params={"params.yaml": ["lr"]})
    entry = LockEntry(cmd="echo hi", params={"params.yaml": {"lr": 1}})
    assert stage_changes(params_only, entry, {}, {}, {"params.yaml": {"lr": 1}}) == []


# -- dvc status --json -----------------------------------------------------------


def test_status_matches_dvc_json_shape() -> None:
    stage = base_stage(cmd="python new.py", always_changed=True)
    status = stage_status(
        stage,
        base_entry(),
        {"data.csv": H_OTHER, "feats": H_DIR},
        {"model.pkl": None, "metrics.json": H_OTHER},
        {"params.yaml": {"lr": 0.02}},
    )
    assert status == [
        {
            "changed deps": {
                "data.csv": "modified",
                "params.yaml": {"lr": "modified", "opt": "deleted"},
            }
        },
        {"changed outs": {"model.pkl": "deleted"}},
        "always changed",
        "changed command",
    ]


def test_status_without_lock_entry_is_like_dvc() -> None:
    # dvc status on a stage missing from dvc.lock: existing deps are "modified",
    # params files "new", outs "modified" or "deleted"; the command is not flagged.
    status = stage_status(base_stage(), None, deps_ok(), {"model.pkl": H_MODEL}, params_ok())
    assert status == [
        {"changed deps": {"data.csv": "modified", "feats": "modified", "params.yaml": "new"}},
        {"changed outs": {"model.pkl": "modified", "metrics.json": "deleted"}},
    ]


def test_status_paths_are_repo_relative_and_frozen_skips_deps() -> None:
    stage = base_stage(dvcfile="sub/dvc.yaml", wdir="sub/work", frozen=True, cmd="other")
    status = stage_status(stage, base_entry(), {}, {"model.pkl": None, "metrics.json": H_OTHER}, {})
    assert status == [{"changed outs": {"sub/work/model.pkl": "deleted"}}, "changed command"]
    assert status_json({"sub/dvc.yaml:train": status, "ok": []}) == {"sub/dvc.yaml:train": status}


def test_tracked_values_missing_from_a_dvc_written_lock_are_no_change() -> None:
    # DVC leaves ${...} values out of dvc.lock; exq records them. Both must read as clean.
    stage = base_stage(
        params={"params.yaml": ["lr", "opt", "seed"]}, tracked={"params.yaml": ["seed"]}
    )
    now = {"params.yaml": {"lr": 0.01, "opt": {"name": "adam"}, "seed": 7}}
    assert check(stage=stage, params=now) == []
    only_tracked = base_stage(params={"other.yaml": ["seed"]}, tracked={"other.yaml": ["seed"]})
    entry = base_entry(params={})
    assert check(stage=only_tracked, entry=entry, params={"other.yaml": {"seed": 7}}) == []


def test_tracked_value_recorded_in_the_lock_still_counts() -> None:
    stage = base_stage(params={"params.yaml": ["lr", "seed"]}, tracked={"params.yaml": ["seed"]})
    entry = base_entry(params={"params.yaml": {"lr": 0.01, "seed": 7}})
    changed = check(stage=stage, entry=entry, params={"params.yaml": {"lr": 0.01, "seed": 8}})
    assert changed == ["params changed: params.yaml: seed (modified)"]
