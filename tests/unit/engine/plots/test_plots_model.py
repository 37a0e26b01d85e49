"""Plots files parsed into records, series and charts; plots defs; the page's Vega-Lite specs."""

from __future__ import annotations

import json
import re

import pytest

from exq.engine.errors import PlotsError
from exq.engine.plots.defs import (
    PlotDef,
    merge_defs,
    select_defs,
    target_found,
    top_level_plot_defs,
)
from exq.engine.plots.model import (
    INDEX,
    Chart,
    FileData,
    Line,
    RevPlots,
    build_charts,
    charts_to_json,
    file_series,
    is_plot_file,
    parse_records,
    to_number,
)
from exq.engine.plots.page import render_page
from exq.engine.plots.templates import chart_spec, thin

LIVE_TSV = b"timestamp\tstep\tloss\n1700000000000\t0\t0.5\n1700000000100\t1\t0.25\n"


@pytest.mark.parametrize(
    ("path", "raw", "records"),
    [
        (
            "logs/loss.tsv",
            LIVE_TSV,
            [
                {"timestamp": "1700000000000", "step": "0", "loss": "0.5"},
                {"timestamp": "1700000000100", "step": "1", "loss": "0.25"},
            ],
        ),
        ("a.csv", b"x,y\r\n1,2\r\n\r\n3,4\r\n", [{"x": "1", "y": "2"}, {"x": "3", "y": "4"}]),
        ("a.csv", b"\xef\xbb\xbfx,y\n1,2\n", [{"x": "1", "y": "2"}]),  # a BOM
        ("a.csv", b"", []),
        ("a.csv", b"x,y\n", []),
        ("a.json", b'[{"a": 1}, {"a": 2, "b": 3}]', [{"a": 1}, {"a": 2, "b": 3}]),
        ("a.json", b'{"train": [{"a": 1}], "val": [{"a": 9}]}', [{"a": 1}]),
        (
            "a.json",
            b'{"loss": [3, 2, 1], "acc": [0.1, 0.2]}',
            [{"loss": 3, "acc": 0.1}, {"loss": 2, "acc": 0.2}, {"loss": 1}],
        ),
        ("a.json", b"", []),
        ("a.yaml", b"- {a: 1}\n- {a: 2}\n", [{"a": 1}, {"a": 2}]),
        ("a.yml", b"curve:\n- {x: 1, y: 2}\n", [{"x": 1, "y": 2}]),
        ("a.yaml", b"", []),
    ],
)
def test_parse_records(path: str, raw: bytes, records: list[dict[str, object]]) -> None:
    assert parse_records(path, raw) == records


@pytest.mark.parametrize(
    ("path", "raw", "words"),
    [
        ("a.json", b"{oops", ["a.json", "not valid JSON"]),
        ("a.json", b"[1, 2]", ["a.json", "list of records"]),
        ("a.json", b'{"a": 1}', ["a.json", "mapping of lists"]),
        ("a.json", b'{"a": [[1], [2]]}', ["a.json", "mapping of lists"]),
        ("a.yaml", b"a: [\n", ["a.yaml", "not valid YAML"]),
        ("a.yaml", b"just text", ["a.yaml", "list of records"]),
        ("a.csv", b"\xff\xfe", ["a.csv", "UTF-8"]),
        ("a.png", b"x", ["a.png", "unsupported"]),
    ],
)
def test_unreadable_files_name_themselves(path: str, raw: bytes, words: list[str]) -> None:
    with pytest.raises(PlotsError) as caught:
        parse_records(path, raw)
    message = str(caught.value)
    assert "\n" not in message
    assert all(word in message for word in words), message


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (1, 1),
        (0.5, 0.5),
        ("2", 2),
        (" 2.5 ", 2.5),
        ("1e-3", 0.001),
        (True, None),
        ("x", None),
        (None, None),
        ("nan", None),
        (float("inf"), None),
        ([1], None),
        ("", None),
    ],
)
def test_to_number(value: object, number: object) -> None:
    assert to_number(value) == number
    assert type(to_number(value)) is type(number)


def test_is_plot_file() -> None:
    assert [
        p
        for p in ["a.tsv", "b.CSV", "c.json", "d.yaml", "e.yml", "f.png", "g.txt", "tsv"]
        if is_plot_file(p)
    ] == ["a.tsv", "b.CSV", "c.json", "d.yaml", "e.yml"]


def test_series_of_a_live_log_use_the_step_and_skip_the_timestamp() -> None:
    x, series = file_series(parse_records("loss.tsv", LIVE_TSV))
    assert x == "step"
    assert series == {"loss": ((0, 1), (0.5, 0.25))}


def test_series_without_a_step_use_the_row_index_and_skip_gaps() -> None:
    records = [{"fpr": 0, "tpr": 0, "name": "a"}, {"fpr": 0.5, "tpr": "n/a"}, {"fpr": 1, "tpr": 1}]
    x, series = file_series(records)
    assert x == INDEX
    assert series == {"fpr": ((0, 1, 2), (0, 0.5, 1)), "tpr": ((0, 2), (0, 1))}


def test_series_with_named_x_and_y() -> None:
    records = [{"epoch": 1, "a": 1, "b": 2}, {"epoch": 2, "a": 3, "b": 4}]
    assert file_series(records, x="epoch", y=["b"]) == ("epoch", {"b": ((1, 2), (2, 4))})
    # An x that is not in the file falls back as if none was named.
    assert file_series(records, x="nope", y=["a"]) == (INDEX, {"a": ((0, 1), (1, 3))})


def test_charts_one_per_file_and_metric_with_a_line_per_revision() -> None:
    head = RevPlots(
        "HEAD",
        {
            "logs/loss.tsv": FileData(tuple(parse_records("logs/loss.tsv", LIVE_TSV))),
            "roc.csv": FileData(({"fpr": 0, "tpr": 0}, {"fpr": 1, "tpr": 1})),
        },
    )
    work = RevPlots(
        "workspace",
        {
            "logs/loss.tsv": FileData(({"step": 0, "loss": 0.4},)),
            "logs/acc.tsv": FileData(({"step": 0, "acc": 0.9},)),
        },
    )
    charts = build_charts([head, work])
    assert [(c.file, c.metric, c.x, [line.rev for line in c.lines]) for c in charts] == [
        ("logs/loss.tsv", "loss", "step", ["HEAD", "workspace"]),
        ("roc.csv", "fpr", INDEX, ["HEAD"]),
        ("roc.csv", "tpr", INDEX, ["HEAD"]),
        ("logs/acc.tsv", "acc", "step", ["workspace"]),
    ]
    assert charts[0].lines[1] == Line("workspace", (0,), (0.4,))
    data = charts_to_json(charts, ["HEAD", "workspace"], ["e1", "e1", "e2"])
    assert data["revisions"] == ["HEAD", "workspace"]
    assert data["errors"] == ["e1", "e2"]
    assert data["plots"][0] == {
        "file": "logs/loss.tsv",
        "metric": "loss",
        "x": "step",
        "lines": [
            {"rev": "HEAD", "x": [0, 1], "y": [0.5, 0.25]},
            {"rev": "workspace", "x": [0], "y": [0.4]},
        ],
    }
    json.dumps(data, allow_nan=False)


def test_top_level_plot_defs() -> None:
    entries = [
        "logs",
        {"eval/pr.json": {"x": "recall", "y": "precision", "template": "simple", "title": "PR"}},
        {
            "cmp": {
                "x": {"a.csv": "n"},
                "y": {"a.csv": ["s1", "s2"], "../b.csv": "s"},
                "template": "scatter",
                "y_label": "score",
            }
        },
        {"bare": None},
        42,
        None,
    ]
    cmp = {"dvcfile": "sub/dvc.yaml", "plot_id": "cmp", "template": "scatter", "y_label": "score"}
    assert top_level_plot_defs("sub/dvc.yaml", entries) == [
        PlotDef("sub/logs", dvcfile="sub/dvc.yaml"),
        PlotDef(
            "sub/eval/pr.json",
            "recall",
            ("precision",),
            dvcfile="sub/dvc.yaml",
            template="simple",
            title="PR",
        ),
        PlotDef("sub/a.csv", "n", ("s1", "s2"), **cmp),
        PlotDef("b.csv", None, ("s",), **cmp),
        PlotDef("sub/bare", dvcfile="sub/dvc.yaml"),
        PlotDef("sub/42", dvcfile="sub/dvc.yaml"),
    ]
    assert top_level_plot_defs("dvc.yaml", {"not": "a list"}) == []


def test_merge_keeps_the_stage_out_and_adds_x_y() -> None:
    out = PlotDef(
        "logs", cached=True, dvcfile="dvc.yaml", stage="train", out="logs", out_path="logs"
    )
    top = PlotDef("logs", x="step", y=("loss",), dvcfile="dvc.yaml")
    for order in ([out, top], [top, out]):
        assert merge_defs(order) == [
            PlotDef("logs", "step", ("loss",), True, "dvc.yaml", "train", "logs", "logs")
        ]


def test_select_defs_by_target() -> None:
    logs = PlotDef("logs", cached=True, stage="train", out="logs", out_path="logs")
    roc = PlotDef("eval/roc.csv")
    defs = [logs, roc]
    assert select_defs(defs, None) == defs
    assert select_defs(defs, ["eval/roc.csv"]) == [roc]
    assert select_defs(defs, ["eval"]) == [roc]  # a folder holding defs
    assert select_defs(defs, ["."]) == defs
    assert select_defs(defs, ["./logs/"]) == [logs]
    # A file inside a plots folder narrows that def, keeping where its out is recorded.
    assert select_defs(defs, ["logs/loss.tsv"]) == [
        PlotDef("logs/loss.tsv", cached=True, stage="train", out="logs", out_path="logs")
    ]
    assert select_defs(defs, ["other.csv"]) == [PlotDef("other.csv")]


def test_target_found() -> None:
    paths = ["logs/loss.tsv"]
    assert target_found("logs", paths)
    assert target_found("./logs/loss.tsv", paths)
    assert not target_found("log", paths)
    assert not target_found("roc.csv", paths)
    assert target_found("ROC", paths, ["ROC"])


# -- the page ------------------------------------------------------------------------


def test_thin_keeps_first_and_last() -> None:
    line = Line("w", tuple(range(100)), tuple(range(100)))
    points = thin(line, 10)
    assert len(points) == 10 and points[0] == (0, 0) and points[-1] == (99, 99)
    assert thin(line, 1000) == list(zip(range(100), range(100), strict=True))


def test_chart_spec_is_vega_lite_with_a_colour_per_revision() -> None:
    chart = Chart(
        "logs/a.b[0].tsv",
        "a.b[0]",
        "step",
        [Line("HEAD", (0, 1), (0.5, 0.25)), Line("exp-1", (0,), (0.4,))],
    )
    spec = chart_spec(chart, ["HEAD", "exp-1", "workspace"])
    assert spec["data"]["values"] == [
        {"rev": "HEAD", "x": 0, "y": 0.5},
        {"rev": "HEAD", "x": 1, "y": 0.25},
        {"rev": "exp-1", "x": 0, "y": 0.4},
    ]
    assert spec["mark"]["type"] == "line"
    assert spec["encoding"]["color"]["sort"] == ["HEAD", "exp-1"]
    assert spec["encoding"]["y"]["title"] == "a.b[0]"  # the name only as a title: no field escaping
    assert spec["encoding"]["x"]["axis"] == {"tickMinStep": 1}
    assert "legend" in chart_spec(chart, ["HEAD"])["encoding"]["color"]
    assert "$schema" not in spec  # nothing in the page names a URL to fetch


def test_page_inlines_everything_and_escapes_script_text() -> None:
    chart = Chart("x</script><b>.csv", "m", INDEX, [Line("w", (0, 1), (1, 2))])
    page = render_page([chart], ["w"], "window.vegaEmbed = function () {};", title="t <1>")
    assert page.count("</script>") == 3  # the bundle, the specs, the embedding
    specs = re.search(r'id="exq-plot-specs">(.*?)</script>', page, re.S)
    assert specs is not None
    assert json.loads(specs.group(1))[0]["title"]["subtitle"] == "x</script><b>.csv"
    assert 'data-plot="x&lt;/script&gt;&lt;b&gt;.csv:m" data-lines="1"' in page
    assert "<title>t &lt;1&gt;</title>" in page
    assert not re.search(r"(src|href)=", page)
