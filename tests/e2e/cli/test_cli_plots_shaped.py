"""Plots as the authors of a DVC project wrote them, next to what the real dvc shows.

The project has the shape of DVC's get-started tutorial: an ``evaluate``
stage writes a cached ``eval`` folder (an ordinary out, not a plots out)
holding ROC curves of two files, a confusion matrix's rows and images, and
top-level ``plots:`` draw them with templates; a stage plots out carries its
own ``x``/``y``/``template``/``title``. HEAD's ``eval`` is only in the cache
once the workspace changed, so revisions are read from git and the cache.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PY, exq, write
from tests.e2e.exp_helpers import commit_all, init_repo

EVALUATE = '''\
import json, struct, sys, zlib
from pathlib import Path
import yaml

shift = yaml.safe_load(Path("params.yaml").read_text())["evaluate"]["shift"]


def png(path, red):
    """A 1x1 PNG of one colour."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"\\x00" + bytes([red, 0, 0])
    head = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", head)
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


for split in ("train", "test"):
    roc = [{"fpr": f, "tpr": min(1.0, round(f + shift, 3)), "threshold": round(1 - f, 3)}
           for f in (0.0, 0.5, 1.0)]
    cm = [{"actual": a, "predicted": (a + (i < shift * 10)) % 2}
          for i, a in enumerate([0, 1, 0, 1, 1])]
    for kind, rows in (("roc", {"roc": roc}), ("cm", cm)):
        path = Path("eval/plots/sklearn") / kind / f"{split}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows))
png("eval/plots/images/importance.png", int(shift * 100))
png("eval/plots/images/per_class/a.png", 10)
Path("eval/plots/images/per_class/b.svg").write_text(
    '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>')
Path("eval/metrics.json").write_text(json.dumps({"avg_prec": round(0.5 + shift, 3)}))
Path("prc.csv").write_text("recall,precision\\n0,1\\n0.5,%s\\n1,0.2\\n" % round(0.9 - shift, 3))
Path("importance.csv").write_text("feature,importance\\nf1,%s\\nf2,0.5\\n" % shift)
'''

DVCYAML = f"""\
stages:
  evaluate:
    cmd: {PY} evaluate.py
    deps:
    - evaluate.py
    params:
    - evaluate
    outs:
    - eval
    plots:
    - prc.csv:
        cache: false
        x: recall
        y: precision
        template: simple
        title: Precision-Recall
    - importance.csv:
        cache: false
        x: importance
        y: feature
        template: bar_horizontal_sorted
metrics:
- eval/metrics.json
plots:
- ROC:
    template: simple
    x: fpr
    y:
      eval/plots/sklearn/roc/train.json: tpr
      eval/plots/sklearn/roc/test.json: tpr
- Confusion-Matrix:
    template: confusion
    x: actual
    y:
      eval/plots/sklearn/cm/train.json: predicted
      eval/plots/sklearn/cm/test.json: predicted
- eval/plots/images/importance.png
- eval/plots/images/per_class
"""

IMAGES = [
    "eval/plots/images/importance.png",
    "eval/plots/images/per_class/a.png",
    "eval/plots/images/per_class/b.svg",
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """HEAD evaluated with shift 0.1; the workspace re-evaluated with shift 0.3."""
    root = init_repo(tmp_path / "repo")
    write(root / "params.yaml", "evaluate:\n  shift: 0.1\n")
    write(root / "evaluate.py", EVALUATE)
    write(root / "dvc.yaml", DVCYAML)
    exq("repro", cwd=root)
    commit_all(root, "evaluated")
    write(root / "params.yaml", "evaluate:\n  shift: 0.3\n")
    exq("repro", cwd=root)
    return root


def _json(root: Path, *args: str) -> dict[str, Any]:
    return json.loads(exq("plots", *args, "--json", cwd=root)[1])


def _chart(data: dict[str, Any], chart_id: str) -> dict[str, Any]:
    return next(p for p in data["plots"] if p.get("id", p["file"]) == chart_id)


def test_charts_follow_x_y_template_and_title(project: Path) -> None:
    data = _json(project, "diff")
    assert data["errors"] == []
    assert [(p["id"], p["title"], p.get("template", "linear"), p["x"]) for p in data["plots"]] == [
        ("ROC", "ROC", "simple", "fpr"),
        ("Confusion-Matrix", "Confusion-Matrix", "confusion", "actual"),
        ("prc.csv", "Precision-Recall", "simple", "recall"),
        ("importance.csv", "importance.csv", "bar_horizontal_sorted", "importance"),
    ]
    roc = _chart(data, "ROC")
    # One chart: a line per revision and file, HEAD's read from the cache.
    assert [(line["rev"], line["file"].rsplit("/", 1)[1]) for line in roc["lines"]] == [
        ("HEAD", "train.json"),
        ("HEAD", "test.json"),
        ("workspace", "train.json"),
        ("workspace", "test.json"),
    ]
    assert roc["lines"][0]["x"] == [0.0, 0.5, 1.0] and roc["lines"][0]["y"] == [0.1, 0.6, 1.0]
    assert roc["lines"][2]["y"] == [0.3, 0.8, 1.0]
    cm = _chart(data, "Confusion-Matrix")
    assert cm["lines"][0]["x"] == [0, 1, 0, 1, 1]  # classes, not a line over the row index
    assert cm["lines"][0]["y"] == [1, 1, 0, 1, 1]
    bars = _chart(data, "importance.csv")
    assert bars["lines"][-1] == {
        "rev": "workspace",
        "file": "importance.csv",
        "field": "feature",
        "x": [0.3, 0.5],
        "y": ["f1", "f2"],
    }


def test_images_per_revision_side_by_side(project: Path) -> None:
    data = _json(project, "diff")
    listed = [(image["file"], image["rev"]) for image in data["images"]]
    assert sorted(listed) == sorted((path, rev) for path in IMAGES for rev in ("HEAD", "workspace"))
    for image in data["images"]:
        assert Path(image["url"]).is_file()
    by_rev = {
        i["rev"]: Path(i["url"]).read_bytes() for i in data["images"] if "importance" in i["file"]
    }
    assert by_rev["HEAD"] != by_rev["workspace"]  # HEAD's own image, from the cache
    assert by_rev["workspace"] == (project / IMAGES[0]).read_bytes()

    _, out, _ = exq("plots", "diff", cwd=project)
    page = Path(out.strip().removeprefix("file://")).read_text()
    for path in IMAGES:
        block = page[page.index(f'data-image="{path}"') :]
        assert block.startswith(f'data-image="{path}" data-revs="2"')
    # A named image, alone.
    code, out, err = exq("plots", "show", IMAGES[0], "--json", cwd=project)
    assert code == 0, err
    assert [i["file"] for i in json.loads(out)["images"]] == [IMAGES[0]]
    assert json.loads(out)["plots"] == []


def _dvc(dvc_bin: str, root: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run([dvc_bin, *args], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.dvc
def test_the_same_plots_as_dvc(project: Path, dvc_bin: str, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(project, copy, symlinks=True)
    theirs = _dvc(dvc_bin, copy, "plots", "diff", "--json")["data"]
    mine = _json(project, "diff")
    vega = {k: v[0] for k, v in theirs.items() if v and v[0]["type"] == "vega"}
    images = {
        k: sorted(rev for entry in v for rev in entry["revisions"])
        for k, v in theirs.items()
        if v and v[0]["type"] == "image"
    }
    assert [p["id"] for p in mine["plots"]] == list(vega)  # in DVC's order
    for chart in mine["plots"]:
        content = vega[chart["id"]]["content"]
        assert content["title"]["text"] == chart["title"]
        assert sorted(vega[chart["id"]]["revisions"]) == ["HEAD", "workspace"]
        x = (content.get("encoding") or content["spec"]["encoding"])["x"]["field"]
        assert x == chart["x"]
    mine_images: dict[str, list[str]] = {}
    for image in mine["images"]:
        mine_images.setdefault(image["file"], []).append(image["rev"])
    assert {k: sorted(v) for k, v in mine_images.items()} == images
