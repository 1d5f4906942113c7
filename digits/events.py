"""An in-process event bus: jobs and the scheduler publish, listeners (Socket.IO, tests) subscribe."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Listener = Callable[[str, dict[str, Any]], None]

# The events the server publishes; each payload carries "job_id".
JOB_ADDED = "job_added"
JOB_DELETED = "job_deleted"
JOB_STATUS = "job_status"
TASK_PROGRESS = "task_progress"
METRIC = "metric"


class EventBus:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add a listener; returns a function that removes it."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def publish(self, event: str, payload: dict[str, Any]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event, payload)
            except Exception:  # noqa: BLE001 - one broken listener must not stop a job
                log.exception("event listener failed on %s", event)
