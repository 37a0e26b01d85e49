"""``git gc --prune=now`` in a loop while a checkpoint run commits its checkpoints.

Pruning at once is unsafe for any concurrent git writer: gc deletes the loose
objects a snapshot has just written, even one a ref came to point at meanwhile.
exq makes a snapshot again when its fresh objects vanish under it, and when
what it needs is gone for good it says so in one line, never as a traceback or
an internal error.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

from tests.e2e.conftest import EXQ_BIN
from tests.support import write_training_project


def gc_until(repo: Path, stop: threading.Event) -> None:
    while not stop.is_set():
        subprocess.run(["git", "gc", "--prune=now", "-q"], cwd=repo, capture_output=True)


def test_a_checkpoint_run_beside_git_gc_ends_in_one_line(project: Path) -> None:
    write_training_project(project, params="train:\n  epochs: 120\n  lr: 0.5\n")
    stop = threading.Event()
    gc = threading.Thread(target=gc_until, args=(project, stop))
    gc.start()
    try:
        done = subprocess.run(
            [str(EXQ_BIN), "exp", "run"], cwd=project, capture_output=True, text=True, timeout=600
        )
    finally:
        stop.set()
        gc.join()
    if done.returncode == 0:
        return  # every snapshot was made again in time
    # gc pruned a commit a ref already held: the repository lost it, and says so.
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: stage 'train': "), done.stderr
    assert "git gc --prune=now" in lines[0], lines[0]
