"""Templating against real files on disk, through DiskSource."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from exq.engine.errors import DvcFileError, ParamsError, TemplateError
from exq.engine.spec.paramfiles import DiskSource, load_params
from exq.engine.spec.stage import Out
from exq.engine.spec.templating import load_dvcfile


def write(root: Path, files: dict[str, str | bytes]) -> DiskSource:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content))
    return DiskSource(root)


SEED_PARAMS = """\
models:
  us:
    thresh: 10
    filename: 'model-us.hdf5'
  gb:
    thresh: 15
    filename: 'model-gb.hdf5'
"""


def test_seed_announcement_pipeline(tmp_path: Path) -> None:
    source = write(
        tmp_path,
        {
            "params.yaml": SEED_PARAMS,
            "dvc.yaml": """\
                vars:
                  - train_matrix: train.pkl
                    test_matrix: test.pkl
                    seed: 20210215
                stages:
                  featurize:
                    cmd: >-
                      python featurization.py --seed ${seed}
                      --train ${train_matrix} --test ${test_matrix}
                    outs:
                    - ${test_matrix}
                    - ${train_matrix}
                  build-us:
                    cmd: python script.py --out ${models.us.filename} --thresh ${models.us.thresh}
                    outs:
                      - ${models.us.filename}
                  build:
                    foreach: ${models}
                    do:
                      cmd: python script.py --out ${item.filename} --thresh ${item.thresh}
                      outs:
                        - ${item.filename}
            """,
        },
    )
    stages = load_dvcfile(source, "dvc.yaml")
    assert [(s.name, s.cmd, [o.path for o in s.outs], s.params) for s in stages] == [
        (
            "featurize",
            "python featurization.py --seed 20210215 --train train.pkl --test test.pkl",
            ["test.pkl", "train.pkl"],
            {},  # inline vars are not params
        ),
        (
            "build-us",
            "python script.py --out model-us.hdf5 --thresh 10",
            ["model-us.hdf5"],
            {"params.yaml": ["models.us.filename", "models.us.thresh"]},
        ),
        (
            "build@us",
            "python script.py --out model-us.hdf5 --thresh 10",
            ["model-us.hdf5"],
            {"params.yaml": ["models.us.filename", "models.us.thresh"]},
        ),
        (
            "build@gb",
            "python script.py --out model-gb.hdf5 --thresh 15",
            ["model-gb.hdf5"],
            {"params.yaml": ["models.gb.filename", "models.gb.thresh"]},
        ),
    ]


def test_vars_files_of_every_kind(tmp_path: Path) -> None:
    source = write(
        tmp_path,
        {
            "cfg/a.yaml": "ya: 1\n",
            "cfg/b.yml": "yb: {n: 2}\n",
            "cfg/c.json": '{"js": [3, 4], "unused": 0}',
            "cfg/d.toml": "[tm]\nlr = 0.5\n",
            "cfg/e.py": "PY = 'p'\n\nclass Opt:\n    depth: int = 6\n",
            "cfg/f.yaml": "keep: yes\ndrop: 1\nalso: on\n",
            "cfg/g.txt": "txt: 7\n",
            "dvc.yaml": """\
                vars:
                  - cfg/a.yaml
                  - cfg/b.yml
                  - cfg/c.json
                  - cfg/d.toml
                  - cfg/e.py
                  - cfg/f.yaml:keep,also
                  - cfg/g.txt
                stages:
                  all:
                    cmd: run ${ya} ${yb.n} ${js[1]} ${tm.lr} ${PY} ${Opt.depth} ${keep} ${also} ${txt}
            """,
        },
    )
    [stage] = load_dvcfile(source, "dvc.yaml")
    assert stage.cmd == "run 1 2 4 0.5 p 6 yes on 7"
    assert stage.params == {
        "cfg/a.yaml": ["ya"],
        "cfg/b.yml": ["yb.n"],
        "cfg/c.json": ["js.1"],
        "cfg/d.toml": ["tm.lr"],
        "cfg/e.py": ["PY", "Opt.depth"],
        "cfg/f.yaml": ["keep", "also"],
        "cfg/g.txt": ["txt"],
    }


def test_partial_vars_file_keeps_other_keys_out(tmp_path: Path) -> None:
    source = write(
        tmp_path,
        {
            "cfg/f.yaml": "keep: 1\ndrop: 2\n",
            "dvc.yaml": "vars: ['cfg/f.yaml:keep']\nstages:\n  s:\n    cmd: echo ${drop}\n",
        },
    )
    with pytest.raises(TemplateError, match=r"^dvc.yaml: stages.s.cmd: Could not find 'drop'$"):
        load_dvcfile(source, "dvc.yaml")


def test_stage_wdir_vars_on_disk(tmp_path: Path) -> None:
    source = write(
        tmp_path,
        {
            "params.yaml": "regions: [eu, us]\nshared: 1\n",
            "regions/eu/region.json": '{"rate": 0.1}',
            "regions/us/region.json": '{"rate": 0.2}',
            "dvc.yaml": """\
                stages:
                  fit:
                    foreach: ${regions}
                    do:
                      wdir: regions/${item}
                      vars: [region.json]
                      cmd: python ../../fit.py --rate ${rate} --shared ${shared}
                      params: [{region.json: [rate]}]
                      deps: [../../fit.py]
                      outs: [model.pkl]
            """,
        },
    )
    stages = load_dvcfile(source, "dvc.yaml")
    assert [(s.name, s.wdir, s.cmd, s.params) for s in stages] == [
        (
            "fit@eu",
            "regions/eu",
            "python ../../fit.py --rate 0.1 --shared 1",
            {"region.json": ["rate"], "../../params.yaml": ["regions.0", "shared"]},
        ),
        (
            "fit@us",
            "regions/us",
            "python ../../fit.py --rate 0.2 --shared 1",
            {"region.json": ["rate"], "../../params.yaml": ["regions.1", "shared"]},
        ),
    ]
    assert stages[0].outs == [Out("model.pkl")]


def test_nested_dvc_yaml_uses_its_own_params_yaml(tmp_path: Path) -> None:
    source = write(
        tmp_path,
        {
            "params.yaml": "who: root\n",
            "sub/params.yaml": "who: sub\n",
            "sub/dvc.yaml": "stages:\n  s:\n    cmd: echo ${who}\n",
        },
    )
    [stage] = load_dvcfile(source, "sub/dvc.yaml")
    assert (stage.dvcfile, stage.wdir, stage.cmd, stage.params) == (
        "sub/dvc.yaml",
        "sub",
        "echo sub",
        {"params.yaml": ["who"]},
    )
    assert stage.address == "sub/dvc.yaml:s"


def test_edits_on_disk_are_seen_by_the_next_resolution(tmp_path: Path) -> None:
    source = write(
        tmp_path, {"params.yaml": "lr: 0.1\n", "dvc.yaml": "stages:\n  s:\n    cmd: t ${lr}\n"}
    )
    assert load_dvcfile(source, "dvc.yaml")[0].cmd == "t 0.1"
    (tmp_path / "params.yaml").write_text("lr: 0.2\n")
    assert load_dvcfile(source, "dvc.yaml")[0].cmd == "t 0.2"


@pytest.mark.parametrize(
    ("files", "error", "message"),
    [
        ({}, DvcFileError, "^dvc.yaml: file not found$"),
        (
            {"dvc.yaml": "stages:\n  s:\n    cmd: [echo\n"},
            DvcFileError,
            "^dvc.yaml: invalid YAML at line 4",
        ),
        (
            {"dvc.yaml": "stages:\n  s:\n    cmd: a\n  s:\n    cmd: b\n"},
            DvcFileError,
            "^dvc.yaml: invalid YAML at line 4: found duplicate key",
        ),
        (
            {"dvc.yaml": "vars: [nope.yaml]\nstages: {}\n"},
            TemplateError,
            "^dvc.yaml: vars: 'nope.yaml' does not exist$",
        ),
        (
            {"dvc.yaml": "vars: [adir]\nstages: {}\n", "adir/x": ""},
            TemplateError,
            "^dvc.yaml: vars: adir: is a directory",
        ),
        (
            {"dvc.yaml": "stages: {}\n", "params.yaml": "a: [\n"},
            TemplateError,
            "^dvc.yaml: vars: params.yaml: invalid YAML at line 2",
        ),
        (
            {"dvc.yaml": "stages: {}\n", "params.yaml": b"a: \xff\n"},
            TemplateError,
            "^dvc.yaml: vars: params.yaml: not valid UTF-8",
        ),
        ({"dvc.yaml": b"stages: \xff\n"}, DvcFileError, "^dvc.yaml: not valid UTF-8"),
    ],
)
def test_load_errors(tmp_path: Path, files: dict, error: type[Exception], message: str) -> None:
    source = write(tmp_path, files)
    with pytest.raises(error, match=message):
        load_dvcfile(source, "dvc.yaml")


def test_disk_source_reads_and_reports_absence(tmp_path: Path) -> None:
    source = write(tmp_path, {"a/b.txt": b"data"})
    assert source.read_bytes("a/b.txt") == b"data"
    assert source.read_bytes("a/missing") is None
    assert source.read_bytes("a/b.txt/under-a-file") is None
    with pytest.raises(ParamsError, match="^a: is a directory"):
        source.read_bytes("a")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("p.yaml", "a: {b: 1}\n", {"a": {"b": 1}}),
        ("p.json", '{"a": [1, 2]}', {"a": [1, 2]}),
        ("p.toml", "a = true\n", {"a": True}),
        ("p.py", "A = 1\nclass B:\n    c = 'd'\n", {"A": 1, "B": {"c": "d"}}),
        ("empty.yaml", "", {}),
    ],
)
def test_load_params_from_disk(tmp_path: Path, name: str, content: str, expected: dict) -> None:
    source = write(tmp_path, {f"conf/{name}": content})
    assert load_params(source, f"conf/{name}") == expected
