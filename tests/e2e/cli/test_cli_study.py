"""Optuna studies through ``exq exp run --queue --optimize`` and a real daemon."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.e2e.conftest import exq, write
from tests.e2e.queue_helpers import QueueEnv, daemon_pid, status, stop_daemon, wait_for
from tests.e2e.study_helpers import SPACE, loss_of, make_study_project, sweep_status
from tests.support import git

pytest.importorskip("optuna")
pytest.importorskip("hydra")


def test_a_study_queues_its_trials_as_slots_free_and_tells_optuna_each_metric(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    root = make_study_project(tmp_path / "repo")
    _, out, _ = exq(
        "exp", "run", "--queue", *SPACE, "--optimize", "scores.json:loss", "--minimize",
        "--trials", "4", "--seed", "5", "-n", "st", cwd=root,
    )  # fmt: skip
    assert out.startswith("Queued study 'st': 4 trials to minimize scores.json:loss")
    assert status(root)["runs"] == []  # the daemon asks Optuna: nothing is queued yet
    # The workspace changes after the study is queued: its trials do not see it.
    write(root / "train.py", "raise SystemExit('the workspace of later')\n")
    write(root / "params.yaml", "x: 0.0\nopt: sgd\nlate: 1\n")
    exq("queue", "start", "-j", "2", cwd=root)
    study = wait_for(
        lambda: (s := sweep_status(root, "st"))["state"] == "done" and s, "the study to end"
    )
    assert (study["budget"], study["done"], study["failed"], study["to_ask"]) == (4, 4, 0, 0)
    trials = study["trials"]
    assert [t["name"] for t in trials] == ["st-1", "st-2", "st-3", "st-4"]
    for trial in trials:  # each trial's value is its run's metric, from its own params
        assert trial["state"] == "success"
        assert trial["value"] == pytest.approx(loss_of(trial["params"]))
    best = min(trials, key=lambda t: t["value"])
    assert study["best"]["name"] == best["name"]
    assert study["best"]["experiment"].endswith("/" + best["name"])
    (storage,) = queue_env.state.glob("studies-*.db")  # Optuna's own database
    # The plain text says the same, the best with its params and experiment.
    _, text, _ = exq("sweep", "status", cwd=root)
    assert "Study st (done): minimize scores.json:loss, tpe sampler, seed 5" in text
    assert f"best: {best['value']:g} by {best['name']} ({' '.join(best['params'])})" in text


def test_queue_status_and_exp_show_mark_each_run_with_its_study_or_sweep(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    root = make_study_project(tmp_path / "repo")
    exq(
        "exp", "run", "--queue", *SPACE, "--optimize", "scores.json:loss", "--minimize",
        "--trials", "2", "--seed", "1", "-n", "st", cwd=root,
    )  # fmt: skip
    exq("exp", "run", "--queue", "-S", "x=0.1,0.2", "-n", "grid", cwd=root)
    exq("exp", "run", "--queue", "-S", "x=0.1,0.5", cwd=root)  # a sweep named after its run
    exq("exp", "run", "--queue", "-S", "x=0.7", "-n", "alone", cwd=root)
    exq("queue", "start", "-j", "2", cwd=root)
    wait_for(lambda: sweep_status(root, "st")["state"] == "done", "the study to end")
    wait_for(lambda: all(r["state"] == "success" for r in status(root)["runs"]), "every run to end")
    data = status(root)
    runs = {r["name"]: r["sweep"] for r in data["runs"]}
    first_auto = min(r["id"] for r in data["runs"] if r["name"].startswith("exp-"))
    assert {k: v for k, v in runs.items() if not k.startswith("exp-")} == {
        "grid-1": "grid",
        "grid-2": "grid",
        "alone": None,
        "st-1": "st",
        "st-2": "st",
    }
    assert sorted(v for k, v in runs.items() if k.startswith("exp-")) == [f"sweep-{first_auto}"] * 2
    (summary,) = data["studies"]
    assert (summary["name"], summary["done"], summary["budget"]) == ("st", 2, 2)
    assert "trials" not in summary
    _, text, _ = exq("queue", "status", cwd=root)
    assert "Study st (done): 2/2 done, 0 running, 0 pruned, 0 failed; best scores.json:loss" in text
    _, shown, _ = exq("exp", "show", "--json", cwd=root)
    marks = {row["name"]: row["sweep"] for row in json.loads(shown)}
    assert {n: marks[n] for n in ("st-1", "st-2", "grid-1", "alone")} == {
        "st-1": "st",
        "st-2": "st",
        "grid-1": "grid",
        "alone": None,
    }
    _, table, _ = exq("exp", "show", "--no-timestamp", cwd=root)
    assert "Sweep" in table.splitlines()[1]


OPT = ["--optimize", "scores.json:loss", "--minimize", "--trials", "3"]


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["-S", "x=0.5", *OPT], "--optimize searches a space: give at least one -S with a"),
        ([*SPACE, "--optimize", "scores.json", "--minimize", "--trials", "3"], "FILE:KEY"),
        ([*SPACE, "--optimize", "scores.txt:loss", "--minimize", "--trials", "3"], "not a metrics"),
        ([*SPACE, *OPT, "--maximize"], "--maximize and --minimize exclude each other"),
        ([*SPACE, "--optimize", "scores.json:loss", "--trials", "3"], "--maximize or --minimize"),
        ([*SPACE, "--optimize", "scores.json:loss", "--minimize"], "with --trials N"),
        (["-S", "x=0.1,0.2", "--trials", "3"], "--trials belongs to a study: add --optimize"),
        (["-S", "x=0.1,0.2", "--maximize"], "--maximize is the direction of a study"),
        (["-S", "x=0.1,0.2", "--sampler", "tpe"], "--sampler belongs to a study"),
        ([*SPACE, *OPT, "--sampler", "bayes"], "--sampler 'bayes': use one of tpe, random"),
        ([*SPACE, *OPT, "--samples", "4"], "--samples is a random search, --optimize a study"),
        ([*SPACE, *OPT, "--sampler", "grid"], "the grid sampler needs values to pick from"),
        (["-S", "opt=choice(sgd, adam)", *OPT, "--sampler", "grid"], "the grid has 2 points"),
        (["-S", "nokey=interval(0, 1)", *OPT], "key 'nokey' not found"),
        (["-S", "x=interval(0, 1)"], "interval() is a distribution: draw from it with --samples"),
        # a budget beyond SQLite's integers ended in an OverflowError traceback
        (
            [*SPACE, *OPT[:-1], "99999999999999999999"],
            "--trials '99999999999999999999': at most 10000 runs",
        ),
        (["-S", "x=0.5", *OPT, "--temp"], "--optimize searches a space"),  # typer's path
        (
            [*SPACE, "--optimize", "score.json:loss", "--minimize", "--trials", "3"],
            "--optimize score.json:loss: no stage writes 'score.json' and the workspace has no",
        ),
        (
            ["-S", "x=0.1,0.2", "--optimize", "score.json:loss", "--minimize", "--prune", "asha"],
            "no stage writes 'score.json'",
        ),
    ],
)
def test_a_bad_study_is_one_line_and_queues_nothing(
    queue_env: QueueEnv, tmp_path: Path, args: list[str], why: str
) -> None:
    root = make_study_project(tmp_path / "repo")
    code, out, err = exq("exp", "run", "--queue", *args, cwd=root, check=False)
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and why in err, err
    assert "Traceback" not in err
    assert status(root)["runs"] == [] and status(root)["studies"] == []
    _, listed, _ = exq("sweep", "status", "--json", cwd=root)
    assert json.loads(listed) == []
    assert "refs/exq/study" not in git(root, "for-each-ref")


def test_a_study_without_optuna_names_the_extra_and_queues_nothing(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    root = make_study_project(tmp_path / "repo")
    hide = tmp_path / "no-optuna"  # this interpreter as one without the exq[optuna] extra
    write(hide / "sitecustomize.py", "import sys\nsys.modules['optuna'] = None\n")
    code, out, err = exq(
        "exp", "run", "--queue", *SPACE, *OPT, cwd=root, check=False,
        env={"PYTHONPATH": str(hide)},
    )  # fmt: skip
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and "pip install 'exq[optuna]'" in err, err
    assert status(root)["studies"] == []


def test_a_seeded_study_draws_the_same_points_whatever_the_timing(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    """The sampler is seeded by --seed and the number of trials so far, so the
    random sampler's points do not depend on when the daemon asks (nor on its
    restarts); another seed draws others."""
    drawn = {}
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        root = make_study_project(tmp_path / name)
        exq(
            "exp", "run", "--queue", *SPACE, "--optimize", "scores.json:loss", "--minimize",
            "--trials", "3", "--sampler", "random", "--seed", seed, "-n", name, cwd=root,
        )  # fmt: skip
        drawn[name] = root
    exq("queue", "start", "-j", "2", cwd=tmp_path / "a")
    points = {
        name: wait_for(
            lambda root=root, name=name: (
                (s := sweep_status(root, name))["state"] == "done"
                and [t["params"] for t in s["trials"]]
            ),
            f"study {name} to end",
        )
        for name, root in drawn.items()
    }
    assert points["a"] == points["b"]
    assert points["a"] != points["c"]


def test_any_whole_seed_seeds_a_study(queue_env: QueueEnv, tmp_path: Path) -> None:
    """Optuna's samplers take seeds of 0 to 2**32 - 1: the top one (each trial adds
    the trials so far to it), a negative or a huge one made the daemon fail to ask
    for ever, the study never ending."""
    roots = {}
    for name, seed in (("top", "4294967295"), ("neg", "-1"), ("huge", "9" * 30)):
        roots[name] = make_study_project(tmp_path / name)
        exq(
            "exp", "run", "--queue", *SPACE, "--optimize", "scores.json:loss", "--minimize",
            "--trials", "2", "--seed", seed, "-n", name, cwd=roots[name],
        )  # fmt: skip
    exq("queue", "start", "-j", "2", cwd=roots["top"])
    for name, root in roots.items():
        study = wait_for(
            lambda root=root, name=name: (s := sweep_status(root, name))["state"] != "active" and s,
            f"study {name} to end",
        )
        assert (study["state"], study["done"], study["failed"]) == ("done", 2, 0), study


def test_sweep_stop_asks_no_more_trials_and_lets_the_running_one_end(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    root = make_study_project(tmp_path / "repo")
    exq(
        "exp", "run", "--queue", *SPACE, *OPT[:-1], "6", "-n", "st", cwd=root,
        env={"SLOW": "1"},  # each trial waits for the file 'go'
    )  # fmt: skip
    exq("queue", "start", "-j", "1", cwd=root)
    wait_for(lambda: sweep_status(root, "st")["running"] == 1, "the first trial to run")
    _, out, _ = exq("sweep", "stop", "st", cwd=root)
    assert out == "Stopped study 'st' after 1 of 6 trials.\n"
    (queue_env.shared / "go").write_text("")
    study = wait_for(
        lambda: (s := sweep_status(root, "st"))["state"] == "done" and s, "the study to end"
    )
    assert (study["budget"], study["done"], study["to_ask"]) == (1, 1, 0)
    assert "after 1 of 6 trials" in study["error"]
    assert [r["name"] for r in status(root)["runs"]] == ["st-1"]
    code, _, err = exq("sweep", "stop", "st", cwd=root, check=False)
    assert code == 1 and "study 'st' is done: nothing to stop" in err
    code, _, err = exq("sweep", "stop", "nope", cwd=root, check=False)
    assert code == 1 and err.count("\n") == 1 and "no study 'nope'" in err


def test_a_second_sweep_stop_says_so_and_keeps_the_first_ones_note(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    root = make_study_project(tmp_path / "repo")
    exq("exp", "run", "--queue", *SPACE, *OPT, "-n", "st", cwd=root)  # no daemon runs
    _, out, _ = exq("sweep", "stop", "st", cwd=root)
    assert out == "Stopped study 'st' after 0 of 3 trials.\n"
    # it said "Stopped study 'st' after 0 of 0 trials." again, and the note became that
    code, out, err = exq("sweep", "stop", "st", cwd=root, check=False)
    assert (code, out) == (1, "") and err.count("\n") == 1
    assert "study 'st' is stopped already" in err
    assert "after 0 of 3 trials" in sweep_status(root, "st")["error"]


def test_sweep_status_tells_a_trial_a_dead_daemon_left_from_a_running_one(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    """As queue status does: with no daemon alive, a trial left 'running' is
    interrupted (the next start runs it again); it was counted running."""
    root = make_study_project(tmp_path / "repo")
    exq("exp", "run", "--queue", *SPACE, *OPT[:-1], "2", "-n", "st", cwd=root, env={"SLOW": "1"})
    exq("queue", "start", "-j", "1", cwd=root)
    wait_for(lambda: sweep_status(root, "st")["running"] == 1, "the first trial to run")
    pid = daemon_pid(queue_env)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: daemon_pid(queue_env) is None, "the daemon to die")
    try:
        study = sweep_status(root, "st")
        assert (study["running"], study["interrupted"]) == (0, 1), study
        assert [t["state"] for t in study["trials"]] == ["interrupted"]
        _, text, _ = exq("sweep", "status", "st", cwd=root)
        assert "0 running" in text and "1 interrupted" in text, text
        _, text, _ = exq("queue", "status", cwd=root)
        assert "Study st (active): 0/2 done, 0 running, 1 interrupted" in text, text
        (queue_env.shared / "go").write_text("")  # the orphaned trial may end
        exq("queue", "start", cwd=root)  # and the next daemon runs it again, to the end
        study = wait_for(
            lambda: (s := sweep_status(root, "st"))["state"] == "done" and s, "the study to end"
        )
        assert (study["done"], study["running"], study["interrupted"]) == (2, 0, 0)
    finally:
        (queue_env.shared / "go").write_text("")


def test_trials_that_wrote_no_metric_count_failed_and_say_why(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    """Optuna hears of a run without the metric as failed; sweep status counted it
    done, with no value and no word of why."""
    root = make_study_project(tmp_path / "repo")
    exq(
        "exp", "run", "--queue", *SPACE, "--optimize", "scores.json:acc", "--maximize",
        "--trials", "2", "-n", "st", cwd=root,
    )  # fmt: skip
    exq("queue", "start", "-j", "2", cwd=root)
    study = wait_for(
        lambda: (s := sweep_status(root, "st"))["state"] == "done" and s, "the study to end"
    )
    assert (study["done"], study["failed"], study["best"]) == (0, 2, None), study
    assert [t["state"] for t in study["trials"]] == ["no-metric", "no-metric"]
    assert all(r["state"] == "success" for r in status(root)["runs"])  # the runs ran well
    _, text, _ = exq("sweep", "status", "st", cwd=root)
    assert "0 done" in text and "2 failed" in text and "no-metric" in text, text


def test_the_queue_drains_once_when_a_study_ends_not_between_its_trials(
    queue_env: QueueEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between two trials nothing is running or queued for a moment (the daemon asks
    Optuna for the next one as the slot frees): '[notify]' heard 'queue-drained'
    after every trial of a study, not once at its end."""
    told = tmp_path / "told"
    config = tmp_path / "config.toml"
    config.write_text(f'[notify]\ncommand = "echo $EXQ_EVENT $EXQ_RUN_NAME >> {told}"\n')
    monkeypatch.setenv("EXQ_CONFIG", str(config))
    root = make_study_project(tmp_path / "repo")
    exq("exp", "run", "--queue", *SPACE, *OPT, "-n", "st", cwd=root)
    exq("queue", "start", "-j", "1", cwd=root)
    wait_for(lambda: sweep_status(root, "st")["state"] == "done", "the study to end")
    lines = lambda: told.read_text().splitlines() if told.exists() else []  # noqa: E731
    wait_for(lambda: len(lines()) >= 4, "three run ends and a drain")
    assert lines() == ["run-end st-1", "run-end st-2", "run-end st-3", "queue-drained"]


def test_run_all_follows_a_study_to_its_end(queue_env: QueueEnv, tmp_path: Path) -> None:
    # a study queues its trials one by one: --run-all followed the 0 runs queued at
    # its start and returned at once
    root = make_study_project(tmp_path / "repo")
    exq("exp", "run", "--queue", *SPACE, *OPT[:-1], "2", "-n", "st", cwd=root)
    _, out, _ = exq("exp", "run", "--run-all", "-j", "1", cwd=root)
    lines = out.splitlines()
    assert "following 0 run(s) and 1 study" in lines[0], lines[0]
    assert any(" st-1: success" in line for line in lines), out
    assert any(" st-2: success" in line for line in lines), out
    assert lines[-1] == "Done: 2 success."
    assert sweep_status(root, "st")["state"] == "done"


def test_a_queue_started_afresh_starts_its_studies_afresh(
    queue_env: QueueEnv, tmp_path: Path
) -> None:
    """The queue database moved away (as its error hint says, to start an empty
    queue): the next study 1 is a new Optuna study, not the old study 1 again."""
    root = make_study_project(tmp_path / "repo")
    for name in ("old", "new"):
        exq("exp", "run", "--queue", *SPACE, *OPT[:-1], "2", "-n", name, cwd=root)
        exq("queue", "start", "-j", "2", cwd=root)
        study = wait_for(
            lambda name=name: (s := sweep_status(root, name))["state"] == "done" and s,
            f"study {name} to end",
        )
        assert (study["id"], [t["trial"] for t in study["trials"]]) == (1, [0, 1])
        stop_daemon(queue_env)
        moved = tmp_path / f"queue-{name}"
        moved.mkdir()
        for path in queue_env.state.glob("queue.db*"):
            path.rename(moved / path.name)
    assert len(list(queue_env.state.glob("studies-*.db"))) == 2
