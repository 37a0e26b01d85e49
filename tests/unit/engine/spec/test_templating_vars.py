"""resolve_dvcfile: params.yaml, vars (top and stage level) and tracked params."""

from __future__ import annotations

import textwrap

import pytest

from exq.engine.errors import TemplateError
from exq.engine.spec.paramfiles import parse_yaml
from exq.engine.spec.stage import Stage
from exq.engine.spec.templating import resolve_dvcfile
from tests.support import MemorySource

FILES = {
    "params.yaml": "a: 1\nb: {x: 1}\nmodels:\n  us: {thresh: 10, filename: us.h5}\n  gb: {thresh: 15, filename: gb.h5}\nlst: [1, 2]\n",
    "o.yaml": "p: 7\nq: 8\nr: {s: 9}\n",
    "conf/c.json": '{"cj": {"deep": true}, "other": 0}',
    "conf/c.toml": "ct = 'toml'\n[tbl]\nk = 2\n",
    "conf/c.py": "CP = 3\nclass Cls:\n    attr = 'x'\n",
    "sub/params.yaml": "a: sub-a\nonly_sub: 5\n",
    "sub/v.yaml": "sv: in-sub\n",
    "sub/deeper/v.yaml": "sv: deeper\n",
    "list.yaml": "- 1\n- 2\n",
}


def resolve(text: str, files: dict[str, str] | None = None, **kwargs: object) -> list[Stage]:
    dvcfile = str(kwargs.pop("dvcfile", "dvc.yaml"))
    data = parse_yaml(textwrap.dedent(text), dvcfile)
    source = MemorySource(FILES if files is None else files)
    return resolve_dvcfile(data, dvcfile=dvcfile, source=source, **kwargs)  # type: ignore[arg-type]


def one(text: str, files: dict[str, str] | None = None, **kwargs: object) -> Stage:
    [stage] = resolve(text, files, **kwargs)
    return stage


def error(text: str, files: dict[str, str] | None = None, **kwargs: object) -> TemplateError:
    with pytest.raises(TemplateError) as info:
        resolve(text, files, **kwargs)
    return info.value


def stage_with(cmd: str, *, vars_: str = "", stage_extra: str = "") -> str:
    top = f"vars: {vars_}\n" if vars_ else ""
    return f"{top}stages:\n  s:\n    cmd: {cmd}\n{stage_extra}"


# -- params.yaml and top-level vars --------------------------------------------


def test_params_yaml_beside_dvc_yaml_is_loaded() -> None:
    assert one(stage_with("echo ${a} ${b.x}")).cmd == "echo 1 1"


def test_params_yaml_of_the_dvc_yaml_folder_is_used() -> None:
    stage = one(stage_with("echo ${a} ${only_sub}"), dvcfile="sub/dvc.yaml")
    assert stage.cmd == "echo sub-a 5"
    assert stage.params == {"params.yaml": ["a", "only_sub"]}


def test_root_params_yaml_is_not_visible_from_a_subfolder() -> None:
    err = error(stage_with("echo ${lst}"), dvcfile="sub/dvc.yaml")
    assert (err.path, err.location, err.reason) == (
        "sub/dvc.yaml",
        "stages.s.cmd",
        "Could not find 'lst'",
    )


def test_no_params_yaml_is_fine() -> None:
    assert one(stage_with("echo ${v}", vars_="[{v: 1}]"), files={}).cmd == "echo 1"


@pytest.mark.parametrize(
    ("vars_", "cmd", "expected"),
    [
        ("[{v: 1, w: {x: y}}]", "echo ${v} ${w.x}", "echo 1 y"),
        ("[o.yaml]", "echo ${p} ${r.s}", "echo 7 9"),
        ("[conf/c.json]", "echo ${cj.deep} ${other}", "echo true 0"),
        ("[conf/c.toml]", "echo ${ct} ${tbl.k}", "echo toml 2"),
        ("[conf/c.py]", "echo ${CP} ${Cls.attr}", "echo 3 x"),
        ("['o.yaml:p,r']", "echo ${p} ${r.s}", "echo 7 9"),
        ("['o.yaml:p', 'o.yaml:q']", "echo ${p} ${q}", "echo 7 8"),
        ("[o.yaml, o.yaml]", "echo ${p}", "echo 7"),
        ("[params.yaml]", "echo ${a}", "echo 1"),
        ("[{b: {y: 2}}]", "echo ${b.x} ${b.y}", "echo 1 2"),
        ("[{n: {a: 1}}, {n: {b: 2}}]", "echo ${n}", "echo --a 1 --b 2"),
        ("['o.yaml:p,,q']", "echo ${p} ${q}", "echo 7 8"),
        ("['o.yaml:']", "echo ${r.s}", "echo 9"),
    ],
)
def test_top_level_vars(vars_: str, cmd: str, expected: str) -> None:
    assert one(stage_with(cmd, vars_=vars_)).cmd == expected


def test_partial_import_only_defines_the_selected_keys() -> None:
    err = error(stage_with("echo ${q}", vars_="['o.yaml:p']"))
    assert err.reason == "Could not find 'q'"


def test_vars_paths_are_relative_to_the_dvc_yaml_folder() -> None:
    stage = one(
        stage_with("echo ${sv} ${ct}", vars_="[v.yaml, ../conf/c.toml]"), dvcfile="sub/dvc.yaml"
    )
    assert stage.cmd == "echo in-sub toml"


@pytest.mark.parametrize(
    ("vars_", "reason"),
    [
        ("[{a: 2}]", "cannot redefine 'a' from 'vars[0]' as it already exists in 'params.yaml'"),
        (
            "[{b: {x: 5}}]",
            "cannot redefine 'b.x' from 'vars[0]' as it already exists in 'params.yaml'",
        ),
        (
            "[{z: 1}, {z: 2}]",
            "cannot redefine 'z' from 'vars[1]' as it already exists in 'vars[0]'",
        ),
        ("[{p: 0}, o.yaml]", "cannot redefine 'p' from 'o.yaml' as it already exists in 'vars[0]'"),
        ("['params.yaml:a']", "cannot partially load 'params.yaml:a' as it's already loaded."),
        ("[o.yaml, 'o.yaml:p']", "cannot partially load 'o.yaml:p' as it's already loaded."),
        ("['o.yaml:p', o.yaml]", "cannot load 'o.yaml' as it's partially loaded already"),
        ("['o.yaml:p', 'o.yaml:q,p']", "cannot load 'o.yaml:q,p' as it's partially loaded already"),
        ("['o.yaml:zz']", "could not find 'zz' in 'o.yaml'"),
        ("[nope.yaml]", "'nope.yaml' does not exist"),
        ("[list.yaml]", "list.yaml: expected a mapping at the top level, got list"),
        ("[broken.json]", "broken.json: invalid JSON at line 1"),
        ("[../outside.yaml]", "'../outside.yaml' is outside the repository"),
        ("['${a}.yaml']", "interpolating is not allowed"),
        ("[{k: '${a}'}]", "interpolating is not allowed"),
        ("[{'${a}': 1}]", "interpolating is not allowed"),
    ],
)
def test_top_level_vars_errors(vars_: str, reason: str) -> None:
    err = error(stage_with("echo", vars_=vars_), files={**FILES, "broken.json": "{"})
    assert err.location == "vars"
    assert err.reason.startswith(reason)
    assert str(err).startswith("dvc.yaml: vars: ")


# -- stage-level vars ------------------------------------------------------------


def test_stage_vars_are_local_to_their_stage() -> None:
    text = """
    stages:
      s:
        vars: [{local: 1}, o.yaml]
        cmd: echo ${local} ${p} ${a}
      t:
        cmd: echo ${local}
    """
    err = error(text)
    assert (err.location, err.reason) == ("stages.t.cmd", "Could not find 'local'")
    assert resolve(text.split("      t:")[0])[0].cmd == "echo 1 7 1"


@pytest.mark.parametrize(
    ("wdir", "expected"),
    [("sub", "in-sub"), ("sub/deeper", "deeper"), ("${where}", "deeper")],
)
def test_stage_vars_files_are_relative_to_the_stage_wdir(wdir: str, expected: str) -> None:
    text = stage_with(
        "echo ${sv}",
        vars_="[{where: sub/deeper}]",
        stage_extra=f"    wdir: {wdir}\n    vars: [v.yaml]\n",
    )
    assert one(text).cmd == f"echo {expected}"


def test_stage_vars_of_foreach_items_follow_each_wdir() -> None:
    stages = resolve(
        """
        stages:
          s:
            foreach: [sub, sub/deeper]
            do:
              wdir: ${item}
              vars: [v.yaml]
              cmd: echo ${sv}
        """
    )
    assert [(s.name, s.wdir, s.cmd) for s in stages] == [
        ("s@sub", "sub", "echo in-sub"),
        ("s@sub/deeper", "sub/deeper", "echo deeper"),
    ]


@pytest.mark.parametrize(
    ("stage_vars", "location", "reason"),
    [
        (
            "[{a: 5}]",
            "stages.s.vars",
            "cannot redefine 'a' from 's.vars[0]' as it already exists in 'params.yaml'",
        ),
        (
            "[{z: 1}, {z: 2}]",
            "stages.s.vars",
            "cannot redefine 'z' from 's.vars[1]' as it already exists in 's.vars[0]'",
        ),
        (
            "['params.yaml:a']",
            "stages.s.vars",
            "cannot partially load 'params.yaml:a' as it's already loaded.",
        ),
        ("['${a}.yaml']", "stages.s.vars", "interpolating is not allowed"),
        ("[missing.yaml]", "stages.s.vars", "'missing.yaml' does not exist"),
    ],
)
def test_stage_vars_errors(stage_vars: str, location: str, reason: str) -> None:
    err = error(stage_with("echo", stage_extra=f"    vars: {stage_vars}\n"))
    assert (err.location, err.reason) == (location, reason)


def test_stage_vars_may_reload_a_whole_file() -> None:
    assert one(stage_with("echo ${a}", stage_extra="    vars: [params.yaml]\n")).cmd == "echo 1"


@pytest.mark.parametrize(
    ("foreach", "stage_vars", "reason"),
    [
        ("[1]", "[{item: 5}]", "attempted to modify reserved key item"),
        ("{k: 1}", "[{key: 5}]", "attempted to modify reserved key key"),
        ("{k: 1}", "[{key: 5, item: 6}]", "attempted to modify reserved keys item and key"),
        ("[1]", "[item.yaml]", "attempted to modify reserved key item in 'item.yaml'"),
    ],
)
def test_stage_vars_cannot_redefine_item_or_key(foreach: str, stage_vars: str, reason: str) -> None:
    files = {**FILES, "item.yaml": "item: 1\n"}
    text = f"stages:\n  s:\n    foreach: {foreach}\n    do:\n      vars: {stage_vars}\n      cmd: echo\n"
    err = error(text, files)
    assert err.reason == reason
    assert err.location.endswith(".vars")


def test_stage_vars_may_define_key_in_a_list_foreach() -> None:
    text = "stages:\n  s:\n    foreach: [1]\n    do:\n      vars: [{key: k}]\n      cmd: echo ${key}${item}\n"
    assert one(text).cmd == "echo k1"


# -- tracked params ----------------------------------------------------------------


def test_seed_example_tracks_params_used_through_templating() -> None:
    stage = one(
        """
        stages:
          build-us:
            cmd: >-
              python script.py
                --out ${models.us.filename}
                --thresh ${models.us.thresh}
            outs:
              - ${models.us.filename}
        """
    )
    assert stage.cmd == "python script.py\n  --out us.h5\n  --thresh 10"
    assert stage.params == {"params.yaml": ["models.us.filename", "models.us.thresh"]}


@pytest.mark.parametrize(
    ("params", "cmd", "expected"),
    [
        ("[a]", "echo ${a} ${b.x}", {"params.yaml": ["a", "b.x"]}),
        ("[b.x, a, a]", "echo ${a}", {"params.yaml": ["b.x", "a"]}),
        ("[{params.yaml: }]", "echo ${a}", {"params.yaml": []}),
        ("[{params.yaml: []}, a]", "echo ${a}", {"params.yaml": []}),
        ("[a, {params.yaml: }]", "echo ${b.x}", {"params.yaml": []}),
        ("[{o.yaml: [p]}, a]", "echo", {"o.yaml": ["p"], "params.yaml": ["a"]}),
        ("[{o.yaml: [p]}, {o.yaml: [q, p]}]", "echo", {"o.yaml": ["p", "q"]}),
        ("[{o.yaml: [p]}, {o.yaml: }]", "echo", {"o.yaml": []}),
        ("[{x.json: [k], y.toml: []}]", "echo", {"x.json": ["k"], "y.toml": []}),
        ("['${lst[0]}']", "echo", {"params.yaml": ["1", "lst.0"]}),
        ("[]", "echo ${lst[1]} ${lst.0}", {"params.yaml": ["lst.1", "lst.0"]}),
        ("[]", "echo ${models.us} ${b}", {}),  # whole mappings are not tracked
    ],
)
def test_explicit_params_come_first_then_tracked(params: str, cmd: str, expected: dict) -> None:
    assert one(stage_with(cmd, stage_extra=f"    params: {params}\n")).params == expected


def test_track_vars_false_keeps_only_explicit_params() -> None:
    text = stage_with("echo ${a} ${b.x}", stage_extra="    params: [{o.yaml: [p]}]\n")
    assert one(text, track_vars=False).params == {"o.yaml": ["p"]}
    assert one(text).params == {"o.yaml": ["p"], "params.yaml": ["a", "b.x"]}


def test_inline_vars_are_not_tracked_but_vars_files_are() -> None:
    text = stage_with("echo ${v} ${p} ${ct}", vars_="[{v: 1}, 'o.yaml:p', conf/c.toml]")
    assert one(text).params == {"o.yaml": ["p"], "conf/c.toml": ["ct"]}


def test_tracked_files_are_relative_to_the_stage_wdir() -> None:
    text = stage_with(
        "echo ${a} ${sv} ${p}",
        vars_="[o.yaml]",
        stage_extra="    wdir: sub/deeper\n    vars: [v.yaml]\n    params: [k]\n",
    )
    assert one(text).params == {
        "params.yaml": ["k"],
        "../../params.yaml": ["a"],
        "v.yaml": ["sv"],
        "../../o.yaml": ["p"],
    }


def test_tracked_files_of_a_dvc_yaml_in_a_subfolder() -> None:
    text = stage_with("echo ${a} ${ct}", vars_="[../conf/c.toml]", stage_extra="    wdir: ..\n")
    stage = one(text, dvcfile="sub/dvc.yaml")
    assert stage.wdir == "."
    assert stage.params == {"sub/params.yaml": ["a"], "conf/c.toml": ["ct"]}


def test_whole_file_param_absorbs_tracked_keys_relative_to_wdir() -> None:
    text = stage_with("echo ${a}", stage_extra="    wdir: sub\n    params: [{../params.yaml: }]\n")
    assert one(text).params == {"../params.yaml": []}


def test_foreach_over_a_params_value_tracks_through_item() -> None:
    stages = resolve(
        """
        stages:
          build:
            foreach: ${models}
            do:
              cmd: python script.py --thresh ${item.thresh} --name ${key}
        """
    )
    assert [(s.name, s.params) for s in stages] == [
        ("build@us", {"params.yaml": ["models.us.thresh"]}),
        ("build@gb", {"params.yaml": ["models.gb.thresh"]}),
    ]


def test_matrix_over_a_params_list_tracks_each_element() -> None:
    stages = resolve("stages:\n  m:\n    matrix:\n      n: ${lst}\n    cmd: echo ${item.n}\n")
    assert [(s.name, s.params) for s in stages] == [
        ("m@1", {"params.yaml": ["lst.0"]}),
        ("m@2", {"params.yaml": ["lst.1"]}),
    ]


def test_literal_foreach_items_are_not_tracked() -> None:
    assert (
        resolve("stages:\n  s:\n    foreach: [1]\n    do:\n      cmd: echo ${item}\n")[0].params
        == {}
    )


def test_interpolated_wdir_is_tracked() -> None:
    files = {"params.yaml": "dir: sub\n"}
    stage = one(stage_with("echo", stage_extra="    wdir: ${dir}\n"), files)
    assert (stage.wdir, stage.params) == ("sub", {"../params.yaml": ["dir"]})


def test_vars_files_are_read_once_per_resolution() -> None:
    reads: list[str] = []

    class Recording(MemorySource):
        def read_bytes(self, path: str) -> bytes | None:
            reads.append(path)
            return super().read_bytes(path)

    text = "stages:\n  s:\n    foreach: [1, 2, 3]\n    do:\n      vars: [o.yaml]\n      cmd: echo ${p}\n"
    data = parse_yaml(text, "dvc.yaml")
    stages = resolve_dvcfile(data, dvcfile="dvc.yaml", source=Recording(FILES))
    assert [s.cmd for s in stages] == ["echo 7"] * 3
    assert sorted(reads) == ["o.yaml", "params.yaml"]
