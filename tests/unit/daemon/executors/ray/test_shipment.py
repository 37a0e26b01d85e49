"""Packs and frames (pure), the end of a cluster job (pure), the config file."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tracemalloc
from functools import partial
from pathlib import Path

import pytest

from exq.daemon.config import DaemonConfig, read_config_file
from exq.daemon.executors.ray.remote import stages_to_rerun
from exq.daemon.executors.ray.shipment import (
    FRAME_MARK,
    PIECE,
    SPOOL_IN_MEMORY,
    FrameReader,
    Pack,
    ShipmentError,
    decode_pack,
    encode_pack,
    frame_lines,
    hashes_in,
    listed_names,
    read_pack,
    store_cache_object,
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


def _feed(reader: FrameReader, text: str) -> tuple[str, list[tuple[int, bytes]]]:
    out, packs = reader.feed(text)
    return out, [(seq, pack.read()) for seq, pack in packs]


@pytest.mark.parametrize("chunk_size", [1, 7, 100, 10**6])
def test_frames_survive_any_chunking_among_output(chunk_size: int) -> None:
    blob = encode_pack(_pack()) * 50
    stream = "epoch 1\npartial line" + frame_lines(0, blob, width=64) + "epoch 2\n"
    reader, text, packs = FrameReader(), "", []
    for i in range(0, len(stream), chunk_size):
        out, done = _feed(reader, stream[i : i + chunk_size])
        text += out
        packs += done
    text += reader.flush()
    assert packs == [(0, blob)]
    assert text == "epoch 1\npartial line\nepoch 2\n"


def test_a_pack_is_received_in_bounded_memory(tmp_path: Path) -> None:
    blob = os.urandom(SPOOL_IN_MEMORY + 2 * PIECE)
    chunks = _chunks(frame_lines(0, blob), 20000)
    reader = FrameReader(spool_dir=tmp_path)
    tracemalloc.start()
    try:
        packs = [pack for chunk in chunks for pack in reader.feed(chunk)[1]]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < SPOOL_IN_MEMORY + PIECE  # the pack went to disk past the spool's size
    [(seq, pack)] = packs
    with pack:
        assert (seq, pack.read()) == (0, blob)


def test_a_pack_is_read_in_pieces_into_the_cache(tmp_path: Path) -> None:
    big = os.urandom(3 * PIECE + 5)
    name = hashlib.md5(big).hexdigest()
    blob = encode_pack(Pack(meta={"kind": "x"}, objects=[("0" * 40, 3, b"o")], cache=[(name, big)]))
    pack = read_pack(io.BytesIO(blob), partial(store_cache_object, tmp_path))
    assert (pack.meta, pack.objects) == ({"kind": "x"}, [("0" * 40, 3, b"o")])
    assert (tmp_path / name[:2] / name[2:]).read_bytes() == big
    bad = encode_pack(Pack(meta={}, cache=[("0" * 32, big)]))
    with pytest.raises(ShipmentError, match="arrived damaged"):
        read_pack(io.BytesIO(bad), partial(store_cache_object, tmp_path / "b"))
    assert not [p for p in (tmp_path / "b").rglob("*") if p.is_file()]  # nothing half-written


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("size", [97, 1000, 20000])
def test_a_reader_resumed_where_it_settled_reads_every_pack_and_line_once(size: int) -> None:
    # Output as a cluster cuts it: packs of several chunks among text lines.
    stream = (
        "step 0\n"
        + frame_lines(0, b"a" * 3000, width=64)
        + "step 1\npartial"
        + frame_lines(1, b"b" * 3000, width=64)
        + "step 2\n"
        + frame_lines(2, b"c" * 100, width=64)
        + "end\n"
    )
    expected = [(0, b"a" * 3000), (1, b"b" * 3000), (2, b"c" * 100)]
    chunks = _chunks(stream, size)
    for stop in range(len(chunks) + 1):  # a daemon killed after any chunk
        first = FrameReader()
        text, packs = "", []
        for chunk in chunks[:stop]:
            out, done = _feed(first, chunk)
            text, packs = text + out, packs + done
        start, written = first.settled, first.written
        second = FrameReader(start, written)  # the next daemon reads on from there
        rest, seen = "", 0
        for chunk in chunks:  # the cluster replays the output from its start
            fresh = chunk[max(0, second.read - seen) :]
            seen += len(chunk)
            out, done = _feed(second, fresh)
            text, rest = text + out, rest + out
            packs += done
        text += second.flush()
        assert text == "step 0\nstep 1\npartial\nstep 2\nend\n", stop
        assert sorted(set(packs)) == expected and len(packs) <= len(expected) + 1


def _lines(text: str) -> list[str]:
    # Not str.splitlines: it splits at the frame mark's record separator too.
    return [line + "\n" for line in text.split("\n")[:-1]]


def test_a_replay_from_the_start_restarts_a_half_read_pack() -> None:
    lines = _lines(frame_lines(4, b"x" * 300, width=100))
    reader = FrameReader()
    assert _feed(reader, lines[0]) == ("", [])
    assert _feed(reader, "".join(lines)) == ("", [(4, b"x" * 300)])


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


def test_a_job_whose_result_never_came_says_what_is_missing() -> None:
    _, error, _ = remote_end(None, "SUCCEEDED", 0, "Job finished successfully.")
    assert error is not None and "result never reached the daemon" in error
    assert "finished successfully" not in error


def test_an_interrupted_cluster_run_ends_interrupted_unless_killed() -> None:
    assert end_state(Outcome.INTERRUPTED, None, "node died") == (RunState.INTERRUPTED, "node died")


def test_the_config_file_picks_the_executor_and_the_env_overrides_it(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[queue]\nexecutor = "ray"\n[ray]\naddress = "http://head:8265"\nremote = "store"\n'
    )
    env = {"EXQ_CONFIG": str(path), "EXQ_STATE_DIR": str(tmp_path / "s")}
    config = DaemonConfig.from_env(env)
    assert (config.executor, config.ray_address) == ("ray", "http://head:8265")
    assert config.ray_remote == "store"
    config = DaemonConfig.from_env(
        {**env, "EXQ_EXECUTOR": "local", "RAY_ADDRESS": "http://o:1", "EXQ_RAY_REMOTE": "s3"}
    )
    assert (config.executor, config.ray_address, config.ray_remote) == ("local", "http://o:1", "s3")
    assert config.with_executor("ray", "http://p:2").ray_address == "http://p:2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[queue]\nexecutor = "slurm"\n', "unknown executor 'slurm'"),
        ("queue = 3\n", "'queue' must be a table"),
        ("[queue\n", "cannot read"),
        ("[ray]\nremote = 3\n", r"\[ray\] remote must be a remote's name"),
    ],
)
def test_a_bad_config_file_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        DaemonConfig.from_env({"EXQ_CONFIG": str(path), "EXQ_STATE_DIR": str(tmp_path)})
    if "slurm" not in text and "remote" not in text:
        with pytest.raises(ConfigError, match=str(path).replace(".", r"\.")):
            read_config_file(path)


def test_the_daemon_id_is_made_once(tmp_path: Path) -> None:
    config = DaemonConfig(state_dir=tmp_path / "s", runtime_dir=tmp_path / "r")
    first = config.daemon_id()
    assert len(first) == 8 and config.daemon_id() == first


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("127.0.0.1:8265", "http://127.0.0.1:8265"),
        ("head.example:8265", "http://head.example:8265"),
        ("http://head:8265", "http://head:8265"),
        ("https://head", "https://head"),
    ],
)
def test_a_jobs_address_without_its_scheme_is_taken_as_http(given: str, expected: str) -> None:
    config = DaemonConfig(state_dir=Path("s"), runtime_dir=Path("r"))
    assert config.with_executor("ray", given).ray_address == expected


@pytest.mark.parametrize("given", ["ray://head:10001", "auto", "head"])
def test_an_address_that_is_no_jobs_api_is_refused_at_once(given: str) -> None:
    config = DaemonConfig(state_dir=Path("s"), runtime_dir=Path("r"))
    with pytest.raises(ConfigError, match="not the address of a Ray cluster's Jobs API"):
        config.with_executor("ray", given)
    # Ray's own RAY_ADDRESS may say "auto" for other tools: kept, not refused.
    env = {"RAY_ADDRESS": given, "EXQ_STATE_DIR": "s", "EXQ_CONFIG": "/nonexistent"}
    assert DaemonConfig.from_env(env).ray_address == given


def test_the_stages_a_run_will_rebuild_are_those_whose_params_changed_and_below() -> None:
    lock = {
        "prepare": {"deps": [{"path": "raw"}], "outs": [{"path": "clean"}]},
        "train": {
            "deps": [{"path": "clean"}],
            "params": {"params.yaml": {"train.lr": 0.1}},
            "outs": [{"path": "model"}],
        },
        "evaluate": {"deps": [{"path": "model"}], "outs": [{"path": "scores"}]},
        "report": {"deps": [{"path": "clean"}], "params": {"params.yaml": {"title": "x"}}},
    }
    same = {"train": {"lr": 0.1}, "title": "x"}
    assert stages_to_rerun(lock, lambda file: same) == set()
    swept = {"train": {"lr": 0.2}, "title": "x"}
    assert stages_to_rerun(lock, lambda file: swept) == {"train", "evaluate"}
    assert stages_to_rerun(lock, lambda file: None) == {"train", "evaluate", "report"}


@pytest.mark.parametrize("size", [0, 1, 47, 48, 49, 1000])
def test_frames_of_a_file_are_its_base64_cut_at_the_width(size: int) -> None:
    blob = os.urandom(size)
    text = frame_lines(3, blob, width=64)
    parts = [line.rstrip("\n").split(" ", 4)[4] for line in _lines(text)]
    assert "".join(parts) == base64.b64encode(blob).decode()
    assert all(len(part) == 64 for part in parts[:-1])
    assert _feed(FrameReader(), text) == ("", [(3, blob)])
