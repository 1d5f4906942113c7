"""The one place events become Socket.IO emits: namespace /jobs, a room per job id and the console's 'home'.

On a team server (--auth password) only signed-in people connect, and a connection lasts only as long as what
signed it in: a watcher re-checks each connection's session or token every few seconds and closes those that
ended (signed out, new password, user removed, token revoked or expired), whichever process changed users.db.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import request, session
from flask_login import current_user
from flask_socketio import Namespace, SocketIO, disconnect, emit, join_room, leave_room

from digits.events import Event, EventBus, JobAdded, JobDeleted, JobStatusChanged, TaskProgress
from digits.job import is_job_id
from digits.views.auth import SESSION_KEY, bearer_token

log = logging.getLogger(__name__)

NAMESPACE = "/jobs"
HOME = "home"
# What the console follows; per-point metrics go to the job's own room only.
HOME_EVENTS = frozenset(e.name for e in (JobAdded, JobDeleted, JobStatusChanged, TaskProgress))
# How often open connections are checked against users.db (the users command changes it from another process).
RECHECK_S = 2.0


def _room(data: Any) -> str | None:
    room = data.get("room") if isinstance(data, dict) else data
    if isinstance(room, str) and (room == HOME or is_job_id(room)):
        return room
    return None


class ConnectionWatcher:
    """Closes the open connections whose sign-in session or API token no longer holds."""

    def __init__(self, socketio: SocketIO, accounts):
        self.socketio = socketio
        self.accounts = accounts
        self.clients: dict[str, tuple[str, str]] = {}  # Socket.IO sid -> ("session" | "token", secret)
        self._running = False

    def add(self, sid: str, kind: str, secret: str) -> None:
        self.clients[sid] = (kind, secret)
        if not self._running:
            self._running = True
            self.socketio.start_background_task(self._run)

    def discard(self, sid: str) -> None:
        self.clients.pop(sid, None)

    def holds(self, kind: str, secret: str) -> bool:
        if kind == "token":
            return self.accounts.user_for_token(secret) is not None
        return self.accounts.user_for_session(secret) is not None

    def check(self) -> None:
        for sid, (kind, secret) in list(self.clients.items()):
            if not self.holds(kind, secret):
                self.discard(sid)
                self.socketio.server.disconnect(sid, namespace=NAMESPACE)

    def _run(self) -> None:
        while True:
            self.socketio.sleep(RECHECK_S)
            try:
                self.check()
            except Exception:  # a locked or briefly unreadable users.db: try again next round
                log.exception("checking live connections failed")


class JobsNamespace(Namespace):
    def __init__(self, namespace: str, watcher: ConnectionWatcher | None):
        super().__init__(namespace)
        self.watcher = watcher

    def on_connect(self, auth: Any = None) -> bool:
        """A team server (--auth password) streams only to signed-in users (session cookie or bearer token)."""
        if self.watcher is None:
            return True
        if not current_user.is_authenticated:
            return False
        token = bearer_token()
        self.watcher.add(request.sid, *(("token", token) if token else ("session", session.get(SESSION_KEY))))
        return True

    def on_disconnect(self, reason: Any = None) -> None:
        if self.watcher is not None:
            self.watcher.discard(request.sid)

    def on_join(self, data: Any) -> None:
        if self.watcher is not None and not current_user.is_authenticated:
            disconnect()
            return
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


def init_app(socketio: SocketIO, bus: EventBus, accounts=None) -> None:
    """`accounts` (an AccountStore) on a team server: connections then need, and keep needing, a sign-in."""
    watcher = ConnectionWatcher(socketio, accounts) if accounts is not None else None
    socketio.on_namespace(JobsNamespace(NAMESPACE, watcher))

    def forward(event: Event) -> None:
        payload = event.payload()
        socketio.emit(event.name, payload, namespace=NAMESPACE, to=event.job_id)
        if event.name in HOME_EVENTS:
            socketio.emit(event.name, payload, namespace=NAMESPACE, to=HOME)

    bus.subscribe_events(forward)
