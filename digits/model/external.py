"""External runs: a training DIGITS did not start (a script, a Caffe log) reporting its metrics over REST.

A run is a model-category job (so the console, the charts and the comparison treat it as a model) whose one task,
`run`, is never scheduled: the script is its worker. Points arrive in batches; each batch is checked, appended to
metrics.jsonl in one write and published as one `metrics` event, so 10,000 points a second cost the event loop
a handful of small events. A run whose script stops calling (log or heartbeat) for `run_heartbeat_s` is marked
Error by one periodic check of the server (HeartbeatMonitor), not a thread per run. Torch-free, Flask-free.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from digits.errors import ApiError, Conflict
from digits.events import Event, JobAdded, JobStatusChanged, TaskProgress, TaskStatusChanged
from digits.job import Job, Task
from digits.offload import off_loop
from digits.status import Status
from digits.store import METRICS_FILE
from digits.task_kinds import register_outside_task_kind

EXTERNAL_TYPE = "external-run"
RUN_TASK = "run"
RUN_KIND = "model.external"  # never scheduled: no worker module runs it
MAX_POINTS = 200_000  # points one request may carry
MAX_NAME = 100
# A server restart leaves a run Running: its script trains on, its client keeps the points it could not send and
# sends them once the server answers again; a script that died meanwhile is marked Error by the heartbeat check.
register_outside_task_kind(RUN_KIND)
# Names that say where a point sits, not what was measured.
PLACE = ("epoch", "step", "iteration", "phase", "time")
PHASES = ("train", "val")
# What the charts call the learning rate.
ALIASES = {"lr": "learning_rate"}


@dataclass(frozen=True)
class MetricsReported(Event):
    """A batch of points of one run, for its page's charts: [[phase, name, epoch, value, iteration], ...]."""

    name: ClassVar[str] = "metrics"
    task: str
    points: list

    def payload(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "task": self.task, "points": self.points}


def is_run(job: Job | None) -> bool:
    return job is not None and job.type == EXTERNAL_TYPE


def build_run(job_id: str, owner: str, name: str, notes: str, settings: dict, epochs: float | None) -> Job:
    """A new run, Running from the start (its script is already training)."""
    task = Task(name=RUN_TASK, kind=RUN_KIND, resources={})
    job = Job(
        id=job_id,
        type=EXTERNAL_TYPE,
        category="model",
        name=name,
        owner=owner,
        notes=notes,
        tasks=[task],
        extra={"external": {"settings": settings, "epochs": epochs, "x": None}},
    )
    task.history.set(Status.RUNNING, "reported by a script")
    job.history.set(Status.RUNNING, "reported by a script")
    return job


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


class PointsRefused(ApiError):
    """A batch with a point that cannot be charted: nothing of it was kept."""


def decode_points(body: bytes) -> list:
    """The points of a request body: one JSON object, a JSON list of them, or JSON lines."""
    text = body.strip()
    if not text:
        raise PointsRefused("the body holds no points: send a JSON object, a list of them, or JSON lines")
    try:
        data = json.loads(text)
    except ValueError:
        try:  # JSON lines: one parse for the whole batch
            data = json.loads(b"[" + b",".join(line for line in text.split(b"\n") if line.strip()) + b"]")
        except ValueError as e:
            raise PointsRefused(f"the body is not JSON, a JSON list or JSON lines ({e})") from None
    points = data if isinstance(data, list) else [data]
    if len(points) > MAX_POINTS:
        raise PointsRefused(f"{len(points):,} points in one request; send at most {MAX_POINTS:,} at a time")
    return points


def _split(key: Any, where: str) -> tuple[str | None, str]:
    """A metric's key as (the phase its prefix names, or None for the point's own; the charts' name)."""
    if not isinstance(key, str) or not key or len(key) > MAX_NAME:
        raise PointsRefused(f"{where}: a metric name must be 1 to {MAX_NAME} characters")
    phase, name = None, key
    for prefix in PHASES:
        if key.startswith(prefix + "_") and len(key) > len(prefix) + 1:
            phase, name = prefix, key[len(prefix) + 1 :]
    return phase, ALIASES.get(name, name)


def to_records(points: list, x_kind: str | None, now: float) -> tuple[list[dict], str | None, float | None]:
    """metrics.jsonl lines for `points` (each {epoch and/or step, phase?, name: value, ...}), the run's x (epoch, or
    step when its points carry none), and the last epoch. PointsRefused names the first bad point and field.
    The loop of an ingest of thousands of points a second: each key is checked and split once a batch."""
    records: list[dict] = []
    keys: dict[Any, tuple[str | None, str] | None] = {k: None for k in PLACE}  # None: a place, not a metric
    last = None
    for i, p in enumerate(points):
        if not isinstance(p, dict):
            raise PointsRefused(f'point {i + 1}: expected an object like {{"epoch": 1, "loss": 0.5}}')
        epoch, step = p.get("epoch"), p.get("step", p.get("iteration"))
        for key, value in (("epoch", epoch), ("step", step)):
            if value is not None and not (_number(value) and _finite(value)):
                raise PointsRefused(f"point {i + 1}: {key} must be a number, got {value!r}")
        if epoch is None and step is None:
            raise PointsRefused(f"point {i + 1}: give its epoch or its step")
        kind = "epoch" if epoch is not None else "step"
        if x_kind is None:
            x_kind = kind
        elif kind != x_kind and x_kind == "epoch":
            raise PointsRefused(f"point {i + 1}: this run's points are charted by epoch: give its epoch too")
        x = float(epoch if x_kind == "epoch" else step)
        iteration = int(step) if step is not None else None
        phase = p.get("phase", "train")
        if phase not in PHASES:
            raise PointsRefused(f"point {i + 1}: phase must be train or val, got {phase!r}")
        before = len(records)
        for key, value in p.items():
            try:
                split = keys[key]
            except KeyError:
                split = keys[key] = _split(key, f"point {i + 1}")
            except TypeError:  # an unhashable key cannot come from JSON; kept for callers with other data
                split = _split(key, f"point {i + 1}")
            if split is None:
                continue
            if value is None:
                kept = None
            elif _number(value):
                kept = float(value) if _finite(value) else None
            else:
                raise PointsRefused(f"point {i + 1}: {key} must be a number, got {value!r}")
            records.append(
                {
                    "task": RUN_TASK,
                    "time": now,
                    "phase": split[0] or phase,
                    "name": split[1],
                    "value": kept,
                    "epoch": x,
                    "iteration": iteration,
                }
            )
        if len(records) == before:
            raise PointsRefused(f"point {i + 1}: it names no metric (say loss, accuracy or lr)")
        if epoch is not None:
            last = float(epoch)
    return records, x_kind, last


def _lines(records: list[dict]) -> bytes:
    """The records as metrics.jsonl lines, byte for byte what json.dumps writes (float and int reprs are JSON's),
    each series' fixed part encoded once: a json.dumps per record was most of an ingest's time."""
    heads: dict[tuple[str, str, str], tuple[str, str]] = {}
    out = []
    for r in records:
        key = (r["task"], r["phase"], r["name"])
        head = heads.get(key)
        if head is None:
            task, phase, name = (json.dumps(k) for k in key)
            head = heads[key] = ('{"task": ' + task + ', "time": ', f', "phase": {phase}, "name": {name}, "value": ')
        value, iteration = r["value"], r["iteration"]
        out.append(
            f"{head[0]}{r['time']!r}{head[1]}{'null' if value is None else repr(value)}, "
            f'"epoch": {r["epoch"]!r}, "iteration": {"null" if iteration is None else repr(iteration)}}}\n'
        )
    return "".join(out).encode()


def ingest(path: str, body: bytes, x_kind: str | None, now: float) -> tuple[int, str | None, float | None, list]:
    """A log request's work, done off the event loop: the body's points checked, appended to metrics.jsonl in one
    write; (values kept, the run's x, the last epoch, the event's points [[phase, name, x, value, iteration]])."""
    records, x_kind, last = to_records(decode_points(body), x_kind, now)
    with open(path, "ab") as fh:
        fh.write(_lines(records))
    return (
        len(records),
        x_kind,
        last,
        [[r["phase"], r["name"], r["epoch"], r["value"], r["iteration"]] for r in records],
    )


class Runs:
    """The runs of one workspace: points in, statuses out, and the heartbeat check."""

    def __init__(self, workspace, heartbeat_s: float):
        self.ws = workspace
        self.heartbeat_s = heartbeat_s
        self.seen: dict[str, float] = {}  # run id -> when its script last called
        self._lock = threading.Lock()
        self._checker: threading.Thread | None = None
        if any(self._open_runs()):  # runs the server restarted with: quiet ones end after heartbeat_s from now
            self._ensure_checker()

    @property
    def check_every_s(self) -> float:
        return max(0.05, min(5.0, self.heartbeat_s / 4))

    def add(self, job: Job) -> None:
        self.ws.store.add(job)
        self.seen[job.id] = time.time()
        self.ws.bus.publish(JobAdded.of(job))
        self._ensure_checker()

    def _open(self, job: Job) -> None:
        if job.status.is_final:
            raise Conflict(f"run {job.id} has ended ({job.status.value}): start a new run to log more")

    def beat(self, job: Job) -> None:
        self._open(job)
        self.seen[job.id] = time.time()
        self._ensure_checker()  # a run the server restarted with has no check yet

    def log(self, job: Job, body: bytes) -> int:
        """Check and keep a batch of points; how many metric values it held."""
        self._open(job)
        ext = job.extra["external"]
        path = os.path.join(self.ws.store.job_dir(job.id), METRICS_FILE)
        count, x_kind, last, events = off_loop(ingest, path, body, ext.get("x"), time.time())
        self.seen[job.id] = time.time()
        if ext.get("x") != x_kind:
            ext["x"] = x_kind
            self.ws.store.save(job)
        self.ws.bus.publish(MetricsReported(job.id, RUN_TASK, events))
        task = job.tasks[0]
        if last is not None and last != task.epoch:
            task.epoch = last
            epochs = ext.get("epochs")
            if epochs:
                task.progress = min(1.0, max(0.0, last / epochs))
            self.ws.bus.publish(TaskProgress(job.id, RUN_TASK, task.progress, last, job.progress))
        return count

    def finish(self, job: Job, error: str | None) -> None:
        """The script says it ended: Done, or Error with its message."""
        self._open(job)
        if error:
            self.end(job, Status.ERROR, error)
        else:
            self.end(job, Status.DONE, "the script finished")

    def end(self, job: Job, status: Status, message: str) -> bool:
        """Give a run its final status (once: False when it had ended already)."""
        with self._lock:
            if job.status.is_final:
                return False
            task = job.tasks[0]
            if status == Status.DONE:
                task.progress = 1.0
            elif status == Status.ERROR:
                task.error = {"message": message, "traceback": None, "log_tail": []}
            task.history.set(status, message)
            job.history.set(status, message)
            self.seen.pop(job.id, None)
        self.ws.store.save(job)
        self.ws.bus.publish(TaskStatusChanged(job.id, RUN_TASK, status, task.progress))
        change = job.history.changes[-1]
        self.ws.bus.publish(JobStatusChanged(job.id, status, message, job.progress, change.time))
        return True

    # ---- the heartbeat check: one loop for every run, alive only while a run is open ----
    def _ensure_checker(self) -> None:
        with self._lock:
            if self._checker is not None and self._checker.is_alive():
                return
            self._checker = threading.Thread(target=self._check_loop, daemon=True, name="run-heartbeats")
            self._checker.start()

    def _check_loop(self) -> None:
        while True:
            time.sleep(self.check_every_s)
            if self.ws.scheduler is None or self.ws.scheduler.stopping:  # the server closed
                return
            if not self.check():
                with self._lock:
                    if not any(self._open_runs()):
                        self._checker = None
                        return

    def _open_runs(self):
        return (j for j in self.ws.store.all() if is_run(j) and not j.status.is_final)

    def check(self, now: float | None = None) -> bool:
        """Mark Error each open run not heard from for heartbeat_s; whether any run is still open."""
        now = time.time() if now is None else now
        still_open = False
        for job in list(self._open_runs()):
            seen = self.seen.setdefault(job.id, now)
            if now - seen > self.heartbeat_s:
                at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seen))
                self.end(job, Status.ERROR, f"no heartbeat since {at} ({self.heartbeat_s:g} s without a call)")
            else:
                still_open = True
        return still_open
