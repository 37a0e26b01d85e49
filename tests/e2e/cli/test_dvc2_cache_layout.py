"""A project as DVC 2 left it: its cache layout, its md5s, its lock and ``.dvc`` entries.

DVC 2 kept objects at ``.dvc/cache/<md5[:2]>/<md5[2:]>``, hashed text files
with CRLF read as LF, and wrote entries without ``hash: md5``. DVC 3 reads
such a project as it is (status clean, checkout restores), and rewrites an
entry only when what it names changed. The project here is written by hand
the way DVC 2.10 writes it (checked against a DVC 2.10 install).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.e2e.conftest import PY, exq, write
from tests.e2e.exp_helpers import commit_all, init_repo

RAW = b"a,b\r\n1,2\r\n"  # CRLF text: DVC 2's md5 differs from the plain one
FEATS = {"f1.csv": b"x\r\ny\r\n", "sub/f2.bin": b"\x00\x01\r\n"}  # text and binary
MODEL = b"model\r\n"

MAKE = """\
import sys
from pathlib import Path
if sys.argv[1] == "prep":
    Path("feats/sub").mkdir(parents=True, exist_ok=True)
    Path("feats/f1.csv").write_bytes(sys.argv[2].encode() + b"\\r\\ny\\r\\n")
    Path("feats/sub/f2.bin").write_bytes(b"\\x00\\x01\\r\\n")
else:
    Path("model.bin").write_bytes(b"model\\r\\n")
"""

DVCYAML = f"""\
stages:
  prep:
    cmd: {PY} make.py prep x
    deps: [raw.csv]
    params: [prep.n]
    outs: [feats]
  train:
    cmd: {PY} make.py train
    deps: [feats]
    params: [train.lr]
    outs: [model.bin]
"""


def dvc2_md5(data: bytes) -> str:
    """DVC 2's md5: CRLF as LF in a file whose first 512 bytes look like text."""
    text = b"\x00" not in data[:512]
    return hashlib.md5(data.replace(b"\r\n", b"\n") if text else data).hexdigest()


def put_legacy(root: Path, md5: str, data: bytes) -> None:
    obj = root / ".dvc" / "cache" / md5[:2] / md5[2:]
    obj.parent.mkdir(parents=True, exist_ok=True)
    obj.write_bytes(data)
    obj.chmod(0o444)


def dvc2_project(root: Path) -> dict[str, str]:
    """Write the project, its DVC 2 cache and lock; the md5s by path."""
    init_repo(root)
    (root / "raw.csv").write_bytes(RAW)
    write(root / "params.yaml", "prep:\n  n: 2\ntrain:\n  lr: 0.1\n")
    write(root / "dvc.yaml", DVCYAML)
    write(root / "make.py", MAKE)
    listing = []
    for rel, data in sorted(FEATS.items()):
        (root / "feats" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "feats" / rel).write_bytes(data)
        put_legacy(root, dvc2_md5(data), data)
        listing.append({"md5": dvc2_md5(data), "relpath": rel})
    listing_bytes = json.dumps(listing, sort_keys=True).encode()
    feats_md5 = hashlib.md5(listing_bytes).hexdigest() + ".dir"
    put_legacy(root, feats_md5, listing_bytes)
    (root / "model.bin").write_bytes(MODEL)
    md5 = {"raw.csv": dvc2_md5(RAW), "feats": feats_md5, "model.bin": dvc2_md5(MODEL)}
    put_legacy(root, md5["raw.csv"], RAW)
    put_legacy(root, md5["model.bin"], MODEL)
    write(root / "raw.csv.dvc", f"outs:\n- md5: {md5['raw.csv']}\n  size: 10\n  path: raw.csv\n")
    feats_size = sum(len(d) for d in FEATS.values())
    write(
        root / "dvc.lock",
        f"""\
schema: '2.0'
stages:
  prep:
    cmd: {PY} make.py prep x
    deps:
    - path: raw.csv
      md5: {md5["raw.csv"]}
      size: 10
    params:
      params.yaml:
        prep.n: 2
    outs:
    - path: feats
      md5: {md5["feats"]}
      size: {feats_size}
      nfiles: 2
  train:
    cmd: {PY} make.py train
    deps:
    - path: feats
      md5: {md5["feats"]}
      size: {feats_size}
      nfiles: 2
    params:
      params.yaml:
        train.lr: 0.1
    outs:
    - path: model.bin
      md5: {md5["model.bin"]}
      size: 7
""",
    )
    write(root / ".gitignore", "/raw.csv\n/feats\n/model.bin\n")
    commit_all(root, "a DVC 2 project")
    return md5


def test_status_and_checkout_read_dvc2_entries_and_cache(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    dvc2_project(root)
    _, out, _ = exq("status", "--json", cwd=root)
    assert json.loads(out) == {}

    shutil.rmtree(root / "feats")
    for name in ("raw.csv", "model.bin"):
        (root / name).unlink()
    exq("checkout", cwd=root)
    assert (root / "raw.csv").read_bytes() == RAW  # restored byte for byte, CRLF kept
    assert (root / "model.bin").read_bytes() == MODEL
    assert {rel: (root / "feats" / rel).read_bytes() for rel in FEATS} == FEATS
    _, out, _ = exq("status", "--json", cwd=root)
    assert json.loads(out) == {}
    _, out, _ = exq("repro", cwd=root)
    assert "didn't change, skipping" in out and "Running" not in out


def test_a_run_rewrites_only_the_entries_whose_content_changed(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    md5 = dvc2_project(root)
    write(root / "params.yaml", "prep:\n  n: 2\ntrain:\n  lr: 0.2\n")
    exq("repro", cwd=root)
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    prep, train = lock["stages"]["prep"], lock["stages"]["train"]
    assert "hash" not in prep["deps"][0] and "hash" not in prep["outs"][0]  # prep did not run
    # train ran: its unchanged dep keeps its DVC 2 entry; its out is the same bytes too
    assert train["deps"][0] == prep["outs"][0]
    assert train["outs"] == [{"path": "model.bin", "md5": md5["model.bin"], "size": 7}]


def test_the_lock_is_the_one_dvc3_writes(tmp_path: Path, dvc_bin: str) -> None:
    root = tmp_path / "repo"
    dvc2_project(root)
    twin = tmp_path / "twin"
    shutil.copytree(root, twin, symlinks=True)
    for folder in (root, twin):
        write(folder / "params.yaml", "prep:\n  n: 3\ntrain:\n  lr: 0.1\n")
        write(
            folder / "dvc.yaml",
            DVCYAML.replace("prep x", "prep changed"),
        )
    exq("repro", cwd=root)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATER": "1"}
    subprocess.run([dvc_bin, "repro"], cwd=twin, env=env, check=True, capture_output=True)
    assert (root / "dvc.lock").read_text() == (twin / "dvc.lock").read_text()


def test_plots_and_metrics_of_a_dvc2_commit_are_read_from_its_cache(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "repo")
    plot = b"step,loss\r\n0,0.5\r\n1,0.25\r\n"
    metrics = b'{"loss": 0.25}\r\n'
    write(
        root / "dvc.yaml",
        "stages:\n  train:\n    cmd: exit 1\n    plots: [loss.csv]\n    metrics: [m.json]\n",
    )
    put_legacy(root, dvc2_md5(plot), plot)
    put_legacy(root, dvc2_md5(metrics), metrics)
    write(
        root / "dvc.lock",
        "schema: '2.0'\nstages:\n  train:\n    cmd: exit 1\n    outs:\n"
        f"    - path: loss.csv\n      md5: {dvc2_md5(plot)}\n      size: {len(plot)}\n"
        f"    - path: m.json\n      md5: {dvc2_md5(metrics)}\n      size: {len(metrics)}\n",
    )
    commit_all(root, "a DVC 2 commit; its outs are only in the cache")
    _, out, _ = exq("plots", "diff", "HEAD", "--json", cwd=root)
    lines = [line for chart in json.loads(out)["plots"] for line in chart["lines"]]
    assert [(line["x"], line["y"]) for line in lines] == [([0, 1], [0.5, 0.25])], out
    _, out, _ = exq("metrics", "show", "-a", "--json", cwd=root)
    assert json.loads(out)["main"] == {"m.json": {"loss": 0.25}}


def _stored(store: Path) -> set[str]:
    return {p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file()}


def _metadata_only(root: Path, dest: Path, store: Path) -> Path:
    """A clone of the project: its git files, no cache, no data."""
    subprocess.run(["git", "clone", "-q", str(root), str(dest)], check=True)
    exq("remote", "add", "-f", "-d", "store", str(store), cwd=dest)
    return dest


def test_push_and_pull_move_dvc2_objects_in_dvc2s_remote_layout(
    tmp_path: Path, dvc_bin: str
) -> None:
    # DVC keeps a DVC 2 entry's objects at <remote>/<md5[:2]>/<md5[2:]>, as in its
    # old cache; a project not re-added since DVC 2 must still reach a new machine.
    root = tmp_path / "repo"
    dvc2_project(root)
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    twin = tmp_path / "twin"
    shutil.copytree(root, twin, symlinks=True)
    exq("remote", "add", "-d", "store", str(ours), cwd=root)
    _, out, _ = exq("push", cwd=root)
    assert "5 file(s) pushed" in out
    subprocess.run([dvc_bin, "remote", "add", "-d", "store", str(theirs)], cwd=twin, check=True)
    subprocess.run([dvc_bin, "push"], cwd=twin, check=True, capture_output=True)
    assert _stored(ours) == _stored(theirs) and len(_stored(ours)) == 5
    _, out, _ = exq("status", "-c", cwd=root)
    assert "in sync" in out

    clone = _metadata_only(root, tmp_path / "clone", ours)
    _, out, _ = exq("pull", cwd=clone)
    assert "5 file(s) fetched" in out
    assert (clone / "raw.csv").read_bytes() == RAW and (clone / "model.bin").read_bytes() == MODEL
    assert {rel: (clone / "feats" / rel).read_bytes() for rel in FEATS} == FEATS
    _, out, _ = exq("status", "--json", cwd=clone)
    assert json.loads(out) == {}

    other = _metadata_only(root, tmp_path / "other", ours)
    subprocess.run([dvc_bin, "pull"], cwd=other, check=True, capture_output=True)
    assert (other / "raw.csv").read_bytes() == RAW


def test_exp_push_sends_the_dvc2_objects_an_experiment_keeps(tmp_path: Path) -> None:
    # A run rewrites only the entries whose content changed: model.bin's stays
    # DVC 2's, and its object must reach the remote with the experiment.
    root = tmp_path / "repo"
    md5 = dvc2_project(root)
    write(root / "params.yaml", "prep:\n  n: 2\ntrain:\n  lr: 0.2\n")
    commit_all(root, "lr 0.2")
    exq("exp", "run", "-S", "train.lr=0.3", "-n", "e1", cwd=root)
    store, bare = tmp_path / "store", tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    exq("remote", "add", "-d", "store", str(store), cwd=root)
    exq("exp", "push", str(bare), "e1", cwd=root)
    assert (store / md5["model.bin"][:2] / md5["model.bin"][2:]).read_bytes() == MODEL
