"""``exq repro`` ends with a summary: stages run, skipped, restored from the
cache, and how long each command took; ``-q`` leaves exq's own lines out."""

from __future__ import annotations

import re
from pathlib import Path

from tests.e2e.conftest import PY, exq, runs, tool, write


def summary(out: str) -> tuple[str, dict[str, str]]:
    """The summary's first line, and each stage's line after it (name to the rest)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Summary: "))
    stages = {}
    for line in lines[start + 1 :]:
        assert line.startswith("  "), out
        name, rest = line.split(None, 1)
        stages[name] = rest
    return lines[start], stages


def seconds(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d)?)s(  failed)?", text)
    assert match, text
    return float(match.group(1))


def test_the_summary_counts_and_times_each_stage(basic: Path) -> None:
    write(basic / "slow.py", "import time; time.sleep(0.5); open('slow.txt', 'w').write('s')\n")
    text = (basic / "dvc.yaml").read_text()
    write(
        basic / "dvc.yaml",
        text
        + f"  slow:\n    cmd: {PY} slow.py\n    deps:\n    - slow.py\n    outs:\n    - slow.txt\n",
    )
    _, out, err = exq("repro", cwd=basic)
    head, stages = summary(out)
    assert head == "Summary: 4 stages ran, 0 skipped, 0 restored from the cache.", out
    assert set(stages) == {"prep", "train", "other", "slow"}
    assert seconds(stages["slow"]) >= 0.5
    assert "Summary" not in err

    runs(basic)
    (basic / "model.txt").unlink()
    write(basic / "data" / "other.txt", "other, edited\n")
    _, out, _ = exq("repro", cwd=basic)
    assert runs(basic) == ["other"]
    head, stages = summary(out)
    assert head == "Summary: 1 stage ran, 2 skipped, 1 restored from the cache.", out
    assert list(stages) == ["other"]

    _, out, _ = exq("repro", cwd=basic)
    assert out.splitlines()[-1] == "Data and pipelines are up to date."
    assert "Summary" not in out


def test_a_failed_stage_is_in_the_summary(project: Path) -> None:
    write(
        project / "dvc.yaml",
        f"""\
stages:
  first:
    cmd: {tool("run", "first", "first.txt")}
    outs:
    - first.txt
  bad:
    cmd: {tool("fail", "3")}
    deps:
    - first.txt
    outs:
    - bad.txt
""",
    )
    code, out, err = exq("repro", cwd=project, check=False)
    assert code != 0 and "bad" in err and err.count("\n") == 1, err
    head, stages = summary(out)
    assert head == "Summary: 1 stage ran, 1 failed, 0 skipped, 0 restored from the cache.", out
    assert list(stages) == ["first", "bad"]
    assert stages["bad"].endswith("  failed") and not stages["first"].endswith("failed")


def test_quiet_prints_only_the_commands_output(basic: Path) -> None:
    _, out, err = exq("repro", "-q", "-j", "1", cwd=basic)
    assert sorted(runs(basic)) == ["other", "prep", "train"]
    assert sorted(out.splitlines()) == ["ran other", "ran prep", "ran train"], out
    assert err == ""
    _, out, _ = exq("repro", "-q", cwd=basic)
    assert out == ""
