"""Why a classification request failed, as the pool raises it (flask-free); digits.inference.views turns a kind
into the digits.errors error it answers with.

kind: bad_input, not_found, failed (the model could not run; the message says why, never a traceback),
unavailable (no worker could take the request now; trying again helps).
"""

from __future__ import annotations

KINDS = ("bad_input", "not_found", "failed", "unavailable")


class InferenceError(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind if kind in KINDS else "failed"
        self.message = message


class ServiceUnavailable(InferenceError):
    """The worker stopped, is still starting, stayed busy or went silent; the request may be sent again."""

    def __init__(self, message: str):
        super().__init__("unavailable", message)
