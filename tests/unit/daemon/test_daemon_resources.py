"""Resource accounting, queue order, dependencies, retries and the values users
type: pure functions, plain data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exq.daemon.machine import detect
from exq.daemon.options import RawOptions, RunOptions, resolve
from exq.daemon.resources import (
    MAX_DURATION,
    Ask,
    Candidate,
    Holding,
    Machine,
    ResourceError,
    Start,
    fit,
    format_duration,
    format_size,
    gpu_env,
    holding_of,
    parse_duration,
    parse_gpus,
    parse_size,
    plan_starts,
    retry_delay,
    too_big,
)
from exq.daemon.states import (
    DEPS_BROKEN,
    DEPS_MET,
    DEPS_WAIT,
    Outcome,
    RunState,
    StopReason,
    can_transition,
    deps_state,
    end_state,
    should_retry,
)
from exq.engine.errors import ConfigError

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
TWO = Machine(gpus=("0", "1"), cpus=8.0, mem=16 << 30)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("30m", 1800), ("2h", 7200), ("1.5h", 5400), ("1d", 86400)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["2x", "", "h", "-5", "0", "1 hour", "2h30m"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ResourceError, match="--timeout '.*' is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("16G", 16 << 30), ("512M", 512 << 20), ("1.5GiB", 3 << 29), ("100", 100), ("2k", 2048)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "0", "-1G", "16X", ""])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ResourceError, match="is not a size"):
        parse_size(text)


@pytest.mark.parametrize(("text", "count"), [("0", 0), ("1", 1), ("2.0", 2), (3, 3)])
def test_parse_gpus(text: str, count: int) -> None:
    assert parse_gpus(text) == count


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-1", "a number of GPUs is 0 or more"),
        ("0.5", "GPUs are not shared between runs"),
        ("lots", "is not a number of GPUs"),
        ("inf", "a number of GPUs is 0 or more"),
    ],
)
def test_parse_gpus_refuses(text: str, message: str) -> None:
    with pytest.raises(ResourceError, match=message):
        parse_gpus(text)


def test_formats() -> None:
    assert [format_size(s) for s in (16 << 30, 3 << 29, 512 << 20, 100)] == [
        "16G",
        "1.5G",
        "512M",
        "100",
    ]
    assert [format_duration(s) for s in (90, 1800, 7200, 5400, 0)] == [
        "1m30s",
        "30m",
        "2h",
        "1h30m",
        "0s",
    ]


def test_options_take_the_config_defaults_under_the_given_values() -> None:
    defaults = {"gpus": 1, "timeout": "12h", "retries": 2, "retry_delay": "5m", "mem": "1G"}
    assert resolve(RawOptions(gpus="2", priority="-3"), defaults) == RunOptions(
        gpus=2, mem=1 << 30, priority=-3, timeout=43200, retries=2, retry_delay=300
    )
    assert resolve(RawOptions(retry_delay="0")) == RunOptions(retry_delay=0.0)
    with pytest.raises(ResourceError, match=r"^\[queue\] timeout .2x. is not a duration"):
        resolve(RawOptions(), {"timeout": "2x"})
    with pytest.raises(ResourceError, match="--priority '1.5' is not a whole number"):
        resolve(RawOptions(priority="1.5"))
    with pytest.raises(ResourceError, match="--retries '-1' must be 0 or more"):
        resolve(RawOptions(retries="-1"))


def test_fit_gives_free_devices_and_counts_cpus_and_memory() -> None:
    held = holding_of([(["0"], Ask(gpus=1, cpus=4, mem=8 << 30))])
    assert fit(Ask(gpus=1), TWO, held) == ["1"]
    assert fit(Ask(gpus=2), TWO, held) is None
    assert fit(Ask(cpus=4), TWO, held) == []
    assert fit(Ask(cpus=4.5), TWO, held) is None
    assert fit(Ask(mem=9 << 30), TWO, held) is None
    assert fit(Ask(), TWO, holding_of([([], Ask(cpus=8))])) == []  # no ask: never waits


def test_too_big_names_what_the_machine_lacks() -> None:
    assert too_big(Ask(gpus=2, cpus=8, mem=16 << 30), TWO) is None
    assert too_big(Ask(gpus=3), TWO) == "asks for 3 GPU(s), the machine has 2"
    assert too_big(Ask(gpus=1), Machine()) == (
        "asks for 1 GPU(s), the machine has 0 (set [resources] gpus in the config file,"
        " or EXQ_GPUS)"
    )
    assert too_big(Ask(cpus=9), TWO) == "asks for 9 CPUs, the machine has 8"
    assert too_big(Ask(mem=32 << 30), TWO) == "asks for 32G of memory, the machine has 16G"
    assert too_big(Ask(mem=1 << 40), Machine(mem=0)) is None  # unknown memory: not counted


def cand(run_id: int, gpus: int = 0, priority: int = 0, **kw: object) -> Candidate:
    return Candidate(run_id=run_id, priority=priority, seq=run_id, ask=Ask(gpus=gpus), **kw)


def test_four_one_gpu_runs_on_two_gpus_start_two_with_distinct_devices() -> None:
    runs = [cand(i, gpus=1) for i in range(1, 5)]
    assert plan_starts(runs, TWO, Holding(), range(4), NOW) == [
        Start(1, 0, ("0",)),
        Start(2, 1, ("1",)),
    ]
    # Run 1 ended: its device goes to the next.
    held = holding_of([(["1"], Ask(gpus=1))])
    assert plan_starts(runs[2:], TWO, held, [0, 2, 3], NOW) == [Start(3, 0, ("0",))]


def test_order_is_priority_then_age_and_a_big_run_is_not_overtaken() -> None:
    runs = [cand(1), cand(2, priority=5), cand(3, priority=5), cand(4, priority=-1)]
    assert [s.run_id for s in plan_starts(runs, TWO, Holding(), range(9), NOW)] == [2, 3, 1, 4]
    blocked = [cand(1, gpus=2, priority=1), cand(2, gpus=1), cand(3)]
    held = holding_of([(["0"], Ask(gpus=1))])
    assert plan_starts(blocked, TWO, held, range(9), NOW) == []  # run 1 waits for 2 GPUs
    assert plan_starts(blocked, TWO, Holding(), range(9), NOW) == [
        Start(1, 0, ("0", "1")),
    ]


def test_waiting_runs_are_passed_over() -> None:
    later = NOW + timedelta(minutes=1)
    runs = [
        cand(1, deps_met=False),
        cand(2, not_before=later),
        cand(3, not_before=NOW),
        cand(4, gpus=1, local=False),  # a cluster run: no local devices
    ]
    assert plan_starts(runs, Machine(), Holding(), range(9), NOW) == [
        Start(3, 0),
        Start(4, 1),
    ]


def test_slots_stay_a_cap_and_are_taken_lazily() -> None:
    runs = [cand(i) for i in range(1, 4)]
    assert plan_starts(runs, TWO, Holding(), iter([5]), NOW) == [Start(1, 5)]

    def slots():  # noqa: ANN202 - a generator
        yield 0
        raise AssertionError("asked for a slot no run needs")

    assert plan_starts(runs[:1], TWO, Holding(), slots(), NOW) == [Start(1, 0)]


def test_gpu_env() -> None:
    assert gpu_env(["1", "3"], TWO) == {"CUDA_VISIBLE_DEVICES": "1,3", "EXQ_GPUS": "1,3"}
    assert gpu_env([], TWO) == {"CUDA_VISIBLE_DEVICES": "", "EXQ_GPUS": ""}
    assert gpu_env([], Machine()) == {}


def test_retry_delay_doubles() -> None:
    assert [retry_delay(60, used) for used in range(4)] == [60, 120, 240, 480]


def test_retry_delay_stops_doubling_at_the_longest_duration() -> None:
    # the daemon added it to now: past year 9999 an OverflowError ended the daemon
    assert retry_delay(3650 * 86400, 20) == MAX_DURATION == 3650 * 86400
    assert retry_delay(60, 10**6) == MAX_DURATION


@pytest.mark.parametrize("text", ["99999999d", "3651d", "1" + "0" * 400])
def test_parse_duration_refuses_what_no_clock_reaches(text: str) -> None:
    with pytest.raises(ResourceError, match=r"^--since '.*': at most 3650d \(ten years\)"):
        parse_duration(text, "--since")
    assert parse_duration("3650d") == MAX_DURATION


@pytest.mark.parametrize(
    ("raw", "option"),
    [
        (RawOptions(retries="99999999999999999999"), "--retries"),
        (RawOptions(priority="99999999999999999999"), "--priority"),
        (RawOptions(priority="-99999999999999999999"), "--priority"),
    ],
)
def test_whole_numbers_beyond_what_the_queue_stores_are_refused(
    raw: RawOptions, option: str
) -> None:
    # an OverflowError traceback from SQLite at enqueue
    with pytest.raises(ResourceError, match=rf"^{option} '.*': at most 2147483647 either way"):
        resolve(raw)


@pytest.mark.parametrize(
    ("after", "states", "expected"),
    [
        ([], {}, (DEPS_MET, None)),
        ([1, 2], {1: RunState.SUCCESS, 2: RunState.SUCCESS}, (DEPS_MET, None)),
        ([1, 2], {1: RunState.SUCCESS, 2: RunState.RUNNING}, (DEPS_WAIT, None)),
        ([1], {1: RunState.INTERRUPTED}, (DEPS_WAIT, None)),  # queued again at start
        ([1], {1: RunState.FAILED}, (DEPS_BROKEN, "run 1 it was to run after ended failed")),
        (
            [2, 1],
            {1: RunState.QUEUED, 2: RunState.TIMEOUT},
            (DEPS_BROKEN, "run 2 it was to run after ended timeout"),
        ),
        ([7], {}, (DEPS_BROKEN, "run 7 it was to run after was removed")),
    ],
)
def test_deps_state(
    after: list[int], states: dict[int, RunState], expected: tuple[str, str | None]
) -> None:
    assert deps_state(after, states) == expected


def test_timeout_state_and_retry_rules() -> None:
    assert end_state(Outcome.FAILED, StopReason.TIMEOUT, "x")[0] is RunState.TIMEOUT
    assert end_state(Outcome.INTERRUPTED, StopReason.TIMEOUT, "x")[0] is RunState.TIMEOUT
    assert end_state(Outcome.SUCCESS, StopReason.TIMEOUT, None)[0] is RunState.SUCCESS
    assert can_transition(RunState.RUNNING, RunState.TIMEOUT)
    assert can_transition(RunState.TIMEOUT, RunState.QUEUED)
    assert should_retry(RunState.FAILED, "stage failed", 1)
    assert not should_retry(RunState.FAILED, "stage failed", 0)
    assert not should_retry(RunState.FAILED, "killed", 3)  # the user meant it
    assert not should_retry(RunState.TIMEOUT, None, 3)


def test_machine_gpus_first_found_wins() -> None:
    assert detect({"gpus": ["2", 3]}, {"CUDA_VISIBLE_DEVICES": "0"}).gpus == ("2", "3")
    assert detect({}, {"CUDA_VISIBLE_DEVICES": "1, 4"}).gpus == ("1", "4")
    assert detect({}, {"CUDA_VISIBLE_DEVICES": ""}).gpus == ()
    machine = detect({"cpus": 3, "mem": "2G"}, {"CUDA_VISIBLE_DEVICES": "-1"})
    assert machine == Machine(gpus=(), cpus=3.0, mem=2 << 30)
    assert detect({}, {}).cpus >= 1 and detect({}, {}).mem > 0
    with pytest.raises(ConfigError, match=r"\[resources\] gpus must be a list"):
        detect({"gpus": "0,1"}, {})
    with pytest.raises(ConfigError, match=r"\[resources\] mem 'lots' is not a size"):
        detect({"mem": "lots"}, {})
