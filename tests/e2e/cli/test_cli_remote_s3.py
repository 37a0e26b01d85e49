"""``exq push``/``pull`` through a real S3 server (moto's, on 127.0.0.1), both ways with DVC.

The server is a subprocess the test starts on a free port and stops; the
credentials live in ``.dvc/config.local``, as they should. Bad remotes (no
such bucket, no credentials, no server) each give one line and write nothing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.cli.test_cli_remote_transfer import fresh_copy, make_source, workspace
from tests.e2e.conftest import exq
from tests.s3_server import BUCKET, s3fs_at
from tests.s3_server import free_port as _free_port

pytest.importorskip("s3fs")
pytest.importorskip("moto")


def use_s3(root: Path, endpoint: str, name: str = "store", bucket: str = BUCKET) -> None:
    exq("remote", "add", "-f", "-d", name, f"s3://{bucket}/project", cwd=root)
    exq("remote", "modify", name, "endpointurl", endpoint, cwd=root)
    exq("remote", "modify", name, "region", "us-east-1", cwd=root)
    exq("remote", "modify", "--local", name, "access_key_id", "testing", cwd=root)
    exq("remote", "modify", "--local", name, "secret_access_key", "testing", cwd=root)


def remote_objects(endpoint: str) -> set[str]:
    fs = s3fs_at(endpoint)
    fs.invalidate_cache()
    return {p.split(f"{BUCKET}/project/", 1)[1] for p in fs.find(f"{BUCKET}/project")}


def dvc_with_s3(dvc_bin: str) -> str:
    shown = subprocess.run([dvc_bin, "version"], capture_output=True, text=True).stdout
    if "s3 (" not in shown:
        pytest.skip("the real dvc here has no S3 support (make dvc installs dvc-s3)")
    return dvc_bin


def test_exq_push_to_s3_then_dvc_pull(tmp_path: Path, s3_server: str, dvc_bin: str) -> None:
    dvc = dvc_with_s3(dvc_bin)
    source = make_source(tmp_path / "source")
    use_s3(source, s3_server)
    assert "access_key_id" not in (source / ".dvc" / "config").read_text()
    _, out, _ = exq("push", "-j", "4", cwd=source)
    assert "4 file(s) pushed" in out
    assert all(name.startswith("files/md5/") for name in remote_objects(s3_server))
    _, again, _ = exq("status", "-c", cwd=source)
    assert "in sync" in again

    target = fresh_copy(source, tmp_path / "target", "/unused")
    use_s3(target, s3_server)
    subprocess.run([dvc, "pull"], cwd=target, check=True, capture_output=True)
    assert workspace(target) == workspace(source)


def test_dvc_push_to_s3_then_exq_pull(tmp_path: Path, s3_server: str, dvc_bin: str) -> None:
    dvc = dvc_with_s3(dvc_bin)
    source = make_source(tmp_path / "source")
    use_s3(source, s3_server)
    subprocess.run([dvc, "push"], cwd=source, check=True, capture_output=True)
    target = fresh_copy(source, tmp_path / "target", "/unused")
    use_s3(target, s3_server)
    _, pulled, _ = exq("pull", cwd=target)
    assert "4 file(s) fetched" in pulled
    assert workspace(target) == workspace(source)


def _assert_one_line_and_nothing_written(root: Path, endpoint: str | None, *args: str) -> str:
    code, _, stderr = exq(*args, cwd=root, check=False, timeout=90)
    assert code != 0, args
    assert len(stderr.strip().splitlines()) == 1, stderr
    if endpoint is not None:
        assert remote_objects(endpoint) == set()
    return stderr


def test_bad_s3_remotes_give_one_line(tmp_path: Path, s3_server: str) -> None:
    source = make_source(tmp_path / "source")
    use_s3(source, s3_server, bucket="no-such-bucket")
    stderr = _assert_one_line_and_nothing_written(source, s3_server, "push")
    assert "remote 'store'" in stderr

    use_s3(source, s3_server)
    for key in ("access_key_id", "secret_access_key"):
        exq("remote", "modify", "--local", "--unset", "store", key, cwd=source)
    stderr = _assert_one_line_and_nothing_written(source, s3_server, "push")
    assert "remote 'store'" in stderr
    assert "exq remote modify --local store secret_access_key" in stderr  # how to give them
    exq("remote", "modify", "--local", "store", "access_key_id", "testing", cwd=source)
    stderr = _assert_one_line_and_nothing_written(source, s3_server, "push")
    assert "exq remote modify --local store secret_access_key" in stderr

    use_s3(source, f"http://127.0.0.1:{_free_port()}")
    stderr = _assert_one_line_and_nothing_written(source, s3_server, "push")
    assert "remote 'store'" in stderr

    target = fresh_copy(source, tmp_path / "target", "/unused")
    use_s3(target, f"http://127.0.0.1:{_free_port()}")
    stderr = _assert_one_line_and_nothing_written(target, None, "pull")
    assert not (target / "data").exists() and not (target / ".dvc" / "cache").exists()
