"""The audit log: who created, aborted, resumed, edited or deleted what, and when (jobs/audit.log, JSON lines)."""

from __future__ import annotations

import json
import os
import threading
import time

from flask import current_app, request

_lock = threading.Lock()


def audit(action: str, *, user: str | None = None, job=None, **details) -> None:
    """Append one line: time, user, action, job id and name, the client's address, and any details."""
    workspace = current_app.extensions["digits"]
    if user is None:
        from digits.views.auth import current_username

        user = current_username()
    entry = {"time": time.time(), "user": user, "action": action, "address": request.remote_addr}
    if job is not None:
        entry.update(job_id=job.id, job_name=job.name)
    entry.update(details)
    with _lock, open(os.path.join(workspace.settings.jobs_path, "audit.log"), "a") as fh:
        fh.write(json.dumps(entry) + "\n")
