"""A task run handles its own worker's messages: task state, metrics.jsonl, job.json and events, per task."""

import json
import os
import threading
from pathlib import Path

import pytest

from digits import protocol, task_run
from digits.events import EventBus, MetricReported, SnapshotWritten, TaskProgress
from digits.status import Status
from digits.store import JobStore
from digits.task_run import TaskRun
from tests.support.fakejobs import fake_job
from tests.support.waiting import SHORT_S


@pytest.fixture
def run(tmp_path):
    store = JobStore(str(tmp_path / "jobs"))
    job = fake_job(tasks=[{}, {}])
    store.add(job)
    bus = EventBus()
    run = TaskRun(job, job.tasks[0], store, bus, grant={"cpu": 1, "gpu": []})
    run.events = []
    bus.subscribe_events(run.events.append)
    return run


def feed(run: TaskRun, *lines: str) -> None:
    """Hand the run what a worker printed, decoded as the runner decodes it."""
    for line in lines:
        msg = protocol.decode(line)
        assert msg is not None, line
        run.handle(msg)


def on_disk(run: TaskRun) -> dict:
    return json.loads((Path(run.store.job_dir(run.job.id)) / "job.json").read_text())


def test_messages_update_the_task_append_metrics_and_publish_typed_events(run):
    feed(
        run,
        '{"type": "progress", "fraction": 0.5, "epoch": 1}',
        '{"type": "metric", "phase": "val", "name": "accuracy", "value": 0.75, "epoch": 1, "iteration": 4}',
        '{"type": "lr", "value": 0.01, "epoch": 1}',
        '{"type": "log", "level": "info", "message": "the runner logs these"}',
        '{"type": "snapshot", "epoch": 1, "path": "snapshot_epoch_1.pt"}',
    )
    task = run.task
    assert (task.progress, task.epoch) == (0.5, 1)
    assert task.snapshots == [{"epoch": 1, "path": "snapshot_epoch_1.pt"}]
    assert on_disk(run)["tasks"][0]["snapshots"] == task.snapshots  # a snapshot is saved at once
    assert [type(e) for e in run.events] == [TaskProgress, MetricReported, MetricReported, SnapshotWritten]
    assert run.events[3].payload() == {"job_id": run.job.id, "task": "step0", "epoch": 1, "label": "1"}
    assert run.events[0].payload() == {
        "job_id": run.job.id,
        "task": "step0",
        "progress": 0.5,
        "epoch": 1,
        "job_progress": 0.25,  # half of one task out of two
    }
    lines = (Path(run.store.job_dir(run.job.id)) / "metrics.jsonl").read_text().splitlines()
    stored = [json.loads(line) for line in lines]
    assert stored == [e.record() for e in run.events[1:3]]
    assert [(m["phase"], m["name"], m["value"], m["iteration"]) for m in stored] == [
        ("val", "accuracy", 0.75, 4),
        ("train", "learning_rate", 0.01, None),
    ]


def test_a_later_snapshot_of_the_same_epoch_replaces_the_earlier(run):
    feed(
        run,
        '{"type": "snapshot", "epoch": 1, "path": "a.pt"}',
        '{"type": "snapshot", "epoch": 2, "path": "b.pt"}',
        '{"type": "snapshot", "epoch": 1, "path": "c.pt"}',
    )
    assert run.task.snapshots == [{"epoch": 2, "path": "b.pt"}, {"epoch": 1, "path": "c.pt"}]


@pytest.mark.parametrize("path", ["../other/snapshot.pt", "/etc/passwd", "sub/snapshot.pt", ".hidden.pt", "a\x00b"])
def test_a_snapshot_naming_anything_but_a_file_of_the_job_folder_is_ignored(run, path):
    feed(run, protocol.encode(protocol.Snapshot(3, path)))
    assert run.task.snapshots == []
    assert on_disk(run)["tasks"][0]["snapshots"] == []


def test_progress_is_saved_to_job_json_at_most_once_per_interval(run, monkeypatch):
    monkeypatch.setattr(task_run, "PROGRESS_SAVE_INTERVAL_S", 3600.0)  # no second save within this test
    feed(run, '{"type": "progress", "fraction": 0.25}')
    assert on_disk(run)["tasks"][0]["progress"] == 0.25
    feed(run, '{"type": "progress", "fraction": 0.5}', '{"type": "progress", "fraction": 0.75}')
    assert on_disk(run)["tasks"][0]["progress"] == 0.25
    assert [e.progress for e in run.events] == [0.25, 0.5, 0.75]  # every one is published


@pytest.mark.parametrize("wire, status", [("Done", Status.DONE), ("Aborted", Status.ABORTED)])
def test_done_is_a_status_from_the_moment_it_arrives(run, wire, status):
    feed(run, json.dumps({"type": "done", "status": wire}))
    assert run.done_status is status


def test_an_error_is_kept_for_the_scheduler(run):
    feed(run, '{"type": "error", "message": "out of memory", "traceback": "Traceback ..."}')
    assert run.error == protocol.Error("out of memory", "Traceback ...")
    assert run.events == []


def _read_fifo(path: Path, into: list) -> None:
    with open(path) as fh:
        into.append(fh.read())


def test_a_job_stuck_writing_its_metrics_does_not_hold_up_another_job(tmp_path, workspace, recorder):
    """Job a's metrics.jsonl is a pipe nobody reads, so its run blocks opening it; job b still runs to Done."""
    gate_a, gate_b = tmp_path / "gate-a", tmp_path / "gate-b"
    a = fake_job(name="a", tasks=[{"steps": 2, "gate": str(gate_a)}])
    b = fake_job(name="b", tasks=[{"steps": 2, "gate": str(gate_b)}])
    workspace.add_job(a)
    workspace.add_job(b)  # two cpu slots: both start, each held at its gate
    metrics = Path(workspace.store.job_dir(a.id)) / "metrics.jsonl"
    os.mkfifo(metrics)
    gate_a.touch()
    # a's progress comes first; its metric follows and its run then waits for a reader of the pipe.
    recorder.wait_for(lambda e, p: e == "task_progress" and p["job_id"] == a.id)
    gate_b.touch()
    held, read = metrics.with_name("held-metrics"), []
    try:
        b_status = recorder.wait_status(b.id)
    finally:
        # Let a go: its blocked open gets a reader; its next points go to a new, ordinary metrics.jsonl.
        os.rename(metrics, held)
        reader = threading.Thread(target=_read_fifo, args=(held, read), daemon=True)
        reader.start()
        reader.join(SHORT_S)
    assert b_status == "Done"
    assert recorder.wait_status(a.id) == "Done"
    events = [(e, p["job_id"], p.get("status")) for e, p in recorder.events]
    assert events.index(("job_status", b.id, "Done")) < events.index(("metric", a.id, None))
    points = [json.loads(line) for line in [*read[0].splitlines(), *metrics.read_text().splitlines()]]
    assert [(p["name"], p["value"]) for p in points] == [
        ("loss", 1.0),
        ("learning_rate", 0.01),
        ("loss", 0.5),
        ("learning_rate", 0.01),
    ]
