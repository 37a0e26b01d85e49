"""Plots drawn as their authors wrote them: x, y, template and title; several files in one chart.

Every spec is rendered by vl-convert (the Vega-Lite the page embeds) to SVG,
so a template that Vega-Lite cannot draw fails here.
"""

from __future__ import annotations

import re

import pytest
import vl_convert

from exq.engine.plots.defs import TEMPLATES, PlotDef
from exq.engine.plots.model import FileData, RevPlots, build_charts, charts_to_json
from exq.engine.plots.page import ImageFile, render_page
from exq.engine.plots.templates import chart_spec

ROC = ({"fpr": 0, "tpr": 0, "thr": 1}, {"fpr": 0.5, "tpr": 0.8, "thr": 0.5}, {"fpr": 1, "tpr": 1})
ROC_TEST = ({"fpr": 0, "tpr": 0}, {"fpr": 1, "tpr": 1})
CM = tuple(
    {"actual": a, "predicted": p} for a, p in [(0, 0), (0, 0), (0, 1), (1, 1), (1, 1), (1, 1)]
)
IMPORTANCE = ({"feature": "f1", "importance": 0.3}, {"feature": "f2", "importance": 0.7})


def rev(name: str, uses: list[PlotDef], files: dict[str, tuple[dict, ...]]) -> RevPlots:
    return RevPlots(
        name, {path: FileData(records) for path, records in files.items()}, uses=list(uses)
    )


def roc_uses(template: str = "simple") -> list[PlotDef]:
    return [
        PlotDef("eval/roc/train.json", "fpr", ("tpr",), plot_id="ROC", template=template),
        PlotDef("eval/roc/test.json", "fpr", ("tpr",), plot_id="ROC", template=template),
    ]


def test_a_named_plot_of_two_files_is_one_chart_with_x_and_y() -> None:
    files = {"eval/roc/train.json": ROC, "eval/roc/test.json": ROC_TEST}
    charts = build_charts([rev("HEAD", roc_uses(), files), rev("workspace", roc_uses(), files)])
    assert len(charts) == 1
    (chart,) = charts
    assert (chart.id, chart.title, chart.template, chart.x, chart.metric) == (
        "ROC",
        "ROC",
        "simple",
        "fpr",
        "tpr",
    )
    assert [(line.rev, line.file, line.xs, line.ys) for line in chart.lines] == [
        ("HEAD", "eval/roc/train.json", (0, 0.5, 1), (0, 0.8, 1)),
        ("HEAD", "eval/roc/test.json", (0, 1), (0, 1)),
        ("workspace", "eval/roc/train.json", (0, 0.5, 1), (0, 0.8, 1)),
        ("workspace", "eval/roc/test.json", (0, 1), (0, 1)),
    ]
    data = charts_to_json(charts, ["HEAD", "workspace"])["plots"][0]
    assert (data["id"], data["title"], data["template"]) == ("ROC", "ROC", "simple")
    assert data["lines"][1] == {
        "rev": "HEAD",
        "file": "eval/roc/test.json",
        "field": "tpr",
        "x": [0, 1],
        "y": [0, 1],
    }


def test_a_file_with_several_y_and_a_title_is_one_chart() -> None:
    use = PlotDef("roc.json", "thr", ("tpr", "fpr"), title="thresholds")
    (chart,) = build_charts([rev("workspace", [use], {"roc.json": ROC})])
    assert (chart.title, chart.x, chart.metric) == ("thresholds", "thr", "tpr, fpr")
    assert [(line.field, line.xs, line.ys) for line in chart.lines] == [
        ("tpr", (1, 0.5), (0, 0.8)),  # rows without the x are left out
        ("fpr", (1, 0.5), (0, 0.5)),
    ]


def test_the_same_file_in_two_plots_is_drawn_in_both() -> None:
    uses = [PlotDef("roc.json", "thr", ("tpr",), title="by threshold"), *roc_uses()]
    files = {"roc.json": ROC, "eval/roc/train.json": ROC, "eval/roc/test.json": ROC_TEST}
    charts = build_charts([rev("workspace", uses, files)])
    assert [c.id for c in charts] == ["roc.json", "ROC"]


def test_confusion_keeps_classes_and_bars_keep_labels() -> None:
    cm = PlotDef("cm.json", "actual", ("predicted",), template="confusion")
    bars = PlotDef("imp.csv", "importance", ("feature",), template="bar_horizontal_sorted")
    charts = build_charts([rev("w", [cm, bars], {"cm.json": CM, "imp.csv": IMPORTANCE})])
    assert [(c.template, c.lines[0].xs, c.lines[0].ys) for c in charts] == [
        ("confusion", (0, 0, 0, 1, 1, 1), (0, 0, 1, 1, 1, 1)),
        ("bar_horizontal_sorted", (0.3, 0.7), ("f1", "f2")),
    ]


def _svg(spec: dict) -> str:
    return vl_convert.vegalite_to_svg(spec)


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_renders(template: str) -> None:
    if template.startswith("confusion"):
        use, files = (
            PlotDef("cm.json", "actual", ("predicted",), template=template),
            {"cm.json": CM},
        )
    elif template.startswith("bar"):
        use = PlotDef("imp.csv", "importance", ("feature",), template=template)
        files = {"imp.csv": IMPORTANCE}
    else:
        use = PlotDef("eval/roc/train.json", "fpr", ("tpr",), plot_id="ROC", template=template)
        files = {"eval/roc/train.json": ROC}
    (chart,) = build_charts([rev("HEAD", [use], files), rev("workspace", [use], files)])
    spec = chart_spec(chart, ["HEAD", "workspace"])
    svg = _svg(spec)
    assert "<svg" in svg
    if template.startswith("confusion"):
        # A matrix, not a line: a cell per (actual, predicted) pair of each revision.
        assert "mark" not in spec and spec["facet"]["column"]["field"] == "rev"
        assert "mark-line" not in svg and svg.count('role="graphics-symbol"') >= 8
        cells = re.findall(r"<text[^>]*>([0-9.]+)</text>", svg)
        wanted = (
            {"1.00", "0.25", "0.75", "0.00"}  # shares of each predicted class
            if template.endswith("normalized")
            else {"2", "1", "0", "3"}
        )
        assert wanted <= set(cells)
    elif template.startswith("bar"):
        assert spec["mark"]["type"] == "bar"
        assert spec["encoding"]["y"]["type"] == "nominal"
        assert ("sort" in spec["encoding"]["y"]) == template.endswith("sorted")
    elif template == "scatter":
        assert spec["mark"]["type"] == "point"
    else:
        assert "mark-line" in svg


def test_unknown_template_falls_back_to_linear() -> None:
    use = PlotDef("a.csv", None, ("v",), template="my_own.json")
    (chart,) = build_charts([rev("w", [use], {"a.csv": ({"v": 1}, {"v": 2})})])
    assert chart.template == "linear"


def test_images_sit_side_by_side_per_revision() -> None:
    images = [
        ImageFile("eval/importance.png", "workspace", "static/workspace_eval_importance.png"),
        ImageFile("eval/importance.png", "HEAD", "static/HEAD_eval_importance.png"),
    ]
    page = render_page([], ["HEAD", "workspace"], "", title="t", images=images)
    block = page[page.index('data-image="eval/importance.png"') :]
    assert 'data-revs="2"' in block
    assert block.index("static/HEAD_eval") < block.index("static/workspace_eval")
    assert "<figcaption>HEAD</figcaption>" in block


def test_more_than_ten_lines_each_get_a_colour_of_their_own() -> None:
    use = PlotDef("eval/roc/train.json", "fpr", ("tpr",), plot_id="ROC")
    names = [f"exp-{i}" for i in range(14)]
    (chart,) = build_charts([rev(n, [use], {"eval/roc/train.json": ROC}) for n in names])
    spec = chart_spec(chart, names)
    colours = spec["encoding"]["color"]["scale"]["range"]
    assert len(colours) == len(set(colours)) == 14
    svg = _svg(spec)
    drawn = set(re.findall(r'class="mark-line[^"]*"[^>]*>\s*<path[^>]*stroke="([^"]+)"', svg))
    drawn = drawn or set(re.findall(r'stroke="(#[0-9a-f]{6}|hsl\([^)]*\)|rgb\([^)]*\))"', svg))
    assert len(drawn) >= 14  # vega drew fourteen different strokes
    (few,) = build_charts([rev(n, [use], {"eval/roc/train.json": ROC}) for n in names[:3]])
    assert "scale" not in chart_spec(few, names[:3])["encoding"]["color"]  # category10
