"""Pure checkpoint decisions: resume, modified or new; inputs vs outputs; chain messages."""

from __future__ import annotations

import pytest

from exq.engine.experiments.chains import (
    RESUME_ENV,
    Held,
    chain_message,
    chain_ref,
    input_changes,
    parse_trailers,
    plan_chain,
)
from exq.engine.spec.stage import LiveSpec, Out, Stage, live_layout

REF = "refs/exps/ab/" + "c" * 38 + "/exp-e15bc"


def held(*, at_tip: bool = True) -> Held:
    return Held(sha="1" * 40, ref=REF, name="exp-e15bc", baseline="ab" + "c" * 38, at_tip=at_tip)


@pytest.mark.parametrize(
    ("holding", "modified", "reset", "explicit", "kind", "name", "message"),
    [
        (None, False, False, None, "new", "exp-new", None),
        (None, False, True, None, "new", "exp-new", None),
        (
            held(),
            False,
            False,
            None,
            "resume",
            "exp-e15bc",
            "Existing checkpoint experiment 'exp-e15bc' will be resumed",
        ),
        (
            held(),
            True,
            False,
            None,
            "modified",
            "exp-new",
            "Modified checkpoint experiment based on 'exp-e15bc' will be created",
        ),
        (held(), False, True, None, "new", "exp-new", None),
        (held(), True, True, None, "new", "exp-new", None),
        # a checkpoint in the middle of a chain: the chain goes on past it, so a new one
        (
            held(at_tip=False),
            False,
            False,
            None,
            "modified",
            "exp-new",
            "Modified checkpoint experiment based on 'exp-e15bc' will be created",
        ),
        (
            held(),
            False,
            False,
            "exp-e15bc",
            "resume",
            "exp-e15bc",
            "Existing checkpoint experiment 'exp-e15bc' will be resumed",
        ),
        (
            held(),
            False,
            False,
            "mine",
            "modified",
            "mine",
            "Checkpoint experiment 'mine' based on 'exp-e15bc' will be created",
        ),
    ],
)
def test_plan_chain(holding, modified, reset, explicit, kind, name, message) -> None:  # type: ignore[no-untyped-def]
    new_name = explicit or "exp-new"
    plan = plan_chain(
        holding, modified=modified, reset=reset, new_name=new_name, explicit_name=explicit
    )
    assert (plan.kind, plan.name, plan.message) == (kind, name, message)
    if kind == "new":
        assert plan.parent is None and not plan.resume and plan.env == {}
    else:
        assert plan.parent == "1" * 40 and plan.resume and plan.env == RESUME_ENV


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        (["dvc.lock", "logs.json", "logs/loss.tsv", "model.txt"], []),
        (["sub/dvc.lock", "logs.html"], []),
        (["train.py", "dvc.lock"], ["train.py"]),
        (["params.yaml", "logs/x/y.tsv"], ["params.yaml"]),
        (["logsbook.txt", "model.txt.bak"], ["logsbook.txt", "model.txt.bak"]),
        ([".gitignore"], [".gitignore"]),
        # a logger's report, rewritten when it ends (dvclive 0.7+, exq.live, DVC 2's render)
        (["dvclive/report.html", "logs_dvc_plots/index.html", "report.html"], []),
        (["docs/index.html", "report.html.bak"], ["docs/index.html", "report.html.bak"]),
    ],
)
def test_input_changes_leave_out_outputs_and_locks(changed: list[str], expected: list[str]) -> None:
    outs = ["model.txt", "logs", "logs.json", "logs.html"]
    assert input_changes(changed, outs) == expected


def test_chain_messages_carry_the_ref_and_the_step() -> None:
    message = chain_message("exp-e15bc", REF, step=3)
    assert message.splitlines()[0] == "exq: checkpoint exp-e15bc step 3"
    assert parse_trailers(message) == {"Exq-Checkpoint-Of": REF, "Exq-Step": "3"}
    final = chain_message("exp-e15bc", REF, step=3, final=True)
    assert final.splitlines()[0] == "exq: experiment exp-e15bc"
    assert parse_trailers(final) == {"Exq-Checkpoint-Of": REF}
    assert chain_ref(final) == REF
    assert chain_ref("exq: experiment exp-1\n") is None
    assert chain_ref("subject\n\nbody with: a colon but no key\n") is None


def test_live_spec_outs_and_env() -> None:
    spec = LiveSpec("logs", summary=True, html=False, cache=False)
    assert spec.paths() == {"logs", "logs.json"}
    assert LiveSpec("logs", summary=False).paths() == {"logs"}
    assert spec.env() == {"DVCLIVE_PATH": "logs", "DVCLIVE_SUMMARY": "1", "DVCLIVE_HTML": "0"}


def test_checkpoint_stages_keep_their_checkpoint_and_live_outs() -> None:
    outs = [
        Out("model.pt", checkpoint=True),
        Out("other.bin"),
        Out("kept.bin", persist=True),
        Out("logs", "plots"),
        Out("logs.json", "metrics"),
    ]
    stage = Stage(
        "train", "dvc.yaml", "python train.py", outs=outs, live=LiveSpec("logs", html=False)
    )
    assert stage.has_checkpoints
    assert [out.path for out in stage.kept_outs()] == ["model.pt", "kept.bin", "logs", "logs.json"]
    plain = Stage("eval", "dvc.yaml", "python eval.py", outs=outs[1:], live=LiveSpec("logs"))
    assert not plain.has_checkpoints
    assert [out.path for out in plain.kept_outs()] == ["kept.bin"]


@pytest.mark.parametrize(
    ("outs", "layout"),
    [
        (["dvclive/plots/metrics"], "plots"),
        (["logs/plots/metrics/loss.tsv"], "plots"),
        (["dvclive/metrics.json"], "plots"),
        (["eval/metrics.json"], None),  # a stage's own metrics file asks for nothing
        (["eval/plots"], None),
        (["logs/scalars"], "scalars"),
        (["logs/scalars/loss.tsv", "model.pt"], "scalars"),
        (["scalars", "model.pt"], None),
    ],
)
def test_the_logger_layout_a_stage_asks_for(outs: list[str], layout: str | None) -> None:
    stage = Stage("train", "dvc.yaml", "python train.py", outs=[Out(p, "outs") for p in outs])
    assert live_layout(outs) == layout
    assert stage.live_env().get("EXQ_LIVE_LAYOUT") == layout
    with_section = Stage("train", "dvc.yaml", "x", outs=stage.outs, live=LiveSpec("logs"))
    assert with_section.live_env()["DVCLIVE_PATH"] == "logs"
    assert LiveSpec("logs").html_path == "logs_dvc_plots/index.html"
