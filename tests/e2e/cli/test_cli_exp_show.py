"""``exq exp show``, ``exp diff``, ``metrics show/diff`` and ``params diff`` end to end.

One project is built per module: a baseline committed before any run (so it
has no metrics: shown as ``-``), then three ``exq exp run -S`` experiments.
The tests only read it.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import pytest

from tests.e2e.conftest import PY, exq, write
from tests.e2e.exp_helpers import assert_refused, commit_all, exp_refs, init_repo

PARAMS = "train:\n  lr: 0.1\n  epochs: 3\nseed: 7\n"
MODEL_TOML = "seed = 1\n[layers]\nsize = 64\n"

TRAIN = """\
import json
from pathlib import Path
import yaml
lr = yaml.safe_load(Path("params.yaml").read_text())["train"]["lr"]
Path("metrics.json").write_text(json.dumps({"acc": round(0.5 + lr, 4), "loss": round(1 - lr, 4)}))
Path("scores.yaml").write_text(f"f1: {round(lr * 3, 4)}\\n")
"""

DVCYAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    deps:
    - train.py
    params:
    - train.lr
    - model.toml:
    metrics:
    - metrics.json:
        cache: false
    - scores.yaml
"""


@pytest.fixture(scope="module")
def proj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = init_repo(tmp_path_factory.mktemp("show") / "repo")
    write(root / "params.yaml", PARAMS)
    write(root / "model.toml", MODEL_TOML)
    write(root / "train.py", TRAIN)
    write(root / "dvc.yaml", DVCYAML)
    commit_all(root, "baseline without results")
    exq("exp", "run", "-S", "train.lr=0.2", cwd=root)
    exq("exp", "run", "-S", "train.lr=0.4", "-n", "high", cwd=root)
    exq("exp", "run", "-S", "train.lr=0.05", "-n", "low", cwd=root)
    return root


def show_json(root: Path, *args: str) -> list[dict]:
    return json.loads(exq("exp", "show", "--json", *args, cwd=root)[1])


def test_json_rows_names_revs_kinds_params_and_metrics(proj: Path) -> None:
    rows = show_json(proj)
    refs = {ref.rsplit("/", 1)[1]: sha for ref, sha in exp_refs(proj).items()}
    workspace, baseline, *exps = rows
    assert workspace["name"] == "workspace" and workspace["rev"] is None
    assert workspace["kind"] == "workspace" and workspace["created"] is None
    assert baseline["kind"] == "baseline" and baseline["name"] == "main"
    assert workspace["baseline"] == baseline["rev"] == baseline["baseline"]
    assert {e["name"] for e in exps} == set(refs) and len(refs) == 3
    for exp in exps:
        assert exp["rev"] == refs[exp["name"]]
        assert (exp["kind"], exp["state"], exp["parent"]) == ("experiment", "success", None)
        assert exp["baseline"] == baseline["rev"]
    created = [datetime.fromisoformat(e["created"]) for e in exps]
    assert created == sorted(created, reverse=True)  # newest first
    by_name = {e["name"]: e for e in exps}
    high = by_name["high"]
    assert high["params"] == {
        "params.yaml": {"train.lr": 0.4, "train.epochs": 3, "seed": 7},
        "model.toml": {"seed": 1, "layers.size": 64},
    }
    # metrics.json is in git; scores.yaml is cached and read from the cache
    assert high["metrics"] == {
        "metrics.json": {"acc": 0.9, "loss": 0.6},
        "scores.yaml": {"f1": 1.2},
    }
    assert baseline["metrics"] == {}  # nothing was run before the baseline commit
    assert workspace["metrics"] == by_name["low"]["metrics"]  # the last run stays applied


def test_table_has_the_tree_missing_values_and_file_prefixes(proj: Path) -> None:
    out = exq("exp", "show", "--no-pager", cwd=proj)[1]
    lines = out.splitlines()
    assert lines[0].startswith("┏") and "Experiment" in lines[1] and "Created" in lines[1]
    # seed is in two params files: both columns get their file's name
    assert "params.yaml:seed" in lines[1] and "model.toml:seed" in lines[1]
    assert "train.lr" in lines[1] and "acc" in lines[1]
    body = [line for line in lines if line.startswith("│")]
    assert [cell(line, 0) for line in body][:2] == ["workspace", "main"]
    assert cell(body[2], 0).startswith("├── ") and cell(body[-1], 0).startswith("└── ")
    assert cell(body[1], 2) == "-"  # the baseline has no metrics
    names = [cell(line, 0).split()[-1] for line in body[2:]]
    assert names == [row["name"] for row in show_json(proj)[2:]]


def cell(line: str, index: int) -> str:
    return line.strip("│").split("│")[index].strip()


def test_narrow_terminal_elides_columns(proj: Path) -> None:
    out = exq("exp", "show", "--no-timestamp", cwd=proj, env={"COLUMNS": "40"})[1]
    assert all(len(line) <= 40 for line in out.splitlines())
    assert "…" in out.splitlines()[1]


def test_csv_and_markdown(proj: Path) -> None:
    out = exq("exp", "show", "--csv", cwd=proj)[1]
    records = list(csv.DictReader(io.StringIO(out)))
    by_name = {r["Experiment"]: r for r in records}
    assert by_name["high"]["acc"] == "0.9" and by_name["high"]["train.lr"] == "0.4"
    assert by_name["main"]["acc"] == ""
    md = exq("exp", "show", "--md", "--no-timestamp", cwd=proj)[1].splitlines()
    assert md[0].startswith("| Experiment") and md[1].startswith("|---")
    assert any("└──" in line for line in md)


def test_sort_include_exclude_and_only_changed(proj: Path) -> None:
    out = exq(
        "exp",
        "show",
        "--md",
        "--sort-by",
        "metrics.json:acc",
        "--sort-order",
        "desc",
        "--no-timestamp",
        "--include-metrics",
        "acc",
        "--include-params",
        "train.lr",
        cwd=proj,
    )[1]
    header, _, *body = out.splitlines()
    assert [c.strip() for c in header.strip("|").split("|")] == ["Experiment", "acc", "train.lr"]
    names = [line.strip("|").split("|")[0].split()[-1] for line in body]
    assert names[:2] == ["workspace", "main"]
    assert names[2:] == ["high", names[3], "low"]  # 0.9, 0.7, 0.55
    out = exq(
        "exp", "show", "--csv", "--exclude-params", "model.toml:*,seed", "--only-changed", cwd=proj
    )[1]
    header_row = out.splitlines()[0].split(",")
    assert "train.lr" in header_row and "acc" in header_row
    assert not any(
        h.endswith("seed") or h == "layers.size" or h == "train.epochs" for h in header_row
    )


def test_precision_and_history_options(proj: Path) -> None:
    out = exq(
        "exp",
        "show",
        "--md",
        "--no-timestamp",
        "--precision",
        "1",
        "-n",
        "2",
        "--include-metrics",
        "acc",
        "--include-params",
        "train.lr",
        cwd=proj,
    )[1]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()[2:]]
    assert ["└── low", "0.6", "0.05"] in rows or ["├── low", "0.6", "0.05"] in rows
    assert len(rows) == 5  # the history has one commit only: nothing more to show


def test_bad_sort_key_and_unknown_option_value_are_one_line(proj: Path) -> None:
    code, _, err = exq("exp", "show", "--sort-by", "nope", cwd=proj, check=False)
    assert_refused(code, err, "nope")
    code, _, err = exq("exp", "show", "--sort-order", "up", cwd=proj, check=False)
    assert_refused(code, err, "--sort-order")


def test_exp_diff_defaults_names_and_formats(proj: Path) -> None:
    out = exq("exp", "diff", cwd=proj)[1]  # HEAD against the workspace
    assert out.splitlines()[0].split() == ["Path", "Metric", "HEAD", "workspace", "Change"]
    assert "train.lr" in out and "0.05" in out
    out = exq("exp", "diff", "low", "high", cwd=proj)[1]
    lines = [line.split() for line in out.splitlines() if line.strip()]
    assert ["metrics.json", "acc", "0.55", "0.9", "0.35"] in lines
    assert lines[0] == ["Path", "Metric", "low", "high", "Change"]
    assert ["params.yaml", "train.lr", "0.05", "0.4", "0.35000000000000003"] in lines
    assert not any(line[1] == "seed" for line in lines[1:])  # unchanged: left out
    assert any(
        line[1] == "seed"
        for line in (
            ln.split()
            for ln in exq("exp", "diff", "low", "high", "--all", cwd=proj)[1].splitlines()
            if ln.strip()
        )
    )
    data = json.loads(exq("exp", "diff", "low", "high", "--json", cwd=proj)[1])
    assert data["metrics"]["scores.yaml"]["f1"] == {"old": 0.15, "new": 1.2, "diff": 1.05}
    assert data["params"]["params.yaml"]["train.lr"]["new"] == 0.4
    md = exq("exp", "diff", "low", "high", "--md", cwd=proj)[1]
    assert md.startswith("| Path") and "|---" in md


def test_metrics_show_and_diff(proj: Path) -> None:
    out = exq("metrics", "show", cwd=proj)[1].splitlines()
    assert out[0].split() == ["Path", "acc", "loss", "f1"]
    assert out[1].split() == ["metrics.json", "0.55", "0.95", "-"]
    assert out[2].split() == ["scores.yaml", "-", "-", "0.15"]
    everything = json.loads(exq("metrics", "show", "-a", "--json", cwd=proj)[1])
    assert everything == {
        "workspace": {"metrics.json": {"acc": 0.55, "loss": 0.95}, "scores.yaml": {"f1": 0.15}},
        "main": {},
    }
    rows = exq("metrics", "show", "-a", cwd=proj)[1].splitlines()
    assert rows[0].split()[:2] == ["Revision", "Path"]
    assert ["main", "metrics.json", "-", "-", "-"] in [r.split() for r in rows]
    out = exq("metrics", "diff", "high", "low", cwd=proj)[1].splitlines()
    assert out[0].split() == ["Path", "Metric", "high", "low", "Change"]
    assert ["metrics.json", "acc", "0.9", "0.55", "-0.35"] in [r.split() for r in out]
    data = json.loads(
        exq("metrics", "diff", "high", "low", "--json", "--targets", "scores.yaml", cwd=proj)[1]
    )
    assert data == {"scores.yaml": {"f1": {"old": 1.2, "new": 0.15, "diff": -1.05}}}


def test_params_diff(proj: Path) -> None:
    out = exq("params", "diff", "high", cwd=proj)[1].splitlines()
    assert out[0].split() == ["Path", "Param", "high", "workspace"]
    assert out[1].split() == ["params.yaml", "train.lr", "0.4", "0.05"]
    assert len(out) == 2
    data = json.loads(exq("params", "diff", "main", "high", "--json", "--all", cwd=proj)[1])
    assert data["model.toml"]["layers.size"] == {"old": 64, "new": 64, "diff": 0}
    assert data["params.yaml"]["train.lr"]["new"] == 0.4
    md = exq("params", "diff", "main", "high", "--md", cwd=proj)[1]
    assert md.startswith("| Path") and "train.lr" in md


@pytest.mark.parametrize(
    "args",
    [
        ("exp", "diff", "no-such-exp"),
        ("exp", "diff", "main", "no-such-exp"),
        ("metrics", "diff", "no-such-rev"),
        ("params", "diff", "deadbeef"),
    ],
)
def test_unknown_revision_is_one_line_and_non_zero(proj: Path, args: tuple[str, ...]) -> None:
    code, out, err = exq(*args, cwd=proj, check=False)
    assert_refused(code, err, "unknown revision", args[-1])
    assert out == ""


def strict_json(text: str) -> object:
    """JSON as RFC 8259 has it: NaN and Infinity are no JSON numbers."""

    def refuse(constant: str) -> object:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_json_outputs_stay_json_when_a_metric_is_nan_or_infinite(tmp_path: Path) -> None:
    """A diverged training writes NaN (Python's json module does); every --json of
    it printed NaN and Infinity, which jq, JavaScript and strict parsers refuse.
    They print null there (the tables still say nan and inf)."""
    root = init_repo(tmp_path / "repo")
    script = (
        'import json\njson.dump({"loss": float("nan"), "acc": float("inf")}, open("m.json", "w"))\n'
    )
    write(root / "train.py", script)
    write(root / "params.yaml", "lr: .nan\n")
    write(
        root / "dvc.yaml",
        f"stages:\n  train:\n    cmd: {PY} train.py\n    params: [lr]\n"
        "    metrics:\n    - m.json:\n        cache: false\n",
    )
    commit_all(root, "baseline")
    exq("exp", "run", "-n", "diverged", cwd=root)
    for args in (
        ("exp", "show"),
        ("exp", "diff", "HEAD", "diverged"),
        ("metrics", "show"),
        ("metrics", "diff", "HEAD", "diverged"),
        ("params", "diff", "HEAD", "diverged", "--all"),
    ):
        _, out, _ = exq(*args, "--json", cwd=root)
        strict_json(out)
    rows = strict_json(exq("exp", "show", "--json", cwd=root)[1])
    assert isinstance(rows, list)
    (row,) = [r for r in rows if r.get("name") == "diverged"]
    assert json.dumps(row).count("null") >= 2
    assert "nan" in exq("exp", "show", "--md", cwd=root)[1]
