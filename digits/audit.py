"""The audit log: who signed in or out, who created, aborted, resumed, edited or deleted what, and who changed
accounts, tokens or permissions, and when (jobs/audit.log, JSON lines)."""

from __future__ import annotations

import json
import logging
import os
import threading
import time

from flask import current_app, request

LOG_NAME = "audit.log"
_lock = threading.Lock()
log = logging.getLogger(__name__)


def record(jobs_path: str, action: str, **fields) -> None:
    """Append one line outside a request (the users command line), with whatever fields are known.

    The log is private to the server (0600). A line that cannot be written (a full disk) goes to the server's
    log instead: what it records has happened already, and the person who did it gets their answer."""
    entry = {"time": time.time(), "action": action, **fields}
    path = os.path.join(jobs_path, LOG_NAME)
    try:
        with _lock:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a") as fh:
                fh.write(json.dumps(entry) + "\n")
    except OSError as e:
        log.error("could not write to %s (%s): %s", path, e.strerror or e, json.dumps(entry))


def audit(action: str, *, user: str | None = None, job=None, **details) -> None:
    """Append one line: time, user, action, job id and name, the client's address, and any details."""
    workspace = current_app.extensions["digits"]
    if user is None:
        from digits.views.auth import current_username

        user = current_username()
    fields = {"user": user, "address": request.remote_addr}
    if job is not None:
        fields.update(job_id=job.id, job_name=job.name)
    fields.update(details)
    record(workspace.settings.jobs_path, action, **fields)
