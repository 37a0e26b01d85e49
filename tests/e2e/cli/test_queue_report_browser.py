"""``exq queue report --html``: one offline page with the night's table and the
plots of its runs, opened in headless Chromium (skipped where it is absent)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import PY, exq, write
from tests.e2e.plots_browser_helpers import Chromium, find_chromium, page_url
from tests.e2e.queue_helpers import QueueEnv, queued_ids, wait_states
from tests.support import git

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser)")

SCRIPT = """\
import json, sys
from pathlib import Path

params = dict(l.split(": ", 1) for l in Path("params.yaml").read_text().splitlines())
lr = float(params["lr"])
if params["mode"].strip() == "fail":
    print("diverged", flush=True)
    sys.exit(2)
Path("logs").mkdir(exist_ok=True)
rows = "".join(f"{i}\\t{i}\\t{1 / (1 + lr * i)}\\n" for i in range(5))
Path("logs/loss.tsv").write_text("timestamp\\tstep\\tloss\\n" + rows)
Path("metrics.json").write_text(json.dumps({"loss": 1 / (1 + lr * 4)}))
"""
DVC_YAML = f"""\
stages:
  train:
    cmd: {PY} train.py
    params:
    - mode
    - lr
    metrics:
    - metrics.json:
        cache: false
    plots:
    - logs:
        cache: false
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    assert CHROMIUM is not None
    chromium = Chromium(CHROMIUM)
    try:
        yield chromium
    finally:
        chromium.close()


def test_report_page_shows_the_night_and_draws_a_line_per_run_offline(
    queue_env: QueueEnv, tmp_path: Path, browser: Chromium
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    exq("init", cwd=root)
    write(root / "train.py", SCRIPT)
    write(root / "params.yaml", "mode: ok\nlr: 0.1\n")
    write(root / "dvc.yaml", DVC_YAML)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "project")
    _, out, _ = exq("exp", "run", "--queue", "-n", "lr", "-S", "lr=0.5,1,2", cwd=root)
    _, bad, _ = exq("exp", "run", "--queue", "-n", "boom", "-S", "mode=fail", cwd=root)
    ids = queued_ids(out) + queued_ids(bad)
    exq("queue", "start", "-j", "2", cwd=root)
    wait_states(root, ids, {"success", "failed"})

    out_dir = tmp_path / "night"
    _, printed, _ = exq(
        "queue",
        "report",
        "--html",
        "-o",
        str(out_dir),
        "--sort-by",
        "loss",
        "--sort-order",
        "asc",
        cwd=root,
    )
    page = out_dir / "index.html"
    assert printed.strip() == page.as_uri()
    url = page_url(page)
    browser.open()
    report = browser.load(url)
    assert browser.evaluate(report, "window.exqPlotsReady") == 1
    rows = browser.evaluate(
        report,
        """Array.from(document.querySelectorAll("#exq-report-runs tr"))
             .slice(1).map(tr => [tr.cells[1].textContent, tr.cells[2].textContent])""",
    )
    best = browser.evaluate(
        report, """Array.from(document.querySelectorAll("ol li")).map(li => li.textContent)"""
    )
    failure = browser.evaluate(report, """document.querySelector("pre.last-lines").textContent""")
    lines = browser.evaluate(
        report,
        """Array.from(document.querySelectorAll("div.chart g.mark-line path"))
             .map(p => p.getTotalLength())""",
    )
    browser.settle(report)
    assert sorted(rows) == [["boom", "failed"], *[[f"lr-{i}", "success"] for i in (1, 2, 3)]]
    assert [text.split(" ")[0] for text in best] == ["lr-3", "lr-2", "lr-1"]
    assert "diverged" in failure
    assert len(lines) == 3 and all(length > 10 for length in lines)  # a line per run
    assert report.errors() == []
    assert report.requests == [url]  # nothing from the network
