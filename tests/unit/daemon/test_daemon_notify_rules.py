"""``[notify]``: the table's checks, which events it asks for, the variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from exq.daemon.notify import (
    QUEUE_DRAINED,
    RUN_END,
    Event,
    NotifyConfig,
    notify_env,
    parse_notify,
    summary,
    wanted,
)
from exq.daemon.states import RunState
from exq.engine.errors import ConfigError

PATH = Path("/cfg/config.toml")
FAILED = Event(RUN_END, run_id=4, name="lr-1", state="failed", exit_code=3, repo="/r")
DONE = Event(RUN_END, run_id=5, name="lr-2", state="success", exit_code=0, experiment_ref="x")
DRAINED = Event(QUEUE_DRAINED)


def test_a_full_table_and_none() -> None:
    table = {"command": "x", "on": ["failed"], "timeout": 5, "desktop": True}
    assert parse_notify(table, PATH) == NotifyConfig("x", ("failed",), 5.0, True)
    assert parse_notify(None, PATH) == NotifyConfig()
    assert not NotifyConfig().active


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("cmd", "'notify' must be a table"),
        ({"comand": "x"}, "unknown key [notify] comand"),
        ({"command": ""}, "[notify] command must be a non-empty string"),
        ({"on": "failed"}, "[notify] on must be a list of"),
        ({"on": ["sucess"]}, "[notify] on must be a list of"),
        ({"timeout": 0}, "[notify] timeout must be a number of seconds above 0"),
        ({"timeout": True}, "[notify] timeout must be a number"),
        # TOML's inf and nan, and what no clock holds, failed each delivery with an error
        ({"timeout": float("inf")}, "[notify] timeout must be up to 86400 seconds"),
        ({"timeout": float("nan")}, "[notify] timeout must be a number of seconds above 0"),
        ({"timeout": 1e300}, "up to 86400"),
        ({"desktop": "yes"}, "[notify] desktop must be true or false"),
    ],
)
def test_bad_tables_name_the_file_and_key(table: object, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^/cfg/config.toml: ") as caught:
        parse_notify(table, PATH)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "state", [s.value for s in RunState if s not in (RunState.QUEUED, RunState.RUNNING)]
)
def test_on_takes_every_state_a_run_ends_in(state: str) -> None:
    # a run past its --timeout ends 'timeout': a user must be able to ask for it
    assert parse_notify({"on": [state]}, PATH).on == (state,)
    ended = Event(RUN_END, run_id=6, name="slow", state=state)
    assert wanted((state,), ended)


@pytest.mark.parametrize(
    ("on", "told"),
    [
        ((), [FAILED, DONE, DRAINED]),
        (("failed", "queue-drained"), [FAILED, DRAINED]),
        (("run-end",), [FAILED, DONE]),
        (("success",), [DONE]),
    ],
)
def test_on_picks_events_and_end_states(on: tuple[str, ...], told: list[Event]) -> None:
    assert [e for e in (FAILED, DONE, DRAINED) if wanted(on, e)] == told


def test_variables_and_summaries() -> None:
    assert notify_env(FAILED) == {
        "EXQ_EVENT": "run-end",
        "EXQ_RUN_ID": "4",
        "EXQ_RUN_NAME": "lr-1",
        "EXQ_RUN_STATE": "failed",
        "EXQ_EXIT_CODE": "3",
        "EXQ_EXPERIMENT_REF": "",
        "EXQ_REPO": "/r",
    }
    assert notify_env(DRAINED)["EXQ_RUN_ID"] == ""
    assert summary(FAILED) == "run 4 'lr-1' ended failed (exit 3)"
    assert summary(DONE) == "run 5 'lr-2' ended success"
    assert summary(DRAINED) == "the queue is empty: every run has ended"
