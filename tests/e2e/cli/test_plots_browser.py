"""The plots page of ``exq plots diff`` and the live report ``logs_dvc_plots/index.html`` in real headless Chromium.

Each page must draw every chart's lines, log no console error or uncaught
exception, and make no network request (the only request is the page's own
``file://`` URL). Chromium is Debian's package (``make test`` installs it
where it can); the tests skip where it is absent. The browser is driven over
the DevTools protocol on a pipe (``plots_browser_helpers``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from exq.live import Live
from tests.e2e.conftest import exq, write
from tests.e2e.exp_helpers import commit_all, init_repo
from tests.e2e.plots_browser_helpers import Chromium, PageReport, find_chromium, page_url

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    assert CHROMIUM is not None
    chromium = Chromium(CHROMIUM)
    try:
        yield chromium
    finally:
        chromium.close()


def _assert_clean(report: PageReport, url: str) -> None:
    assert report.errors() == []
    assert report.requests == [url]  # the page itself, nothing from the network or disk


def _tsv(metric: str, values: list[float]) -> str:
    return f"timestamp\tstep\t{metric}\n" + "".join(
        f"{1700000000000 + i}\t{i}\t{v}\n" for i, v in enumerate(values)
    )


DVCYAML = """\
stages:
  train:
    cmd: echo trained
    plots:
    - logs:
        cache: false
    - roc.csv:
        cache: false
    - pr.json:
        cache: false
"""

# Evaluated in the page: per chart, its declared line count and what vega drew.
DRAWN = """
Array.from(document.querySelectorAll("div.chart")).map(div => ({
  plot: div.dataset.plot,
  declared: Number(div.dataset.lines),
  svgs: div.querySelectorAll("svg").length,
  lengths: Array.from(div.querySelectorAll("g.mark-line path")).map(p => p.getTotalLength()),
}))
"""


def test_plots_diff_page_draws_every_line_offline(tmp_path: Path, browser: Chromium) -> None:
    root = init_repo(tmp_path / "repo")
    write(root / "dvc.yaml", DVCYAML)
    write(root / "logs" / "loss.tsv", _tsv("loss", [0.9, 0.5, 0.3]))
    write(root / "logs" / "train" / "acc.tsv", _tsv("acc", [0.1, 0.5, 0.7]))
    write(root / "roc.csv", "fpr,tpr,thr\n0,0,1\n0.5,0.8,0.5\n1,1,0\n")
    write(
        root / "pr.json",
        json.dumps({"pr": [{"recall": 0, "precision": 1}, {"recall": 1, "precision": 0.5}]}),
    )
    commit_all(root, "first run")
    write(root / "logs" / "loss.tsv", _tsv("loss", [0.8, 0.4, 0.2, 0.1]))
    write(root / "roc.csv", "fpr,tpr,thr\n0,0,1\n1,1,0\n")

    _, out, _ = exq("plots", "diff", "--json", cwd=root)
    expected = {f"{p['file']}:{p['metric']}": len(p["lines"]) for p in json.loads(out)["plots"]}
    assert expected == {
        "logs/loss.tsv:loss": 2,
        "logs/train/acc.tsv:acc": 2,
        "roc.csv:fpr": 2,
        "roc.csv:tpr": 2,
        "roc.csv:thr": 2,
        "pr.json:recall": 2,
        "pr.json:precision": 2,
    }
    _, out, _ = exq("plots", "diff", cwd=root)
    url = out.strip()

    browser.open()
    report = browser.load(url)
    assert browser.evaluate(report, "window.exqPlotsReady") == len(expected)
    drawn = browser.evaluate(report, DRAWN)
    browser.settle(report)
    assert {chart["plot"]: chart["declared"] for chart in drawn} == expected
    for chart in drawn:
        assert chart["svgs"] == 1, chart
        assert len(chart["lengths"]) == chart["declared"], chart  # one SVG path per revision
        assert all(length > 10 for length in chart["lengths"]), chart  # and each was drawn
    _assert_clean(report, url)


def test_live_report_draws_every_metric_offline(tmp_path: Path, browser: Chromium) -> None:
    with Live(str(tmp_path / "logs")) as live:
        for step in range(5):
            live.log("loss", 1 / (step + 1))
            live.log("train/acc", step / 5)
            live.log("const", 3)
            live.next_step()
    page = tmp_path / "logs_dvc_plots" / "index.html"
    assert page.exists()
    url = page_url(page)

    browser.open()
    report = browser.load(url)
    drawn = browser.evaluate(
        report,
        """
      Array.from(document.querySelectorAll("svg.exq-plot")).map(svg => {
        const line = svg.querySelector("polyline.line");
        return {metric: svg.dataset.metric,
                points: line ? line.points.numberOfItems : 0,
                width: line ? line.getBBox().width : 0};
      })
    """,
    )
    browser.settle(report)
    assert sorted(chart["metric"] for chart in drawn) == ["const", "loss", "train/acc"]
    for chart in drawn:
        assert chart["points"] == 5, chart
        assert chart["width"] > 100, chart
    _assert_clean(report, url)
