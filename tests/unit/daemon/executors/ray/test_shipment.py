"""Packs and frames (pure), the end of a cluster job (pure), the config file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from exq.daemon.config import DaemonConfig, read_config_file
from exq.daemon.executors.ray.shipment import (
    FRAME_MARK,
    FrameReader,
    Pack,
    ShipmentError,
    decode_pack,
    encode_pack,
    frame_lines,
    hashes_in,
    listed_names,
)
from exq.daemon.states import Outcome, RunState, end_state, remote_end
from exq.engine.errors import ConfigError


def _pack() -> Pack:
    data = b"model weights\n"
    return Pack(
        meta={"kind": "checkpoint", "ref": "refs/exps/ab/cd/x", "step": 3},
        objects=[("0" * 40, 3, b"blob")],
        cache=[(hashlib.md5(data).hexdigest(), data)],
    )


def test_a_pack_round_trips() -> None:
    assert decode_pack(encode_pack(_pack())) == _pack()


def test_a_damaged_cache_object_is_refused() -> None:
    pack = _pack()
    pack.cache = [(pack.cache[0][0], b"something else")]
    with pytest.raises(ShipmentError, match="arrived damaged"):
        decode_pack(encode_pack(pack))


@pytest.mark.parametrize("blob", [b"", b"EXQPACK1\nnot zlib", b"PK\x03\x04"])
def test_garbage_is_not_a_pack(blob: bytes) -> None:
    with pytest.raises(ShipmentError):
        decode_pack(blob)


@pytest.mark.parametrize("chunk_size", [1, 7, 100, 10**6])
def test_frames_survive_any_chunking_among_output(chunk_size: int) -> None:
    blob = encode_pack(_pack()) * 50
    stream = "epoch 1\npartial line" + frame_lines(0, blob, width=64) + "epoch 2\n"
    reader, text, packs = FrameReader(), "", []
    for i in range(0, len(stream), chunk_size):
        out, done = reader.feed(stream[i : i + chunk_size])
        text += out
        packs += done
    text += reader.flush()
    assert packs == [(0, blob)]
    assert text == "epoch 1\npartial line\nepoch 2\n"


def _lines(text: str) -> list[str]:
    # Not str.splitlines: it splits at the frame mark's record separator too.
    return [line + "\n" for line in text.split("\n")[:-1]]


def test_a_replay_from_the_start_restarts_a_half_read_pack() -> None:
    lines = _lines(frame_lines(4, b"x" * 300, width=100))
    reader = FrameReader()
    assert reader.feed(lines[0]) == ("", [])
    assert reader.feed("".join(lines)) == ("", [(4, b"x" * 300)])


def test_a_frame_out_of_order_is_refused() -> None:
    lines = _lines(frame_lines(1, b"y" * 300, width=100))
    with pytest.raises(ShipmentError, match="out of order"):
        FrameReader().feed(lines[1])
    with pytest.raises(ShipmentError, match="damaged frame"):
        FrameReader().feed(f"{FRAME_MARK}nonsense\n")


def test_hashes_and_listings() -> None:
    lock = {
        "stages": {
            "a": {
                "deps": [{"path": "d", "md5": "1" * 32}],
                "outs": [{"path": "o", "md5": "2" * 32 + ".dir"}],
            }
        }
    }
    assert sorted(hashes_in(lock)) == ["1" * 32, "2" * 32 + ".dir"]
    assert listed_names(b'[{"md5": "ab", "relpath": "x"}]') == ["ab"]
    assert listed_names(b"not json") == []


@pytest.mark.parametrize(
    ("result", "status", "code", "expected"),
    [
        ({"outcome": "success"}, "SUCCEEDED", 0, Outcome.SUCCESS),
        ({"outcome": "failed", "error": "stage x", "exit_code": 3}, "FAILED", 3, Outcome.FAILED),
        ({"outcome": "interrupted"}, "STOPPED", None, Outcome.INTERRUPTED),
        (None, "STOPPED", None, Outcome.INTERRUPTED),  # stopped before the worker answered
        (None, "FAILED", None, Outcome.INTERRUPTED),  # the node or the supervisor died
        (None, "FAILED", -9, Outcome.INTERRUPTED),  # killed by a signal
        (None, "FAILED", 1, Outcome.FAILED),  # exq missing on the node, say
        (None, "SUCCEEDED", 0, Outcome.FAILED),  # ended without a word: not a success
    ],
)
def test_the_end_of_a_cluster_job(
    result: dict[str, object] | None, status: str, code: int | None, expected: Outcome
) -> None:
    outcome, error, _ = remote_end(result, status, code, "msg")
    assert outcome is expected
    assert (error is None) == (expected is Outcome.SUCCESS)


def test_an_interrupted_cluster_run_ends_interrupted_unless_killed() -> None:
    assert end_state(Outcome.INTERRUPTED, None, "node died") == (RunState.INTERRUPTED, "node died")


def test_the_config_file_picks_the_executor_and_the_env_overrides_it(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[queue]\nexecutor = "ray"\n[ray]\naddress = "http://head:8265"\n')
    env = {"EXQ_CONFIG": str(path), "EXQ_STATE_DIR": str(tmp_path / "s")}
    config = DaemonConfig.from_env(env)
    assert (config.executor, config.ray_address) == ("ray", "http://head:8265")
    config = DaemonConfig.from_env({**env, "EXQ_EXECUTOR": "local", "RAY_ADDRESS": "http://o:1"})
    assert (config.executor, config.ray_address) == ("local", "http://o:1")
    assert config.with_executor("ray", "http://p:2").ray_address == "http://p:2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[queue]\nexecutor = "slurm"\n', "unknown executor 'slurm'"),
        ("queue = 3\n", "'queue' must be a table"),
        ("[queue\n", "cannot read"),
    ],
)
def test_a_bad_config_file_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        DaemonConfig.from_env({"EXQ_CONFIG": str(path), "EXQ_STATE_DIR": str(tmp_path)})
    if "slurm" not in text:
        with pytest.raises(ConfigError, match=str(path).replace(".", r"\.")):
            read_config_file(path)


def test_the_daemon_id_is_made_once(tmp_path: Path) -> None:
    config = DaemonConfig(state_dir=tmp_path / "s", runtime_dir=tmp_path / "r")
    first = config.daemon_id()
    assert len(first) == 8 and config.daemon_id() == first
