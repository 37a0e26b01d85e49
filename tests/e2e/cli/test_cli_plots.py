"""``exq plots show`` / ``exq plots diff`` end to end, on real git repos and real experiments.

The training script logs with ``exq.live`` (a live folder of ``<metric>.tsv``
files, ``cache: false`` so it is committed) and writes two curves kept in the
cache (``roc.csv``, ``pr.json``), so both ways a revision's plots are read are
covered: git blobs, and cache objects named by the revision's ``dvc.lock``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PY, exq, write
from tests.e2e.exp_helpers import assert_refused, commit_all, head, init_repo, reported_name

PARAMS = "train:\n  lr: 0.5\n  epochs: 3\n"

TRAIN = """\
import json
from pathlib import Path
import yaml
from exq.live import Live

p = yaml.safe_load(Path("params.yaml").read_text())["train"]
loss = 1.0
with Live("logs", html=False) as live:
    for _ in range(p["epochs"]):
        loss = round(loss * (1 - p["lr"]), 6)
        live.log("loss", loss)
        live.log("acc", round(1 - loss, 6))
        live.next_step()
Path("model.txt").write_text(f"{loss}\\n")
Path("roc.csv").write_text("fpr,tpr\\n0,0\\n0.5,%s\\n1,1\\n" % round(1 - loss, 6))
Path("pr.json").write_text(json.dumps({"pr": [{"recall": r / 4, "precision": round(1 - r / 4 * loss, 6)}
                                               for r in range(5)]}))
"""

DVCYAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    deps:
    - train.py
    params:
    - train
    outs:
    - model.txt
    plots:
    - logs:
        cache: false
    - roc.csv
    - pr.json
"""


def _json(*args: str, cwd: Path) -> dict[str, Any]:
    _, out, _ = exq(*args, "--json", cwd=cwd)
    return json.loads(out)


def _lines(data: dict[str, Any], file: str, metric: str) -> dict[str, list[tuple[float, float]]]:
    """rev -> points of the chart of ``file``/``metric``."""
    for plot in data["plots"]:
        if plot["file"] == file and plot["metric"] == metric:
            return {
                line["rev"]: list(zip(line["x"], line["y"], strict=True)) for line in plot["lines"]
            }
    raise AssertionError(
        f"no chart {file}:{metric} in {[(p['file'], p['metric']) for p in data['plots']]}"
    )


@pytest.fixture
def trained(tmp_path: Path) -> Path:
    """A project whose baseline commit holds one training run (lr 0.5, 3 epochs)."""
    root = init_repo(tmp_path / "repo")
    write(root / "params.yaml", PARAMS)
    write(root / "train.py", TRAIN)
    write(root / "dvc.yaml", DVCYAML)
    exq("repro", cwd=root)
    commit_all(root, "baseline")
    return root


def test_show_draws_every_metric_of_the_workspace(trained: Path) -> None:
    code, out, err = exq("plots", "show", cwd=trained)
    assert code == 0, err
    page = trained / "dvc_plots" / "index.html"
    assert out.strip() == page.as_uri()
    html = page.read_text()
    assert "<script src" not in html and "<link" not in html
    assert 'data-plot="logs/loss.tsv:loss"' in html

    data = _json("plots", "show", cwd=trained)
    assert data["revisions"] == ["workspace"]
    charts = {(p["file"], p["metric"]) for p in data["plots"]}
    assert charts == {
        ("logs/loss.tsv", "loss"),
        ("logs/acc.tsv", "acc"),
        ("roc.csv", "fpr"),
        ("roc.csv", "tpr"),
        ("pr.json", "recall"),
        ("pr.json", "precision"),
    }
    assert _lines(data, "logs/loss.tsv", "loss") == {"workspace": [(0, 0.5), (1, 0.25), (2, 0.125)]}
    assert _lines(data, "roc.csv", "tpr") == {"workspace": [(0, 0), (1, 0.875), (2, 1)]}
    assert next(p["x"] for p in data["plots"] if p["file"] == "logs/acc.tsv") == "step"
    assert next(p["x"] for p in data["plots"] if p["file"] == "roc.csv") == "index"


def test_show_targets_and_out_folder_relative_to_the_current_folder(trained: Path) -> None:
    sub = trained / "sub"
    sub.mkdir()
    _, out, _ = exq("plots", "show", "../logs/loss.tsv", "-o", "report", cwd=sub)
    assert out.strip() == (sub / "report" / "index.html").as_uri()
    data = _json("plots", "show", "logs", cwd=trained)
    assert {p["file"] for p in data["plots"]} == {"logs/loss.tsv", "logs/acc.tsv"}
    # Any file can be plotted, defined in dvc.yaml or not.
    write(trained / "extra.yaml", "- {step: 0, f1: 0.5}\n- {step: 1, f1: 0.75}\n")
    data = _json("plots", "show", "extra.yaml", cwd=trained)
    assert _lines(data, "extra.yaml", "f1") == {"workspace": [(0, 0.5), (1, 0.75)]}


def test_diff_defaults_to_head_against_the_workspace(trained: Path) -> None:
    write(
        trained / "params.yaml",
        PARAMS.replace("lr: 0.5", "lr: 0.75").replace("epochs: 3", "epochs: 2"),
    )
    exq("repro", cwd=trained)
    data = _json("plots", "diff", cwd=trained)
    assert data["revisions"] == ["HEAD", "workspace"]
    assert _lines(data, "logs/loss.tsv", "loss") == {
        "HEAD": [(0, 0.5), (1, 0.25), (2, 0.125)],
        "workspace": [(0, 0.25), (1, 0.0625)],
    }
    # roc.csv of HEAD is a cached out: read from the cache object HEAD's dvc.lock names.
    assert _lines(data, "roc.csv", "tpr") == {
        "HEAD": [(0, 0), (1, 0.875), (2, 1)],
        "workspace": [(0, 0), (1, 0.9375), (2, 1)],
    }
    _, out, _ = exq("plots", "diff", "--targets", "logs/loss.tsv", cwd=trained)
    html = Path(out.strip().removeprefix("file://")).read_text()
    assert 'data-plot="logs/loss.tsv:loss" data-lines="2"' in html
    assert "roc.csv" not in html.split("exq-plot-specs")[0]


def test_diff_of_experiments_made_with_exp_run(trained: Path) -> None:
    baseline = head(trained)
    names = []
    for lr in ("0.1", "0.9"):
        _, out, _ = exq("exp", "run", "-S", f"train.lr={lr}", cwd=trained)
        names.append(reported_name(out))

    data = _json("plots", "diff", *names, cwd=trained)
    assert data["revisions"] == names
    loss = _lines(data, "logs/loss.tsv", "loss")
    assert loss[names[0]] == [(0, 0.9), (1, 0.81), (2, 0.729)]
    assert loss[names[1]] == [(0, 0.1), (1, 0.01), (2, 0.001)]
    assert _lines(data, "pr.json", "precision")[names[1]][-1] == (4, 0.999)

    # -e with one experiment: it against its baseline (DVC's rule).
    data = _json("plots", "diff", "-e", names[0], cwd=trained)
    assert data["revisions"] == [baseline[:7], names[0]]
    assert _lines(data, "logs/loss.tsv", "loss")[baseline[:7]] == [(0, 0.5), (1, 0.25), (2, 0.125)]

    _, out, err = exq(
        "plots", "diff", "-e", *names, "-o", "cmp", "--open", cwd=trained, env={"BROWSER": "true"}
    )
    assert out.strip() == (trained / "cmp" / "index.html").as_uri(), err
    html = (trained / "cmp" / "index.html").read_text()
    assert 'data-plot="logs/acc.tsv:acc" data-lines="2"' in html
    assert all(f'"rev":"{name}"' in html for name in names)


def test_errors_are_one_line(trained: Path) -> None:
    assert_refused(*exq("plots", "show", "nope.csv", cwd=trained, check=False)[::2], "nope.csv")
    assert_refused(
        *exq("plots", "diff", "no-such-rev", cwd=trained, check=False)[::2], "no-such-rev"
    )
    assert_refused(
        *exq("plots", "diff", "-e", "main", cwd=trained, check=False)[::2],
        "unknown experiment",
        "main",
    )
    write(trained / "bad.json", "{not json")
    assert_refused(*exq("plots", "show", "bad.json", cwd=trained, check=False)[::2], "bad.json")


def test_broken_file_of_one_revision_is_a_warning(trained: Path) -> None:
    write(trained / "roc.csv", "fpr,tpr\n0,0\n")
    write(trained / "pr.json", "[1, 2]")
    code, out, err = exq("plots", "diff", "--json", cwd=trained)
    assert code == 0
    assert "WARNING: workspace: pr.json: plots file must hold a list of records" in err
    data = json.loads(out)
    assert set(_lines(data, "pr.json", "recall")) == {"HEAD"}
    assert _lines(data, "roc.csv", "tpr")["workspace"] == [(0, 0)]


def test_top_level_plots_with_x_and_y(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "repo")
    write(
        root / "dvc.yaml",
        "plots:\n- curves.json:\n    x: epoch\n    y: [val]\n"
        "- cmp:\n    x: n\n    y:\n      a.csv: score\n      b.csv: score\n",
    )
    write(root / "curves.json", json.dumps({"epoch": [10, 20], "val": [0.3, 0.2], "train": [1, 2]}))
    write(root / "a.csv", "n,score\n1,5\n2,6\n")
    write(root / "b.csv", "n,score\n1,7\n")
    data = _json("plots", "show", cwd=root)
    # A named plot of several files is one chart, a line per file.
    assert [(p["file"], p["metric"], p["x"]) for p in data["plots"]] == [
        ("curves.json", "val", "epoch"),
        ("cmp", "score", "n"),
    ]
    assert _lines(data, "curves.json", "val") == {"workspace": [(10, 0.3), (20, 0.2)]}
    cmp = data["plots"][1]
    assert [(line["file"], line["x"], line["y"]) for line in cmp["lines"]] == [
        ("a.csv", [1, 2], [5, 6]),
        ("b.csv", [1], [7]),
    ]


def test_no_plots_is_no_error(tmp_path: Path) -> None:
    # As DVC: a message, exit 0, no page.
    root = init_repo(tmp_path / "repo")
    code, out, err = exq("plots", "show", cwd=root)
    assert (code, out) == (0, "")
    assert err == "No plots were loaded, visualization file will not be created.\n"
    assert not (root / "dvc_plots").exists()
    assert json.loads(exq("plots", "show", "--json", cwd=root)[1])["plots"] == []
