"""Waiting for events and states with deadlines, never for a fixed time.

A deadline is not a duration: a passing test never waits one out. They are sized for a machine that runs a
second copy of the suite beside this one, where every step (a process start, an import of torch, an epoch) takes
several times as long as on a quiet machine. A test that needs more names its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

# Requests, fake jobs, server starts, socket connections, page loads: anything without a real worker's job.
SHORT_S = 120.0
# Real workers: datasets built, networks trained, inference workers importing torch, a browser following them.
LONG_S = 600.0
# Playwright counts in milliseconds.
SHORT_MS = int(SHORT_S * 1000)
LONG_MS = int(LONG_S * 1000)

FINAL = ("Done", "Error", "Aborted")


def wait_until(predicate: Callable[[], Any], timeout: float = SHORT_S, what: str = "the condition", interval=0.05):
    """Poll `predicate` until it returns something true (returned); AssertionError naming `what` after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:g} s"
        time.sleep(interval)


class EventRecorder:
    """Collects bus events so a test can wait for one instead of sleeping."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []
        self._cond = threading.Condition()

    def __call__(self, event: str, payload: dict) -> None:
        with self._cond:
            self.events.append((event, payload))
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float = SHORT_S) -> tuple[str, dict]:
        def found():
            return next(((e, p) for e, p in self.events if predicate(e, p)), None)

        with self._cond:
            assert self._cond.wait_for(lambda: found() is not None, timeout), f"no such event in {self.events}"
            return found()

    def wait_status(self, job_id: str, statuses=FINAL, timeout: float = SHORT_S) -> str:
        event = self.wait_for(
            lambda e, p: e == "job_status" and p["job_id"] == job_id and p["status"] in statuses, timeout
        )
        return event[1]["status"]


def record(workspace) -> EventRecorder:
    """A recorder subscribed to the workspace's bus (recorder.unsubscribe() ends that)."""
    recorder = EventRecorder()
    recorder.unsubscribe = workspace.bus.subscribe(recorder)
    return recorder
