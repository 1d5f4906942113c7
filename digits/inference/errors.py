"""Why a classification request failed, as the pool raises it (flask-free); the views answer with the status.

kind: bad_input (400), not_found (404), failed (500: the model could not run; the message says why, never a
traceback), unavailable (503: no worker could take the request now; trying again helps).
"""

from __future__ import annotations

STATUS = {"bad_input": 400, "not_found": 404, "failed": 500, "unavailable": 503}


class InferenceError(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind if kind in STATUS else "failed"
        self.message = message

    @property
    def status(self) -> int:
        return STATUS[self.kind]


class ServiceUnavailable(InferenceError):
    """The worker stopped, is still starting, stayed busy or went silent; the request may be sent again."""

    def __init__(self, message: str):
        super().__init__("unavailable", message)
