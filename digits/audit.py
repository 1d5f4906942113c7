"""The audit log: who signed in or out, who created, aborted, resumed, edited or deleted what, and who changed
accounts, tokens or permissions, and when (jobs/audit.log, JSON lines). Requests write through
digits.views.common.audit, the accounts command line through `record`."""

from __future__ import annotations

import json
import logging
import os
import threading
import time

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
