"""``exq push``/``pull``/``fetch``/``status -c`` on a folder remote, both ways with the real DVC.

A project with a tracked folder, a tracked file and a stage output is pushed
by one tool and pulled by the other into a fresh copy of the project (its
metadata, no cache, no data): the files must come back byte for byte.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import exq, write
from tests.e2e.exp_helpers import init_repo

pytest.importorskip("fsspec")

DVCYAML = (
    "stages:\n  copy:\n    cmd: cp one.txt out.txt\n    deps: [one.txt]\n    outs: [out.txt]\n"
)
DATA = {"data/a.txt": "alpha\n", "data/sub/b.bin": "beta" * 5000, "one.txt": "single\n"}


def make_source(root: Path) -> Path:
    init_repo(root)
    for rel, text in DATA.items():
        write(root / rel, text)
    write(root / "dvc.yaml", DVCYAML)
    exq("add", "data", "one.txt", cwd=root)
    exq("repro", cwd=root)
    return root


def fresh_copy(source: Path, dest: Path, url: str) -> Path:
    """The project's metadata in a new repository, with no cache and no data."""
    init_repo(dest)
    for name in ("data.dvc", "one.txt.dvc", "dvc.yaml", "dvc.lock"):
        shutil.copy(source / name, dest / name)
    exq("remote", "add", "-d", "store", url, cwd=dest)
    return dest


def workspace(root: Path) -> dict[str, str]:
    rels = [*DATA, "out.txt"]
    return {rel: (root / rel).read_text() for rel in rels if (root / rel).exists()}


def objects(store: Path) -> set[str]:
    return {p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file()}


def test_exq_push_then_dvc_pull(tmp_path: Path, dvc_bin: str) -> None:
    source = make_source(tmp_path / "source")
    store = tmp_path / "store"
    exq("remote", "add", "-d", "store", str(store), cwd=source)
    _, before, _ = exq("status", "-c", cwd=source)
    assert "new:\tdata" in before and "new:\tout.txt" in before
    _, out, _ = exq("push", "-j", "4", cwd=source)
    # 2 data files, the folder's listing; one.txt and out.txt share an object
    assert "4 file(s) pushed" in out
    assert all(name.startswith("files/md5/") for name in objects(store))
    _, again, _ = exq("push", cwd=source)
    assert "0 file(s) pushed, 4 already" in again
    _, after, _ = exq("status", "-c", cwd=source)
    assert "in sync" in after

    target = fresh_copy(source, tmp_path / "target", str(store))
    subprocess.run([dvc_bin, "pull"], cwd=target, check=True, capture_output=True)
    assert workspace(target) == workspace(source)


def test_dvc_push_then_exq_pull_and_fetch(tmp_path: Path, dvc_bin: str) -> None:
    source = make_source(tmp_path / "source")
    store = tmp_path / "store"
    subprocess.run([dvc_bin, "remote", "add", "-d", "store", str(store)], cwd=source, check=True)
    subprocess.run([dvc_bin, "push"], cwd=source, check=True, capture_output=True)

    target = fresh_copy(source, tmp_path / "target", f"file://{store}")
    _, status, _ = exq("status", "-c", cwd=target)
    assert "deleted:\tone.txt" in status
    _, fetched, _ = exq("fetch", "one.txt.dvc", cwd=target)
    assert "1 file(s) fetched" in fetched and not (target / "one.txt").exists()
    _, pulled, _ = exq("pull", cwd=target)
    assert "A\tdata" in pulled
    assert workspace(target) == workspace(source)
    # Objects arrive read-only, verified, with no temporary files left behind.
    cache = target / ".dvc" / "cache" / "files" / "md5"
    assert objects(cache) == objects(store / "files" / "md5")


def test_a_corrupt_object_on_the_remote_is_refused(tmp_path: Path) -> None:
    source = make_source(tmp_path / "source")
    store = tmp_path / "store"
    exq("remote", "add", "-d", "store", str(store), cwd=source)
    exq("push", cwd=source)
    for obj in (store / "files" / "md5").rglob("*"):
        if obj.is_file() and obj.read_text() == "alpha\n":
            obj.write_text("tampered\n")
    target = fresh_copy(source, tmp_path / "target", str(store))
    code, _, stderr = exq("pull", cwd=target, check=False)
    assert code != 0 and "corrupt" in stderr and len(stderr.strip().splitlines()) == 1
    assert not (target / "data").exists()
    leftovers = [p for p in (target / ".dvc" / "cache").rglob("*.tmp")]
    assert leftovers == []


def test_unknown_remote_and_missing_extra_are_one_line(tmp_path: Path) -> None:
    source = make_source(tmp_path / "source")
    code, _, stderr = exq("push", "-r", "nope", cwd=source, check=False)
    assert code != 0 and "no remote named 'nope'" in stderr
    code, _, stderr = exq("push", cwd=source, check=False)
    assert code != 0 and "no default remote" in stderr
    exq("remote", "add", "-d", "store", str(tmp_path / "file-not-folder"), cwd=source)
    (tmp_path / "file-not-folder").write_text("x")
    code, _, stderr = exq("push", cwd=source, check=False)
    assert code != 0 and "remote 'store'" in stderr and len(stderr.strip().splitlines()) == 1
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        exq("remote", "add", "-d", "gcs", "gs://bucket/path", cwd=source)
        code, _, stderr = exq("pull", cwd=source, check=False)
        assert code != 0 and "needs gcsfs: pip install 'exq[gs]'" in stderr


def test_a_folder_listing_goes_only_with_all_its_files_and_stands_for_them(
    tmp_path: Path,
) -> None:
    source = make_source(tmp_path / "source")
    store = tmp_path / "store"
    exq("remote", "add", "-d", "store", str(store), cwd=source)
    cache = source / ".dvc" / "cache"
    (listing,) = [o for o in objects(cache) if o.endswith(".dir")]
    listed = json.loads((cache / listing).read_text())[0]["md5"]
    lost = cache / "files" / "md5" / listed[:2] / listed[2:]
    kept = lost.read_bytes()
    lost.unlink()  # but 'data' lists it
    code, out, err = exq("push", "-j", "1", cwd=source, check=False)
    assert code == 1 and "'data': some of its objects" in err
    assert listing not in objects(store)  # it would tell DVC and exq the folder is whole

    lost.write_bytes(kept)
    exq("push", cwd=source)
    assert listing in objects(store)
    (store / lost.relative_to(cache)).unlink()  # gone behind its listing's back
    _, again, _ = exq("push", cwd=source)
    assert "0 file(s) pushed" in again  # the listing on the remote stands for its folder


def test_the_remotes_jobs_option_is_read(tmp_path: Path) -> None:
    # DVC's remote option 'jobs' sets the transfers at once where -j does not; a
    # value DVC would refuse stops every command that uses the remote, as DVC's.
    source = make_source(tmp_path / "source")
    store = tmp_path / "store"
    exq("remote", "add", "-d", "store", str(store), cwd=source)
    with (source / ".dvc" / "config").open("a") as config:
        config.write("    jobs = lots\n")  # by hand: remote modify refuses it
    for command in (["push"], ["fetch"], ["pull"], ["status", "-c"]):
        code, _, err = exq(*command, cwd=source, check=False)
        assert code == 1 and err.strip() == (
            "ERROR: remote 'store': jobs must be a whole number above 0, not 'lots'"
        ), command
    exq("remote", "modify", "store", "jobs", "1", cwd=source)
    exq("push", cwd=source)
    assert objects(store)


def test_a_url_without_its_host_or_folder_is_refused(tmp_path: Path) -> None:
    source = make_source(tmp_path / "source")
    for url, words in [
        ("file://", "names no folder"),
        ("ssh://", "names no host"),
        ("ssh:///srv/store", "names no host"),
        ("s3:///path", "names no bucket"),
        ("http://", "names no host"),
    ]:
        exq("remote", "add", "-f", "bad", url, cwd=source)
        code, _, err = exq("push", "-r", "bad", cwd=source, check=False)
        assert code == 1 and err.strip() == f"ERROR: remote 'bad' ({url}) {words}", err
        assert not (source / "files").exists()  # file:// was the current folder
