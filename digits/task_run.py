"""One running task: its worker process, and what the worker reports, handled for this task alone.

Every message of a worker arrives on the thread that reads its stdout. The run updates its own task, appends
to its job's metrics.jsonl and publishes events without the scheduler's lock, so one job's file writes never
hold up another job's messages, nor the queue. What the run learns about how the worker ended (its `done`
status, its error) is read by the scheduler once the process has exited, on that same thread.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable

from digits import protocol
from digits.events import EventBus, MetricReported, SnapshotWritten, TaskProgress
from digits.folders.model import epoch_label, label_of
from digits.job import Job, Task
from digits.runner import TaskProcess
from digits.status import Status
from digits.store import METRICS_FILE, JobStore

log = logging.getLogger(__name__)
PROGRESS_SAVE_INTERVAL_S = 1.0  # job.json is written at most this often for progress alone


class TaskRun:
    """The scheduler's record of a started task, and the handler of its worker's protocol messages."""

    def __init__(self, job: Job, task: Task, store: JobStore, bus: EventBus, grant: dict, tmp: str | None = None):
        self.job = job
        self.task = task
        self.store = store
        self.bus = bus
        self.grant = grant
        self.tmp = tmp  # the worker's private temporary folder, removed when it ends
        self.process: TaskProcess | None = None
        self.thread: threading.Thread | None = None
        self.aborting = False  # set by the scheduler, under its lock
        self.done_status: Status | None = None
        self.error: protocol.Error | None = None
        self.last_save = 0.0
        self._handlers: dict[type, Callable] = {
            protocol.Progress: self._progress,
            protocol.Metric: self._metric,
            protocol.LearningRate: self._learning_rate,
            protocol.Snapshot: self._snapshot,
            protocol.Error: self._error,
            protocol.Done: self._done,
        }

    @property
    def key(self) -> tuple[str, str]:
        return self.job.id, self.task.name

    @property
    def pid(self) -> int | None:
        return self.process.proc.pid if self.process is not None and self.process.proc else None

    def handle(self, msg: protocol.Message) -> None:
        """Take one message of the worker (a Log has already gone to the task's log)."""
        handler = self._handlers.get(type(msg))
        if handler is not None:
            handler(msg)

    def _progress(self, msg: protocol.Progress) -> None:
        task = self.task
        task.progress = msg.fraction
        task.epoch = msg.epoch
        now = time.time()
        if now - self.last_save >= PROGRESS_SAVE_INTERVAL_S:
            self.last_save = now
            self.store.save(self.job)
        self.bus.publish(TaskProgress(self.job.id, task.name, msg.fraction, msg.epoch, self.job.progress))

    def _metric(self, msg: protocol.Metric) -> None:
        point = MetricReported(
            self.job.id, self.task.name, time.time(), msg.phase, msg.name, msg.value, msg.epoch, msg.iteration
        )
        self._record(point)

    def _learning_rate(self, msg: protocol.LearningRate) -> None:
        self._record(
            MetricReported(
                self.job.id, self.task.name, time.time(), "train", "learning_rate", msg.value, msg.epoch, None
            )
        )

    def _record(self, point: MetricReported) -> None:
        with open(os.path.join(self.store.job_dir(self.job.id), METRICS_FILE), "a") as fh:
            fh.write(json.dumps(point.record()) + "\n")
        self.bus.publish(point)

    def _snapshot(self, msg: protocol.Snapshot) -> None:
        # A worker may run a member's code: it names a file of its own folder, or nothing is recorded.
        if os.path.basename(msg.path) != msg.path or msg.path.startswith(".") or "\x00" in msg.path:
            log.warning("job %s: ignoring a snapshot outside the job folder: %.200r", self.job.id, msg.path)
            return
        # One new list, assigned once: a job.json being written meanwhile sees the old list or the new one.
        kept = [s for s in self.task.snapshots if s["epoch"] != msg.epoch]
        self.task.snapshots = [*kept, {"epoch": msg.epoch, "path": msg.path}]
        self.store.save(self.job)
        label = label_of(msg.path) or epoch_label(msg.epoch)
        self.bus.publish(SnapshotWritten(self.job.id, self.task.name, msg.epoch, label))

    def _error(self, msg: protocol.Error) -> None:
        self.error = msg

    def _done(self, msg: protocol.Done) -> None:
        self.done_status = msg.status
