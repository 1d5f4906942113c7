"""The one place events become Socket.IO emits: namespace /jobs, a room per job id and the console's 'home'."""

from __future__ import annotations

from typing import Any

from flask_socketio import Namespace, SocketIO, emit, join_room, leave_room

from digits import events
from digits.events import EventBus
from digits.job import is_job_id

NAMESPACE = "/jobs"
HOME = "home"
# What the console follows; per-point metrics go to the job's own room only.
HOME_EVENTS = {events.JOB_ADDED, events.JOB_DELETED, events.JOB_STATUS, events.TASK_PROGRESS}


def _room(data: Any) -> str | None:
    room = data.get("room") if isinstance(data, dict) else data
    if isinstance(room, str) and (room == HOME or is_job_id(room)):
        return room
    return None


class JobsNamespace(Namespace):
    def on_connect(self, auth: Any = None) -> bool:
        """A team server (--auth password) streams only to signed-in users (session cookie or bearer token)."""
        from flask import current_app
        from flask_login import current_user

        if current_app.config["DIGITS_SETTINGS"].auth == "password":
            return bool(current_user.is_authenticated)
        return True

    def on_join(self, data: Any) -> None:
        room = _room(data)
        if room is None:
            emit("error", {"message": 'join needs {"room": "home" or a job id}'})
            return
        join_room(room)
        emit("joined", {"room": room})

    def on_leave(self, data: Any) -> None:
        room = _room(data)
        if room is not None:
            leave_room(room)


def init_app(socketio: SocketIO, bus: EventBus) -> None:
    socketio.on_namespace(JobsNamespace(NAMESPACE))

    def forward(event: str, payload: dict[str, Any]) -> None:
        socketio.emit(event, payload, namespace=NAMESPACE, to=payload["job_id"])
        if event in HOME_EVENTS:
            socketio.emit(event, payload, namespace=NAMESPACE, to=HOME)

    bus.subscribe(forward)
