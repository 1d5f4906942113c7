"""The status of a job or task, and its timestamped history."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    INITIALIZED = "Initialized"
    WAITING = "Waiting"
    RUNNING = "Running"
    DONE = "Done"
    ABORTED = "Aborted"
    ERROR = "Error"

    @property
    def is_final(self) -> bool:
        return self in (Status.DONE, Status.ABORTED, Status.ERROR)

    @property
    def is_active(self) -> bool:
        return self in (Status.WAITING, Status.RUNNING)


@dataclass
class StatusChange:
    status: Status
    time: float
    message: str = ""

    def to_dict(self) -> dict:
        out = {"status": self.status.value, "time": self.time}
        if self.message:
            out["message"] = self.message
        return out

    @classmethod
    def from_dict(cls, d: dict) -> StatusChange:
        return cls(Status(d["status"]), float(d["time"]), d.get("message", ""))


@dataclass
class StatusHistory:
    """Every status a job or task has had, oldest first; the last one is the current status."""

    changes: list[StatusChange] = field(default_factory=lambda: [StatusChange(Status.INITIALIZED, time.time())])

    @property
    def current(self) -> Status:
        return self.changes[-1].status

    def set(self, status: Status, message: str = "", at: float | None = None) -> bool:
        """Record a new status; returns False (and records nothing) when it is already the current one."""
        if status == self.current and not message:
            return False
        self.changes.append(StatusChange(status, time.time() if at is None else at, message))
        return True

    def first_time(self, status: Status) -> float | None:
        return next((c.time for c in self.changes if c.status == status), None)

    def last_time(self, status: Status) -> float | None:
        return next((c.time for c in reversed(self.changes) if c.status == status), None)

    def to_list(self) -> list[dict]:
        return [c.to_dict() for c in self.changes]

    @classmethod
    def from_list(cls, items: list[dict]) -> StatusHistory:
        changes = [StatusChange.from_dict(d) for d in items]
        return cls(changes) if changes else cls()
