"""DVC 2's ``live:`` section and checkpoint outs: templating, schema, ``stage add``."""

from __future__ import annotations

import textwrap

import pytest

from exq.engine.errors import DvcFileError, TemplateError
from exq.engine.spec.dvcyaml_edit import LiveOptions, stage_data
from exq.engine.spec.paramfiles import parse_yaml
from exq.engine.spec.stage import LiveSpec, Out, Stage
from exq.engine.spec.templating import resolve_dvcfile
from tests.support import MemorySource


def resolve(text: str) -> list[Stage]:
    data = parse_yaml(textwrap.dedent(text), "dvc.yaml")
    source = MemorySource({"params.yaml": "dir: logs\n"})
    return resolve_dvcfile(data, dvcfile="dvc.yaml", source=source)


@pytest.mark.parametrize(
    ("props", "spec", "outs"),
    [
        ("", LiveSpec("logs"), [Out("logs", "plots")]),
        (
            "{summary: true, html: true, cache: false}",
            LiveSpec("logs", cache=False),
            [Out("logs", "plots", cache=False)],
        ),
        (
            "{summary: false, report: false}",
            LiveSpec("logs", summary=False, html=False),
            [Out("logs", "plots")],
        ),
        ("{html: false}", LiveSpec("logs", html=False), [Out("logs", "plots")]),
    ],
)
def test_the_live_section_declares_its_folder_only(
    props: str, spec: LiveSpec, outs: list[Out]
) -> None:
    [stage] = resolve(f"""
        stages:
          train:
            cmd: python train.py
            outs:
              - model.pt: {{checkpoint: true}}
            live:
              logs: {props or "{}"}
        """)
    assert stage.live == spec
    assert stage.outs == [Out("model.pt", checkpoint=True), *outs]


def test_the_live_folder_may_be_interpolated_and_sits_in_the_wdir() -> None:
    [stage] = resolve("""
        stages:
          train:
            cmd: python train.py
            wdir: sub
            live:
              ${dir}/run: {summary: true}
        """)
    assert stage.live is not None and stage.live.path == "logs/run"
    assert [out.path for out in stage.outs] == ["logs/run"]


@pytest.mark.parametrize(
    ("live", "error", "reason"),
    [
        ("{a: {}, b: {}}", DvcFileError, "stages.train.live: expected exactly one logger folder"),
        ("[logs]", DvcFileError, "stages.train.live: expected dict, got list"),
        (
            "{logs: {summary: yes please}}",
            DvcFileError,
            "stages.train.live.logs.summary: expected bool",
        ),
        ("{logs: {colour: red}}", DvcFileError, "stages.train.live.logs: unknown key 'colour'"),
    ],
)
def test_a_bad_live_section_is_refused(live: str, error: type[Exception], reason: str) -> None:
    with pytest.raises(error) as info:
        resolve(f"stages:\n  train:\n    cmd: echo\n    live: {live}\n")
    assert reason in str(info.value)


def test_a_live_file_that_is_an_out_already_is_refused() -> None:
    with pytest.raises(TemplateError) as info:
        resolve("stages:\n  train:\n    cmd: echo\n    plots: [logs]\n    live: {logs: {}}\n")
    assert "'logs' is an output of the stage already" in str(info.value)


def test_stage_add_data_has_checkpoint_outs_and_the_live_section() -> None:
    data = stage_data(
        cmd="python train.py",
        deps=["train.py"],
        outs=["data.bin"],
        checkpoints=["model.pt"],
        live=LiveOptions("logs", summary=False, cache=False),
    )
    assert list(data) == ["cmd", "deps", "outs", "live"]
    assert data["outs"] == ["data.bin", {"model.pt": {"checkpoint": True}}]
    assert data["live"] == {"logs": {"summary": False, "html": True, "cache": False}}
