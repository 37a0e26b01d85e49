"""resolve_dvcfile: stage fields, foreach, matrix, names and the dvc.yaml schema."""

from __future__ import annotations

import textwrap

import pytest

from exq.engine.errors import DvcFileError, TemplateError
from exq.engine.spec.paramfiles import parse_yaml
from exq.engine.spec.stage import Out, Stage
from exq.engine.spec.templating import ParsingOptions, resolve_dvcfile
from tests.support import MemorySource

PARAMS = """\
models:
  us: {thresh: 10, filename: model-us.hdf5}
  gb: {thresh: 15, filename: model-gb.hdf5}
flags: [true, 2]
num: 3
text: a b
train: {lr: 0.1, layers: [8, 4], fast: true, slow: false, opt: {name: adam}}
item: global-item
"""


def resolve(
    text: str,
    files: dict[str, str] | None = None,
    *,
    dvcfile: str = "dvc.yaml",
    **kwargs: object,
) -> list[Stage]:
    data = parse_yaml(textwrap.dedent(text), dvcfile)
    source = MemorySource(files if files is not None else {"params.yaml": PARAMS})
    return resolve_dvcfile(data, dvcfile=dvcfile, source=source, **kwargs)  # type: ignore[arg-type]


def names(stages: list[Stage]) -> list[str]:
    return [stage.name for stage in stages]


def cmds(stages: list[Stage]) -> dict[str, str | list[str]]:
    return {stage.name: stage.cmd for stage in stages}


def test_plain_stage_has_every_field() -> None:
    [stage] = resolve(
        """
        stages:
          train:
            cmd: python train.py --lr ${train.lr}
            wdir: .
            deps: [data.csv, "src/${text}.py"]
            params: [seed, {conf.json: [a.b]}]
            outs:
              - model.pkl
              - cache-less: {cache: false, persist: true, desc: no cache}
            metrics: [{metrics.json: {cache: false}}, score.json]
            plots: [{roc.csv: {x: fpr, y: tpr}}, {loss.csv: [{x: step}, {cache: false}]}]
            frozen: true
            always_changed: true
            desc: Train it
            meta: {owner: me}
        """,
        track_vars=False,
    )
    assert stage == Stage(
        name="train",
        dvcfile="dvc.yaml",
        cmd="python train.py --lr 0.1",
        wdir=".",
        deps=["data.csv", "src/a b.py"],
        outs=[
            Out("model.pkl"),
            Out("cache-less", cache=False, persist=True),
            Out("metrics.json", "metrics", cache=False),
            Out("score.json", "metrics"),
            Out("roc.csv", "plots"),
            Out("loss.csv", "plots", cache=False),
        ],
        params={"params.yaml": ["seed"], "conf.json": ["a.b"]},
        frozen=True,
        always_changed=True,
        desc="Train it",
    )


def test_defaults_of_a_minimal_stage() -> None:
    [stage] = resolve("stages:\n  s:\n    cmd: echo hi\n", files={})
    assert stage == Stage(name="s", dvcfile="dvc.yaml", cmd="echo hi")


@pytest.mark.parametrize("text", ["", "stages:\n", "vars: []\n", "stages: {}\n"])
def test_files_without_stages(text: str) -> None:
    assert resolve(text) == []


@pytest.mark.parametrize(
    ("dvcfile", "wdir", "expected"),
    [
        ("dvc.yaml", None, "."),
        ("dvc.yaml", ".", "."),
        ("dvc.yaml", "sub", "sub"),
        ("dvc.yaml", "./a/../b/", "b"),
        ("sub/dvc.yaml", None, "sub"),
        ("sub/dvc.yaml", "..", "."),
        ("a/b/dvc.yaml", "../c", "a/c"),
        ("dvc.yaml", "${text}", "a b"),
    ],
)
def test_wdir_is_repo_relative(dvcfile: str, wdir: str | None, expected: str) -> None:
    line = f"    wdir: '{wdir}'\n" if wdir is not None else ""
    files = {"params.yaml": PARAMS, "sub/params.yaml": "", "a/b/params.yaml": ""}
    [stage] = resolve(f"stages:\n  s:\n    cmd: echo\n{line}", files, dvcfile=dvcfile)
    assert (stage.wdir, stage.dvcfile) == (expected, dvcfile)


@pytest.mark.parametrize("wdir", ["..", "../x", "/abs"])
def test_wdir_outside_the_repository(wdir: str) -> None:
    with pytest.raises(TemplateError) as info:
        resolve(f"stages:\n  s:\n    cmd: echo\n    wdir: {wdir}\n")
    assert info.value.location == "stages.s.wdir"
    assert "outside the repository" in info.value.reason


def test_cmd_list_items_are_each_interpolated() -> None:
    [stage] = resolve(
        """
        stages:
          s:
            cmd: ["echo ${num}", "${num}", "${train.opt}", "run ${train.opt}", plain]
        """
    )
    assert stage.cmd == ["echo 3", "3", "--name adam", "run --name adam", "plain"]


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        ("python t.py ${train}", "python t.py --lr 0.1 --layers 8 4 --fast --opt.name adam"),
        ("${train.opt}", "--name adam"),
        ("${models.us}", "--thresh 10 --filename model-us.hdf5"),
        ("echo ${num} ${text}", "echo 3 a b"),
        ("echo \\${num}", "echo ${num}"),
        ("echo ${flags[0]} ${train.slow}", "echo true false"),
    ],
)
def test_cmd_rendering(cmd: str, expected: str) -> None:
    [stage] = resolve(f"stages:\n  s:\n    cmd: '{cmd}'\n")
    assert stage.cmd == expected


def test_parsing_options_change_dict_unpacking() -> None:
    options = ParsingOptions(bool_flags="boolean_optional", list_flags="append")
    [stage] = resolve("stages:\n  s:\n    cmd: t ${train}\n", options=options)
    assert stage.cmd == "t --lr 0.1 --layers 8 --layers 4 --fast --no-slow --opt.name adam"


def test_keys_of_out_entries_are_interpolated() -> None:
    [stage] = resolve(
        """
        stages:
          s:
            cmd: echo
            outs:
              - ${models.us.filename}:
                  cache: false
              - out-${num}
            deps: ["${num}"]
        """
    )
    assert stage.outs == [Out("model-us.hdf5", cache=False), Out("out-3")]
    assert stage.deps == ["3"]


@pytest.mark.parametrize(
    ("field", "value", "location", "reason"),
    [
        ("cmd", "echo ${models.foobar}", "stages.s.cmd", "Could not find 'models.foobar'"),
        ("outs", '["${train}"]', "stages.s.outs", "Cannot interpolate data of type 'dict'"),
        ("outs", '["x-${flags}"]', "stages.s.outs", "Cannot interpolate data of type 'list'"),
        ("deps", '["${flags}"]', "stages.s.deps", "Cannot interpolate data of type 'list'"),
        ("cmd", "echo ${flags}", "stages.s.cmd", "Cannot interpolate data of type 'list'"),
        ("desc", '"${train}"', "stages.s.desc", "Cannot interpolate data of type 'dict'"),
        ("cmd", "echo ${a..b}", "stages.s.cmd", "Invalid interpolation '${a..b}'"),
        (
            "params",
            "[{p.yaml: key}]",
            "stages.s.params",
            "expected a list of keys for 'p.yaml', got str",
        ),
        ("deps", '["${nothing}"]', "stages.s.deps", "expected a path, got null"),
    ],
)
def test_stage_field_errors(field: str, value: str, location: str, reason: str) -> None:
    files = {"params.yaml": PARAMS + "nothing: null\n"}
    body = f"    {field}: {value}\n" + ("" if field == "cmd" else "    cmd: echo\n")
    with pytest.raises(TemplateError) as info:
        resolve("stages:\n  s:\n" + body, files)
    assert info.value.location == location
    assert info.value.reason.startswith(reason)
    assert str(info.value).startswith(f"dvc.yaml: {location}: ")


def test_error_message_names_generated_stage() -> None:
    text = """
    stages:
      build:
        foreach: [us]
        do:
          cmd: echo ${models.foobar}
    """
    with pytest.raises(TemplateError) as info:
        resolve(text)
    assert str(info.value) == "dvc.yaml: stages.build@us.cmd: Could not find 'models.foobar'"


# -- foreach -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("foreach", "cmd", "expected"),
    [
        ("[us, gb]", "echo ${item}", {"s@us": "echo us", "s@gb": "echo gb"}),
        (
            "[1, 0.5, true, null]",
            "echo ${item}",
            {"s@1": "echo 1", "s@0.5": "echo 0.5", "s@true": "echo true", "s@None": "echo None"},
        ),
        (
            "{us: {t: 1}, gb: {t: 2}}",
            "echo ${key} ${item.t}",
            {"s@us": "echo us 1", "s@gb": "echo gb 2"},
        ),
        ("{2: a, true: b}", "echo ${key} ${item}", {"s@2": "echo 2 a", "s@true": "echo true b"}),
        ("[{t: 1}, {t: 2}]", "echo ${item.t}", {"s@0": "echo 1", "s@1": "echo 2"}),
        ("[[x, y], [1, 2]]", "echo ${item[0]}", {"s@0": "echo x", "s@1": "echo 1"}),
        ("${models}", "echo ${key} ${item.thresh}", {"s@us": "echo us 10", "s@gb": "echo gb 15"}),
        ("${flags}", "echo ${item}", {"s@True": "echo true", "s@2": "echo 2"}),
        ('["${num}", "x${num}"]', "echo ${item}", {"s@3": "echo 3", "s@x3": "echo x3"}),
        ("[{t: 1}]", "echo ${item}", {"s@0": "echo --t 1"}),
        ("[]", "echo", {}),
        ("{}", "echo", {}),
    ],
)
def test_foreach_names_and_items(foreach: str, cmd: str, expected: dict[str, str]) -> None:
    stages = resolve(f'stages:\n  s:\n    foreach: {foreach}\n    do:\n      cmd: "{cmd}"\n')
    assert cmds(stages) == expected


def test_foreach_key_is_not_defined_for_lists() -> None:
    with pytest.raises(TemplateError) as info:
        resolve("stages:\n  s:\n    foreach: [a]\n    do:\n      cmd: echo ${key}\n")
    assert (info.value.location, info.value.reason) == ("stages.s@a.cmd", "Could not find 'key'")


def test_foreach_item_shadows_a_global_item_only_inside_the_group() -> None:
    stages = resolve(
        """
        stages:
          f:
            foreach: [x]
            do:
              cmd: echo ${item}
          g:
            cmd: echo ${item}
        """
    )
    assert cmds(stages) == {"f@x": "echo x", "g": "echo global-item"}


@pytest.mark.parametrize(
    ("foreach", "reason"),
    [
        ("abc", "expected list/dictionary, got str"),
        ("${num}", "expected list/dictionary, got int"),
        ("${text}", "expected list/dictionary, got str"),
        ("${nope}", "Could not find 'nope'"),
        ("[a, a]", "'a' occurs twice"),
        ("[1, '1']", "'1' occurs twice"),
    ],
)
def test_foreach_errors(foreach: str, reason: str) -> None:
    with pytest.raises(TemplateError) as info:
        resolve(f"stages:\n  s:\n    foreach: {foreach}\n    do:\n      cmd: echo\n")
    assert info.value.location == "stages.s.foreach"
    assert info.value.reason.startswith(reason)


def test_foreach_items_keep_file_order_and_mix_with_plain_stages() -> None:
    stages = resolve(
        """
        stages:
          first:
            cmd: echo 1
          each:
            foreach: [c, a, b]
            do:
              cmd: echo ${item}
          last:
            cmd: echo 2
        """
    )
    assert names(stages) == ["first", "each@c", "each@a", "each@b", "last"]


def test_foreach_item_in_wdir_and_outs() -> None:
    stages = resolve(
        """
        stages:
          build:
            foreach: ${models}
            do:
              wdir: models/${key}
              cmd: python script.py --out ${item.filename} --thresh ${item.thresh}
              outs: [ "${item.filename}" ]
        """
    )
    assert [(s.name, s.wdir, s.cmd, s.outs) for s in stages] == [
        (
            "build@us",
            "models/us",
            "python script.py --out model-us.hdf5 --thresh 10",
            [Out("model-us.hdf5")],
        ),
        (
            "build@gb",
            "models/gb",
            "python script.py --out model-gb.hdf5 --thresh 15",
            [Out("model-gb.hdf5")],
        ),
    ]


# -- matrix ------------------------------------------------------------------


def test_matrix_is_a_product_in_order() -> None:
    stages = resolve(
        """
        stages:
          m:
            matrix:
              model: [cnn, rnn]
              lr: [0.1, 0.01]
            cmd: train ${item.model} ${item.lr} ${key}
            outs: ["${item.model}-${item.lr}.pkl"]
        """
    )
    assert cmds(stages) == {
        "m@cnn-0.1": "train cnn 0.1 cnn-0.1",
        "m@cnn-0.01": "train cnn 0.01 cnn-0.01",
        "m@rnn-0.1": "train rnn 0.1 rnn-0.1",
        "m@rnn-0.01": "train rnn 0.01 rnn-0.01",
    }
    assert stages[1].outs == [Out("cnn-0.01.pkl")]


def test_matrix_names_for_containers_variables_and_booleans() -> None:
    stages = resolve(
        """
        stages:
          m:
            matrix:
              a: [x, true]
              b: ${flags}
              c: [{k: 1}, [5]]
            cmd: echo ${item.a} ${item.b}
        """
    )
    assert names(stages) == [
        "m@x-True-c0",
        "m@x-True-c1",
        "m@x-2-c0",
        "m@x-2-c1",
        "m@true-True-c0",
        "m@true-True-c1",
        "m@true-2-c0",
        "m@true-2-c1",
    ]
    assert stages[0].cmd == "echo x true"


def test_matrix_item_is_a_mapping_of_axes() -> None:
    [stage] = resolve(
        """
        stages:
          m:
            matrix:
              opt: [{name: adam, lr: 0.1}]
            cmd: t ${item.opt.name} ${item}
        """
    )
    assert stage.name == "m@opt0"
    assert stage.cmd == "t adam --opt.name adam --opt.lr 0.1"


@pytest.mark.parametrize(
    ("axis", "reason"),
    [
        ("abc", "expected a list for 'x', got str"),
        ("${train}", "expected a list for 'x', got dict"),
        ("${num}", "expected a list for 'x', got int"),
        ("${nope}", "Could not find 'nope'"),
        ("[a, a]", "'a' occurs twice"),
    ],
)
def test_matrix_errors(axis: str, reason: str) -> None:
    with pytest.raises(TemplateError) as info:
        resolve(f"stages:\n  m:\n    matrix:\n      x: {axis}\n    cmd: echo\n")
    assert info.value.location == "stages.m.matrix"
    assert info.value.reason.startswith(reason)


# -- schema and names ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "dvc.yaml: expected a mapping at the top level, got list"),
        ("foo: 1", "dvc.yaml: unknown top-level key 'foo'"),
        ("vars:\n  seed: 1", "dvc.yaml: vars: expected list, got dict"),
        ("vars: [1]", "dvc.yaml: vars[0]: expected str/dict, got int"),
        ("stages: [a]", "dvc.yaml: stages: expected dict, got list"),
        ("stages:\n  s: echo", "dvc.yaml: stages.s: expected dict, got str"),
        ("stages:\n  s:\n    cmd: echo\n    foo: 1", "dvc.yaml: stages.s: unknown key 'foo'"),
        ("stages:\n  s:\n    deps: [a]", "dvc.yaml: stages.s: missing required key 'cmd'"),
        ("stages:\n  s:\n    cmd: 5", "dvc.yaml: stages.s.cmd: expected str/list, got int"),
        (
            "stages:\n  s:\n    cmd: [echo, {a: 1}]",
            "dvc.yaml: stages.s.cmd[1]: expected str/int/float/bool, got dict",
        ),
        (
            "stages:\n  s:\n    cmd: echo\n    frozen: yes",
            "dvc.yaml: stages.s.frozen: expected bool, got str",
        ),
        (
            "stages:\n  s:\n    cmd: echo\n    frozen: ${flag}",
            "dvc.yaml: stages.s.frozen: expected bool, got str",
        ),
        (
            "stages:\n  s:\n    cmd: echo\n    wdir: 5",
            "dvc.yaml: stages.s.wdir: expected str, got int",
        ),
        (
            "stages:\n  s:\n    cmd: echo\n    deps: a",
            "dvc.yaml: stages.s.deps: expected list, got str",
        ),
        (
            "stages:\n  s:\n    cmd: echo\n    deps: [{a: 1}]",
            "dvc.yaml: stages.s.deps[0]: expected str, got dict",
        ),
        (
            "stages:\n  s:\n    cmd: echo\n    params: [1]",
            "dvc.yaml: stages.s.params[0]: expected str/dict, got int",
        ),
        (
            "stages:\n  s:\n    cmd: echo\n    outs: [{a: {foo: 1}}]",
            "dvc.yaml: stages.s.outs[0].a: unknown key 'foo'",
        ),
        (
            "stages:\n  s:\n    cmd: echo\n    outs: [{a: {cache: 'no'}}]",
            "dvc.yaml: stages.s.outs[0].a.cache: expected bool, got str",
        ),
        (
            "stages:\n  s:\n    cmd: echo\n    outs: [{a: }]",
            "dvc.yaml: stages.s.outs[0].a: expected dict, got null",
        ),
        (
            "stages:\n  s:\n    cmd: echo\n    metrics: [{m: {x: a}}]",
            "dvc.yaml: stages.s.metrics[0].m: unknown key 'x'",
        ),
        (
            "stages:\n  s:\n    cmd: echo\n    vars: {a: 1}",
            "dvc.yaml: stages.s.vars: expected list, got dict",
        ),
        (
            "stages:\n  s:\n    foreach: [1]\n    cmd: echo",
            "dvc.yaml: stages.s: unknown key 'cmd' beside foreach/do",
        ),
        ("stages:\n  s:\n    foreach: [1]", "dvc.yaml: stages.s: missing required key 'do'"),
        (
            "stages:\n  s:\n    do: {cmd: echo}",
            "dvc.yaml: stages.s: missing required key 'foreach'",
        ),
        (
            "stages:\n  s:\n    foreach: 5\n    do: {cmd: echo}",
            "dvc.yaml: stages.s.foreach: expected dict/list/str, got int",
        ),
        (
            "stages:\n  s:\n    foreach: [1]\n    do: {cmd: echo, foo: 1}",
            "dvc.yaml: stages.s.do: unknown key 'foo'",
        ),
        (
            "stages:\n  s:\n    foreach: [1]\n    do: {deps: [a]}",
            "dvc.yaml: stages.s.do: missing required key 'cmd'",
        ),
        (
            "stages:\n  s:\n    foreach: [1]\n    do: {cmd: echo, matrix: {a: [1]}}",
            "dvc.yaml: stages.s.do: unknown key 'matrix'",
        ),
        (
            "stages:\n  s:\n    matrix: {x: [1]}\n    do: {cmd: echo}",
            "dvc.yaml: stages.s: unknown key 'matrix' beside foreach/do",
        ),
        (
            "stages:\n  s:\n    matrix: [1]\n    cmd: echo",
            "dvc.yaml: stages.s.matrix: expected dict, got list",
        ),
        (
            "stages:\n  s:\n    matrix: {}\n    cmd: echo",
            "dvc.yaml: stages.s.matrix: expected at least one axis",
        ),
        (
            "stages:\n  s:\n    matrix: {x: 1}\n    cmd: echo",
            "dvc.yaml: stages.s.matrix.x: expected str/list, got int",
        ),
    ],
)
def test_schema_errors(text: str, message: str) -> None:
    with pytest.raises(DvcFileError) as info:
        resolve(text)
    assert str(info.value) == message
    assert not isinstance(info.value, TemplateError)


def test_other_top_level_sections_are_accepted() -> None:
    stages = resolve(
        """
        plots: [{p.csv: {x: a}}]
        metrics: [m.json]
        params: [p.yaml]
        artifacts: {model: {path: m.pkl}}
        datasets: [{name: d, type: dvc}]
        stages:
          s:
            cmd: echo
        """
    )
    assert names(stages) == ["s"]


@pytest.mark.parametrize("name", ["train", "train.v2", "pre-process_1", "with space", "UPPER"])
def test_valid_stage_names(name: str) -> None:
    assert names(resolve(f"stages:\n  '{name}':\n    cmd: echo\n")) == [name]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("'a@b'", "invalid stage name 'a@b': '@' is not allowed"),
        ("'a:b'", "invalid stage name 'a:b': ':' is not allowed"),
        ("'a/b'", "invalid stage name 'a/b': '/' is not allowed"),
        ("'a\\b'", "invalid stage name 'a\\b': '\\' is not allowed"),
        ("''", "invalid stage name '': expected a non-empty string"),
        ("1", "invalid stage name 1: expected a non-empty string"),
    ],
)
def test_invalid_stage_names(key: str, reason: str) -> None:
    with pytest.raises(DvcFileError) as info:
        resolve(f"stages:\n  {key}:\n    cmd: echo\n")
    assert str(info.value) == f"dvc.yaml: stages: {reason}"


def test_generated_names_may_hold_any_character() -> None:
    stages = resolve("stages:\n  s:\n    foreach: [data/a.csv, 'x:y']\n    do:\n      cmd: echo\n")
    assert names(stages) == ["s@data/a.csv", "s@x:y"]


def test_checkpoint_outs_and_dvc2_live_section() -> None:
    [stage] = resolve(
        """
        stages:
          train:
            cmd: python train.py
            live:
              logs: {cache: false, summary: true, report: true}
            outs:
              - model.h5: {checkpoint: true}
              - other.h5
        """
    )
    assert stage.outs == [
        Out("model.h5", checkpoint=True),
        Out("other.h5"),
        Out("logs", "plots", cache=False),
    ]


def test_parsing_options_apply_to_a_whole_dict_cmd() -> None:
    options = ParsingOptions(bool_flags="boolean_optional")
    [stage] = resolve("stages:\n  s:\n    cmd: ['${train}']\n", options=options)
    assert stage.cmd == ["--lr 0.1 --layers 8 4 --fast --no-slow --opt.name adam"]
