"""Typed events: each one's Socket.IO name and payload are what pages and scripts already receive."""

import json

import pytest

from digits.events import (
    Event,
    EventBus,
    HardwareSampled,
    InferenceProgress,
    JobAdded,
    JobDeleted,
    JobStatusChanged,
    MetricReported,
    TaskProgress,
)
from digits.status import Status
from tests.support.fakejobs import fake_job
from tests.support.waiting import EventRecorder

JOB_ID = "20260101-000000-abcd"


def test_job_added_carries_the_job_list_row():
    job = fake_job(name="cats", category="model")
    event = JobAdded.of(job)
    assert event.name == "job_added"
    assert event.payload() == {"job_id": job.id, "category": "model", **job.summary()}


@pytest.mark.parametrize(
    "event, name, payload",
    [
        (JobDeleted(JOB_ID), "job_deleted", {"job_id": JOB_ID}),
        (
            JobStatusChanged(JOB_ID, Status.RUNNING, "", 0.123456, 1700000000.5),
            "job_status",
            {"job_id": JOB_ID, "status": "Running", "message": "", "progress": 0.1235, "time": 1700000000.5},
        ),
        (
            JobStatusChanged(JOB_ID, Status.DONE, "edited", 1.0, 1700000001.0, job_name="renamed"),
            "job_status",
            {
                "job_id": JOB_ID,
                "status": "Done",
                "message": "edited",
                "progress": 1.0,
                "time": 1700000001.0,
                "name": "renamed",
            },
        ),
        (
            TaskProgress(JOB_ID, "train", 0.5, 2.0, 0.333333),
            "task_progress",
            {"job_id": JOB_ID, "task": "train", "progress": 0.5, "epoch": 2.0, "job_progress": 0.3333},
        ),
        (
            MetricReported(JOB_ID, "train", 1700000002.0, "val", "accuracy", 0.75, 1.0, 30),
            "metric",
            {
                "job_id": JOB_ID,
                "task": "train",
                "time": 1700000002.0,
                "phase": "val",
                "name": "accuracy",
                "value": 0.75,
                "epoch": 1.0,
                "iteration": 30,
            },
        ),
        (
            HardwareSampled(JOB_ID, "train", 1700000003.0, 97.5, 1 << 30, [{"index": 0, "utilization": 80}]),
            "hardware",
            {
                "job_id": JOB_ID,
                "task": "train",
                "time": 1700000003.0,
                "cpu_percent": 97.5,
                "memory_bytes": 1 << 30,
                "gpus": [{"index": 0, "utilization": 80}],
            },
        ),
        (
            InferenceProgress(JOB_ID, 2, 5),
            "inference_progress",
            {"job_id": JOB_ID, "done": 2, "total": 5},
        ),
    ],
)
def test_each_event_has_its_socketio_name_and_payload(event, name, payload):
    assert event.name == name
    assert event.payload() == payload
    assert list(event.payload()) == list(payload)  # the same keys in the same order as before
    assert json.loads(json.dumps(event.payload())) == payload  # plain JSON, as Socket.IO sends it


def test_a_metric_point_is_stored_as_its_payload_without_the_job_id():
    point = MetricReported(JOB_ID, "train", 1.0, "train", "loss", 0.5, None, 7)
    assert point.record() == {k: v for k, v in point.payload().items() if k != "job_id"}


def test_events_cannot_be_changed_once_made():
    event = TaskProgress(JOB_ID, "train", 0.5, None, 0.5)
    with pytest.raises(AttributeError):
        event.progress = 0.9


def test_listeners_get_name_and_payload_or_the_event_in_the_order_they_subscribed():
    bus = EventBus()
    calls = []
    bus.subscribe(lambda name, payload: calls.append(("plain", name, payload)))
    bus.subscribe_events(lambda event: calls.append(("typed", event)))
    event = JobDeleted(JOB_ID)
    bus.publish(event)
    assert calls == [("plain", "job_deleted", {"job_id": JOB_ID}), ("typed", event)]


def test_a_failing_listener_does_not_stop_the_others_and_unsubscribe_stops_one():
    bus = EventBus()
    seen: list[Event] = []

    def broken(name, payload):
        raise RuntimeError("listener bug")

    bus.subscribe(broken)
    stop = bus.subscribe_events(seen.append)
    bus.publish(JobDeleted(JOB_ID))
    stop()
    bus.publish(JobDeleted(JOB_ID))
    assert seen == [JobDeleted(JOB_ID)]


def test_a_job_run_publishes_todays_payloads(workspace, recorder):
    """Through the real scheduler and a worker: every key a page or script reads is still there."""
    typed = EventRecorder()
    workspace.bus.subscribe_events(lambda event: typed(event.name, event))
    job = fake_job(tasks=[{"steps": 2}])
    workspace.add_job(job)
    assert recorder.wait_status(job.id) == "Done"
    keys = {}
    for name, payload in recorder.events:
        assert payload["job_id"] == job.id
        keys.setdefault(name, set(payload))
    assert keys["job_added"] == {"job_id", "category", *job.summary()}
    assert keys["job_status"] == {"job_id", "status", "message", "progress", "time"}
    assert keys["task_progress"] == {"job_id", "task", "progress", "epoch", "job_progress"}
    assert keys["metric"] == {"job_id", "task", "time", "phase", "name", "value", "epoch", "iteration"}
    # The typed listener saw the same events, as objects whose payloads are what the plain listener got.
    statuses = [e for n, e in typed.events if isinstance(e, JobStatusChanged)]
    assert [e.status for e in statuses] == [Status.WAITING, Status.RUNNING, Status.DONE]
    assert all(isinstance(e.status, Status) for e in statuses)
    ours = [(n, e.payload()) for n, e in typed.events if n != "job_added"]
    assert ours == [(n, p) for n, p in recorder.events if n != "job_added"]
