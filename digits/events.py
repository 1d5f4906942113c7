"""An in-process event bus and the events it carries: the core publishes, listeners (Socket.IO, tests) subscribe.

Each event is a small frozen dataclass. Its `name` is the Socket.IO event the browser receives and its
`payload()` the JSON object that comes with it; pages and scripts depend on both, so they only ever grow.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from digits.job import Job
from digits.status import Status

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """What every event has: the job it is about (its Socket.IO room)."""

    name: ClassVar[str]
    job_id: str

    def payload(self) -> dict[str, Any]:
        return {"job_id": self.job_id}


@dataclass(frozen=True)
class JobAdded(Event):
    name: ClassVar[str] = "job_added"
    category: str
    summary: dict[str, Any]  # Job.summary(): what the job list shows

    @classmethod
    def of(cls, job: Job) -> JobAdded:
        return cls(job.id, job.category, job.summary())

    def payload(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "category": self.category, **self.summary}


@dataclass(frozen=True)
class JobDeleted(Event):
    name: ClassVar[str] = "job_deleted"


@dataclass(frozen=True)
class JobStatusChanged(Event):
    """A job's status changed; also sent, with the new name, when its owner edits it."""

    name: ClassVar[str] = "job_status"
    status: Status
    message: str
    progress: float
    time: float
    job_name: str | None = None  # set by an edit: the job's new name

    def payload(self) -> dict[str, Any]:
        out = {
            "job_id": self.job_id,
            "status": self.status.value,
            "message": self.message,
            "progress": round(self.progress, 4),
            "time": self.time,
        }
        if self.job_name is not None:
            out["name"] = self.job_name
        return out


@dataclass(frozen=True)
class TaskProgress(Event):
    name: ClassVar[str] = "task_progress"
    task: str
    progress: float
    epoch: float | None
    job_progress: float

    def payload(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "task": self.task,
            "progress": self.progress,
            "epoch": self.epoch,
            "job_progress": round(self.job_progress, 4),
        }


@dataclass(frozen=True)
class TaskStatusChanged(Event):
    """One task of a job changed status (a dataset's parse ends while its job stays Running)."""

    name: ClassVar[str] = "task_status"
    task: str
    status: Status
    progress: float

    def payload(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "task": self.task, "status": self.status.value, "progress": self.progress}


@dataclass(frozen=True)
class JobAborting(Event):
    """Someone asked a running job to stop; its workers are finishing their step and writing a snapshot."""

    name: ClassVar[str] = "job_aborting"


@dataclass(frozen=True)
class SnapshotWritten(Event):
    """A worker wrote a snapshot: `epoch` as reported, `label` as its file name and pages write it ("1.73")."""

    name: ClassVar[str] = "snapshot"
    task: str
    epoch: float
    label: str

    def payload(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "task": self.task, "epoch": self.epoch, "label": self.label}


@dataclass(frozen=True)
class MetricReported(Event):
    """One point of a chart: a metric or the learning rate a worker reported."""

    name: ClassVar[str] = "metric"
    task: str
    time: float
    phase: str
    metric: str  # the payload's "name": loss, accuracy, learning_rate...
    value: float
    epoch: float | None
    iteration: int | None

    def record(self) -> dict[str, Any]:
        """The line metrics.jsonl keeps (the payload without the job id)."""
        return {
            "task": self.task,
            "time": self.time,
            "phase": self.phase,
            "name": self.metric,
            "value": self.value,
            "epoch": self.epoch,
            "iteration": self.iteration,
        }

    def payload(self) -> dict[str, Any]:
        return {"job_id": self.job_id, **self.record()}


@dataclass(frozen=True)
class HardwareSampled(Event):
    """CPU and memory of a running task's process tree, and its reserved GPUs' readings."""

    name: ClassVar[str] = "hardware"
    task: str
    time: float
    cpu_percent: float
    memory_bytes: int
    gpus: list[dict[str, Any]] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "task": self.task,
            "time": self.time,
            "cpu_percent": self.cpu_percent,
            "memory_bytes": self.memory_bytes,
            "gpus": self.gpus,
        }


@dataclass(frozen=True)
class InferenceProgress(Event):
    """How far a long classification request of a model has got."""

    name: ClassVar[str] = "inference_progress"
    done: Any
    total: Any

    def payload(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "done": self.done, "total": self.total}


# (name, payload): what Socket.IO sends, and what most listeners want.
Listener = Callable[[str, dict[str, Any]], None]
EventListener = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._listeners: list[tuple[Callable, bool]] = []  # (listener, wants the event object), in order
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(name, payload)` for every event; returns a function that removes it."""
        return self._add((listener, False))

    def subscribe_events(self, listener: EventListener) -> Callable[[], None]:
        """Call `listener(event)` with every event object; returns a function that removes it."""
        return self._add((listener, True))

    def _add(self, entry: tuple[Callable, bool]) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._listeners:
                    self._listeners.remove(entry)

        return unsubscribe

    def publish(self, event: Event) -> None:
        with self._lock:
            listeners = list(self._listeners)
        payload = None  # one dict for every (name, payload) listener, built only if there is one
        for listener, typed in listeners:
            try:
                if typed:
                    listener(event)
                else:
                    payload = event.payload() if payload is None else payload
                    listener(event.name, payload)
            except Exception:  # noqa: BLE001 - one broken listener must not stop a job
                log.exception("event listener failed on %s", event.name)
