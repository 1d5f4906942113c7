"""Jobs and the tasks they hold, as plain data that round-trips through job.json."""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from digits.status import Status, StatusHistory

# 2: a model's training settings are kept once, in its train task's arguments (1 also kept them in extra).
SCHEMA_VERSION = 2
# job type -> [(the version it upgrades from, a function upgrading a job.json dict by one version)]
_MIGRATIONS: dict[str, list[tuple[int, Callable[[dict], dict]]]] = {}


def register_migration(job_type: str, from_version: int, upgrade: Callable[[dict], dict]) -> None:
    """Let jobs of `job_type` written at `from_version` load: `upgrade` returns the job.json one version on.
    Wings register their own; a type without one for a version goes up unchanged."""
    _MIGRATIONS.setdefault(job_type, []).append((from_version, upgrade))


def migrate(d: dict) -> dict:
    """A job.json dict brought up to SCHEMA_VERSION; ValueError for a version from the future or none."""
    version = d.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= SCHEMA_VERSION:
        raise ValueError(f"schema_version {version!r} is not one this server reads (1 to {SCHEMA_VERSION})")
    steps = dict(_MIGRATIONS.get(d.get("type", ""), []))
    while version < SCHEMA_VERSION:
        if version in steps:
            d = steps[version](d)
        version += 1
        d["schema_version"] = version
    return d


JOB_ID_RE = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{4}$")


def new_job_id(now: float | None = None) -> str:
    """An id that sorts by creation time: YYYYMMDD-HHMMSS-xxxx.

    16 random bits a second can repeat: take ids through JobStore.reserve, which creates the job's folder
    exclusively and draws again on a clash, so two jobs never share (or clean up) one folder.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"{stamp}-{secrets.token_hex(2)}"


def is_job_id(text: str) -> bool:
    return bool(JOB_ID_RE.match(text or ""))


@dataclass(eq=False)  # identity: the scheduler tracks these objects
class Task:
    """One child process of a job: which worker kind runs, with what arguments, on which resources."""

    name: str
    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, int] = field(default_factory=lambda: {"cpu": 1})
    depends_on: list[str] = field(default_factory=list)
    history: StatusHistory = field(default_factory=StatusHistory)
    progress: float = 0.0
    epoch: float | None = None
    error: dict[str, Any] | None = None
    exit_code: int | None = None
    reserved: dict[str, Any] = field(default_factory=dict)
    snapshots: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> Status:
        return self.history.current

    @property
    def log_file(self) -> str:
        return f"{self.name}.log"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "args": self.args,
            "resources": self.resources,
            "depends_on": self.depends_on,
            "status": self.status.value,
            "history": self.history.to_list(),
            "progress": self.progress,
            "epoch": self.epoch,
            "error": self.error,
            "exit_code": self.exit_code,
            "reserved": self.reserved,
            "snapshots": self.snapshots,
            "log_file": self.log_file,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Task:
        return cls(
            name=d["name"],
            kind=d["kind"],
            args=dict(d.get("args") or {}),
            resources=dict(d.get("resources") or {"cpu": 1}),
            depends_on=list(d.get("depends_on") or []),
            history=StatusHistory.from_list(d.get("history") or []),
            progress=float(d.get("progress") or 0.0),
            epoch=d.get("epoch"),
            error=d.get("error"),
            exit_code=d.get("exit_code"),
            reserved=dict(d.get("reserved") or {}),
            snapshots=list(d.get("snapshots") or []),
        )


@dataclass(eq=False)
class Job:
    """A unit of work a person submits (a dataset or a model), stored as jobs/<id>/job.json."""

    id: str
    type: str
    category: str
    name: str
    owner: str | None = None
    group: str = ""
    notes: str = ""
    created: float = field(default_factory=time.time)
    form: dict[str, Any] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    history: StatusHistory = field(default_factory=StatusHistory)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        return self.history.current

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(f"job {self.id} has no task {name!r}")

    @property
    def progress(self) -> float:
        if not self.tasks:
            return 1.0 if self.status == Status.DONE else 0.0
        return sum(1.0 if t.status == Status.DONE else t.progress for t in self.tasks) / len(self.tasks)

    @property
    def started(self) -> float | None:
        return self.history.first_time(Status.RUNNING)

    def elapsed(self, now: float | None = None) -> float | None:
        """Seconds from the first Running to the end (or to now while running)."""
        start = self.started
        if start is None:
            return None
        end = self.history.changes[-1].time if self.status.is_final else (now or time.time())
        return max(0.0, end - start)

    def summary(self) -> dict:
        """What a job list shows: DIGITS' id/name/status and the console's columns."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status.value,
            "type": self.type,
            "owner": self.owner,
            "username": self.owner,
            "group": self.group,
            "submitted": self.created,
            "elapsed": self.elapsed(),
            "progress": round(self.progress, 4),
        }

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "id": self.id,
            "type": self.type,
            "category": self.category,
            "name": self.name,
            "owner": self.owner,
            "group": self.group,
            "notes": self.notes,
            "created": self.created,
            "status": self.status.value,
            "history": self.history.to_list(),
            "form": self.form,
            "depends_on": self.depends_on,
            "tasks": [t.to_dict() for t in self.tasks],
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Job:
        """A job from its job.json, upgraded from an older schema_version when it has one (migrate)."""
        d = migrate(dict(d))
        if not is_job_id(d.get("id", "")):
            raise ValueError(f"id {d.get('id')!r} is not a job id")
        return cls(
            id=d["id"],
            type=d["type"],
            category=d["category"],
            name=d["name"],
            owner=d.get("owner"),
            group=d.get("group") or "",
            notes=d.get("notes") or "",
            created=float(d["created"]),
            form=dict(d.get("form") or {}),
            tasks=[Task.from_dict(t) for t in d.get("tasks") or []],
            depends_on=list(d.get("depends_on") or []),
            history=StatusHistory.from_list(d.get("history") or []),
            extra=dict(d.get("extra") or {}),
        )

    def path(self, jobs_dir: str, *parts: str) -> str:
        return os.path.join(jobs_dir, self.id, *parts)
