"""Long data work reports its progress: files and bytes, per task, to an installed reporter."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from exq.engine.data import progress
from exq.engine.data.cache import Cache
from exq.engine.data.hashdb import HashState


class Recorder:
    """A reporter that keeps what it was told (tasks may advance from several threads)."""

    def __init__(self) -> None:
        self.tasks: list[RecordedTask] = []
        self.closed: list[str] = []

    def open(self, label: str, files: int, nbytes: int) -> progress.Task:
        task = RecordedTask(label, files, nbytes)
        self.tasks.append(task)
        return task

    def close(self, task: progress.Task) -> None:
        assert isinstance(task, RecordedTask)
        self.closed.append(task.label)


class RecordedTask:
    def __init__(self, label: str, files: int, nbytes: int) -> None:
        self.label, self.files, self.nbytes = label, files, nbytes
        self.done_files = self.done_bytes = 0
        self._lock = threading.Lock()

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self.done_files += 1
            self.done_bytes += nbytes


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    progress.install(rec)
    yield rec
    progress.install(None)


def make_folder(top: Path, count: int) -> int:
    total = 0
    for i in range(count):
        path = top / f"d{i % 7}" / f"f{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = f"file {i}\n" * (i % 5 + 1)
        path.write_text(text)
        total += len(text)
    return total


@pytest.mark.parametrize(
    ("link", "labels"),
    [
        # objects are copies: each new file is read once, hashed and cached in one task
        ("copy", ["Caching", "Restoring"]),
        # objects are links: hashing reads the files, caching links them
        ("hardlink", ["Hashing", "Caching", "Restoring"]),
    ],
)
def test_saving_and_restoring_a_folder_report_every_file(
    tmp_path: Path, recorder: Recorder, link: str, labels: list[str]
) -> None:
    total = make_folder(tmp_path / "data", 300)
    cache = Cache(tmp_path / ".dvc" / "cache", [link])
    with HashState(tmp_path) as state:
        info = cache.save(tmp_path / "data", state)
        (tmp_path / "data" / "d3").rename(tmp_path / "gone")  # files 3, 10, 17, ...: to restore
        cache.checkout(tmp_path / "data", info, state)
    by_label = {task.label: task for task in recorder.tasks}
    assert [t.label for t in recorder.tasks] == labels
    for label in labels[:-1]:
        task = by_label[label]
        assert (task.files, task.nbytes) == (300, total)
        assert (task.done_files, task.done_bytes) == (300, total)
    restoring = by_label["Restoring"]
    assert restoring.files == restoring.done_files == len(range(3, 300, 7))
    assert restoring.done_bytes == restoring.nbytes > 0
    assert recorder.closed == labels


def test_nothing_to_do_opens_no_task(tmp_path: Path, recorder: Recorder) -> None:
    make_folder(tmp_path / "data", 20)
    cache = Cache(tmp_path / ".dvc" / "cache", ["copy"])
    with HashState(tmp_path) as state:
        info = cache.save(tmp_path / "data", state)
        recorder.tasks.clear()
        cache.save(tmp_path / "data", state)  # unchanged: hashes come from the state DB
        cache.checkout(tmp_path / "data", info, state)  # the workspace matches
    assert [t.label for t in recorder.tasks] == ["Caching"]  # dedup pass, no hashing


def test_without_a_reporter_nothing_is_reported(tmp_path: Path) -> None:
    make_folder(tmp_path / "data", 10)
    with HashState(tmp_path) as state, progress.task("Hashing", 10, 100) as task:
        assert task is progress.QUIET
        Cache(tmp_path / "cache", ["copy"]).save(tmp_path / "data", state)
