"""dvc.lock read and written in DVC's schema 2.0 layout, byte for byte.

``DVC_LOCK`` was written by the real dvc 3.67.1 (``dvc repro`` on a project with
a folder dep and out, an executable dep, nested and whole-file params, a
``cache: false`` metric, a plot and a list ``cmd``). The folded ``cmd`` lines
end in a space, as ruamel writes them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from exq.engine.data.hashing import HashInfo
from exq.engine.errors import DvcFileError
from exq.engine.spec.lockfile import (
    LockEntry,
    LockPath,
    dumps_lock,
    parse_lock,
    read_lock,
    update_lock,
    write_lock,
)

DVC_LOCK = (
    "schema: '2.0'\n"
    "stages:\n"
    "  prep:\n"
    "    cmd: ./prep.sh\n"
    "    deps:\n"
    "    - path: data\n"
    "      hash: md5\n"
    "      md5: 6ea46d53348e675e87743182f72de908.dir\n"
    "      size: 4\n"
    "      nfiles: 2\n"
    "    - path: prep.sh\n"
    "      hash: md5\n"
    "      md5: dbb4fc31d74bceafdcb25799031de21b\n"
    "      size: 30\n"
    "      isexec: true\n"
    "    outs:\n"
    "    - path: prepared\n"
    "      hash: md5\n"
    "      md5: 6ea46d53348e675e87743182f72de908.dir\n"
    "      size: 4\n"
    "      nfiles: 2\n"
    "  train:\n"
    "    cmd: python3 -c \"import json; open('model.bin','w').write('m'); \n"
    "      json.dump({'acc':0.9}, open('metrics.json','w')); \n"
    "      open('plot.csv','w').write('x,y\\n1,2\\n')\"\n"
    "    deps:\n"
    "    - path: prepared\n"
    "      hash: md5\n"
    "      md5: 6ea46d53348e675e87743182f72de908.dir\n"
    "      size: 4\n"
    "      nfiles: 2\n"
    "    params:\n"
    "      params.yaml:\n"
    "        seed: 42\n"
    "        train:\n"
    "          lr: 1e-05\n"
    "          big: 1e+20\n"
    "          name: '1.0'\n"
    "          word: yes\n"
    "          nothing:\n"
    "          neg: -3\n"
    "          layers:\n"
    "          - units: 8\n"
    "            act: relu\n"
    "          - units: 4\n"
    "            act: tanh\n"
    "          opt:\n"
    "            name: adam\n"
    "            beta: 0.9\n"
    "          on: true\n"
    "      other.json.yaml:\n"
    "        list:\n"
    "        - 1\n"
    "        - 2\n"
    "        x: 1\n"
    "    outs:\n"
    "    - path: metrics.json\n"
    "      hash: md5\n"
    "      md5: e5f4957673dc0b55d1bf8a8581a167b9\n"
    "      size: 12\n"
    "    - path: model.bin\n"
    "      hash: md5\n"
    "      md5: 6f8f57715090da2632453988d9a1501b\n"
    "      size: 1\n"
    "    - path: plot.csv\n"
    "      hash: md5\n"
    "      md5: 344fd2323dd33d5c058b7cf27de029e8\n"
    "      size: 8\n"
    "  multi:\n"
    "    cmd:\n"
    "    - echo one > m1.txt\n"
    "    - echo two > m2.txt\n"
    "    outs:\n"
    "    - path: m1.txt\n"
    "      hash: md5\n"
    "      md5: 5bbf5a52328e7439ae6e719dfe712200\n"
    "      size: 4\n"
    "    - path: m2.txt\n"
    "      hash: md5\n"
    "      md5: c193497a1a06b2c72230e6146ff47080\n"
    "      size: 4\n"
)

TRAIN_CMD = (
    "python3 -c \"import json; open('model.bin','w').write('m'); json.dump({'acc':0.9}, "
    "open('metrics.json','w')); open('plot.csv','w').write('x,y\\n1,2\\n')\""
)
DIR_MD5 = "6ea46d53348e675e87743182f72de908.dir"


def fixture_entries() -> dict[str, LockEntry]:
    """The fixture's content built by hand, in an order different from DVC's sorting."""
    return {
        "prep": LockEntry(
            cmd="./prep.sh",
            deps=[
                LockPath("prep.sh", "dbb4fc31d74bceafdcb25799031de21b", 30, isexec=True),
                LockPath.from_hash("data", HashInfo(DIR_MD5, 4, 2)),
            ],
            outs=[LockPath("prepared", DIR_MD5, 4, 2)],
        ),
        "train": LockEntry(
            cmd=TRAIN_CMD,
            deps=[LockPath("prepared", DIR_MD5, 4, 2)],
            params={
                "other.json.yaml": {"x": 1, "list": [1, 2]},
                "params.yaml": {
                    "train": {
                        "lr": 1e-05,
                        "big": 1e20,
                        "name": "1.0",
                        "word": "yes",
                        "nothing": None,
                        "neg": -3,
                        "layers": [{"units": 8, "act": "relu"}, {"units": 4, "act": "tanh"}],
                        "opt": {"name": "adam", "beta": 0.9},
                        "on": True,
                    },
                    "seed": 42,
                },
            },
            outs=[
                LockPath("plot.csv", "344fd2323dd33d5c058b7cf27de029e8", 8),
                LockPath("model.bin", "6f8f57715090da2632453988d9a1501b", 1),
                LockPath("metrics.json", "e5f4957673dc0b55d1bf8a8581a167b9", 12),
            ],
        ),
        "multi": LockEntry(
            cmd=["echo one > m1.txt", "echo two > m2.txt"],
            outs=[
                LockPath("m2.txt", "c193497a1a06b2c72230e6146ff47080", 4),
                LockPath("m1.txt", "5bbf5a52328e7439ae6e719dfe712200", 4),
            ],
        ),
    }


def test_written_lock_is_byte_identical_to_dvc(tmp_path: Path) -> None:
    path = tmp_path / "dvc.lock"
    write_lock(path, fixture_entries())
    assert path.read_text() == DVC_LOCK
    assert [p.name for p in tmp_path.iterdir()] == ["dvc.lock"]  # no temp file left


def test_dvc_lock_parses_to_the_same_entries(tmp_path: Path) -> None:
    path = tmp_path / "dvc.lock"
    path.write_text(DVC_LOCK)
    entries = read_lock(path)
    assert list(entries) == ["prep", "train", "multi"]
    train = entries["train"]
    assert train.cmd == TRAIN_CMD  # the folded lines come back as one line
    values = train.params["params.yaml"]["train"]
    assert values["lr"] == 1e-05 and isinstance(values["lr"], float)
    assert values["big"] == 1e20
    assert values["name"] == "1.0" and values["word"] == "yes"  # YAML 1.2: strings
    assert values["on"] is True and values["nothing"] is None
    assert entries["prep"].dep("prep.sh") == LockPath(
        "prep.sh", "dbb4fc31d74bceafdcb25799031de21b", 30, isexec=True
    )
    assert entries["prep"].out("prepared").to_hash() == HashInfo(DIR_MD5, 4, 2)
    assert dumps_lock(entries) == DVC_LOCK
    by_hand = fixture_entries()
    assert parse_lock(dumps_lock(by_hand)) == parse_lock(DVC_LOCK)


def test_update_keeps_other_entries_and_appends_new_ones(tmp_path: Path) -> None:
    path = tmp_path / "dvc.lock"
    path.write_text(DVC_LOCK)
    entries = read_lock(path)
    update_lock(path, {"train": entries["train"]}, ["prep", "train", "multi"])
    assert path.read_text() == DVC_LOCK  # an unchanged update leaves every byte
    new_prep = LockEntry(
        cmd="./prep.sh --fast", deps=entries["prep"].deps, outs=entries["prep"].outs
    )
    extra = LockEntry(cmd="echo x", outs=[LockPath("x.txt", "0" * 32, 2)])
    update_lock(path, {"extra": extra, "prep": new_prep}, ["prep", "train", "multi", "extra"])
    after = read_lock(path)
    assert list(after) == ["prep", "train", "multi", "extra"]
    assert after["prep"].cmd == "./prep.sh --fast"
    assert after["train"] == entries["train"]
    update_lock(path, {"extra": extra}, ["train", "extra"])  # prep, multi left dvc.yaml
    assert list(read_lock(path)) == ["train", "extra"]


def test_new_entries_take_their_dvc_yaml_place_whatever_order_they_finish(
    tmp_path: Path,
) -> None:
    order = ["a@0", "a@1", "a@2", "a@3"]
    entries = {name: LockEntry(cmd=f"echo {name}") for name in order}
    files = []
    for finishing in (["a@2", "a@0", "a@3", "a@1"], ["a@1", "a@3", "a@0", "a@2"]):
        path = tmp_path / f"{len(files)}.lock"
        for name in finishing:
            update_lock(path, {name: entries[name]}, order)
        assert list(read_lock(path)) == order
        files.append(path.read_bytes())
    assert files[0] == files[1]


def test_update_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dvc.lock"
    entry = LockEntry(cmd="echo", params={"params.yaml": {"lr": 0.1}})
    update_lock(path, {"a": entry}, ["a"])
    assert path.read_text() == (
        "schema: '2.0'\nstages:\n  a:\n    cmd: echo\n    params:\n      params.yaml:\n"
        "        lr: 0.1\n"
    )


def test_update_keeps_unknown_top_level_keys(tmp_path: Path) -> None:
    path = tmp_path / "dvc.lock"
    path.write_text("schema: '2.0'\nstages:\n  a:\n    cmd: echo\ndatasets:\n- name: d\n")
    update_lock(path, {"b": LockEntry(cmd="echo b")}, ["a", "b"])
    assert path.read_text() == (
        "schema: '2.0'\nstages:\n  a:\n    cmd: echo\n  b:\n    cmd: echo b\ndatasets:\n- name: d\n"
    )


def test_round_trip_scalars_are_written_as_dvc_writes_them(tmp_path: Path) -> None:
    from ruamel.yaml import YAML

    loaded = YAML().load("lr: 1.0e-3\nflag: yes\nn: 0x10\nlst: [1, 2]\n")  # round-trip types
    path = tmp_path / "dvc.lock"
    write_lock(path, {"s": LockEntry(cmd="c", params={"params.yaml": dict(loaded)})})
    assert "        lr: 0.001\n" in path.read_text()
    assert "        n: 16\n" in path.read_text()
    assert "        lst:\n        - 1\n        - 2\n" in path.read_text()


def test_legacy_entries_without_hash_key(tmp_path: Path) -> None:
    text = (
        "schema: '2.0'\nstages:\n  a:\n    cmd: echo\n    deps:\n    - path: x\n"
        "      md5: 0a1b0a1b0a1b0a1b0a1b0a1b0a1b0a1b\n      size: 3\n"
    )
    entries = parse_lock(text)
    assert entries["a"].deps == [LockPath("x", "0a1b" * 8, 3, hash=None)]
    assert dumps_lock(entries) == text


def test_dvc1_lock_without_schema() -> None:
    text = f"a:\n  cmd: echo\n  outs:\n  - path: o\n    md5: {'ab12' * 8}\n"
    assert parse_lock(text)["a"].outs == [LockPath("o", "ab12" * 8, hash=None)]


def test_missing_and_empty_files(tmp_path: Path) -> None:
    assert read_lock(tmp_path / "dvc.lock") == {}
    (tmp_path / "dvc.lock").write_text("")
    assert read_lock(tmp_path / "dvc.lock") == {}
    write_lock(tmp_path / "dvc.lock", {})
    assert not (tmp_path / "dvc.lock").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("schema: '2.0'\nstages: [\n", "lock file is not valid YAML"),
        ("- a\n- b\n", "lock file must be a mapping"),
        ("schema: '3.0'\nstages: {}\n", "unsupported lock file schema '3.0'"),
        ("schema: '2.0'\nstages:\n  a: 1\n", "stages.a: must be a mapping"),
        ("schema: '2.0'\nstages:\n  a:\n    deps: []\n", "stages.a.cmd: missing"),
        (
            "schema: '2.0'\nstages:\n  a:\n    cmd: x\n    deps:\n    - md5: 1\n",
            "stages.a.deps[0]: needs a 'path'",
        ),
        ("schema: '2.0'\nstages:\n  a:\n    cmd: x\n    params: [1]\n", "stages.a.params"),
    ],
)
def test_malformed_lock_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "dvc.lock"
    path.write_text(text)
    with pytest.raises(DvcFileError) as info:
        read_lock(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "text", ["schema: '2.0'\nstages: [\n", "- a\n", "schema: '2.0'\nstages:\n  a: 1\n"]
)
def test_update_refuses_a_broken_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "dvc.lock"
    path.write_text(text)
    with pytest.raises(DvcFileError) as info:
        update_lock(path, {"b": LockEntry(cmd="x")}, ["b"])
    assert str(path) in str(info.value)
    assert path.read_text() == text  # not overwritten


def test_text_update_leaves_other_entries_alone(tmp_path: Path) -> None:
    # the fast path edits entries as text: an entry it does not touch keeps its
    # bytes even when read_lock would refuse it
    path = tmp_path / "dvc.lock"
    odd = "schema: '2.0'\nstages:\n  a:\n    deps: []\n"
    path.write_text(odd)
    update_lock(path, {"b": LockEntry(cmd="x")})
    assert path.read_text() == odd + "  b:\n    cmd: x\n"


def test_text_update_equals_a_full_dump(tmp_path: Path) -> None:
    entries = fixture_entries()
    entries["'odd' name: x"] = LockEntry(cmd="line1\n\nline3", deps=[LockPath("a", "f" * 32, 1)])
    entries["123"] = LockEntry(cmd="y " * 50)
    path = tmp_path / "dvc.lock"
    write_lock(path, {n: entries[n] for n in ["123", "prep"]})
    for name in ["'odd' name: x", "train", "123", "multi", "prep"]:
        update_lock(path, {name: entries[name]})
    order = ["123", "prep", "'odd' name: x", "train", "multi"]
    assert path.read_text() == dumps_lock({n: entries[n] for n in order})
    update_lock(path, {"multi": entries["multi"]}, ["train", "multi", "'odd' name: x"])
    order = ["'odd' name: x", "train", "multi"]
    assert path.read_text() == dumps_lock({n: entries[n] for n in order})
    update_lock(path, {}, [])
    assert not path.exists()


# -- against the real dvc ----------------------------------------------------------


@pytest.mark.dvc
def test_real_dvc_accepts_what_we_write(git_repo: Path, dvc_bin: str) -> None:
    """dvc repro, then our reader+writer rewrite dvc.lock: same bytes, dvc status clean."""

    def dvc(*args: str) -> str:
        env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
        done = subprocess.run(
            [dvc_bin, *args], cwd=git_repo, env=env, check=True, capture_output=True, text=True
        )
        return done.stdout

    dvc("init", "-q")
    (git_repo / "params.yaml").write_text("lr: 1.0e-3\nmodels: {us: 1, eu: 2}\n")
    (git_repo / "data").mkdir()
    (git_repo / "data" / "x.txt").write_text("x\n")
    (git_repo / "dvc.yaml").write_text(
        "stages:\n"
        "  copy:\n    cmd: cp -r data out\n    deps: [data]\n    params: [lr]\n    outs: [out]\n"
        "  fe:\n    foreach: ${models}\n    do:\n"
        "      cmd: echo ${item} > f_${key}.txt\n      outs:\n      - f_${key}.txt\n"
    )
    dvc("repro", "-q")
    path = git_repo / "dvc.lock"
    original = path.read_text()
    entries = read_lock(path)
    assert list(entries) == ["copy", "fe@us", "fe@eu"]
    assert entries["copy"].params == {"params.yaml": {"lr": 0.001}}
    assert dumps_lock(entries) == original
    path.unlink()
    write_lock(path, {"fe@eu": entries["fe@eu"], "copy": entries["copy"]})
    update_lock(path, {"fe@us": entries["fe@us"]}, ["copy", "fe@us", "fe@eu"])
    assert dvc("status", "--json").strip() == "{}"
