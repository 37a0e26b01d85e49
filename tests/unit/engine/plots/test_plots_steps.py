"""``logged_steps``: the loggers' histories among a revision's plots files."""

from __future__ import annotations

from exq.engine.plots.model import FileData, RevPlots, parse_records
from exq.engine.plots.steps import logged_steps


def rev(**files: str) -> RevPlots:
    found = RevPlots("exp")
    for path, text in files.items():
        path = path.replace("__", "/").replace("_csv", ".csv")
        path = path if path.endswith(".csv") else path + ".tsv"
        found.files[path] = FileData(tuple(parse_records(path, text.encode())))
    return found


def test_logger_histories_by_metric() -> None:
    plots = rev(
        logs__loss="timestamp\tstep\tloss\n1\t0\t0.5\n2\t1\t0.25\n",
        logs__train__acc="timestamp\tstep\ttrain/acc\n1\t0\t0.1\n2\t1\tnan\n",
        # not a logger's history: more than one value column, no step, not a tsv
        table="step\ta\tb\n0\t1\t2\n",
        nostep="epoch\tloss\n0\t1\n",
        curve_csv="step,loss\n0,1\n",
    )
    assert logged_steps(plots) == {"loss": [(0, 0.5), (1, 0.25)], "train/acc": [(0, 0.1)]}


def test_nothing_logged() -> None:
    assert logged_steps(RevPlots("exp")) == {}
    assert logged_steps(rev(logs__loss="timestamp\tstep\tloss\n")) == {}
